"""CBV 2.0 event hash ids (`ni:///sha-256;<hex>?ver=CBV2.0`), computed by GS1's reference code.

The PyPI package `epcis-event-hash-generator` is the reference implementation of the algorithm, so
tracechain depends on it rather than re-implementing the canonicalisation: ids it computes are the
ids any other EPCIS repository computes for the same event.

Three habits of the reference code are contained here:

- It expands each document with pyld, whose document loader it sets to one that serves the two
  EPCIS 2.0 context URLs from files it bundles and fetches *any other* URL over the network - a
  remote `@context` in a document, or one nested in an inline context (`@import`, a scoped
  context), would make the service fetch it. On import this module replaces that loader with one
  that serves the same bundled files and refuses everything else (:class:`RemoteContextRefused`).
- It keeps the JSON-LD prefixes it has seen in a module global that is never reset, so a prefix one
  document declared would leak into the hash of the next. Each call here starts from a clean slate,
  as the command line tool does for a file, under a lock since the state is process-wide.
- It logs and skips an event it cannot hash, returning fewer ids than events; it raises a bare
  KeyError or TypeError for documents it cannot read. Both become :class:`EventHashError` here,
  never a list whose ids belong to the wrong events.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Final

from epcis_event_hash_generator import file_document_loader, json_to_py
from epcis_event_hash_generator.hash_generator import epcis_hashes_from_events
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json
from pyld import jsonld

from tracechain.errors import TracechainError

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
BUNDLED_CONTEXTS: Final = frozenset({EPCIS_CONTEXT, "https://gs1.github.io/EPCIS/epcis-context.jsonld"})
"""The JSON-LD contexts the reference hash generator ships a copy of: the only URLs a document may name."""

_PREFIX = "ni:///sha-256;"
_SUFFIX = "?ver=CBV2.0"


class EventHashError(TracechainError, ValueError):
    """The reference implementation cannot hash this document, so tracechain does not either."""


class RemoteContextRefused(EventHashError):
    """A document names a JSON-LD context that would have to be fetched."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"JSON-LD context {url!r} is not bundled and remote contexts are never fetched; "
            f"name {EPCIS_CONTEXT} and put your own terms in an inline context object"
        )


_bundled_loader = file_document_loader.file_document_loader()


def _offline_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    if url not in BUNDLED_CONTEXTS:
        raise RemoteContextRefused(url)
    document: dict[str, Any] = _bundled_loader(url, options or {})
    return document


# Importing epcis_event_hash_generator (above) installed its fetching loader; this replaces it.
jsonld.set_document_loader(_offline_loader)
_reference_lock = threading.Lock()


def event_hash_ids(document: dict[str, Any]) -> list[str]:
    """The hash id of every event in an EPCIS document, in document order.

    Raises EventHashError (RemoteContextRefused for a remote context) when the reference code
    cannot hash the document or one of its events.
    """
    # The reference code rewrites the document it is given; callers keep theirs.
    document = copy.deepcopy(document)
    with _reference_lock:
        json_to_py._namespaces.clear()
        try:
            event_list = event_list_from_epcis_document_json(document)
            hash_ids = list(epcis_hashes_from_events(event_list))
        except Exception as exc:
            refused = _refusal_in(exc)
            if refused is not None:
                raise refused from exc
            raise EventHashError(f"the reference hash generator cannot read this document: {exc!r}") from exc
    if len(hash_ids) != len(event_list[2]):
        raise EventHashError(
            f"the reference hash generator hashed {len(hash_ids)} of {len(event_list[2])} events; "
            "the others have values it cannot canonicalise"
        )
    return hash_ids


def event_hash_id(event: dict[str, Any], context: Any = EPCIS_CONTEXT) -> str:
    """The hash id of one event, read with the given JSON-LD context."""
    document = {"@context": context, "type": "EPCISDocument", "epcisBody": {"eventList": [event]}}
    return event_hash_ids(document)[0]


def hash_id_digest(hash_id: str) -> bytes:
    """The 32-byte SHA-256 inside a hash id: what the chain records."""
    if not (hash_id.startswith(_PREFIX) and hash_id.endswith(_SUFFIX)):
        raise ValueError(f"not a CBV 2.0 sha-256 event hash id: {hash_id!r}")
    return bytes.fromhex(hash_id[len(_PREFIX) : -len(_SUFFIX)])


def digest_hash_id(digest: bytes) -> str:
    return f"{_PREFIX}{digest.hex()}{_SUFFIX}"


def _refusal_in(exc: BaseException) -> RemoteContextRefused | None:
    """The refusal behind an error, through pyld's wrapping (`cause`) and Python's chaining."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RemoteContextRefused):
            return current
        seen.add(id(current))
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else (current.__cause__ or current.__context__)
    return None
