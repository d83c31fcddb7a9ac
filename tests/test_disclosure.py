"""Selective disclosure: an event's commitment is stable, every field's proof leads to the root, and
any change to a shown value, a salt, a proof, a withheld hash, the root, the count or the list of
fields fails naming the field at fault (or the root)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracechain.chain.merkle import MerkleTree, hash_pair, keccak256
from tracechain.disclosure import (
    CONTEXT_FIELD,
    HASH_ID_FIELD,
    EventFields,
    canonical_json,
    check_disclosure,
    commitment_of,
    field_leaf,
    field_salt,
    value_hash,
)

HASH_ID = "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
SEED = bytes(range(32))
BODY: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventTime": "2026-10-01T08:00:00.000+00:00",
    "eventTimeZoneOffset": "+08:00",
    "epcList": ["urn:epc:id:sgtin:6901234.067890.1001"],
    "action": "OBSERVE",
    "bizStep": "shipping",
    "readPoint": {"id": "urn:epc:id:sgln:6901234.00001.0"},
    "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:6901234000003:PO-4711"}],
    "quantityList": [{"epcClass": "urn:epc:class:lgtin:6901234.067890.L1", "quantity": 120.5, "uom": "KGM"}],
    "example:price": {"amount": 10, "currency": "€"},
}
SHOWN = {"type", "eventTime", "bizStep", "readPoint"}


def fields_of(body: dict[str, Any] = BODY, seed: bytes = SEED) -> EventFields:
    return EventFields.of(body, CONTEXT, HASH_ID, seed)


def disclosed(shown: set[str] = SHOWN) -> dict[str, Any]:
    return fields_of().disclose(shown).as_json()


def checked(bundle: dict[str, Any]) -> tuple[list[str], bool]:
    """The problems, and whether the root and count make the event's commitment."""
    found = check_disclosure(bundle["fieldRoot"], bundle["fieldCount"], bundle["fields"])
    return found.problems, found.commitment == fields_of().commitment


def test_the_commitment_is_the_root_bound_to_the_count_of_fields_and_is_stable() -> None:
    fields = fields_of()
    assert len(fields.values) == len(BODY) + 2
    assert fields.values[HASH_ID_FIELD] == HASH_ID and fields.values[CONTEXT_FIELD] == CONTEXT
    expected_leaves = sorted(
        keccak256(b"\x00" + keccak256(name.encode()) + keccak256(field_salt(SEED, name) + canonical_json(v)))
        for name, v in fields.values.items()
    )
    root = MerkleTree.build(expected_leaves).root
    assert fields.commitment == keccak256(root + len(fields.values).to_bytes(32, "big"))
    reordered = dict(reversed(list(BODY.items())))
    assert fields_of(json.loads(json.dumps(reordered))).commitment == fields.commitment
    # A known answer, so that the format cannot drift unnoticed: bundles already handed out rely on it.
    assert fields.commitment.hex() == KNOWN_COMMITMENT


KNOWN_COMMITMENT = "46c2724be0043a04065f6a3ebcc57e06cb0437b5cfe67577c66ffa4e95196f1f"


def test_another_seed_or_any_changed_field_gives_another_commitment() -> None:
    commitment = fields_of().commitment
    assert fields_of(seed=os.urandom(32)).commitment != commitment
    assert fields_of({**BODY, "bizStep": "receiving"}).commitment != commitment
    assert fields_of({k: v for k, v in BODY.items() if k != "quantityList"}).commitment != commitment
    assert EventFields.of(BODY, None, HASH_ID, SEED).commitment != commitment


def test_a_salt_is_the_keccak_of_the_seed_and_the_name() -> None:
    assert field_salt(SEED, "bizStep") == keccak256(SEED + b"bizStep")
    assert field_salt(SEED, "bizStep") != field_salt(SEED, "bizTransactionList")
    assert field_salt(os.urandom(32), "bizStep") != field_salt(SEED, "bizStep")


def test_a_disclosure_shows_the_chosen_fields_and_withholds_every_other() -> None:
    bundle = disclosed()
    problems, matches = checked(bundle)
    assert problems == [] and matches
    names = [entry["name"] for entry in bundle["fields"]]
    assert names == sorted(fields_of().values) and bundle["fieldCount"] == len(names)
    shown = {entry["name"] for entry in bundle["fields"] if "value" in entry}
    assert shown == SHOWN
    found = check_disclosure(bundle["fieldRoot"], bundle["fieldCount"], bundle["fields"])
    assert found.disclosed == {name: BODY[name] for name in SHOWN}
    assert set(found.withheld) == set(fields_of().values) - SHOWN
    text = json.dumps(bundle)
    for secret in ("PO-4711", "120.5", "KGM", "currency", "6901234.067890.1001", HASH_ID):
        assert secret not in text


def test_every_field_shown_or_none_shown_verifies() -> None:
    everything = set(fields_of().values)
    assert checked(disclosed(everything)) == ([], True)
    assert checked(disclosed(set())) == ([], True)


