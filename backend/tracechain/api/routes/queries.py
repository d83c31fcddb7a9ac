"""Named queries and their webhook subscriptions (EPCIS REST binding `/queries`).

A named query belongs to whoever created it (a participant, or the admin) and answers in its
owner's view of the events, as `/events` would. Names are unique per owner: `/queries/{name}` is
read in the caller's own namespace, so another participant's queries are as good as absent (404,
and no 409 tells their names). Subscribing pushes events out of the service, so it needs a capture
key (or the admin token); reading and naming queries needs any of the participant's keys.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from tracechain.api.deps import (
    Credentials,
    ServicesDep,
    SessionDep,
    ViewerDep,
    current_participant,
    current_viewer,
    is_admin,
)
from tracechain.api.gs1_headers import EpcFormatDep, Negotiated
from tracechain.api.paging import link_next, next_page, not_issued_here, paging_of
from tracechain.api.problems import Problem
from tracechain.api.routes.events import answer_query
from tracechain.epcis.query import DEFAULT_PER_PAGE, InvalidQuery, parse_event_query
from tracechain.query_documents import query_document
from tracechain.services import Services
from tracechain.store import queries
from tracechain.store.models import NamedQuery, Subscription
from tracechain.subscriptions import (
    ADMIN_OWNER,
    FEED_CHUNK,
    InvalidSubscription,
    QueryNameTaken,
    Schedule,
    TooManySubscriptions,
    name_query,
    new_subscription,
    stored_query,
)
from tracechain.visibility import ADMIN, Viewer

router = APIRouter(prefix="/queries", tags=["queries"])
# Each HTTP route checks and answers the GS1 versions (`Negotiated`); the WebSocket one cannot take
# a router-wide dependency that reads a Request.

NAME_PATTERN = r"^[A-Za-z0-9._~-]{1,200}$"
"""Characters a URL path segment carries as they are: the name is its own address."""
PAGING = {"perPage", "nextPageToken"}
"""What `GET /queries/{name}/events` takes beside the stored query."""
WEBSOCKET_PARAMETERS = {
    "stream",
    "reportIfEmpty",
    "initialRecordTime",
    "second",
    "minute",
    "hour",
    "dayOfMonth",
    "month",
    "dayOfWeek",
}


class QueryDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Unique among your queries; letters, digits, . _ ~ -")
    query: dict[str, Any] = Field(
        description="SimpleEventQuery parameters as GET /events takes them; a list gives alternatives"
    )

    @field_validator("name")
    @classmethod
    def _addressable(cls, name: str) -> str:
        if name in (".", ".."):  # a URL path resolves them away: /queries/.. is /
            raise ValueError("cannot be . or .., which a URL path resolves away")
        return name


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    dest: str = Field(max_length=2000, description="http(s) URL the deliveries are POSTed to")
    signature_token: str | None = Field(
        None,
        alias="signatureToken",
        min_length=16,
        max_length=256,
        description="Your secret: each delivery carries GS1-Signature: sha256=HMAC-SHA256(body, it)",
    )
    report_if_empty: bool = Field(False, alias="reportIfEmpty")
    stream: bool | None = None
    schedule: dict[str, Any] | None = None
    initial_record_time: datetime | None = Field(None, alias="initialRecordTime")


def _owner(viewer: Viewer) -> str:
    if viewer.admin:
        return ADMIN_OWNER
    assert viewer.participant_id is not None  # ViewerDep is the admin or a participant
    return viewer.participant_id


def _params_of(query: dict[str, Any]) -> list[tuple[str, str]]:
    """The query object as (name, value) pairs: a list is alternatives of one parameter."""
    params, problems = [], []
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool):
                params.append((name, "true" if item else "false"))
            elif isinstance(item, str | int | float):
                params.append((name, str(item)))
            else:
                problems.append((name, "a string, number or boolean, or a list of them"))
        if not values:
            problems.append((name, "an empty list"))
        if name in PAGING - {"perPage"}:
            problems.append((name, "belongs to a request for a page, not to a stored query"))
    if problems:
        raise InvalidQuery(problems)
    return params


def _named(session: SessionDep, viewer: Viewer, name: str) -> NamedQuery:
    found = queries.named_query(session, _owner(viewer), name)
    if found is None:
        raise Problem(404, "Not Found", f"you have no query named {name!r}")
    return found


def _definition(named: NamedQuery) -> dict[str, Any]:
    return {"name": named.name, "query": named.query, "createdAt": named.created_at.isoformat()}


def _text(position: Any) -> str | None:
    """A listing position that is a name or an id, as its token held it."""
    if position is not None and not isinstance(position, str):
        raise not_issued_here()
    return position


def _refuse_other_parameters(request: Request, allowed: set[str]) -> None:
    others = sorted(set(request.query_params) - allowed)
    if others:
        subscribing = "a subscription parameter: open this URL as a WebSocket, or subscribe with a webhook"
        raise InvalidQuery(
            [
                (name, subscribing if name in WEBSOCKET_PARAMETERS else "not a parameter of this resource")
                for name in others
            ]
        )


# ---------------------------------------------------------------- named queries


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[Negotiated])
def create_query(
    body: QueryDefinition, response: Response, session: SessionDep, viewer: ViewerDep
) -> dict[str, Any]:
    """Name a SimpleEventQuery; its events are then at `/queries/{name}/events`. Parameters the
    service does not answer faithfully are refused now, not when the query is run."""
    params = _params_of(body.query)
    parse_event_query(params)  # InvalidQuery: 400 QueryParameterException naming each
    try:
        named = name_query(session, _owner(viewer), body.name, params, body.query)
    except QueryNameTaken as exc:
        raise Problem(
            409, "Query already exists", str(exc), type="epcisException:ResourceAlreadyExistsException"
        ) from None
    response.headers["Location"] = f"/queries/{quote(body.name)}"
    return _definition(named)


@router.get("", dependencies=[Negotiated])
def list_queries(
    request: Request, response: Response, session: SessionDep, viewer: ViewerDep
) -> list[dict[str, Any]]:
    """Your named queries, by name; more pages are linked with `nextPageToken`."""
    paging = paging_of(request, DEFAULT_PER_PAGE, "GET /queries")
    found = queries.named_queries(session, _owner(viewer), _text(paging.after), paging.per_page + 1)
    page = found[: paging.per_page]
    if len(found) > paging.per_page:
        next_page(request, response, paging.per_page, page[-1].name)
    return [_definition(named) for named in page]


@router.get("/{name}", dependencies=[Negotiated])
def get_query(name: str, session: SessionDep, viewer: ViewerDep) -> dict[str, Any]:
    return _definition(_named(session, viewer, name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Negotiated])
def delete_query(
    name: str, session: SessionDep, viewer: ViewerDep, services: ServicesDep, credentials: Credentials
) -> None:
    """The query and every subscription to it: their deliveries not yet sent are dropped."""
    named = _named(session, viewer, name)
    subscriptions = queries.subscriptions_of(session, named.id)
    if subscriptions:
        _subscriber(services, credentials)  # unsubscribing takes what subscribing does
    queries.delete_subscriptions(session, [s.id for s in subscriptions])
    queries.delete_named_query(session, named)


@router.get("/{name}/events", dependencies=[Negotiated])
def query_events(
    name: str,
    request: Request,
    response: Response,
    session: SessionDep,
    viewer: ViewerDep,
    epc_format: EpcFormatDep,
) -> dict[str, Any]:
    """The named query's events, a page at a time (`perPage`, `nextPageToken`), as `/events`
    answers the same parameters."""
    _refuse_other_parameters(request, PAGING)
    named = _named(session, viewer, name)
    asked = [(key, value) for key, value in request.query_params.multi_items() if key in PAGING]
    stored = [
        (key, value) for key, value in named.params if not (key == "perPage" and "perPage" in dict(asked))
    ]
    page = answer_query(session, viewer, stored + asked, epc_format)
    page.document["epcisBody"]["queryResults"]["queryName"] = named.name
    if page.next_params is not None:
        link_next(request, response, [(key, value) for key, value in page.next_params if key in PAGING])
    return page.document


# ---------------------------------------------------------------- subscriptions


def _subscriber(services: ServicesDep, credentials: Credentials) -> Viewer:
    """Subscribing pushes events out of the service: the admin, or a participant's capture key."""
    if is_admin(services, credentials):
        return ADMIN
    participant = current_participant(services, credentials)
    return Viewer(participant.id, participant.address, participant.party_id)


