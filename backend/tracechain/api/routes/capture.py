"""EPCIS capture (REST binding): POST a document to /capture or one event to /events, follow
its capture job, list your jobs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import IO, Annotated, Any, Final, TypeVar

import anyio
from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tracechain.api.deps import ParticipantDep, ServicesDep, SessionDep, ViewerDep
from tracechain.api.gs1_headers import Negotiated, discovery_headers
from tracechain.api.limits import (
    nests_deeper_than,
    parse_json,
    read_body,
    spool_body,
)
from tracechain.api.paging import next_page, not_issued_here, paging_of
from tracechain.api.problems import Problem
from tracechain.capture import (
    MAX_JSON_DEPTH,
    CaptureLimitExceeded,
    ErrorBehaviour,
    Submitted,
    sign_records,
    signing_requests_of,
    start_streamed,
    submit,
)
from tracechain.capture.intake import streamed_json, streamed_xml
from tracechain.chain.eip712 import Domain, typed_data
from tracechain.chain.trace_event import TraceEvent
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.xml import document_from_xml
from tracechain.services import Services
from tracechain.store import queries
from tracechain.store.models import CaptureJob, CaptureStatus, Participant

log = logging.getLogger(__name__)

router = APIRouter(tags=["capture"], dependencies=[Negotiated])

T = TypeVar("T")


class CaptureJobPublic(BaseModel):
    capture_id: str = Field(serialization_alias="captureID")
    status: str
    running: bool
    success: bool
    created_at: datetime = Field(serialization_alias="createdAt")
    finished_at: datetime | None = Field(serialization_alias="finishedAt")
    event_count: int = Field(serialization_alias="eventCount")
    capture_error_behaviour: str = Field(
        serialization_alias="captureErrorBehaviour",
        description="rollback: a document with an invalid event writes nothing (400); proceed: its "
        "valid events are captured and the others named in `errors`",
    )
    errors: list[dict[str, Any]]
    events_accepted: int | None = Field(
        default=None,
        serialization_alias="eventsAccepted",
        description="While a big document is `capturing`: its events read, checked and kept so far",
    )
    events_total: int | None = Field(
        default=None,
        serialization_alias="eventsTotal",
        description="While a big document is `capturing`: how many events it holds",
    )
    signing_requests: list[SigningRequest] = Field(
        default_factory=list,
        serialization_alias="signingRequests",
        description="For participants that keep their own key: EIP-712 messages to sign and post back",
    )


class SigningRequest(BaseModel):
    record_id: int = Field(serialization_alias="recordId")
    typed_data: dict[str, Any] = Field(serialization_alias="typedData")


class SignatureSubmission(BaseModel):
    record_id: int = Field(alias="recordId")
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes r, s, v as a wallet returns them"
    )


class SignaturesCreate(BaseModel):
    signatures: list[SignatureSubmission] = Field(min_length=1)


def job_public(
    job: CaptureJob,
    domain: Domain,
    to_sign: Sequence[tuple[int, TraceEvent]] = (),
    progress: tuple[int, int] | None = None,
) -> CaptureJobPublic:
    """`to_sign`: the job's records awaiting its participant's signature (`signing_requests_of`);
    `progress`: (events accepted, events in the document) of a streamed capture still running."""
    requests = [SigningRequest(record_id=i, typed_data=typed_data(domain, event)) for i, event in to_sign]
    return CaptureJobPublic(
        signing_requests=requests,
        capture_id=job.id,
        status=job.status,
        running=job.status in (CaptureStatus.PENDING, CaptureStatus.CAPTURING),
        # Under `proceed`, events left out are errors: the job never succeeds whole.
        success=job.status == CaptureStatus.SUCCEEDED and not job.errors,
        capture_error_behaviour=job.error_behaviour,
        created_at=job.created_at,
        finished_at=job.finished_at,
        event_count=job.event_count,
        errors=[job.errors] if job.errors else [],
        events_accepted=progress[0] if progress and job.status == CaptureStatus.CAPTURING else None,
        events_total=progress[1] if progress and job.status == CaptureStatus.CAPTURING else None,
    )


def submitted_public(submitted: Submitted, domain: Domain) -> CaptureJobPublic:
    return job_public(submitted.job, domain, submitted.to_sign, submitted.progress)


async def in_capture_thread(services: Services, work: Callable[[], T]) -> T:
    """`work`, a capture, on a capture thread (`Services.capture_threads`), never on one of the
    server's: captures waiting for the capture lock must leave those to reads. Waited for even if
    the client goes, as the server's threads are, so the place in the capture queue its request
    holds is held until its capture is done."""
    future = asyncio.get_running_loop().run_in_executor(services.capture_threads, work)
    with anyio.CancelScope(shield=True):
        done = await future
    return done


async def captured(
    services: Services, participant: Participant, document: dict[str, Any], response: Response
) -> CaptureJobPublic:
    """A document of the plain API captured as `POST /capture` captures one: after its place in the
    capture queue (503 when that is full), on a capture thread."""
    with services.capture_admission():
        submitted = await in_capture_thread(services, lambda: submit(services, participant, document))
    job = submitted_public(submitted, services.registry.domain)
    response.headers["Location"] = f"/capture/{job.capture_id}"
    return job


def capture_headers(services: Services) -> dict[str, str]:
    """What a client may send here, as the EPCIS 2.0 REST binding advertises it (its
    204CaptureEndpointDiscovery): the versions, the limits, the error behaviour."""
    settings = services.settings
    return {
        **discovery_headers("OPTIONS, POST, GET"),
        "GS1-EPCIS-Capture-Limit": str(settings.capture_max_events),
        "GS1-EPCIS-Capture-File-Size-Limit": str(settings.capture_max_bytes),
        "GS1-Capture-Error-Behaviour": "all",  # both rollback and proceed
    }


async def _capture_place(request: Request, services: ServicesDep) -> AsyncIterator[None]:
    declared = request.headers.get("content-length")
    with services.capture_admission(int(declared) if declared and declared.isdigit() else None):
        yield


# Declared before the caller's key in `capture`'s signature, so resolved first.
CapturePlace = Annotated[None, Depends(_capture_place, scope="function")]


@router.options("/capture", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def capture_options(services: ServicesDep) -> Response:
    """The capture endpoint's capabilities and limits (GS1-EPCIS-Capture-Limit: events per document,
    GS1-EPCIS-Capture-File-Size-Limit: bytes per document)."""
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=capture_headers(services))


@router.options("/capture/{capture_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def capture_job_options(capture_id: str) -> Response:
    """A capture job's resource: read only."""
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=discovery_headers("OPTIONS, GET"))


