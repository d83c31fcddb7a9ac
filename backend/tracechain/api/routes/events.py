"""EPCIS queries (REST binding): events by filter, by id, by EPC; answered as EPCIS query documents.

Only to participants and the admin, and each sees what `visibility` allows: the store lists only
the events the caller may see, and each is shown in the caller's view of it, the fields it may not
read left out and named in `tracechain:withheld`."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from tracechain.api.deps import SessionDep, ViewerDep
from tracechain.api.problems import Problem
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.identifiers import canonical_epc
from tracechain.epcis.query import EventQuery, InvalidQuery, QueryTooLarge, parse_event_query
from tracechain.epcis.schema import RESERVED_TERMS
from tracechain.store import queries
from tracechain.store.models import Event
from tracechain.visibility import View, Viewer, redact

router = APIRouter(tags=["events"])

QUERY_DOCUMENT_MEDIA_TYPE = "application/ld+json"
TRACECHAIN_TERMS = RESERVED_TERMS["tracechain"]
"""The namespace of the terms tracechain adds to events it serves: `tracechain:withheld` (the fields
the caller may not see), `tracechain:hashId` (the CBV hash id, beside a declared eventID) and
`tracechain:capturedContext` (for an event with an @context of its own: its document's, which its id
was computed in)."""


def query_document(session: SessionDep, viewer: Viewer, events: list[Event]) -> dict[str, Any]:
    """The events as the viewer may see them (the store has listed only those it may see)."""
    access = queries.access_of(session, viewer, {n.epc for e in events for n in e.epcs})
    shown = []
    for event in events:
        view = access.view_of(queries.event_facts(event)) or View.PUBLIC
        shown.append(event_document(event, access.shown_fields(view, event.body, event.signer, None)))
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


@dataclass(frozen=True)
class _PagePosition:
    """Where a page ended: the ordering it was read in, the last event's sort key and row, and how
    many events earlier pages returned (for eventCountLimit)."""

    order: str
    key: datetime
    row_id: int
    returned: int


def _ordering(query: EventQuery) -> str:
    return f"{query.order_by or 'recordTime'}:{'DESC' if query.order_by and query.descending else 'ASC'}"


def _encode_token(position: _PagePosition) -> str:
    raw = [position.order, position.key.isoformat(), position.row_id, position.returned]
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def _decode_token(token: str, query: EventQuery) -> _PagePosition:
    try:
        order, key, row_id, returned = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position = _PagePosition(str(order), datetime.fromisoformat(key), int(row_id), int(returned))
    except (ValueError, TypeError) as exc:
        raise InvalidQuery([("nextPageToken", "not one this service issued")]) from exc
    if position.order != _ordering(query):
        raise InvalidQuery([("nextPageToken", "issued for another orderBy/orderDirection")])
    return position


@dataclass(frozen=True)
class QueryPage:
    """One page of a query's answer: the query document, and the parameters (with the token) that
    fetch the next page, if there is one."""

    document: dict[str, Any]
    next_params: list[tuple[str, str]] | None


def answer_query(session: SessionDep, viewer: Viewer, params: list[tuple[str, str]]) -> QueryPage:
    """One page of the events matching SimpleEventQuery parameters (`tracechain.epcis.query`) that
    the viewer may see: the one way `/events`, the discovery resources and named queries answer."""
    query = parse_event_query(params)
    if query.max_event_count is not None and queries.more_matching_than(
        session, viewer, query, query.max_event_count
    ):
        raise QueryTooLarge(query.max_event_count)
    position = _decode_token(query.next_page_token, query) if query.next_page_token else None
    returned = position.returned if position else 0
    wanted = query.per_page
    if query.event_count_limit is not None:
        wanted = min(wanted, max(query.event_count_limit - returned, 0))
    after = (position.key, position.row_id) if position else None
    found = queries.events_page(session, viewer, query, after, wanted + 1) if wanted else []
    page = found[:wanted]
    limit_reached = query.event_count_limit is not None and returned + len(page) >= query.event_count_limit
    next_params = None
    if len(found) > wanted and not limit_reached:
        last = page[-1]
        token = _encode_token(
            _PagePosition(_ordering(query), queries.sort_key_of(last, query), last.id, returned + len(page))
        )
        next_params = [(k, v) for k, v in params if k != "nextPageToken"] + [("nextPageToken", token)]
    return QueryPage(query_document(session, viewer, page), next_params)


def link_next(request: Request, response: Response, page: QueryPage) -> dict[str, Any]:
    """The page's document, with a `Link: rel="next"` header to the next page if there is one."""
    if page.next_params is not None:
        response.headers["Link"] = f'<{request.url.path}?{urlencode(page.next_params)}>; rel="next"'
    return page.document


@router.get("/events")
def events(request: Request, response: Response, session: SessionDep, viewer: ViewerDep) -> dict[str, Any]:
    """Events matching the EPCIS SimpleEventQuery parameters (`tracechain.epcis.query`), recorded
    order unless `orderBy` says otherwise; more pages are linked with `nextPageToken`."""
    page = answer_query(session, viewer, request.query_params.multi_items())
    return link_next(request, response, page)


@router.get("/events/{event_id:path}")
def event_by_id(event_id: str, session: SessionDep, viewer: ViewerDep) -> dict[str, Any]:
    """The event with this hash id or declared eventID: each participant's capture of it, and
    declarations withdrawing it."""
    found = queries.events_by_id(session, event_id, viewer)
    if not found:  # an event the caller may not see is as good as none: nothing leaks
        raise Problem(404, "Not Found", f"no event {event_id} you may read")
    return query_document(session, viewer, found)


@router.get("/epcs/{epc:path}/events")
def events_of_epc(epc: str, session: SessionDep, viewer: ViewerDep) -> dict[str, Any]:
    canonical = canonical_epc(epc)
    found = queries.events_naming(session, [canonical], viewer)
    if not found:
        raise Problem(404, "Not Found", f"no events name {canonical} that you may read")
    return query_document(session, viewer, found)