def _subscription_public(
    session: SessionDep, named: NamedQuery, subscription: Subscription
) -> dict[str, Any]:
    """What a subscription shows: never its signatureToken."""
    pending = queries.pending_deliveries(session, subscription.id)
    shown: dict[str, Any] = {
        "subscriptionID": subscription.id,
        "queryName": named.name,
        "dest": subscription.dest,
        "createdAt": subscription.created_at.isoformat(),
        "reportIfEmpty": subscription.report_if_empty,
        "signed": subscription.signature_token is not None,
        "pendingDeliveries": len(pending),
    }
    if pending and pending[0].last_error is not None:
        shown["lastError"] = pending[0].last_error  # why its receiver has not taken the oldest
    if subscription.stream:
        shown["stream"] = True
    else:
        shown["schedule"] = subscription.schedule
        if subscription.next_run_at is not None:
            shown["nextRunAt"] = subscription.next_run_at.isoformat()
    if subscription.initial_record_time is not None:
        shown["initialRecordTime"] = subscription.initial_record_time.isoformat()
    if subscription.last_notified_at is not None:
        shown["lastNotifiedAt"] = subscription.last_notified_at.isoformat()
    return shown


def _invalid(exc: InvalidSubscription) -> Problem:
    return Problem(
        400,
        "Invalid subscription",
        str(exc),
        errors=[{"location": f"body.{exc.field}", "reason": exc.reason}],
    )


