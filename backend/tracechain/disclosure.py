"""Selective disclosure: what the chain records of an event commits to each of its fields apart, so a
proof bundle can show some fields and withhold the rest, and still verify against the chain.

An event's *fields* are the top-level keys of its EPCIS body as captured (`eventID` included when
the capturer sent one), plus two synthetic ones: `#hashId`, its CBV 2.0 hash id, and `#context`,
the capture document's `@context` (which the hash id depends on; may be null). Each field is
salted from the event's secret random seed (`salt = keccak256(seed ‖ name)`: keccak, unlike SHA-256,
is a sound keyed hash this way, and half the cost of an HMAC per field), so a withheld value
cannot be guessed by hashing candidates: a quantity or a business transaction id has few likely
values. Its leaf is

    leaf = keccak256(0x00 ‖ keccak256(name) ‖ keccak256(salt ‖ canonical_json(value)))

65 bytes hashed where an inner node of the tree hashes 64, so an inner node can never pass for a
leaf (one hash per leaf where `chain.merkle.leaf_of` hashes twice: capture builds a tree per event).
The leaves, sorted, make a Merkle tree (`chain.merkle`, OpenZeppelin's sorted pairs), and the record
on chain carries `keccak256(root ‖ uint256(field count))` as its eventHash: the count stops a bundle
from silently dropping a field, since every listed field must be a distinct leaf of that tree.

A disclosed field shows its name, value, salt and proof; a withheld one its name, value hash and
proof, so a reader learns that it exists and what it is called, never its value. Pure functions, no
I/O: capture commits (`EventFields.commitment`), proof bundles disclose (`EventFields.disclose`),
`tracechain verify` checks (`check_disclosure`).

Error declarations are not committed this way: their record keeps `declaration_digest`, and the
ids they carry (the withdrawn event's hash id) are public in any bundle that holds them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from tracechain.chain.merkle import MerkleTree, keccak256, process_proof

HASH_ID_FIELD = "#hashId"
CONTEXT_FIELD = "#context"
SEED_BYTES = 32


# One encoder for every value: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    """The bytes a value is hashed as: JSON with sorted keys, no whitespace, UTF-8 (as
    `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`)."""
    return _CANONICAL.encode(value).encode("utf-8")


def field_salt(seed: bytes, name: str) -> bytes:
    return keccak256(seed + name.encode("utf-8"))


def value_hash(salt: bytes, value: Any) -> bytes:
    return keccak256(salt + canonical_json(value))


@lru_cache(maxsize=1024)  # the same few dozen EPCIS field names, over and over
def _name_hash(name: str) -> bytes:
    return keccak256(name.encode("utf-8"))


_LEAF_TAG = b"\x00"


def field_leaf(name: str, hashed_value: bytes) -> bytes:
    return keccak256(_LEAF_TAG + _name_hash(name) + hashed_value)


def commitment_of(root: bytes, field_count: int) -> bytes:
    """What the chain records as the eventHash: the field root bound to the number of fields."""
    return keccak256(root + field_count.to_bytes(32, "big"))


def event_fields(body: Mapping[str, Any], context: Any, hash_id: str) -> dict[str, Any]:
    """An event's fields by name: its body's top-level keys and the two synthetic ones. The EPCIS
    schema refuses top-level keys without a namespace prefix, so none can be `#`-named; a body
    that has one anyway is refused here rather than let it pass for a synthetic field."""
    clashing = [name for name in body if name.startswith("#")]
    if clashing:
        raise ValueError(f"an event field cannot be named {clashing[0]!r}: '#' names synthetic fields")
    return {**body, HASH_ID_FIELD: hash_id, CONTEXT_FIELD: context}


@dataclass(frozen=True)
class DisclosedField:
    name: str
    value: Any
    salt: bytes
    proof: list[bytes]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "salt": _hex(self.salt), "proof": _hexes(self.proof)}


@dataclass(frozen=True)
class WithheldField:
    name: str
    value_hash: bytes
    proof: list[bytes]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "valueHash": _hex(self.value_hash), "proof": _hexes(self.proof)}


@dataclass(frozen=True)
class Disclosure:
    """Some of an event's fields shown, the others withheld, each with its proof to the field root."""

    root: bytes
    fields: list[DisclosedField | WithheldField]

    @property
    def withheld(self) -> list[str]:
        return [f.name for f in self.fields if isinstance(f, WithheldField)]

    def as_json(self) -> dict[str, Any]:
        """The bundle's form: `fieldRoot`, `fieldCount` and every field (sorted by name)."""
        return {
            "fieldRoot": _hex(self.root),
            "fieldCount": len(self.fields),
            "fields": [f.as_json() for f in self.fields],
        }


