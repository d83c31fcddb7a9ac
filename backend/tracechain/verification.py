"""Checks a proof bundle against the chain without trusting whoever produced it (`tracechain verify`).

For every chain record it claims: the event's content hashes to its id, the signature recovers to
the signer over the event as the contract rebuilt it, the transaction holds an EventRecorded log at
the claimed index that matches field by field, the signer held a fitting role at that block, and
each subject's heads chain from zero with nothing missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from tracechain.chain.artifacts import load_artifact
from tracechain.chain.eip712 import Domain, recover_signer
from tracechain.chain.registry import Role
from tracechain.chain.trace_event import Kind, SignedEvent, TraceEvent, next_head
from tracechain.epcis.event_hash import event_hash_id, hash_id_digest

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

    event_id: str
    biz_step: str
    subject_epc: str
    kind: str
    block: int | None
    problems: list[str] = field(default_factory=list)


@dataclass
class BundleVerification:
    problems: list[str]
    """About the bundle as a whole (wrong chain, unknown format)."""
    records: list[RecordCheck]

    @property
    def verified(self) -> bool:
        return not self.problems and bool(self.records) and all(not r.problems for r in self.records)


def verify_bundle(bundle: dict[str, Any], w3: Web3) -> BundleVerification:
    """Check every claim of a proof bundle against the chain `w3` reaches, trusting nothing else."""
    from tracechain.proof import BUNDLE_FORMAT

    problems: list[str] = []
    if bundle.get("format") != BUNDLE_FORMAT:
        problems.append(f"not a {BUNDLE_FORMAT} bundle")
        return BundleVerification(problems, [])
    chain_id, registry_address = bundle["chain"]["chainId"], bundle["chain"]["registry"]
    if w3.eth.chain_id != chain_id:
        problems.append(f"the node serves chain {w3.eth.chain_id}, the bundle claims chain {chain_id}")
    if not w3.eth.get_code(registry_address):
        problems.append(f"no contract at {registry_address} on this chain")
    contract = w3.eth.contract(address=registry_address, abi=load_artifact("TraceRegistry").abi)
    separator = Domain(chain_id, registry_address).separator
    receipts: dict[str, Any] = {}
    checks: list[RecordCheck] = []
    by_subject: dict[str, list[tuple[int, int, dict[str, Any], RecordCheck]]] = {}
    for entry in bundle["events"]:
        event, event_id = entry["event"], entry["eventID"]
        content_problem = _content_problem(event, entry.get("context"), event_id)
        for claimed in entry["records"]:
            check = RecordCheck(
                event_id,
                str(event.get("bizStep", "")),
                claimed["subjectEpc"],
                claimed["kind"],
                claimed.get("block"),
            )
            checks.append(check)
            if content_problem:
                check.problems.append(content_problem)
            try:
                _check_record(claimed, event_id, separator, contract, receipts, w3, check)
            except (KeyError, ValueError, TypeError) as exc:
                check.problems.append(f"malformed record: {exc}")
                continue
            by_subject.setdefault(claimed["subject"], []).append(
                (claimed.get("block") or 0, claimed.get("logIndex") or 0, claimed, check)
            )
    for records in by_subject.values():
        head = "0x" + "00" * 32
        for _, _, claimed, check in sorted(records, key=lambda item: (item[0], item[1])):
            if claimed["prevHead"] != head:
                check.problems.append(
                    f"an event of {claimed['subjectEpc']} is missing or reordered before this one"
                )
            head = claimed["head"]
    return BundleVerification(problems, checks)


def _content_problem(event: dict[str, Any], context: Any, event_id: str) -> str | None:
    try:
        recomputed = event_hash_id(event, context)
    except Exception as exc:  # any content the hash algorithm cannot read is a failed check
        return f"the event's content cannot be hashed: {exc}"
    return (
        None if recomputed == event_id else f"the event's content hashes to {recomputed}, not to its eventID"
    )


def _check_record(
    claimed: dict[str, Any],
    event_id: str,
    separator: bytes,
    contract: Contract,
    receipts: dict[str, Any],
    w3: Web3,
    check: RecordCheck,
) -> None:
    kind = Kind[claimed["kind"].upper()]
    event_hash = bytes.fromhex(claimed["eventHash"][2:])
    if event_hash != hash_id_digest(event_id):
        check.problems.append("the recorded event hash is not the eventID's digest")
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
    log = _logged(claimed, contract, receipts, w3)
    if log is None:
        check.problems.append(
            f"no EventRecorded log {claimed['logIndex']} in transaction {claimed['transaction']}"
        )
        return
    args = log["args"]
    logged = {
        "subject": bytes(args["subject"]) == trace_event.subject,
        "eventHash": bytes(args["eventHash"]) == event_hash,
        "signer": args["signer"] == claimed["signer"],
        "kind": args["kind"] == int(kind),
        "counterpart": args["counterpart"] == claimed["counterpart"],
        "ref": bytes(args["ref"]) == trace_event.ref,
        "time": args["time"] == trace_event.time,
        "head": bytes(args["head"]) == head,
        "block": log["blockNumber"] == claimed["block"],
    }
    for name, matches in logged.items():
        if not matches:
            check.problems.append(f"{name} differs from what the chain logged")
    roles = _REQUIRED_ROLES.get(kind, _ANY_ROLE)
    if not any(_had_role(contract, role, claimed["signer"], claimed["block"]) for role in roles):
        check.problems.append(f"{claimed['signer']} held none of the roles {', '.join(roles)}")


def _logged(claimed: dict[str, Any], contract: Contract, receipts: dict[str, Any], w3: Web3) -> Any:
    transaction = claimed["transaction"]
    if transaction not in receipts:
        try:
            receipts[transaction] = w3.eth.get_transaction_receipt(HexBytes(transaction))
        except Exception:  # not on this chain at all
            receipts[transaction] = None
    receipt = receipts[transaction]
    if receipt is None:
        return None
    for log in receipt["logs"]:
        if log["logIndex"] == claimed["logIndex"] and log["address"] == contract.address:
            return contract.events.EventRecorded().process_log(log)
    return None


def _had_role(contract: Contract, role: str, account: str, block: int) -> bool:
    role_id = Role.by_name(role)
    try:
        return bool(contract.functions.hasRole(role_id, account).call(block_identifier=block))
    except Exception:  # a node that keeps no state that old answers for today
        return bool(contract.functions.hasRole(role_id, account).call())
