"""EPCIS capture (REST binding): POST a document to /capture or one event to /events, follow
its capture job, list your jobs."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import IO, Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracechain.api.deps import ParticipantDep, ServicesDep, SessionDep, ViewerDep
from tracechain.api.gs1_headers import Negotiated, discovery_headers
from tracechain.api.limits import (
    MAX_JSON_DEPTH,
    InvalidJson,
    nests_deeper_than,
    parse_json,
    read_body,
    spool_body,
)
from tracechain.api.paging import next_page, not_issued_here, paging_of
from tracechain.api.problems import Problem
from tracechain.capture import (
    CHUNK_EVENTS,
    CaptureInterrupted,
    CaptureLimitExceeded,
    DocumentRejected,
    ErrorBehaviour,
    PreparedDocument,
    StoredKey,
    capture_document,
    capture_in_chunks,
    fail_streamed_job,
    open_streamed_job,
    prepare_document,
    sign_records,
    unsigned_events,
)
from tracechain.chain.eip712 import Domain, typed_data
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.stream import Outline, UnreadableDocument, event_chunks, read_outline
from tracechain.epcis.xml import document_from_xml
from tracechain.services import Services
from tracechain.store import queries
from tracechain.store.models import CaptureJob, CaptureStatus, Participant

log = logging.getLogger(__name__)

router = APIRouter(tags=["capture"], dependencies=[Negotiated])


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
    session: Session | None = None,
    domain: Domain | None = None,
    progress: tuple[int, int] | None = None,
) -> CaptureJobPublic:
    """`progress`: (events accepted, events in the document) of a streamed capture still running."""
    requests = []
    if session is not None and domain is not None and job.status == CaptureStatus.AWAITING_SIGNATURES:
        requests = [
            SigningRequest(record_id=record_id, typed_data=typed_data(domain, event))
            for record_id, event in unsigned_events(queries.records_of_capture(session, job.id))
        ]
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
    it is parsed. A JSON body over TRACECHAIN_CAPTURE_STREAM_FROM_BYTES is spooled to disk and
    captured after the answer, a chunk of events at a time (`_start_streamed`)."""
    behaviour = error_behaviour(request.headers.get(ERROR_BEHAVIOUR_HEADER))
    settings = services.settings
    body = await spool_body(request, settings.capture_max_bytes, settings.capture_stream_from_bytes)
    content_type = request.headers.get("content-type")
    if isinstance(body, bytes):
        job = await run_in_threadpool(
            lambda: _submit(services, participant, capture_body_document(body, content_type), behaviour)
        )
    else:
        job = await run_in_threadpool(
            lambda: _start_streamed(services, participant, body, content_type, behaviour)
        )
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
    job = await run_in_threadpool(
        lambda: _submit(services, participant, document_of_event(parse_json(body)), behaviour)
    )
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


def submit_document(
    services: Services, participant: Participant, document: dict[str, Any]
) -> CaptureJobPublic:
    """The one way events enter tracechain, for EPCIS capture and the plain API alike: after its
    turn in the capture queue (503 when it is full)."""
    with services.capture_admission():
        return _submit(services, participant, document)


def _submit(
    services: Services,
    participant: Participant,
    document: Any,
    behaviour: ErrorBehaviour = ErrorBehaviour.ROLLBACK,
) -> CaptureJobPublic:
    services.capture_limits.check(document)
    # What needs no lock: schema, hashes, effects, and which events are stored already. Stored
    # events stay stored, so that answer can only miss events a capture stored meanwhile; taken for
    # new, those are refused by the insert (IntegrityError) or by custody (commissioned twice),
    # and the capture runs again, reading them inside the lock.
    with services.preparing:
        prepared = prepare_document(document, behaviour)
        stored = _stored_events(services, participant, prepared)
    return services.captures.run(
        lambda session: _capture(session, services, participant, prepared, stored), len(prepared.events)
    )


def _stored_events(
    services: Services, participant: Participant, prepared: PreparedDocument
) -> set[StoredKey]:
    with services.sessions() as session:
        return queries.events_captured_by(session, set(prepared.hash_ids), participant.address)


def _capture(
    session: Session,
    services: Services,
    participant: Participant,
    prepared: PreparedDocument,
    stored: set[StoredKey],
) -> CaptureJobPublic:
    """The capture, in the transaction of its group (`group_commit`), after the captures before it.

    `stored` was read before the capture lock: a capture since (of this group or before it) may
    have stored some of these events, which then makes the insert fail (IntegrityError) or custody
    refuse (commissioned twice). Either way that attempt's savepoint is rolled back and it runs
    again, reading which events are stored inside the lock, where the answer is final."""
    domain = services.registry.domain
    try:
        with session.begin_nested():
            result = capture_document(session, participant, prepared, services.vault, domain, stored)
            return job_public(result.job, session, domain)
    except DocumentRejected:
        if queries.events_captured_by(session, set(prepared.hash_ids), participant.address) == stored:
            raise  # refused for what it says, not for what was stored meanwhile
    except IntegrityError:
        pass
    try:
        result = capture_document(session, participant, prepared, services.vault, domain, None)
        return job_public(result.job, session, domain)
    except IntegrityError as exc:
        raise Problem(409, "Conflict", "a concurrent capture touched the same events; send it again") from exc


