"""The event TraceRegistry records, as Python values: what gets signed, relayed and logged."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from eth_utils import keccak

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_HASH = bytes(32)


class Kind(IntEnum):
    """TraceRegistry.Kind; the numbers are signed, so they never change."""

    OBSERVE = 0
    COMMISSION = 1
    AGGREGATE = 2
    DISAGGREGATE = 3
    SHIP = 4
    RECEIVE = 5
    INSPECT = 6
    SELL = 7
    RECALL = 8
    CONSUME = 9
    EXCURSION = 10
    WITHDRAW = 11


OBSERVATION_KINDS = frozenset({Kind.OBSERVE, Kind.WITHDRAW})
"""Kinds that say something about a subject without changing it. Anyone with a participant role may
record them, so they go on the reporter's own chain of the subject (`chain_of`), never on the
subject's chain of custody facts: nobody can move, race or block another party's chain of a product."""


class Status(IntEnum):
    """TraceRegistry.Status."""

    UNKNOWN = 0
    ACTIVE = 1
    SOLD = 2
    CONSUMED = 3


VERDICT_CLEARED = (1).to_bytes(32, "big")
VERDICT_REJECTED = (2).to_bytes(32, "big")


@lru_cache(maxsize=65_536)  # asked for several times per event (effects, parents, refs, traces)
def subject_id(identifier: str) -> bytes:
    """The bytes32 a product, lot or logistic unit is known by on chain: keccak256 of its EPC URI."""
    return keccak(text=identifier)


def chain_of(subject: bytes, kind: Kind, signer: str) -> bytes:
    """The head chain an event of `kind` joins, as TraceRegistry keys it: the subject itself for
    custody facts; for observations, the signer's own chain of the subject,
    `keccak256(abi.encode(subject, signer))`."""
    if kind in OBSERVATION_KINDS:
        return _observation_chain(subject, signer)
    return subject


@lru_cache(maxsize=65_536)
def _observation_chain(subject: bytes, signer: str) -> bytes:
    return keccak(subject + bytes(12) + bytes.fromhex(signer[2:]))


def next_head(head: bytes, event_hash: bytes) -> bytes:
    """`keccak256(abi.encode(head, eventHash))`, as TraceRegistry chains a subject's events."""
    return keccak(head + event_hash)


@dataclass(frozen=True, slots=True)
class TraceEvent:
    subject: bytes
    kind: Kind
    event_hash: bytes
    counterpart: str = ZERO_ADDRESS
    ref: bytes = ZERO_HASH
    time: int = 0
    prev_head: bytes = ZERO_HASH

    def as_abi_tuple(self) -> tuple[bytes, int, bytes, str, bytes, int, bytes]:
        return (
            self.subject,
            int(self.kind),
            self.event_hash,
            self.counterpart,
            self.ref,
            self.time,
            self.prev_head,
        )


@dataclass(frozen=True, slots=True)
class SignedEvent:
    event: TraceEvent
    signer: str
    r: bytes
    vs: bytes
    """EIP-2098 compact signature: s with the recovery bit in its top bit (64 bytes with r)."""

    def as_abi_tuple(self) -> tuple[tuple[bytes, int, bytes, str, bytes, int, bytes], str, bytes, bytes]:
        return (self.event.as_abi_tuple(), self.signer, self.r, self.vs)
