"""Checks a proof bundle against the chain without trusting whoever produced it (`tracechain verify`).

For every chain record it claims: the event's content hashes to its id and its fields, under the
seed the bundle gives, to the commitment the record carries (`disclosure`); or, for an event of a
partial bundle, every field listed (shown or withheld) leads to a field root that, with their
count, makes that commitment; the signature recovers to the signer over the event as the contract
rebuilt it, the transaction holds an EventRecorded log at
the claimed index that matches field by field, the signer held a fitting role at that block, and
every chain the bundle must hold whole runs from zero with nothing missing: the facts of the
product, of the units its records show it packed in and of the ingredients they show it made from,
and each reporter's observations of those. The same rules as the service's trace (trace.py): other
subjects an event names (items packed beside this one) are checked by signature alone, and an error
declaration withdraws only captures in the bundle: each record names a capture by its signer and by
what the capture's records committed to (`ref`), which must be a capture of the declared event. In
a partial bundle that last check needs the withdrawn event's `#hashId` disclosed; without it, it is
noted as unchecked, not failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from tracechain.chain.eip712 import Domain, recover_signer
from tracechain.chain.merkle import leaf_of, verify_proof
from tracechain.chain.registry import Role
from tracechain.chain.registry_view import RegistryView
from tracechain.chain.trace_event import Kind, SignedEvent, TraceEvent, chain_of, next_head, subject_id
from tracechain.disclosure import HASH_ID_FIELD, EventFields, check_disclosure
from tracechain.epcis.event_hash import declaration_digest, event_hash_id

# ---------------------------------------------------------------- proof bundles

_REQUIRED_ROLES = {
    Kind.COMMISSION: ("manufacturer",),
    Kind.INSPECT: ("customs",),
    Kind.SELL: ("retailer",),
    Kind.RECALL: ("manufacturer", "auditor"),
}
_ANY_ROLE = ("manufacturer", "carrier", "customs", "retailer", "auditor")


@dataclass
class RecordCheck:
    """One chain record of a bundle, checked against the chain."""

    event_id: str | None
    """None: a partial bundle withheld the event's hash id."""
    biz_step: str
    subject_epc: str
    kind: str
    block: int | None
    problems: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    """The event's fields a partial bundle withheld (their hashes verified, their values unseen)."""
    notes: list[str] = field(default_factory=list)
    """What could not be checked for lack of a withheld field, without failing."""


@dataclass
class BundleVerification:
    problems: list[str]
    """About the bundle as a whole (wrong chain, unknown format)."""
    records: list[RecordCheck]

    @property
    def every_problem(self) -> list[str]:
        """The bundle's problems, then each record's."""
        return self.problems + [problem for check in self.records for problem in check.problems]

    @property
    def verified(self) -> bool:
        return bool(self.records) and not self.every_problem


