"""Checks a subject's recorded history against the chain without trusting whoever recorded it.

For every EventRecorded log of a subject: the signature carried in the transaction recovers to the
logged signer over the event as the contract rebuilt it, and the logged head equals
`keccak256(previous head, event hash)`; at the end, the subject's on-chain head equals the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracechain.chain.eip712 import recover_signer
from tracechain.chain.registry import RecordedEvent, TraceRegistry
from tracechain.chain.trace_event import ZERO_HASH, TraceEvent, next_head


@dataclass
class VerifiedEvent:
    recorded: RecordedEvent
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.problems


def verify_history(registry: TraceRegistry, subject: bytes) -> list[VerifiedEvent]:
    history = registry.recorded_events(subject=subject)
    carried: dict[bytes, list] = {}
    separator = registry.domain.separator
    verified: list[VerifiedEvent] = []
    head = ZERO_HASH
    for logged in history:
        result = VerifiedEvent(logged)
        event = TraceEvent(
            logged.subject, logged.kind, logged.event_hash, logged.counterpart, logged.ref, logged.time, head
        )
        if logged.transaction_hash not in carried:
            carried[logged.transaction_hash] = registry.signed_events_in(logged.transaction_hash)
        signed = next((s for s in carried[logged.transaction_hash] if s.event == event), None)
        if signed is None:
            result.problems.append("no signed event in its transaction matches the log")
        elif recover_signer(separator, signed) != logged.signer:
            result.problems.append(f"signature does not recover to {logged.signer}")
        head = next_head(head, logged.event_hash)
        if logged.head != head:
            result.problems.append("logged head is not the hash chain of the events before it")
        verified.append(result)
    on_chain = registry.head_of(subject)
    if verified and on_chain != head:
        verified[-1].problems.append("the subject's on-chain head is not the end of its logged chain")
    return verified