# ---------------------------------------------------------------- big documents, streamed


def _start_streamed(
    services: Services,
    participant: Participant,
    spool: IO[bytes],
    content_type: str | None,
    behaviour: ErrorBehaviour,
) -> CaptureJobPublic:
    """Read the spooled document's outline (everything but its events: a document that is not
    JSON, nests too deep or holds too many events is answered as `/capture` answers it), open its
    job, and capture it in a thread of its own; the job answers at once, `capturing`, and
    `GET /capture/{id}` follows its progress. The thread holds a place in the capture queue until
    it is done, as a waiting capture does."""
    handed_on = False
    try:
        if (content_type or "").split(";")[0].strip().lower() in XML_CAPTURE_TYPES:
            raise CaptureLimitExceeded(
                "an XML capture body, in bytes (XML is read whole; send bigger documents as JSON)",
                services.settings.capture_stream_from_bytes,
                None,
                "TRACECHAIN_CAPTURE_STREAM_FROM_BYTES",
            )
        try:
            outline = read_outline(spool, MAX_JSON_DEPTH)
        except UnreadableDocument as exc:
            if exc.too_deep:
                raise CaptureLimitExceeded("how deep a document nests", MAX_JSON_DEPTH, None, None) from exc
            raise InvalidJson(str(exc)) from exc
        limits = services.capture_limits
        if outline.event_count > limits.max_events:
            raise CaptureLimitExceeded(
                "the events of a document",
                limits.max_events,
                outline.event_count,
                "TRACECHAIN_CAPTURE_MAX_EVENTS",
            )
        if (
            not isinstance((outline.shell.get("epcisBody") or {}).get("eventList"), list)
            or not outline.event_count
        ):
            return _submit(services, participant, outline.shell, behaviour)  # no event list to stream
        admission = services.capture_admission(0)  # a place, no bytes: its body is on disk
        admission.__enter__()  # held by the capture's thread from now on
        try:
            with services.sessions() as session, session.begin():
                job = open_streamed_job(session, participant, behaviour)
            services.capture_progress[job.id] = (0, outline.event_count)
            thread = threading.Thread(
                target=_capture_streamed,
                args=(services, participant.id, job.id, spool, outline, behaviour, admission),
                name=f"capture-{job.id}",
                daemon=True,
            )
            thread.start()
        except BaseException:
            admission.__exit__(None, None, None)
            raise
        handed_on = True
        return job_public(job, progress=services.capture_progress.get(job.id))
    finally:
        if not handed_on:
            spool.close()


def _capture_streamed(
    services: Services,
    participant_id: str,
    job_id: str,
    spool: IO[bytes],
    outline: Outline,
    behaviour: ErrorBehaviour,
    admission: AbstractContextManager[None],
) -> None:
    """The capture of a spooled document, in one transaction under the capture lock; a refusal, or
    anything else that stops it, rolls it all back and fails the job, saying why."""
    total = outline.event_count

    def accepted(read: int) -> None:
        services.capture_progress[job_id] = (read, total)

    try:
        with services.capturing() as session:
            participant = session.get(Participant, participant_id)
            assert participant is not None, "participants are never deleted"
            capture_in_chunks(
                session,
                participant,
                job_id,
                outline.shell,
                event_chunks(spool, CHUNK_EVENTS),
                behaviour,
                services.vault,
                services.registry.domain,
                services.capture_limits,
                accepted,
            )
    except DocumentRejected as exc:
        _fail(services, job_id, 400, "EPCIS document rejected", str(exc), exc.problems)
    except CaptureLimitExceeded as exc:
        _fail(services, job_id, 413, "Capture limit exceeded", str(exc), [])
    except CaptureInterrupted:
        log.warning("streamed capture %s was marked failed while it ran; rolled back", job_id)
    except Exception as exc:  # the thread's last word: the job must not stay `capturing`
        log.exception("streamed capture %s failed", job_id)
        _fail(services, job_id, 500, "Capture failed", f"{type(exc).__name__}: {exc}", [])
    finally:
        spool.close()
        services.capture_progress.pop(job_id, None)
        admission.__exit__(None, None, None)


def _fail(
    services: Services, job_id: str, status_code: int, title: str, detail: str, problems: list[Any]
) -> None:
    """The job failed: nothing of its document was stored (its transaction rolled back)."""
    errors: dict[str, Any] = {
        "type": "epcisException:ValidationException" if status_code == 400 else "about:blank",
        "title": title,
        "status": status_code,
        "detail": detail[:2000],
    }
    if problems:
        errors["errors"] = [{"location": p.location, "reason": p.reason} for p in problems]
    with services.sessions() as session, session.begin():
        fail_streamed_job(session, job_id, errors)


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
    return [job_public(job, session, domain, progress.get(job.id)) for job in page]


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
    return job_public(job, session, services.registry.domain, services.capture_progress.get(job.id))


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
    sign_records(session, job, participant, signatures, services.registry.domain, services.vault)
    return job_public(job, session, services.registry.domain)