@dataclass(frozen=True)
class EventFields:
    """An event's fields under its seed: the tree they make and the commitment the chain records."""

    values: Mapping[str, Any]
    seed: bytes

    @classmethod
    def of(cls, body: Mapping[str, Any], context: Any, hash_id: str, seed: bytes) -> EventFields:
        return cls(event_fields(body, context, hash_id), seed)

    @cached_property
    def _hashed(self) -> dict[str, tuple[bytes, bytes, bytes]]:
        """Each field's salt, value hash and leaf, in one pass: capture does this for every event."""
        hashed = {}
        for name, value in self.values.items():
            salt = field_salt(self.seed, name)
            value_hashed = value_hash(salt, value)
            hashed[name] = (salt, value_hashed, field_leaf(name, value_hashed))
        return hashed

    @property
    def salts(self) -> dict[str, bytes]:
        return {name: salt for name, (salt, _, _) in self._hashed.items()}

    @property
    def value_hashes(self) -> dict[str, bytes]:
        return {name: value_hashed for name, (_, value_hashed, _) in self._hashed.items()}

    @property
    def _leaves(self) -> dict[str, bytes]:
        return {name: leaf for name, (_, _, leaf) in self._hashed.items()}

    @cached_property
    def tree(self) -> MerkleTree:
        return MerkleTree.build(sorted(self._leaves.values()))

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def commitment(self) -> bytes:
        return commitment_of(self.root, len(self.values))

    def disclose(self, names: Collection[str]) -> Disclosure:
        """`names` shown (any not among the fields are ignored), every other field withheld."""
        index = {leaf: position for position, leaf in enumerate(self.tree.leaves)}
        fields: list[DisclosedField | WithheldField] = []
        for name in sorted(self.values):
            salt, value_hashed, leaf = self._hashed[name]
            proof = self.tree.proof(index[leaf])
            if name in names:
                fields.append(DisclosedField(name, self.values[name], salt, proof))
            else:
                fields.append(WithheldField(name, value_hashed, proof))
        return Disclosure(self.root, fields)


@dataclass
class DisclosureCheck:
    """What `check_disclosure` found: the problems (empty if every field leads to the root and they
    are as many as the count says), the commitment the root and count make, the values shown and
    the names withheld."""

    problems: list[str]
    commitment: bytes | None
    disclosed: dict[str, Any] = field(default_factory=dict)
    withheld: list[str] = field(default_factory=list)


def check_disclosure(field_root: Any, field_count: Any, fields: Any) -> DisclosureCheck:
    """Check a bundle's disclosure (`Disclosure.as_json` form, read from JSON, so trusted in no
    part); each problem names the field at fault. The caller compares `commitment` with the event
    hash the chain recorded."""
    try:
        root = _bytes32(field_root)
    except (ValueError, TypeError, AttributeError):
        return DisclosureCheck(["the field root is not a 32-byte hash"], None)
    if not isinstance(field_count, int) or isinstance(field_count, bool) or field_count < 1:
        return DisclosureCheck(["the field count is not a positive number"], None)
    if not isinstance(fields, list):
        return DisclosureCheck(["the fields are not a list"], None)
    check = DisclosureCheck([], commitment_of(root, field_count))
    if len(fields) != field_count:
        check.problems.append(f"the bundle lists {len(fields)} fields, the event has {field_count}")
    seen: set[str] = set()
    for position, entry in enumerate(fields):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            check.problems.append(f"field {position} has no name")
            continue
        if name in seen:
            check.problems.append(f"field {name} is listed twice")
            continue
        seen.add(name)
        problem = _field_problem(entry, name, root, check)
        if problem:
            check.problems.append(problem)
    return check


def _field_problem(entry: dict[str, Any], name: str, root: bytes, check: DisclosureCheck) -> str | None:
    shown, hidden = "value" in entry, "valueHash" in entry
    if shown == hidden:
        return f"field {name} is neither disclosed nor withheld"
    what = "disclosed" if shown else "withheld"
    try:
        proof = [_bytes32(sibling) for sibling in entry["proof"]]
        if shown:
            hashed = value_hash(_bytes32(entry["salt"]), entry["value"])
        else:
            hashed = _bytes32(entry["valueHash"])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        return f"{what} field {name} is malformed: {exc}"
    if process_proof(proof, field_leaf(name, hashed)) != root:
        return f"{what} field {name} does not lead to the field root"
    if shown:
        check.disclosed[name] = entry["value"]
    else:
        check.withheld.append(name)
    return None


def _bytes32(value: Any) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"{value!r} is not 32 bytes")
    return raw


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _hexes(values: Sequence[bytes]) -> list[str]:
    return [_hex(value) for value in values]