def verify_bundle(bundle: dict[str, Any], w3: Web3) -> BundleVerification:
    """Check every claim of a proof bundle against the chain `w3` reaches, trusting nothing else."""
    from tracechain.proof import BUNDLE_FORMAT

    problems: list[str] = []
    if bundle.get("format") != BUNDLE_FORMAT:
        problems.append(f"not a {BUNDLE_FORMAT} bundle")
        return BundleVerification(problems, [])
    chain_id, registry_address = bundle["chain"]["chainId"], bundle["chain"]["registry"]
    registry = RegistryView(w3, registry_address)
    served = registry.chain_id
    if served != chain_id:
        problems.append(f"the node serves chain {served}, the bundle claims chain {chain_id}")
    if not registry.has_code():
        problems.append(f"no contract at {registry_address} on this chain")
    separator = Domain(chain_id, registry_address).separator
    checks: list[RecordCheck] = []
    by_chain: dict[bytes, list[tuple[int, int, dict[str, Any], RecordCheck]]] = {}
    contents = [_EventContent.read(entry) for entry in bundle["events"]]
    captured = {  # (what a capture's records carry as eventHash, its signer) -> its hash id, if shown
        (record.get("eventHash"), record.get("signer")): content.event_id
        for entry, content in zip(bundle["events"], contents, strict=True)
        if content.declaration is None
        for record in entry["records"]
    }
    for entry, content in zip(bundle["events"], contents, strict=True):
        for claimed in entry["records"]:
            check = RecordCheck(
                content.event_id,
                content.biz_step,
                claimed["subjectEpc"],
                claimed["kind"],
                claimed.get("block"),
                withheld=list(content.withheld),
            )
            checks.append(check)
            check.problems.extend(content.problems)
            try:
                _check_record(claimed, content, separator, registry, check)
                if claimed["kind"] == "withdraw":
                    _check_withdrawn(claimed, content, captured, check)
            except (KeyError, ValueError, TypeError) as exc:
                check.problems.append(f"malformed record: {exc}")
                continue
            chain = chain_of(
                bytes.fromhex(claimed["subject"][2:]), Kind[claimed["kind"].upper()], claimed["signer"]
            )
            by_chain.setdefault(chain, []).append(
                (claimed.get("block") or 0, claimed.get("logIndex") or 0, claimed, check)
            )
    whole = _followed_subjects(bundle)
    for chain_records in by_chain.values():
        records = [item for item in chain_records if bytes.fromhex(item[2]["subject"][2:]) in whole]
        head = "0x" + "00" * 32
        for claimed, check in _chain_order(records):
            if claimed["prevHead"] != head:
                check.problems.append(
                    f"an event of {claimed['subjectEpc']} is missing or reordered before this one"
                )
            head = claimed["head"]
    return BundleVerification(problems, checks)


def _followed_subjects(bundle: dict[str, Any]) -> set[bytes]:
    """The subjects whose chains the bundle must hold whole, read from its signed records as the
    trace walks them: the product, the units an Aggregate of a followed subject packed it in, and
    the inputs a Consume turned into a followed subject."""
    records = [record for entry in bundle["events"] for record in entry["records"]]
    followed = {subject_id(str(bundle.get("epc")))}
    while True:
        found = set()
        for record in records:
            try:
                subject, ref = bytes.fromhex(record["subject"][2:]), bytes.fromhex(record["ref"][2:])
            except (KeyError, ValueError, TypeError):
                continue
            if record.get("kind") == "aggregate" and subject in followed:
                found.add(ref)
            elif record.get("kind") == "consume" and ref in followed:
                found.add(subject)
        if found <= followed:
            return followed
        followed |= found


def _chain_order(
    records: list[tuple[int, int, dict[str, Any], RecordCheck]],
) -> list[tuple[dict[str, Any], RecordCheck]]:
    """A subject's records in the order the chain holds them. Records anchored in one batch share a
    block and log; among those, the signed head chain itself gives the order."""
    ordered: list[tuple[dict[str, Any], RecordCheck]] = []
    head = "0x" + "00" * 32
    records = sorted(records, key=lambda item: (item[0], item[1]))
    start = 0
    while start < len(records):
        end = start
        while end < len(records) and records[end][:2] == records[start][:2]:
            end += 1
        group = [(claimed, check) for _, _, claimed, check in records[start:end]]
        while group:
            following = next((g for g in group if g[0]["prevHead"] == head), group[0])
            group.remove(following)
            ordered.append(following)
            head = following[0]["head"]
        start = end
    return ordered


