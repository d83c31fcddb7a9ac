"""EPCIS queries (REST binding): events by filter, by id, by EPC; answered as EPCIS query documents.

Only to participants and the admin, and each sees what `visibility` allows: the store lists only
the events the caller may see, and each is shown in the caller's view of it, the fields it may not
read left out and named in `tracechain:withheld`."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from tracechain.api.deps import SessionDep, ViewerDep
from tracechain.api.problems import Problem
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.identifiers import canonical_epc
from tracechain.epcis.mapping import bare_vocabulary
from tracechain.store import queries
from tracechain.store.models import Event
from tracechain.visibility import View, Viewer, redact

router = APIRouter(tags=["events"])

QUERY_DOCUMENT_MEDIA_TYPE = "application/ld+json"
TRACECHAIN_TERMS = "https://tracechain.dev/epcis#"
"""The namespace of the one term tracechain adds to events it serves: `tracechain:withheld`."""


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
    """The event's shown fields as captured, with its hash id as eventID, the time tracechain
    recorded it, and the names of the fields withheld."""
    body, withheld = redact(event.body, fields)
    document = {**body, "eventID": event.event_id, "recordTime": event.record_time.isoformat()}
    return {**document, "tracechain:withheld": withheld} if withheld else document


def _encode_token(event: Event) -> str:
    raw = json.dumps([event.record_time.isoformat(), event.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, int]:
    try:
        record_time, row_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return datetime.fromisoformat(record_time), int(row_id)
    except (ValueError, TypeError) as exc:
        raise Problem(400, "Invalid nextPageToken", "nextPageToken is not one this service issued") from exc


@router.get("/events")
def events(
    request: Request,
    response: Response,
    session: SessionDep,
    viewer: ViewerDep,
    event_type: Annotated[str | None, Query(alias="eventType")] = None,
    ge_event_time: Annotated[datetime | None, Query(alias="GE_eventTime")] = None,
    lt_event_time: Annotated[datetime | None, Query(alias="LT_eventTime")] = None,
    eq_biz_step: Annotated[str | None, Query(alias="EQ_bizStep")] = None,
    match_any_epc: Annotated[str | None, Query(alias="MATCH_anyEPC")] = None,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=1000)] = 100,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken")] = None,
) -> dict[str, Any]:
    """Events in the order they were recorded, filtered; more pages are linked with `nextPageToken`."""
    found = queries.events_page(
        session,
        viewer,
        epc=canonical_epc(match_any_epc) if match_any_epc else None,
        biz_step=bare_vocabulary(eq_biz_step) if eq_biz_step else None,
        event_type=event_type,
        since=ge_event_time,
        until=lt_event_time,
        after=_decode_token(next_page_token) if next_page_token else None,
        limit=per_page + 1,
    )
    page = found[:per_page]
    if len(found) > per_page:
        params = {k: v for k, v in request.query_params.items() if k != "nextPageToken"}
        params["nextPageToken"] = _encode_token(page[-1])
        response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return query_document(session, viewer, page)


@router.get("/events/{event_id:path}")
def event_by_id(event_id: str, session: SessionDep, viewer: ViewerDep) -> dict[str, Any]:
    """The event with this hash id: each participant's capture of it, and declarations withdrawing it."""
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
