"""Verification stamps: the costly content checks of a chain record, done once and kept with it.

A trace checks every event against what was signed: its CBV hash id recomputed from the stored
content, the commitment to its fields recomputed and found in each record, each record's signature
recovered to its signer. Those are pure functions of the row's bytes, and for a product traced the
first time (most consumer scans) they are most of the trace's time.

Capture derives exactly these values from exactly these bytes when it stores a record: the hash id
and the commitment from the event's content, the signature by the signer's own key, the head as
keccak256(previous head, hash). So it stamps the record then: an HMAC, under a key derived from the
master secret (`KeyVault.stamp_key`), over every byte those checks read (the event's id, content
and context as stored, its seed, whether it is a declaration; the record's signed fields, signer,
signature and head; the EIP-712 domain). A trace that finds the stamp matching the row as it reads
it now knows the checks hold without doing them; a row edited afterwards (content, seed, signer,
signature, hash, head chain fields …) no longer matches its stamp, and is checked from scratch, so
the edit is found as before. Whoever could forge a stamp holds the master secret, which already
decrypts every key the service signs with.

What the stamp does not cover is checked on every trace, cheaply: the head chain's continuity,
roles, indexed fields, Merkle inclusion proofs, withdrawals. `tracechain verify` ignores stamps
and checks a proof bundle from scratch.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tracechain.chain.trace_event import SignedEvent

STAMP_BYTES = 32


class VerificationStamps:
    """Makes and checks the stamps of one deployment (its stamp key and EIP-712 domain)."""

    def __init__(self, key: bytes, domain_separator: bytes) -> None:
        self._key = key
        self._domain_separator = domain_separator

    def event_content(
        self,
        event_id: str,
        stored_body: str,
        stored_context: str | None,
        seed: bytes,
        declaration: bool,
    ) -> bytes:
        """The digest of an event's content as the checks read it (shared by its records' stamps)."""
        parts = [
            event_id.encode(),
            stored_body.encode(),
            b"\x00" if stored_context is None else b"\x01" + stored_context.encode(),
            seed,
            b"\x01" if declaration else b"\x00",
        ]
        return hashlib.sha256(_framed(parts)).digest()

    def stamp(self, content: bytes, signed: SignedEvent, head: bytes) -> bytes:
        """The stamp of a signed record, leading to `head`, of the event whose `event_content` is
        `content`."""
        event = signed.event
        parts = [
            self._domain_separator,
            content,
            event.subject,
            str(int(event.kind)).encode(),
            event.event_hash,
            event.counterpart.encode(),
            event.ref,
            str(event.time).encode(),
            event.prev_head,
            signed.signer.encode(),
            signed.r,
            signed.vs,
            head,
        ]
        return hmac.digest(self._key, _framed(parts), "sha256")

    def holds(self, content: bytes, signed: SignedEvent, head: bytes, stamp: bytes | None) -> bool:
        """Whether `stamp` is the record's, for the content and fields as read now."""
        return stamp is not None and hmac.compare_digest(self.stamp(content, signed, head), bytes(stamp))


def stored_json(value: Any) -> str:
    """A JSON column's text as both databases' drivers write it (json.dumps' defaults): what a
    trace reads back, so what capture stamps."""
    return json.dumps(value)


def _framed(parts: list[bytes]) -> bytes:
    """Each part prefixed by its length, so that no two lists of parts frame to the same bytes."""
    return b"".join(len(part).to_bytes(4, "big") + bytes(part) for part in parts)
