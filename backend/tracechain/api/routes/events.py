"""EPCIS queries (REST binding): events by filter and by id, answered as EPCIS query documents (by
EPC, business step, location … : `discovery`, through `answer_query`).

Only to participants and the admin, and each sees what `visibility` allows: the store lists only
the events the caller may see, and each is shown in the caller's view of it, the fields it may not
read left out and named in `tracechain:withheld`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from tracechain.api.deps import SessionDep, ViewerDep
from tracechain.api.gs1_headers import EpcFormatDep, Negotiated
from tracechain.api.negotiation import XML_MEDIA_TYPE, wants_xml
from tracechain.api.paging import decode_token, encode_token, link_next, not_issued_here
from tracechain.api.problems import Problem
from tracechain.epcis.epc_format import EpcFormat, event_in
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.query import EventQuery, QueryTooLarge, parse_event_query
from tracechain.epcis.schema import TRACECHAIN_NS
from tracechain.epcis.xml import query_document_xml
from tracechain.store import queries
from tracechain.store.models import Event
from tracechain.visibility import View, Viewer, redact

router = APIRouter(tags=["events"], dependencies=[Negotiated])

QUERY_DOCUMENT_MEDIA_TYPE = "application/ld+json"
TRACECHAIN_TERMS = TRACECHAIN_NS
"""The namespace of the terms tracechain adds to events it serves: `tracechain:withheld` (the fields
the caller may not see), `tracechain:hashId` (the CBV hash id, beside a declared eventID) and
`tracechain:capturedContext` (for an event with an @context of its own: its document's, which its id
was computed in)."""


def query_document(
    session: SessionDep,
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
    return encode_token([position.order, position.key.isoformat(), position.row_id, position.returned])


def _decode_token(token: str, query: EventQuery) -> _PagePosition:
    try:
        order, key, row_id, returned = decode_token(token)
        position = _PagePosition(str(order), datetime.fromisoformat(key), int(row_id), int(returned))
    except (ValueError, TypeError) as exc:
        raise not_issued_here() from exc
    if position.order != _ordering(query):
        raise not_issued_here("issued for another orderBy/orderDirection")
    return position


@dataclass(frozen=True)
class QueryPage:
    """One page of a query's answer: the query document, and the parameters (with the token) that
    fetch the next page, if there is one."""

    document: dict[str, Any]
    next_params: list[tuple[str, str]] | None
    contexts: list[Any] = field(default_factory=list)
    """The @context each listed event was captured with (its extensions' prefixes), for XML."""


def answer_query(
    session: SessionDep,
    viewer: Viewer,
    params: list[tuple[str, str]],
    epc_format: EpcFormat = EpcFormat.NEVER_TRANSLATES,
) -> QueryPage:
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
    return QueryPage(
        query_document(session, viewer, page, epc_format), next_params, [e.context for e in page]
    )


def linked(request: Request, response: Response, page: QueryPage) -> dict[str, Any]:
    """The page's document, with a `Link: rel="next"` header to the next page if there is one."""
    if page.next_params is not None:
        link_next(request, response, page.next_params)
    return page.document


def in_media_type(
    xml: bool, document: dict[str, Any], contexts: list[Any], response: Response
) -> dict[str, Any] | Response:
    """The query document as negotiated (`tracechain.api.negotiation`): as it is, for JSON, or in
    EPCIS 2.0 XML, the headers already set (Link, the GS1 ones) kept."""
    if not xml:
        return document
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() == "link" or name.lower().startswith("gs1-")
    }
    return Response(query_document_xml(document, contexts), media_type=XML_MEDIA_TYPE, headers=headers)


_DOCUMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, XML_MEDIA_TYPE: {}}},
    406: {"description": "`Accept` names neither JSON(-LD) nor XML"},
}


@router.get("/events", response_model=None, responses=_DOCUMENT_RESPONSES)
def events(
    request: Request, response: Response, session: SessionDep, viewer: ViewerDep, epc_format: EpcFormatDep
) -> dict[str, Any] | Response:
    """Events matching the EPCIS SimpleEventQuery parameters (`tracechain.epcis.query`), recorded
    order unless `orderBy` says otherwise; more pages are linked with `nextPageToken`. In XML
    (`Accept: application/xml`) an EPCISQueryDocument valid by GS1's XSD."""
    xml = wants_xml(request.headers.get("accept"))
    page = answer_query(session, viewer, request.query_params.multi_items(), epc_format)
    return in_media_type(xml, linked(request, response, page), page.contexts, response)


@router.get("/events/{event_id:path}", response_model=None, responses=_DOCUMENT_RESPONSES)
def event_by_id(
    event_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    viewer: ViewerDep,
    epc_format: EpcFormatDep,
) -> dict[str, Any] | Response:
    """The event with this hash id or declared eventID: each participant's capture of it, and
    declarations withdrawing it."""
    xml = wants_xml(request.headers.get("accept"))
    found = queries.events_by_id(session, event_id, viewer)
    if not found:  # an event the caller may not see is as good as none: nothing leaks
        raise Problem(404, "Not Found", f"no event {event_id} you may read")
    document = query_document(session, viewer, found, epc_format)
    return in_media_type(xml, document, [e.context for e in found], response)
