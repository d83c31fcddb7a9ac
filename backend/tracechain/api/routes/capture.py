"""EPCIS capture (REST binding): POST a document, follow its capture job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracechain.api.deps import ParticipantDep, ReaderDep, ServicesDep, SessionDep
from tracechain.api.limits import parse_json, read_body
from tracechain.api.problems import Problem
from tracechain.api.services import Services
from tracechain.capture import (
    DocumentRejected,
    ErrorBehaviour,
    PreparedDocument,
    StoredKey,
    capture_document,
    prepare_document,
    sign_records,
    unsigned_events,
)
from tracechain.chain.eip712 import Domain, typed_data
from tracechain.store import queries
from tracechain.store.models import CaptureJob, CaptureStatus, Participant

router = APIRouter(tags=["capture"])


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
    job: CaptureJob, session: Session | None = None, domain: Domain | None = None
) -> CaptureJobPublic:
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
        running=job.status == CaptureStatus.PENDING,
        # Under `proceed`, events left out are errors: the job never succeeds whole.
        success=job.status == CaptureStatus.SUCCEEDED and not job.errors,
        capture_error_behaviour=job.error_behaviour,
        created_at=job.created_at,
        finished_at=job.finished_at,
        event_count=job.event_count,
        errors=[job.errors] if job.errors else [],
    )


EPCIS_VERSION = "2.0.0"
CBV_VERSION = "2.0.0"


def capture_headers(services: Services) -> dict[str, str]:
    """What a client may send here, as the EPCIS 2.0 REST binding advertises it."""
    settings = services.settings
    return {
        "Allow": "OPTIONS, POST, GET",
        "GS1-EPCIS-Version": EPCIS_VERSION,
        "GS1-EPCIS-Min": EPCIS_VERSION,
        "GS1-EPCIS-Max": EPCIS_VERSION,
        "GS1-CBV-Version": CBV_VERSION,
        "GS1-CBV-Min": CBV_VERSION,
        "GS1-CBV-Max": CBV_VERSION,
        "GS1-EPCIS-Capture-Limit": str(settings.capture_max_events),
        "GS1-EPCIS-Capture-File-Size-Limit": str(settings.capture_max_bytes),
        "GS1-Capture-Error-Behaviour": "all",  # both rollback and proceed
    }


async def _capture_place(services: ServicesDep) -> AsyncIterator[None]:
    with services.capture_admission():
        yield


# Declared before the caller's key in `capture`'s signature, so resolved first.
CapturePlace = Annotated[None, Depends(_capture_place, scope="function")]


@router.options("/capture", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def capture_options(services: ServicesDep) -> Response:
    """The capture endpoint's capabilities and limits (GS1-EPCIS-Capture-Limit: events per document,
    GS1-EPCIS-Capture-File-Size-Limit: bytes per document)."""
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=capture_headers(services))


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
            "description": "An EPCIS 2.0 document (JSON or JSON-LD)",
            "content": {"application/json": {"schema": {"type": "object"}}},
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
    it is parsed."""
    behaviour = error_behaviour(request.headers.get(ERROR_BEHAVIOUR_HEADER))
    body = await read_body(request, services.settings.capture_max_bytes)
    job = await run_in_threadpool(lambda: _submit(services, participant, parse_json(body), behaviour))
    response.headers["Location"] = f"/capture/{job.capture_id}"
    response.headers.update(capture_headers(services))
    return job


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
    try:
        return _capture(services, participant, prepared, stored)
    except DocumentRejected:
        if _stored_events(services, participant, prepared) == stored:
            raise  # refused for what it says, not for what was stored meanwhile
    except IntegrityError:
        pass
    try:
        return _capture(services, participant, prepared, None)
    except IntegrityError as exc:
        raise Problem(409, "Conflict", "a concurrent capture touched the same events; send it again") from exc


def _stored_events(
    services: Services, participant: Participant, prepared: PreparedDocument
) -> set[StoredKey]:
    with services.sessions() as session:
        return queries.events_captured_by(session, set(prepared.hash_ids), participant.address)


def _capture(
    services: Services, participant: Participant, prepared: PreparedDocument, stored: set[StoredKey] | None
) -> CaptureJobPublic:
    with services.capturing() as session:
        domain = services.registry.domain
        result = capture_document(session, participant, prepared, services.vault, domain, stored)
        return job_public(result.job, session, domain)


def _own_job(session: Session, capture_id: str, participant: Participant) -> CaptureJob:
    job = session.get(CaptureJob, capture_id)
    if job is None or job.participant_id != participant.id:
        raise Problem(404, "Not Found", f"no capture job {capture_id} of yours")
    return job


@router.get("/capture/{capture_id}", response_model=CaptureJobPublic, response_model_by_alias=True)
def capture_job(
    capture_id: str, participant: ReaderDep, session: SessionDep, services: ServicesDep
) -> CaptureJobPublic:
    return job_public(_own_job(session, capture_id, participant), session, services.registry.domain)


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
    sign_records(session, job, participant, signatures, services.registry.domain)
    return job_public(job, session, services.registry.domain)