@dataclass
class _EventContent:
    """What a bundle entry shows of its event, checked as far as it goes without the chain: its
    hash id (None if withheld), its declaration if it is one, and what its records must carry."""

    event_id: str | None
    declaration: Any | None
    biz_step: str
    commitment: bytes | None
    """What the records of a capture must carry as eventHash (None: the content could not say)."""
    problems: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, entry: dict[str, Any]) -> _EventContent:
        try:
            if "event" in entry:
                return cls._whole(entry)
            if "errorDeclaration" in entry:
                return cls(str(entry["eventID"]), entry["errorDeclaration"], "", None)
            return cls._partial(entry)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            return cls(entry.get("eventID"), None, "", None, [f"malformed event: {exc}"])

    @classmethod
    def _whole(cls, entry: dict[str, Any]) -> _EventContent:
        event, event_id = entry["event"], str(entry["eventID"])
        biz_step = str(event.get("bizStep", ""))
        if "errorDeclaration" in event:
            content = cls(event_id, event["errorDeclaration"], biz_step, None)
        else:
            seed = entry.get("seed")
            if not isinstance(seed, str):
                return cls(event_id, None, biz_step, None, ["the bundle gives no disclosure seed"])
            fields = EventFields.of(event, entry.get("context"), event_id, bytes.fromhex(seed[2:]))
            content = cls(event_id, None, biz_step, fields.commitment)
        problem = _content_problem(event, entry.get("context"), event_id)
        if problem:
            content.problems.append(problem)
        return content

    @classmethod
    def _partial(cls, entry: dict[str, Any]) -> _EventContent:
        found = check_disclosure(entry["fieldRoot"], entry["fieldCount"], entry["fields"])
        hash_id = found.disclosed.get(HASH_ID_FIELD)
        event_id = entry.get("eventID")
        if event_id is not None and event_id != hash_id:
            found.problems.append(f"the eventID is not the disclosed {HASH_ID_FIELD}")
        biz_step = str(found.disclosed.get("bizStep", "withheld" if "bizStep" in found.withheld else ""))
        return cls(
            None if hash_id is None else str(hash_id),
            None,
            biz_step,
            found.commitment,
            found.problems,
            found.withheld,
        )


def _content_problem(event: dict[str, Any], context: Any, event_id: str) -> str | None:
    try:
        recomputed = event_hash_id(event, context)
    except Exception as exc:  # any content the hash algorithm cannot read is a failed check
        return f"the event's content cannot be hashed: {exc}"
    return (
        None if recomputed == event_id else f"the event's content hashes to {recomputed}, not to its eventID"
    )


def _check_withdrawn(
    claimed: dict[str, Any],
    content: _EventContent,
    captured: dict[tuple[Any, Any], str | None],
    check: RecordCheck,
) -> None:
    """A Withdraw record names a capture the bundle holds (by signer and commitment), of the
    declared event."""
    key = (claimed["ref"], claimed["counterpart"])
    if key not in captured:
        check.problems.append(
            f"withdraws a capture by {claimed['counterpart']} that the bundle does not hold"
        )
    elif captured[key] is None:
        check.notes.append(
            "that the withdrawn capture is of the declared event cannot be checked: the bundle "
            f"withholds its {HASH_ID_FIELD}"
        )
    elif captured[key] != content.event_id:
        check.problems.append(f"withdraws a capture of another event, {captured[key]}")


def _check_record(
    claimed: dict[str, Any],
    content: _EventContent,
    separator: bytes,
    registry: RegistryView,
    check: RecordCheck,
) -> None:
    kind = Kind[claimed["kind"].upper()]
    event_hash = bytes.fromhex(claimed["eventHash"][2:])
    if content.declaration is not None:
        event_id = str(content.event_id)
        if kind is not Kind.WITHDRAW:
            check.problems.append("an error declaration's record does not withdraw an event")
        declared = {"errorDeclaration": content.declaration}
        if event_hash != declaration_digest(declared, event_id):
            check.problems.append("the recorded event hash is not the declaration's digest")
    elif kind is Kind.WITHDRAW or content.commitment is None or event_hash != content.commitment:
        check.problems.append("the recorded event hash is not the commitment to the event's fields")
    head = bytes.fromhex(claimed["head"][2:])
    prev_head = bytes.fromhex(claimed["prevHead"][2:])
    if next_head(prev_head, event_hash) != head:
        check.problems.append("head is not keccak256(prevHead, eventHash)")
    trace_event = TraceEvent(
        bytes.fromhex(claimed["subject"][2:]),
        kind,
        event_hash,
        claimed["counterpart"],
        bytes.fromhex(claimed["ref"][2:]),
        int(claimed["time"]),
        prev_head,
    )
    signature = claimed.get("signature")
    if not signature:
        check.problems.append("not signed")
    else:
        signed = SignedEvent(
            trace_event,
            claimed["signer"],
            bytes.fromhex(signature["r"][2:]),
            bytes.fromhex(signature["vs"][2:]),
        )
        if recover_signer(separator, signed) != claimed["signer"]:
            check.problems.append(f"the signature does not recover to {claimed['signer']}")
    if not claimed.get("transaction"):
        check.problems.append("not recorded on chain yet")
        return
    if claimed.get("anchor"):
        found = _check_anchored(claimed, trace_event, separator, registry, check)
    else:
        found = _check_logged(claimed, trace_event, registry, check)
    if not found:
        return
    roles = _REQUIRED_ROLES.get(kind, _ANY_ROLE)
    if not any(registry.had_role(Role.by_name(role), claimed["signer"], claimed["block"]) for role in roles):
        check.problems.append(f"{claimed['signer']} held none of the roles {', '.join(roles)}")