@router.post("/{name}/subscriptions", status_code=status.HTTP_201_CREATED, dependencies=[Negotiated])
def subscribe(
    name: str,
    body: SubscriptionCreate,
    response: Response,
    session: SessionDep,
    services: ServicesDep,
    credentials: Credentials,
) -> dict[str, Any]:
    """POST the query's events to `dest` as they are confirmed on chain (`stream: true`) or at the
    times of a cron-like `schedule`, as EPCIS query documents signed in `GS1-Signature`."""
    viewer = _subscriber(services, credentials)
    named = _named(session, viewer, name)
    try:
        subscription = new_subscription(
            session,
            named,
            body.dest,
            signature_token=body.signature_token,
            stream=body.stream,
            schedule=body.schedule,
            report_if_empty=body.report_if_empty,
            initial_record_time=body.initial_record_time,
            allow_private=services.settings.webhook_allow_private,
        )
    except InvalidSubscription as exc:
        raise _invalid(exc) from None
    except TooManySubscriptions as exc:
        raise Problem(409, "Too many subscriptions", str(exc)) from None
    response.headers["Location"] = f"/queries/{quote(named.name)}/subscriptions/{subscription.id}"
    return _subscription_public(session, named, subscription)


@router.get("/{name}/subscriptions", dependencies=[Negotiated])
def list_subscriptions(
    name: str, request: Request, response: Response, session: SessionDep, viewer: ViewerDep
) -> list[dict[str, Any]]:
    paging = paging_of(request, DEFAULT_PER_PAGE, "a subscription listing")
    named = _named(session, viewer, name)
    found = queries.subscriptions_of(session, named.id, _text(paging.after), paging.per_page + 1)
    page = found[: paging.per_page]
    if len(found) > paging.per_page:
        next_page(request, response, paging.per_page, page[-1].id)
    return [_subscription_public(session, named, subscription) for subscription in page]


@router.get("/{name}/subscriptions/{subscription_id}", dependencies=[Negotiated])
def get_subscription(
    name: str, subscription_id: str, session: SessionDep, viewer: ViewerDep
) -> dict[str, Any]:
    named = _named(session, viewer, name)
    subscription = queries.subscription_of(session, named.id, subscription_id)
    if subscription is None:
        raise Problem(404, "Not Found", f"query {name!r} has no subscription {subscription_id}")
    return _subscription_public(session, named, subscription)


@router.delete(
    "/{name}/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Negotiated],
)
def unsubscribe(
    name: str, subscription_id: str, session: SessionDep, services: ServicesDep, credentials: Credentials
) -> None:
    """Nothing more is sent: deliveries not yet sent are dropped with the subscription."""
    named = _named(session, _subscriber(services, credentials), name)
    if queries.subscription_of(session, named.id, subscription_id) is None:
        raise Problem(404, "Not Found", f"query {name!r} has no subscription {subscription_id}")
    queries.delete_subscriptions(session, [subscription_id])


# ---------------------------------------------------------------- WebSocket subscriptions

WEBSOCKET_POLICY_VIOLATION = 1008
WEBSOCKET_POLL_S = 0.5
"""How often a streaming WebSocket subscription looks for newly confirmed events."""


@dataclass(frozen=True)
class _Socket:
    """A WebSocket subscription's terms, read from its handshake's query string."""

    schedule: Schedule | None
    report_if_empty: bool
    initial_record_time: datetime | None


