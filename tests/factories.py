"""Builders for test data: participants with keys, signed events, EPCs."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tracechain.chain.eip712 import EventSigner
from tracechain.chain.registry import RecordResult, TraceRegistry
from tracechain.chain.trace_event import ZERO_ADDRESS, ZERO_HASH, Kind, SignedEvent, TraceEvent, subject_id


def random_hash() -> bytes:
    return os.urandom(32)


def sgtin(serial: int | str) -> bytes:
    """The subject id of one item of a demo GTIN."""
    return subject_id(f"urn:epc:id:sgtin:0614141.107346.{serial}")


def sscc(serial: int | str) -> bytes:
    return subject_id(f"urn:epc:id:sscc:0614141.{serial}")


@dataclass
class Actor:
    """A participant's key, able to sign for one registry's domain."""

    name: str
    key: bytes
    signer: EventSigner

    @property
    def address(self) -> str:
        return self.signer.address

    @classmethod
    def new(cls, name: str, registry: TraceRegistry) -> Actor:
        key = os.urandom(32)
        return cls(name, key, EventSigner(key, registry.domain))


def sign_event(
    registry: TraceRegistry,
    actor: Actor,
    kind: Kind,
    subject: bytes,
    *,
    counterpart: str = ZERO_ADDRESS,
    ref: bytes = ZERO_HASH,
    event_hash: bytes | None = None,
    prev_head: bytes | None = None,
    time: int = 1_767_225_600,
) -> SignedEvent:
    """`actor` signs an event over the subject's current on-chain head unless told otherwise."""
    event = TraceEvent(
        subject=subject,
        kind=kind,
        event_hash=event_hash or random_hash(),
        counterpart=counterpart,
        ref=ref,
        time=time,
        prev_head=registry.head_of(subject) if prev_head is None else prev_head,
    )
    return actor.signer.sign(event)


def record(
    registry: TraceRegistry, actor: Actor, kind: Kind, subject: bytes, **fields: object
) -> RecordResult:
    return registry.record([sign_event(registry, actor, kind, subject, **fields)])  # type: ignore[arg-type]


def pack(registry: TraceRegistry, actor: Actor, parent: bytes, *children: bytes) -> None:
    """`actor` packs each child into `parent` (an Aggregate event per child), one transaction each."""
    for child in children:
        record(registry, actor, Kind.AGGREGATE, child, ref=parent)


def hand_over(registry: TraceRegistry, sender: Actor, receiver: Actor, subject: bytes) -> None:
    """`sender` ships `subject` to `receiver`, who receives it: custody moves in two signed events."""
    record(registry, sender, Kind.SHIP, subject, counterpart=receiver.address)
    record(registry, receiver, Kind.RECEIVE, subject)
