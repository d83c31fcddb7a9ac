"""CBV 2.0 event hash ids (`ni:///sha-256;<hex>?ver=CBV2.0`).

The id of an event is the SHA-256 of its pre-hash string: its fields in a fixed order, GS1 keys as
canonical Digital Links, times in UTC milliseconds, extensions sorted. GS1's reference
implementation (the PyPI package `epcis-event-hash-generator`) defines the ids every EPCIS
repository computes, so tracechain computes them as it does, step by step
(:mod:`tracechain.epcis.prehash`), but natively: the reference expands each document with a
JSON-LD processor, some 3 ms an event, while this needs only the few vocabulary IRIs expansion
would produce (:mod:`tracechain.epcis.vocabulary`). The tests hash every GS1 example and generated
events with both and compare.

Where the reference fails a document this either fails too (:class:`EventHashError`) or, for two
crashes on valid EPCIS, hashes what the reference's rule means (see :func:`prehash.namespaces_of`
and :func:`prehash._pair`): an inline `@context` term defined by an object, and a bizTransaction
without a type. Remote `@context` URLs other than the EPCIS 2.0 context are refused, never fetched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from tracechain.epcis import prehash
from tracechain.epcis.vocabulary import (
    BUNDLED_CONTEXTS,
    EPCIS_CONTEXT,
    ContextError,
    RemoteContext,
    vocabulary_iris,
)
from tracechain.errors import TracechainError

__all__ = [
    "BUNDLED_CONTEXTS",
    "EPCIS_CONTEXT",
    "EventHashError",
    "RemoteContextRefused",
    "declaration_digest",
    "digest_hash_id",
    "event_hash_id",
    "event_hash_ids",
    "hash_id_digest",
    "pre_hash_strings",
]

_PREFIX = "ni:///sha-256;"
_SUFFIX = "?ver=CBV2.0"


class EventHashError(TracechainError, ValueError):
    """A document or event the CBV 2.0 hash algorithm cannot hash."""


class RemoteContextRefused(EventHashError):
    """A document names a JSON-LD context that would have to be fetched."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"JSON-LD context {url!r} is not bundled and remote contexts are never fetched; "
            f"name {EPCIS_CONTEXT} and put your own terms in an inline context object"
        )


def event_hash_ids(document: dict[str, Any]) -> list[str]:
    """The hash id of every event in an EPCIS document, in document order: each event's id alone
    (:func:`event_hash_id` with the document's `@context`).

    Raises EventHashError (RemoteContextRefused for a remote context) when the document or one
    of its events cannot be hashed.
    """
    return [_hash_id(pre_hash) for pre_hash in pre_hash_strings(document)]


def pre_hash_strings(document: dict[str, Any]) -> list[str]:
    """The pre-hash string of every event in an EPCIS document: what its id is the hash of.

    Each event is read alone with the document's context. GS1's reference reads a document whole,
    and two of its habits then carry over from one event to the next: the bare-string replacement
    by the vocabulary IRIs found anywhere in the document, and the prefixes an `@xmlns` key
    declares. An event's id would depend on the events beside it, while whoever checks it later
    (the trace, `tracechain verify`, a partner's repository) holds that event alone: a document
    could carry an event its checkers hash differently, on purpose or not. On every GS1 example
    both readings give the same ids (tests/epcis/test_event_hash.py).
    """
    context = document.get("@context") if isinstance(document, dict) else None
    return [_pre_hash_alone(event, context, index) for index, event in enumerate(_events(document))]


def event_hash_id(event: dict[str, Any], context: Any = EPCIS_CONTEXT) -> str:
    """The hash id of one event, read with the given JSON-LD context."""
    return _hash_id(_pre_hash_alone(event, context, 0))


def _pre_hash_alone(event: Any, context: Any, index: int) -> str:
    alone = {"@context": context, "type": "EPCISDocument", "epcisBody": {"eventList": [event]}}
    try:
        replace = _replacer(vocabulary_iris(alone))
    except RemoteContext as exc:
        raise RemoteContextRefused(exc.url) from exc
    except ContextError as exc:
        raise EventHashError(f"cannot read the JSON-LD context of this document: {exc}") from exc
    reader = prehash.Reader(prehash.namespaces_of(context, replace), replace)
    try:
        return prehash.pre_hash_string(event, reader)
    except Exception as exc:  # the reference's own failures are as varied (KeyError, TypeError...)
        raise EventHashError(f"event {index} cannot be hashed: {exc!r}") from exc


def _hash_id(pre_hash: str) -> str:
    return f"{_PREFIX}{hashlib.sha256(pre_hash.encode('utf-8')).hexdigest()}{_SUFFIX}"


def declaration_digest(event: dict[str, Any], hash_id: str) -> bytes:
    """What the chain records for an error declaration: the SHA-256 of the withdrawn event's digest
    followed by the declaration itself (`errorDeclaration` as JSON, keys sorted, no whitespace).

    The CBV hash leaves `errorDeclaration` out, so a declaration has the id of the event it
    withdraws; on chain the two must differ, and the reason and time of the withdrawal must be as
    signed. Raises KeyError for an event without a declaration."""
    declared = json.dumps(
        event["errorDeclaration"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(hash_id_digest(hash_id) + declared.encode("utf-8")).digest()


def hash_id_digest(hash_id: str) -> bytes:
    """The 32-byte SHA-256 inside a hash id: what the chain records."""
    if not (hash_id.startswith(_PREFIX) and hash_id.endswith(_SUFFIX)):
        raise ValueError(f"not a CBV 2.0 sha-256 event hash id: {hash_id!r}")
    return bytes.fromhex(hash_id[len(_PREFIX) : -len(_SUFFIX)])


def digest_hash_id(digest: bytes) -> str:
    return f"{_PREFIX}{digest.hex()}{_SUFFIX}"


def _events(document: dict[str, Any]) -> list[Any]:
    body = document.get("epcisBody") if isinstance(document, dict) else None
    if isinstance(body, dict) and isinstance(body.get("eventList"), list):
        events: list[Any] = body["eventList"]
        return events
    if isinstance(body, dict) and "event" in body:
        return [body["event"]]
    raise EventHashError("cannot read this document: it has no epcisBody.eventList (nor epcisBody.event)")


def _replacer(iris: set[str]) -> Callable[[str], str]:
    """The reference's bare string replacement: a string that exactly one vocabulary IRI ends
    with, after a `-` or a `/`, stands for that IRI (`shipping` for `.../BizStep-shipping`)."""
    return _unchanged if not iris else _replacer_of(frozenset(iris))


@lru_cache(maxsize=256)
def _replacer_of(iris: frozenset[str]) -> Callable[[str], str]:
    endings: dict[str, set[str]] = {}
    for iri in iris:
        for position, char in enumerate(iri):
            if char in "-/":
                endings.setdefault(iri[position + 1 :], set()).add(iri)
    unique = {ending: next(iter(found)) for ending, found in endings.items() if len(found) == 1}

    def replace(value: str) -> str:
        return unique.get(value, value)

    return replace


def _unchanged(value: str) -> str:
    return value
