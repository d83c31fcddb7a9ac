"""EPCIS capture (REST binding): POST a document, follow its capture job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from tracechain.api.deps import ParticipantDep, ServicesDep, SessionDep
from tracechain.api.problems import Problem
from tracechain.api.services import Services
from tracechain.capture import capture_document
from tracechain.store.db import transaction
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
        default="rollback",
        serialization_alias="captureErrorBehaviour",
        description="A rejected document writes nothing",
    )
    errors: list[dict[str, Any]]


def job_public(job: CaptureJob) -> CaptureJobPublic:
    return CaptureJobPublic(
        capture_id=job.id,
        status=job.status,
        running=job.status == CaptureStatus.PENDING,
        success=job.status == CaptureStatus.SUCCEEDED,
        created_at=job.created_at,
        finished_at=job.finished_at,
        event_count=job.event_count,
        errors=[job.errors] if job.errors else [],
    )


@router.post(
    "/capture",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CaptureJobPublic,
    response_model_by_alias=True,
    responses={400: {"description": "The document was rejected whole; `errors` lists every reason"}},
)
def capture(
    participant: ParticipantDep,
    services: ServicesDep,
    response: Response,
    document: dict[str, Any] = Body(..., description="An EPCIS 2.0 document (JSON or JSON-LD)"),  # noqa: B008
) -> CaptureJobPublic:
    """Validate, sign and queue every new event; the job completes when all are recorded on chain."""
    job = submit_document(services, participant, document)
    response.headers["Location"] = f"/capture/{job.capture_id}"
    return job


def submit_document(
    services: Services, participant: Participant, document: dict[str, Any]
) -> CaptureJobPublic:
    """The one way events enter tracechain, for EPCIS capture and the plain API alike."""
    try:
        # Captures are serialised: each signs over the heads the one before it left.
        with services.capture_lock, transaction(services.sessions) as session:
            result = capture_document(
                session, participant, document, services.vault, services.registry.domain
            )
            return job_public(result.job)
    except IntegrityError as exc:  # another process captured the same events or subjects first
        raise Problem(409, "Conflict", "a concurrent capture touched the same events; send it again") from exc


@router.get("/capture/{capture_id}", response_model=CaptureJobPublic, response_model_by_alias=True)
def capture_job(capture_id: str, participant: ParticipantDep, session: SessionDep) -> CaptureJobPublic:
    job = session.get(CaptureJob, capture_id)
    if job is None or job.participant_id != participant.id:
        raise Problem(404, "Not Found", f"no capture job {capture_id} of yours")
    return job_public(job)
