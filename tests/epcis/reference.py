"""GS1's reference hash generator (`epcis-event-hash-generator`), run in-process, to compare with.

It is a dev dependency only. Importing it installs a pyld document loader that would fetch an
unknown context over the network, so every call here serves the bundled EPCIS contexts and refuses
the rest; it keeps prefixes in a module global, so every call starts from a clean one.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from typing import Any, Final

from epcis_event_hash_generator import file_document_loader, json_to_py, xml_to_py
from epcis_event_hash_generator.hash_generator import derive_prehashes_from_events
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json
from pyld import jsonld

from tracechain.epcis.event_hash import BUNDLED_CONTEXTS

_bundled_loader = file_document_loader.file_document_loader()
_lock = threading.Lock()

PLACEHOLDER_TYPE: Final = "urn:example:tracechain:placeholder-btt"
"""A bizTransaction type that is no CBV term: what the reference reads in place of a missing one."""


class ReferenceCannotHash(Exception):
    """The reference crashed or skipped an event."""


def _offline_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    if url not in BUNDLED_CONTEXTS:
        raise OSError(f"the reference may not fetch {url}")
    document: dict[str, Any] = _bundled_loader(url, options or {})
    return document


def reference_pre_hashes(document: dict[str, Any]) -> list[str]:
    """The pre-hash strings the reference computes, one per event; ReferenceCannotHash otherwise."""
    with _lock:
        jsonld.set_document_loader(_offline_loader)
        json_to_py._namespaces.clear()
        try:
            events = event_list_from_epcis_document_json(copy.deepcopy(document))
        except Exception as exc:
            raise ReferenceCannotHash(repr(exc)) from exc
        pre_hashes: list[str] = derive_prehashes_from_events(events)
    if len(pre_hashes) != len(events[2]):
        raise ReferenceCannotHash(f"hashed {len(pre_hashes)} of {len(events[2])} events")
    return pre_hashes


def reference_vocabulary(document: dict[str, Any]) -> set[str]:
    """The vocabulary IRIs the reference finds by JSON-LD expansion (its bare string replacement)."""
    with _lock:
        jsonld.set_document_loader(_offline_loader)
        expanded = jsonld.expand(copy.deepcopy(document))
    found: list[str] = []
    json_to_py._find_expanded_values(expanded, found)
    return {value for value in found if value.startswith(("https://ref.gs1.org/cbv", "https://gs1.org/voc"))}


def hash_id(pre_hash: str) -> str:
    return f"ni:///sha-256;{hashlib.sha256(pre_hash.encode('utf-8')).hexdigest()}?ver=CBV2.0"


def reference_hash_ids(document: dict[str, Any]) -> list[str]:
    return [hash_id(pre_hash) for pre_hash in reference_pre_hashes(document)]


def readable_by_reference(document: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """The document in a form the reference reads, for the two EPCIS constructs it crashes on,
    and the events given a placeholder bizTransaction type.

    - An inline context term defined by an object: the reference can only read `prefix: IRI`.
      A definition with an `@id` becomes that string; one without (`"rail:n": {"@type": ...}`
      types a compact-IRI key and declares no prefix) is left out. Leaving it out changes how
      JSON-LD types that key's values, which matters to the hash only if it changes the
      vocabulary IRIs expansion yields: :func:`reference_hash_ids_of` checks it does not.
    - A bizTransaction without a type: it gets :data:`PLACEHOLDER_TYPE`, listed first as a type
      is; :func:`reference_hash_ids_of` takes `type=PLACEHOLDER_TYPE` out of the pre-hash again.
    """
    readable = copy.deepcopy(document)
    context = readable.get("@context")
    if isinstance(context, list):
        readable["@context"] = [_prefixes_only(item) if isinstance(item, dict) else item for item in context]
    placeheld = []
    for index, event in enumerate(readable["epcisBody"]["eventList"]):
        transactions = event.get("bizTransactionList", [])
        for position, transaction in enumerate(transactions):
            if "type" not in transaction:
                transactions[position] = {"type": PLACEHOLDER_TYPE, **transaction}
                placeheld.append(index)
    return readable, placeheld


def _prefixes_only(context: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, definition in context.items():
        if isinstance(definition, dict):
            if isinstance(definition.get("@id"), str):
                kept[key] = definition["@id"]
        else:
            kept[key] = definition
    return kept


def reference_hash_ids_of(document: dict[str, Any]) -> list[str]:
    """The ids the reference's algorithm gives a document, derived as :func:`readable_by_reference`
    describes where the reference cannot read the document itself."""
    try:
        return reference_hash_ids(document)
    except ReferenceCannotHash:
        pass
    readable, placeheld = readable_by_reference(document)
    assert reference_vocabulary(readable) == reference_vocabulary(document)
    pre_hashes = reference_pre_hashes(readable)
    for index in set(placeheld):
        marker = "type=" + PLACEHOLDER_TYPE
        assert pre_hashes[index].count(marker) == placeheld.count(index), pre_hashes[index]
        pre_hashes[index] = pre_hashes[index].replace(marker, "")
    return [hash_id(pre_hash) for pre_hash in pre_hashes]


def reference_hash_ids_of_xml(text: str) -> list[str]:
    """The ids GS1's reference gives an EPCIS XML document, read by its own XML reader (no
    conversion of tracechain's involved), with two readings made as its JSON reader makes them:

    - A bizTransaction without a type crashes its XML reader as it does its JSON reader: it gets
      :data:`PLACEHOLDER_TYPE`, taken out of the pre-hash again, as :func:`readable_by_reference`.
    - A `<quantity xsi:nil="true"/>` is no quantity (the XSD's nillable, JSON's absent key); the
      XML reader would hash the schema-instance attribute as if it were data.
    """
    text = text.lstrip("\ufeff")
    text = re.sub(r"<quantity\s+xsi:nil=\"true\"\s*/>", "", text)
    untyped = re.compile(r"<bizTransaction>")
    readable = untyped.sub(f'<bizTransaction type="{PLACEHOLDER_TYPE}">', text)
    with _lock:
        events = xml_to_py.event_list_from_epcis_document_str(readable)
        pre_hashes: list[str] = derive_prehashes_from_events(events)
    if not events[2] or len(pre_hashes) != len(events[2]):
        raise ReferenceCannotHash(f"hashed {len(pre_hashes)} of {len(events[2])} events")
    return [hash_id(pre_hash.replace("type=" + PLACEHOLDER_TYPE, "")) for pre_hash in pre_hashes]