def _socket_terms(websocket: WebSocket) -> _Socket:
    params = websocket.query_params
    unknown = sorted(set(params) - WEBSOCKET_PARAMETERS)
    if unknown:
        raise InvalidSubscription(unknown[0], "not a parameter of a WebSocket subscription")
    fields = {
        name: params[name]
        for name in ("second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek")
        if name in params
    }
    stream = params.get("stream")
    if stream is not None and stream != "true":
        raise InvalidSubscription("stream", "only true")
    if (stream == "true") == bool(fields):
        raise InvalidSubscription("stream", "give stream=true, or schedule parameters, not both")
    initial = params.get("initialRecordTime")
    try:
        initial_time = datetime.fromisoformat(initial) if initial else None
    except ValueError:
        raise InvalidSubscription("initialRecordTime", "not an ISO 8601 date-time") from None
    if initial_time is not None and initial_time.tzinfo is None:
        raise InvalidSubscription("initialRecordTime", "needs a time zone offset (Z or +hh:mm)")
    return _Socket(
        Schedule.parse(fields) if fields else None, params.get("reportIfEmpty") == "true", initial_time
    )


def _socket_viewer(services: Services, websocket: WebSocket) -> Viewer:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if token else None
    return current_viewer(services, credentials)


@router.websocket("/{name}/events")
async def query_events_socket(websocket: WebSocket, name: str) -> None:
    """The binding's WebSocket subscription: `GET /queries/{name}/events?stream=true` (or schedule
    parameters) with `Upgrade: websocket`. Each message is an EPCIS query document of the events
    confirmed since the last, as the caller may see them. It lives as long as the connection:
    nothing is kept for a client that is away (a webhook subscription is), so a client that
    reconnects passes `initialRecordTime` to get what it missed."""
    services: Services = websocket.app.state.services
    try:
        viewer = await run_in_threadpool(_socket_viewer, services, websocket)
        terms = _socket_terms(websocket)
        with services.sessions() as session:
            named = _named(session, viewer, name)
            query_id = named.id
            cursor = 0 if terms.initial_record_time is not None else queries.last_confirmation_seq(session)
    except (Problem, InvalidSubscription) as exc:
        await websocket.close(code=WEBSOCKET_POLICY_VIOLATION, reason=str(exc)[:120])
        return
    await websocket.accept()
    now = datetime.now(UTC)
    next_run = terms.schedule.next_after(now) if terms.schedule else None
    while True:
        wait = (
            WEBSOCKET_POLL_S if next_run is None else max((next_run - datetime.now(UTC)).total_seconds(), 0)
        )
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=wait)
        except TimeoutError:
            message = None
        except WebSocketDisconnect:
            return
        if message is not None:  # what a client sends asks for nothing: rounds keep their own pace
            if message["type"] == "websocket.disconnect":
                return
            continue
        if next_run is not None and datetime.now(UTC) < next_run:
            continue
        try:  # each round with the key as it is now: a revoked key's socket closes
            viewer = await run_in_threadpool(_socket_viewer, services, websocket)
        except Problem as exc:
            await websocket.close(code=WEBSOCKET_POLICY_VIOLATION, reason=str(exc)[:120])
            return
        cursor, document = await run_in_threadpool(_socket_round, services, query_id, viewer, cursor, terms)
        if document is not None:
            await websocket.send_json(document)
        if terms.schedule is not None:
            next_run = terms.schedule.next_after(datetime.now(UTC))


def _socket_round(
    services: Services, query_id: str, viewer: Viewer, cursor: int, terms: _Socket
) -> tuple[int, dict[str, Any] | None]:
    """The events confirmed after `cursor` that match, as a query document (None if none, unless
    the schedule reports empty runs), and the new cursor."""
    with services.sessions() as session:
        named = queries.named_query_by_id(session, query_id)
        if named is None:
            return cursor, None
        matched = []
        while chunk := queries.confirmations_after(session, cursor, FEED_CHUNK):
            rows = [row for _, row in chunk]
            matched += [
                event
                for event in queries.matching_events(session, viewer, stored_query(named), among=rows)
                if terms.initial_record_time is None or event.record_time >= terms.initial_record_time
            ]
            cursor = chunk[-1][0]
        if not matched and not (terms.schedule is not None and terms.report_if_empty):
            return cursor, None
        document = query_document(session, viewer, matched)
        document["epcisBody"]["queryResults"]["queryName"] = named.name
        return cursor, document