@router.post(
    "/capture",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CaptureJobPublic,
    response_model_by_alias=True,
    responses={
        400: {"description": "The document was rejected whole; `errors` lists every reason"},
        413: {
            "description": "Over a capture limit (OPTIONS /capture advertises them); nothing was read further"
        },
        503: {"description": "Too many captures are waiting: retry after `Retry-After` seconds"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An EPCIS 2.0 document: JSON or JSON-LD, or XML valid by GS1's XSD",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/xml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def capture(
    request: Request,
    _place: CapturePlace,
    participant: ParticipantDep,
    services: ServicesDep,
    response: Response,
) -> CaptureJobPublic:
    """Validate, sign and queue every new event; the job completes when all are recorded on chain.

    A place in the capture queue is taken first, so that the overflow is refused before it costs a
    database query; then the caller is authenticated, before the body is read; the body is read
    only up to the size limit and refused if it nests deeper than an EPCIS document does, before
    it is parsed. A body over TRACECHAIN_CAPTURE_STREAM_FROM_BYTES, JSON or XML, is spooled to
    disk, read once for its outline (refused as a whole body is if that finds it invalid), and
    captured after the answer, a chunk of events at a time (`tracechain.capture.start_streamed`)."""
    behaviour = error_behaviour(request.headers.get(ERROR_BEHAVIOUR_HEADER))
    settings = services.settings
    body = await spool_body(request, settings.capture_max_bytes, settings.capture_stream_from_bytes)
    content_type = request.headers.get("content-type")
    if isinstance(body, bytes):
        submitted = await in_capture_thread(
            services,
            lambda: submit(services, participant, capture_body_document(body, content_type), behaviour),
        )
    else:
        submitted = await in_capture_thread(
            services, lambda: _start_streamed(services, participant, body, content_type, behaviour)
        )
    job = submitted_public(submitted, services.registry.domain)
    response.headers["Location"] = f"/capture/{job.capture_id}"
    response.headers.update(capture_headers(services))
    return job


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CaptureJobPublic,
    response_model_by_alias=True,
    responses={
        400: {"description": "The event was rejected; `errors` lists every reason"},
        413: {"description": "Over the capture size limit"},
        503: {"description": "Too many captures are waiting: retry after `Retry-After` seconds"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One EPCIS 2.0 event (JSON or JSON-LD), its `@context` on the event",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def capture_event(
    request: Request,
    _place: CapturePlace,
    participant: ParticipantDep,
    services: ServicesDep,
    response: Response,
) -> CaptureJobPublic:
    """Capture one event, exactly as `POST /capture` captures a document holding only it.

    The binding answers 201 with the event's location, as if it were stored at once; here an event
    is recorded on chain after the answer, and may wait for its signer's signature, so the answer
    is 202 with the capture job's location, as `/capture` answers; the event's hash id is
    `GET /events/{id}` from then on."""
    body = await read_body(request, services.settings.capture_max_bytes)
    behaviour = error_behaviour(request.headers.get(ERROR_BEHAVIOUR_HEADER))
    submitted = await in_capture_thread(
        services, lambda: submit(services, participant, document_of_event(parse_json(body)), behaviour)
    )
    job = submitted_public(submitted, services.registry.domain)
    response.headers["Location"] = f"/capture/{job.capture_id}"
    return job


def document_of_event(event: Any) -> dict[str, Any]:
    """The capture document holding only `event`, its `@context` moved onto the document (the
    event hashes with it, as it would have in a document)."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise Problem(
            400, "Not an EPCIS event", "the body must be one EPCIS event: a JSON object with a type"
        )
    if event["type"] in ("EPCISDocument", "EPCISQueryDocument"):
        raise Problem(
            400, "Not an EPCIS event", f"POST /events takes one event; send an {event['type']} to /capture"
        )
    alone = {name: value for name, value in event.items() if name != "@context"}
    return {
        "@context": event.get("@context", [EPCIS_CONTEXT]),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {"eventList": [alone]},
    }


XML_CAPTURE_TYPES = ("application/xml", "text/xml")


def capture_body_document(body: bytes, content_type: str | None) -> Any:
    """A capture body as the JSON document tracechain captures: EPCIS 2.0 XML (by its
    Content-Type) converted by `tracechain.epcis.xml`, anything else read as JSON. CPU work: call
    it off the event loop."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in XML_CAPTURE_TYPES:
        return parse_json(body)
    document = document_from_xml(body)
    # Held to the depth a JSON capture is: what is stored and served is JSON either way.
    if nests_deeper_than(json.dumps(document).encode(), MAX_JSON_DEPTH):
        raise CaptureLimitExceeded("how deep a document nests", MAX_JSON_DEPTH, None, None)
    return document


ERROR_BEHAVIOUR_HEADER = "GS1-Capture-Error-Behaviour"


def error_behaviour(header: str | None) -> ErrorBehaviour:
    """The `GS1-Capture-Error-Behaviour` a client asked for; rollback when it asked for none."""
    if header is None:
        return ErrorBehaviour.ROLLBACK
    try:
        return ErrorBehaviour(header.strip())
    except ValueError:
        allowed = ", ".join(b.value for b in ErrorBehaviour)
        why = (
            " (`all` only announces, in OPTIONS, that a server supports both)"
            if header.strip() == "all"
            else ""
        )
        raise Problem(
            400,
            "Invalid header",
            f"{ERROR_BEHAVIOUR_HEADER} {header!r} is not one of {allowed}{why}",
            errors=[{"location": f"header.{ERROR_BEHAVIOUR_HEADER}", "reason": f"must be one of {allowed}"}],
        ) from None


# ---------------------------------------------------------------- big documents, streamed


def _start_streamed(
    services: Services,
    participant: Participant,
    spool: IO[bytes],
    content_type: str | None,
    behaviour: ErrorBehaviour,
) -> Submitted:
    try:
        xml = (content_type or "").split(";")[0].strip().lower() in XML_CAPTURE_TYPES
        document = streamed_xml(spool) if xml else streamed_json(spool)
        return start_streamed(services, participant, spool, document, behaviour)
    except BaseException:
        spool.close()
        raise


_DEFAULT_JOBS_PER_PAGE: Final = 30


@router.get("/capture", response_model=list[CaptureJobPublic], response_model_by_alias=True)
def capture_jobs(
    request: Request, response: Response, viewer: ViewerDep, session: SessionDep, services: ServicesDep
) -> list[CaptureJobPublic]:
    """Your capture jobs (the admin: everyone's), oldest first, `perPage` at a time; the next page
    is linked (`Link: rel="next"`)."""
    paging = paging_of(request, _DEFAULT_JOBS_PER_PAGE, "GET /capture")
    after = paging.after
    if after is not None:
        try:
            created_at, job_id = after
            after = (datetime.fromisoformat(created_at), str(job_id))
        except (ValueError, TypeError) as exc:
            raise not_issued_here() from exc
    per_page = paging.per_page
    found = queries.capture_jobs_page(
        session, None if viewer.admin else viewer.participant_id, after, per_page + 1
    )
    page = found[:per_page]
    if len(found) > per_page:
        next_page(request, response, per_page, [page[-1].created_at.isoformat(), page[-1].id])
    domain = services.registry.domain
    progress = services.capture_progress
    return [job_public(job, domain, signing_requests_of(session, job), progress.get(job.id)) for job in page]


def _own_job(session: Session, capture_id: str, participant: Participant) -> CaptureJob:
    job = session.get(CaptureJob, capture_id)
    if job is None or job.participant_id != participant.id:
        raise Problem(404, "Not Found", f"no capture job {capture_id} of yours")
    return job


@router.get("/capture/{capture_id}", response_model=CaptureJobPublic, response_model_by_alias=True)
def capture_job(
    capture_id: str, viewer: ViewerDep, session: SessionDep, services: ServicesDep
) -> CaptureJobPublic:
    """One of your capture jobs (the admin: anyone's, as `GET /capture` lists them)."""
    job = session.get(CaptureJob, capture_id)
    if job is None or not (viewer.admin or job.participant_id == viewer.participant_id):
        raise Problem(404, "Not Found", f"no capture job {capture_id} of yours")
    domain = services.registry.domain
    return job_public(job, domain, signing_requests_of(session, job), services.capture_progress.get(job.id))


@router.post(
    "/capture/{capture_id}/signatures", response_model=CaptureJobPublic, response_model_by_alias=True
)
def submit_signatures(
    capture_id: str,
    body: SignaturesCreate,
    participant: ParticipantDep,
    session: SessionDep,
    services: ServicesDep,
) -> CaptureJobPublic:
    """Sign each `typedData` of the job's `signingRequests` with your key (eth_signTypedData_v4) and
    post the signatures here; once all are in, the events are queued for the chain."""
    job = _own_job(session, capture_id, participant)
    signatures = {item.record_id: bytes.fromhex(item.signature[2:]) for item in body.signatures}
    domain = services.registry.domain
    sign_records(session, job, participant, signatures, domain, services.vault)
    return job_public(job, domain, signing_requests_of(session, job))
