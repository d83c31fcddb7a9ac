"""EPCIS queries (REST binding): events by filter and by id, answered as EPCIS query documents (by
EPC, business step, location … : `discovery`, through `answer_query`).

Only to participants and the admin, and each sees what `visibility` allows: the store lists only
the events the caller may see, and each is shown in the caller's view of it, the fields it may not
read left out and named in `tracechain:withheld`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from tracechain.api.deps import SessionDep, ViewerDep
from tracechain.api.gs1_headers import EpcFormatDep, Negotiated
from tracechain.api.negotiation import XML_MEDIA_TYPE, wants_xml
from tracechain.api.paging import decode_token, encode_token, link_next, not_issued_here
from tracechain.api.problems import Problem
from tracechain.epcis.epc_format import EpcFormat
from tracechain.epcis.query import EventQuery, QueryTooLarge, parse_event_query
from tracechain.epcis.xml import query_document_xml
from tracechain.query_documents import query_document
from tracechain.store import queries
from tracechain.visibility import Viewer

router = APIRouter(tags=["events"], dependencies=[Negotiated])

QUERY_DOCUMENT_MEDIA_TYPE = "application/ld+json"


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