def _field(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def find(bundle: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = next(e for e in bundle["fields"] if e["name"] == name)
        return entry

    return find


def _flip(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


TAMPERINGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a shown value": (
        lambda b: _field("bizStep")(b).update(value="receiving"),
        "disclosed field bizStep does not lead to the field root",
    ),
    "a shown value's salt": (
        lambda b: _field("eventTime")(b).update(salt=_flip(_field("eventTime")(b)["salt"])),
        "disclosed field eventTime does not lead to the field root",
    ),
    "a proof sibling": (
        lambda b: _field("readPoint")(b)["proof"].__setitem__(0, _flip(_field("readPoint")(b)["proof"][0])),
        "disclosed field readPoint does not lead to the field root",
    ),
    "a withheld value hash": (
        lambda b: _field("bizTransactionList")(b).update(
            valueHash=_flip(_field("bizTransactionList")(b)["valueHash"])
        ),
        "withheld field bizTransactionList does not lead to the field root",
    ),
    "a withheld field renamed": (
        lambda b: _field("quantityList")(b).update(name="childQuantityList"),
        "withheld field childQuantityList does not lead to the field root",
    ),
    "a withheld field shown with a made-up value": (
        lambda b: _field("quantityList")(b).update(value=[], salt="0x" + "00" * 32),
        "field quantityList is neither disclosed nor withheld",
    ),
    "a field dropped": (
        lambda b: b["fields"].remove(_field("bizTransactionList")(b)),
        "the bundle lists 11 fields, the event has 12",
    ),
    "a field listed twice": (
        lambda b: b["fields"].append(copy.deepcopy(_field("bizStep")(b))),
        "field bizStep is listed twice",
    ),
    "a malformed proof": (
        lambda b: _field("type")(b).update(proof=["0x12"]),
        "disclosed field type is malformed",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_tampered_disclosure_fails_naming_the_field(name: str) -> None:
    tamper, reason = TAMPERINGS[name]
    bundle = disclosed()
    tamper(bundle)
    problems, _ = checked(bundle)
    assert any(reason in problem for problem in problems), problems


def test_a_changed_root_fails_every_field_and_the_commitment() -> None:
    bundle = disclosed()
    bundle["fieldRoot"] = _flip(bundle["fieldRoot"])
    problems, matches = checked(bundle)
    assert not matches and len(problems) == bundle["fieldCount"]
    assert all("does not lead to the field root" in problem for problem in problems)


def test_a_dropped_field_cannot_hide_behind_a_lowered_count() -> None:
    """Drop a field and lower the count to match: the fields still check, but the root and count no
    longer make the commitment the chain recorded."""
    bundle = disclosed()
    bundle["fields"].remove(_field("bizTransactionList")(bundle))
    bundle["fieldCount"] -= 1
    problems, matches = checked(bundle)
    assert problems == [] and not matches
    assert commitment_of(bytes.fromhex(bundle["fieldRoot"][2:]), 11) != fields_of().commitment


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("fieldRoot", "0x12", "the field root is not a 32-byte hash"),
        ("fieldCount", 0, "the field count is not a positive number"),
        ("fieldCount", True, "the field count is not a positive number"),
        ("fields", {}, "the fields are not a list"),
    ],
)
def test_a_malformed_disclosure_says_what_is_wrong(field: str, value: Any, reason: str) -> None:
    bundle = {**disclosed(), field: value}
    found = check_disclosure(bundle["fieldRoot"], bundle["fieldCount"], bundle["fields"])
    assert found.problems == [reason] and found.commitment is None


def test_a_body_field_named_like_a_synthetic_one_is_refused() -> None:
    with pytest.raises(ValueError, match="#hashId"):
        EventFields.of({**BODY, "#hashId": "x"}, CONTEXT, HASH_ID, SEED)


def test_a_leaf_hashes_65_bytes_so_no_inner_node_passes_for_one() -> None:
    hashed, name_hash = value_hash(SEED, "x"), keccak256(b"name")
    assert field_leaf("name", hashed) == keccak256(b"\x00" + name_hash + hashed)
    # An inner node hashes its two children, 64 bytes: the same two hashes read as a name's hash and
    # a value's make another node, so a withheld "field" cannot stand for a subtree.
    assert keccak256(name_hash + hashed) != field_leaf("name", hashed)
    assert hash_pair(name_hash, hashed) != field_leaf("name", hashed)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda name: not name.startswith("#")), json_values, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(bodies, st.data())
def test_any_body_disclosed_in_any_part_verifies_and_round_trips_through_json(
    body: dict[str, Any], data: st.DataObject
) -> None:
    fields = EventFields.of(body, CONTEXT, HASH_ID, SEED)
    shown = data.draw(st.sets(st.sampled_from(sorted(fields.values))))
    bundle = json.loads(json.dumps(fields.disclose(shown).as_json()))
    found = check_disclosure(bundle["fieldRoot"], bundle["fieldCount"], bundle["fields"])
    assert found.problems == [] and found.commitment == fields.commitment
    assert set(found.withheld) == set(fields.values) - shown
    # The commitment read back from stored JSON is the one capture recorded.
    again = EventFields.of(json.loads(json.dumps(body)), CONTEXT, HASH_ID, SEED)
    assert again.commitment == fields.commitment
