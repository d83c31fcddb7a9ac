"""EIP-712 digests of TraceRegistry events, built in Python exactly as the contract builds them.

Digests are assembled from 32-byte words by hand rather than through eth_account's generic
typed-data encoder: the service signs thousands of events a second and the generic path costs
several times more. Tests prove both, and the contract, agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_utils import keccak, to_canonical_address, to_checksum_address

from tracechain.chain.trace_event import SignedEvent, TraceEvent

DOMAIN_NAME = "TraceRegistry"
DOMAIN_VERSION = "1"

TRACE_EVENT_TYPE = [
    {"name": "subject", "type": "bytes32"},
    {"name": "kind", "type": "uint8"},
    {"name": "eventHash", "type": "bytes32"},
    {"name": "counterpart", "type": "address"},
    {"name": "ref", "type": "bytes32"},
    {"name": "time", "type": "uint64"},
    {"name": "prevHead", "type": "bytes32"},
]
EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

_TRACE_EVENT_TYPEHASH = keccak(
    text="TraceEvent(" + ",".join(f"{f['type']} {f['name']}" for f in TRACE_EVENT_TYPE) + ")"
)
_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(" + ",".join(f"{f['type']} {f['name']}" for f in EIP712_DOMAIN_TYPE) + ")"
)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + to_canonical_address(address)


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one deployed TraceRegistry: it binds signatures to chain and contract."""

    chain_id: int
    verifying_contract: str

    @cached_property
    def separator(self) -> bytes:
        return keccak(
            _DOMAIN_TYPEHASH
            + keccak(text=DOMAIN_NAME)
            + keccak(text=DOMAIN_VERSION)
            + _word(self.chain_id)
            + _address_word(self.verifying_contract)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


def struct_hash(event: TraceEvent) -> bytes:
    return keccak(
        _TRACE_EVENT_TYPEHASH
        + event.subject
        + _word(int(event.kind))
        + event.event_hash
        + _address_word(event.counterpart)
        + event.ref
        + _word(event.time)
        + event.prev_head
    )


def digest(domain_separator: bytes, event: TraceEvent) -> bytes:
    return keccak(b"\x19\x01" + domain_separator + struct_hash(event))


def typed_data(domain: Domain, event: TraceEvent) -> dict[str, Any]:
    """The full EIP-712 message for `event`, as wallet libraries (eth_signTypedData_v4) take it."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, "TraceEvent": TRACE_EVENT_TYPE},
        "primaryType": "TraceEvent",
        "domain": domain.as_dict(),
        "message": {
            "subject": "0x" + event.subject.hex(),
            "kind": int(event.kind),
            "eventHash": "0x" + event.event_hash.hex(),
            "counterpart": to_checksum_address(event.counterpart),
            "ref": "0x" + event.ref.hex(),
            "time": event.time,
            "prevHead": "0x" + event.prev_head.hex(),
        },
    }


class EventSigner:
    """Signs events for one participant with a native secp256k1 key (coincurve)."""

    def __init__(self, private_key: bytes, domain: Domain) -> None:
        self._key = PrivateKey(private_key)
        self._separator = domain.separator
        self.address = to_checksum_address(keccak(self._key.public_key.format(compressed=False)[1:])[-20:])

    def sign(self, event: TraceEvent) -> SignedEvent:
        signature = self._key.sign_recoverable(digest(self._separator, event), hasher=None)
        r, s, recovery_id = signature[:32], signature[32:64], signature[64]
        vs = (int.from_bytes(s, "big") | (recovery_id << 255)).to_bytes(32, "big")
        return SignedEvent(event=event, signer=self.address, r=r, vs=vs)


def recover_signer(domain_separator: bytes, signed: SignedEvent) -> str | None:
    """The address whose key made `signed`'s signature over its event, or None if it is malformed."""
    vs = int.from_bytes(signed.vs, "big")
    s, recovery_id = vs & ((1 << 255) - 1), vs >> 255
    try:
        public_key = PublicKey.from_signature_and_message(
            signed.r + s.to_bytes(32, "big") + bytes([recovery_id]),
            digest(domain_separator, signed.event),
            hasher=None,
        )
    except Exception:  # coincurve raises plain Exception for signatures off the curve
        return None
    return to_checksum_address(keccak(public_key.format(compressed=False)[1:])[-20:])
