"""CBV 2.0 event hash ids (`ni:///sha-256;<hex>?ver=CBV2.0`), computed by GS1's reference code.

The PyPI package `epcis-event-hash-generator` is the reference implementation of the algorithm, so
tracechain depends on it rather than re-implementing the canonicalisation: ids it computes are the
ids any other EPCIS repository computes for the same event.
"""

from __future__ import annotations

import copy
from typing import Any

from epcis_event_hash_generator.hash_generator import epcis_hashes_from_events
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
_PREFIX = "ni:///sha-256;"
_SUFFIX = "?ver=CBV2.0"


def event_hash_ids(document: dict[str, Any]) -> list[str]:
    """The hash id of every event in an EPCIS document, in document order."""
    # The reference code rewrites the document it is given; callers keep theirs.
    event_list = event_list_from_epcis_document_json(copy.deepcopy(document))
    return list(epcis_hashes_from_events(event_list))


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
