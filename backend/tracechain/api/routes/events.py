"""EPCIS queries (REST binding): events by filter, by id, by EPC; answered as EPCIS query documents."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from tracechain.api.deps import SessionDep
from tracechain.api.problems import Problem
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.identifiers import canonical_epc
from tracechain.epcis.mapping import bare_vocabulary
from tracechain.store import queries
from tracechain.store.models import Event

router = APIRouter(tags=["events"])

QUERY_DOCUMENT_MEDIA_TYPE = "application/ld+json"


def query_document(events: list[Event]) -> dict[str, Any]:
    return {
        "@context": EPCIS_CONTEXT,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": [event_document(e) for e in events]},
            }
        },
    }


def event_document(event: Event) -> dict[str, Any]:
    """The event as captured, with its hash id as eventID and the time tracechain recorded it."""
    return {**event.body, "eventID": event.event_id, "recordTime": event.record_time.isoformat()}


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
    return query_document(page)


@router.get("/events/{event_id:path}")
def event_by_id(event_id: str, session: SessionDep) -> dict[str, Any]:
    """The event with this hash id: each participant's capture of it, and declarations withdrawing it."""
    found = queries.events_by_id(session, event_id)
    if not found:
        raise Problem(404, "Not Found", f"no event {event_id}")
    return query_document(found)


@router.get("/epcs/{epc:path}/events")
def events_of_epc(epc: str, session: SessionDep) -> dict[str, Any]:
    canonical = canonical_epc(epc)
    found = queries.events_naming(session, [canonical])
    if not found:
        raise Problem(404, "Not Found", f"no events name {canonical}")
    return query_document(found)
