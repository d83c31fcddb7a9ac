"""EPCIS query documents of stored events, each as one reader may see it (`visibility`): the
fields it may not read left out and named in `tracechain:withheld`. `GET /events` pages them, and
webhook deliveries (`subscriptions`) send them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tracechain.epcis.epc_format import EpcFormat, event_in
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.schema import TRACECHAIN_NS
from tracechain.store import queries
from tracechain.store.models import Event
from tracechain.visibility import View, Viewer, redact

TRACECHAIN_TERMS = TRACECHAIN_NS
"""The namespace of the terms tracechain adds to events it serves: `tracechain:withheld` (the fields
the caller may not see), `tracechain:hashId` (the CBV hash id, beside a declared eventID) and
`tracechain:capturedContext` (for an event with an @context of its own: its document's, which its id
was computed in)."""


def query_document(
    session: Session,
    viewer: Viewer,
    events: list[Event],
    epc_format: EpcFormat = EpcFormat.NEVER_TRANSLATES,
) -> dict[str, Any]:
    """The events as the viewer may see them (the store has listed only those it may see), their
    identifiers in `epc_format` (`GS1-EPC-Format`)."""
    access = queries.access_of(session, viewer, {n.epc for e in events for n in e.epcs})
    shown = []
    for event in events:
        view = access.view_of(queries.event_facts(event)) or View.PUBLIC
        fields = access.shown_fields(view, event.body, event.signer, None)
        shown.append(event_in(event_document(event, fields), epc_format))
    return {
        "@context": [EPCIS_CONTEXT, {"tracechain": TRACECHAIN_TERMS}],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": shown},
            }
        },
    }


def event_document(event: Event, fields: frozenset[str]) -> dict[str, Any]:
    """The event's shown fields as captured, the time tracechain recorded it, and the names of the
    fields withheld. Its eventID is the one its capturer declared, if shown, with the CBV hash id
    (its id on chain) beside it as `tracechain:hashId`; else the hash id. An event captured with
    terms of its own (an inline context: extension prefixes, `example:myField`) carries them as its
    `@context`: the CBV hash reads its extensions by their expanded names, so without it the event
    could not be re-hashed to its id, and events from different documents on one page could give
    the same prefix different namespaces."""
    body, withheld = redact(event.body, fields)
    context = _served_context(event.context)
    document = {**body, "recordTime": event.record_time.isoformat()}
    if "@context" in body:
        # Its own @context is part of what the CBV hash reads (GS1's reference hashes it as a
        # field), so it is served as captured, and the document's beside it.
        document["tracechain:capturedContext"] = context or [EPCIS_CONTEXT]
    elif context is not None:
        document = {"@context": context, **document}
    if body.get("eventID") and body["eventID"] != event.event_id:
        document["tracechain:hashId"] = event.event_id
    else:
        document["eventID"] = event.event_id
    return {**document, "tracechain:withheld": withheld} if withheld else document


def _served_context(captured_with: Any) -> list[Any] | None:
    """The context the event's id was computed in, its document's, if that says more than the
    EPCIS context every query document names."""
    entries = _entries(captured_with) or [EPCIS_CONTEXT]
    if all(entry == EPCIS_CONTEXT for entry in entries):
        return None
    return entries if EPCIS_CONTEXT in entries else [EPCIS_CONTEXT, *entries]


def _entries(context: Any) -> list[Any]:
    if context is None:
        return []
    return list(context) if isinstance(context, list) else [context]