def _check_logged(
    claimed: dict[str, Any],
    trace_event: TraceEvent,
    registry: RegistryView,
    check: RecordCheck,
) -> bool:
    """A recorded event: its EventRecorded log matches the claim field by field. False if the
    transaction holds no such log."""
    log = registry.logged(claimed["transaction"], claimed["logIndex"], "EventRecorded")
    if log is None:
        check.problems.append(
            f"no EventRecorded log {claimed['logIndex']} in transaction {claimed['transaction']}"
        )
        return False
    args = log.args
    logged = {
        "subject": bytes(args["subject"]) == trace_event.subject,
        "eventHash": bytes(args["eventHash"]) == trace_event.event_hash,
        "signer": args["signer"] == claimed["signer"],
        "kind": args["kind"] == int(trace_event.kind),
        "counterpart": args["counterpart"] == claimed["counterpart"],
        "ref": bytes(args["ref"]) == trace_event.ref,
        "time": args["time"] == trace_event.time,
        "head": bytes(args["head"]) == bytes.fromhex(claimed["head"][2:]),
        "block": log.block_number == claimed["block"],
    }
    for name, matches in logged.items():
        if not matches:
            check.problems.append(f"{name} differs from what the chain logged")
    return True


def _check_anchored(
    claimed: dict[str, Any],
    trace_event: TraceEvent,
    separator: bytes,
    registry: RegistryView,
    check: RecordCheck,
) -> bool:
    """An anchored event: the transaction logged BatchAnchored for the claimed root, the proof leads
    from the event's leaf to that root off chain, and the contract's verifyAnchored agrees. False if
    the transaction holds no such log."""
    root = bytes.fromhex(claimed["anchor"]["root"][2:])
    proof = [bytes.fromhex(sibling[2:]) for sibling in claimed["anchor"]["proof"]]
    log = registry.logged(claimed["transaction"], claimed["logIndex"], "BatchAnchored")
    if log is None:
        check.problems.append(
            f"no BatchAnchored log {claimed['logIndex']} in transaction {claimed['transaction']}"
        )
        return False
    if bytes(log.args["root"]) != root:
        check.problems.append("the anchor root differs from what the chain logged")
    if log.block_number != claimed["block"]:
        check.problems.append("block differs from what the chain logged")
    signed = SignedEvent(
        trace_event,
        claimed["signer"],
        bytes.fromhex(claimed["signature"]["r"][2:]),
        bytes.fromhex(claimed["signature"]["vs"][2:]),
    )
    if not verify_proof(proof, root, leaf_of(separator, signed)):
        check.problems.append("the inclusion proof does not lead from the event to the anchored root")
    if not registry.verify_anchored_at(signed, proof, root, claimed["block"]):
        check.problems.append("TraceRegistry.verifyAnchored refuses the event")
    return True
