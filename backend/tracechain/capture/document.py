"""Capture of a whole document, the stages in order (`prepare`, `accept`, `sign`, `write`), in the
caller's transaction; and of a big one streamed in chunks, into a job that reports its progress.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from tracechain.capture.accept import (
    NewEvent,
    Problems,
    new_events,
    rejected_events,
    with_ids_of_their_own,
    withdrawn_captures,
)
from tracechain.capture.prepare import (
    CaptureLimits,
    DocumentRejected,
    ErrorBehaviour,
    PreparedDocument,
    StoredKey,
    document_order,
    prepare_document,
    prepared_chunk,
)
from tracechain.capture.sign import NewRecord, sign_new_events
from tracechain.capture.write import master_data_in, store_new_events
from tracechain.chain.eip712 import Domain
from tracechain.epcis.schema import DocumentProblem
from tracechain.errors import TracechainError
from tracechain.keys import KeyVault
from tracechain.stamps import VerificationStamps
from tracechain.store import queries
from tracechain.store.models import CaptureJob, CaptureStatus, Participant


class CaptureInterrupted(TracechainError):
    """A streamed capture's job was marked failed while it ran: a service starting took it for one
    whose process had died (`queries.fail_interrupted_captures`). Its transaction must roll back."""

    def __init__(self, capture_id: str) -> None:
        super().__init__(f"capture job {capture_id} was marked failed while its document was captured")


@dataclass(frozen=True)
class Capture:
    """A captured document: its job, how many of its events were new, and how many were captured
    before (by this participant: duplicates are captured once)."""

    job: CaptureJob
    new_events: int
    duplicates: int


def capture_document(
    session: Session,
    participant: Participant,
    document: dict[str, Any] | PreparedDocument,
    vault: KeyVault,
    domain: Domain,
    stored: set[StoredKey] | None = None,
) -> Capture:
    """Check, sign and queue every new event of `document` for `participant`, in `session`.

    Raises DocumentRejected (and writes nothing) if any event is invalid, breaks custody, or
    withdraws what the participant may not withdraw; under `proceed` (`prepare_document`) only if
    no event is left: the others are captured, and the job's errors name those left out. A
    participant that keeps its own key gets its records back unsigned, the job awaiting its
    signatures (`sign_records`). `stored`: which of the document's events this participant had
    captured already (`PreparedDocument.keys`), if the caller read that before taking the capture
    lock (else it is read here); an event stored since then makes the insert fail with IntegrityError.
    """
    prepared = document if isinstance(document, PreparedDocument) else prepare_document(document)
    now = datetime.now(UTC)
    if stored is None:
        stored = queries.events_captured_by(session, set(prepared.hash_ids), participant.address)
    fresh, records, rejected = _accepted(session, participant, prepared, vault, domain, stored)
    if rejected and not fresh and not any(key in stored for key in prepared.keys):
        raise DocumentRejected(sorted(rejected, key=document_order))  # nothing left to capture
    queries.upsert_master_data(session, participant.id, master_data_in(prepared.document))
    if not fresh:
        # Sent again, after a lost answer or by a retrying client: the job that captured it answers,
        # if it refused the same events (else this document is another, and its refusals are news).
        earlier = queries.capture_jobs_of(session, set(prepared.keys), participant.address)
        refused = rejected_events(rejected) if rejected else None
        if len(earlier) == 1 and earlier[0].errors == refused:
            return Capture(earlier[0], 0, len(prepared.events))

    waits = bool(records)  # events with no effect on chain (naming no product nor place) wait for nothing
    job = CaptureJob(
        id=str(uuid.uuid4()),
        participant_id=participant.id,
        status=_captured_status(participant, waits),
        created_at=now,
        finished_at=None if waits else now,
        event_count=len(fresh),
        error_behaviour=prepared.behaviour.value,
        errors=rejected_events(rejected) if rejected else None,
    )
    session.add(job)
    session.flush()
    stamps = VerificationStamps(vault.stamp_key, domain.separator)
    store_new_events(
        session, job.id, participant, prepared.document.get("@context"), fresh, records, stamps, now
    )
    if not waits:  # final as captured: subscriptions have them now, not at a confirmation
        queries.feed_confirmed_events(session, {job.id}, now)
    return Capture(job, len(fresh), len(prepared.events) - len(fresh))


def _accepted(
    session: Session,
    participant: Participant,
    prepared: PreparedDocument,
    vault: KeyVault,
    domain: Domain,
    stored: set[StoredKey],
) -> tuple[list[NewEvent], list[NewRecord], list[DocumentProblem]]:
    """The new events of `prepared` that capture keeps, their signed records, and (under
    `proceed`) why the others were left out; under `rollback`, DocumentRejected if any is refused."""
    left_out: set[int] = set()
    rejected = list(prepared.rejected)
    while True:
        # Under `proceed`, the events with problems are left out and the rest checked again: an
        # event may have needed one left out (a shipment of a product whose commissioning failed).
        problems = Problems()
        fresh = new_events(prepared, stored, problems, left_out)
        fresh = with_ids_of_their_own(session, fresh, problems)
        withdrawn = withdrawn_captures(session, participant, fresh, problems)
        proceeding = prepared.behaviour is ErrorBehaviour.PROCEED
        records = sign_new_events(session, participant, fresh, withdrawn, vault, domain, problems, proceeding)
        if not problems.found:
            return fresh, records, rejected
        if prepared.behaviour is ErrorBehaviour.ROLLBACK:
            raise DocumentRejected(problems.found)
        rejected += problems.found
        left_out |= problems.events


CHUNK_EVENTS: Final = 500
"""Events of a streamed document read, checked and stored at a time: what it holds in memory."""


def capture_in_chunks(
    session: Session,
    participant: Participant,
    job_id: str,
    shell: dict[str, Any],
    chunks: Iterable[list[Any]],
    behaviour: ErrorBehaviour,
    vault: KeyVault,
    domain: Domain,
    limits: CaptureLimits,
    accepted: Callable[[int], None] = lambda _: None,
) -> Capture:
    """Capture a document given as its `shell` (everything but its events, `stream.read_outline`)
    and its events `chunks`, a chunk at a time, into the capture job `job_id` (CAPTURING, made
    beforehand so that its progress can be followed): as `capture_document` captures a document,
    with the same error behaviours, in the caller's one transaction.

    Each chunk is checked, signed and written before the next is read, so memory holds one chunk
    (and the custody projection rows it touches; what earlier chunks changed is in the transaction,
    read back as the next chunk needs it). Under `rollback` the first chunk holding a refused event
    raises DocumentRejected naming it (and every other problem of that chunk): the caller rolls the
    transaction back and nothing of the document is stored. Under `proceed` refused events are left
    out as `capture_document` leaves them out. `accepted` is told how many events were read and
    kept (or skipped as captured before) so far, after each chunk."""
    now = datetime.now(UTC)
    context = shell.get("@context")
    stamps = VerificationStamps(vault.stamp_key, domain.separator)
    rejected: list[DocumentProblem] = []
    new = duplicates = read = 0
    waits = False
    for events in chunks:
        prepared = prepared_chunk(shell, events, read, behaviour, limits, rejected)
        read += len(events)
        if prepared is None:
            continue  # under `proceed`, every event of the chunk was refused by the schema or the hash
        stored = queries.events_captured_by(session, set(prepared.hash_ids), participant.address)
        fresh, records, refused = _accepted(session, participant, prepared, vault, domain, stored)
        rejected += refused
        store_new_events(session, job_id, participant, context, fresh, records, stamps, now)
        session.flush()  # the projection rows changed: the next chunk reads them back, not this one's copies
        waits |= bool(records)
        new += len(fresh)
        duplicates += sum(key in stored for key in prepared.keys)
        accepted(read)
    if rejected and not new and not duplicates:
        raise DocumentRejected(sorted(rejected, key=document_order))  # nothing left to capture
    queries.upsert_master_data(session, participant.id, master_data_in(shell))
    job = session.get(CaptureJob, job_id, with_for_update=True)
    if job is None or job.status != CaptureStatus.CAPTURING:
        raise CaptureInterrupted(job_id)
    job.status = _captured_status(participant, waits)
    job.finished_at = None if waits else now
    job.event_count = new
    job.errors = rejected_events(rejected) if rejected else None
    if not waits:
        session.flush()
        queries.feed_confirmed_events(session, {job.id}, now)
    return Capture(job, new, duplicates)


def _captured_status(participant: Participant, waits: bool) -> CaptureStatus:
    """A job's status once its events are stored: waiting for the chain (or, for a participant that
    keeps its own key, for its signatures first) if any has a record; else done."""
    if not waits:
        return CaptureStatus.SUCCEEDED
    return CaptureStatus.PENDING if participant.encrypted_key else CaptureStatus.AWAITING_SIGNATURES


def open_streamed_job(session: Session, participant: Participant, behaviour: ErrorBehaviour) -> CaptureJob:
    """The job of a document to be captured in chunks (`capture_in_chunks`), `capturing` until then."""
    job = CaptureJob(
        id=str(uuid.uuid4()),
        participant_id=participant.id,
        status=CaptureStatus.CAPTURING,
        created_at=datetime.now(UTC),
        finished_at=None,
        event_count=0,
        error_behaviour=behaviour.value,
        errors=None,
    )
    session.add(job)
    return job


def fail_streamed_job(session: Session, job_id: str, errors: dict[str, Any]) -> None:
    """A streamed capture that stored nothing: its job failed, `errors` saying why."""
    job = session.get(CaptureJob, job_id, with_for_update=True)
    if job is not None and job.status == CaptureStatus.CAPTURING:
        job.status, job.finished_at, job.errors = CaptureStatus.FAILED, datetime.now(UTC), errors
