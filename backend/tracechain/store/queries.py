"""Every query the service makes, by purpose. Callers pass a session and get models or values."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tracechain.store.models import (
    Batch,
    BatchStatus,
    CaptureJob,
    CaptureStatus,
    ChainRecord,
    Event,
    EventEpc,
    IndexedBlock,
    Participant,
    RecordStatus,
    SubjectState,
)

# ---------------------------------------------------------------- participants


def participant_by_api_key_hash(session: Session, api_key_hash: str) -> Participant | None:
    return session.scalars(select(Participant).where(Participant.api_key_hash == api_key_hash)).first()


def participant_addresses_by_party(session: Session) -> dict[str, str]:
    rows = session.execute(
        select(Participant.party_id, Participant.address).where(Participant.party_id.is_not(None))
    )
    return {party: address for party, address in rows if party is not None}


def roles_by_address(session: Session) -> dict[str, set[str]]:
    return {
        address: set(roles)
        for address, roles in session.execute(select(Participant.address, Participant.roles))
    }


def participants_by_address(session: Session, addresses: set[str]) -> dict[str, Participant]:
    rows = session.scalars(select(Participant).where(Participant.address.in_(addresses)))
    return {p.address: p for p in rows}


# ---------------------------------------------------------------- events


def existing_event_ids(session: Session, event_ids: Collection[str]) -> set[str]:
    """Which of these events are stored already: one query for a whole document."""
    if not event_ids:
        return set()
    return set(session.scalars(select(Event.event_id).where(Event.event_id.in_(event_ids))))


def events_page(
    session: Session,
    *,
    epc: str | None = None,
    biz_step: str | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 100,
) -> list[Event]:
    """Events in recording order (then by id), filtered.

    `after` is the (record_time, event_id) of the last event of the previous page.
    """
    query = select(Event)
    if epc is not None:
        query = query.where(Event.event_id.in_(select(EventEpc.event_id).where(EventEpc.epc == epc)))
    if biz_step is not None:
        query = query.where(Event.biz_step == biz_step)
    if event_type is not None:
        query = query.where(Event.event_type == event_type)
    if since is not None:
        query = query.where(Event.event_time >= since)
    if until is not None:
        query = query.where(Event.event_time < until)
    if after is not None:
        record_time, event_id = after
        query = query.where(
            (Event.record_time > record_time)
            | ((Event.record_time == record_time) & (Event.event_id > event_id))
        )
    return list(session.scalars(query.order_by(Event.record_time, Event.event_id).limit(limit)))


def events_naming(session: Session, epcs: Sequence[str]) -> list[Event]:
    query = select(Event).where(Event.event_id.in_(select(EventEpc.event_id).where(EventEpc.epc.in_(epcs))))
    return list(session.scalars(query.order_by(Event.event_time, Event.event_id)))


# ---------------------------------------------------------------- custody projection


def subject_state(session: Session, subject: bytes) -> SubjectState | None:
    return session.get(SubjectState, subject)


def subject_states(session: Session, subjects: Collection[bytes]) -> dict[bytes, SubjectState]:
    """The projection rows of these subjects that exist, in one query."""
    if not subjects:
        return {}
    rows = session.scalars(select(SubjectState).where(SubjectState.subject.in_(subjects)))
    return {row.subject: row for row in rows}


# ---------------------------------------------------------------- submission


def queued_records(session: Session, limit: int) -> list[ChainRecord]:
    """Queued records in capture order, up to the first one still awaiting a client's signature:
    later records may be signed over heads that one leads to, so none may overtake it."""
    first_unsigned = select(func.min(ChainRecord.id)).where(ChainRecord.status == RecordStatus.UNSIGNED)
    query = select(ChainRecord).where(ChainRecord.status == RecordStatus.QUEUED)
    blocker = session.scalar(first_unsigned)
    if blocker is not None:
        query = query.where(ChainRecord.id < blocker)
    return list(session.scalars(query.order_by(ChainRecord.id).limit(limit)))


def mark_sent(session: Session, record_ids: Sequence[int], batch_id: int) -> None:
    """The records travel in this batch: one statement, not one per record."""
    session.execute(
        update(ChainRecord)
        .where(ChainRecord.id.in_(record_ids))
        .values(batch_id=batch_id, status=RecordStatus.SENT)
        .execution_options(synchronize_session=False)
    )


def records_of_capture(session: Session, capture_id: str) -> list[ChainRecord]:
    query = select(ChainRecord).join(Event).where(Event.capture_id == capture_id).order_by(ChainRecord.id)
    return list(session.scalars(query))


def unmined_batches(session: Session) -> list[Batch]:
    query = select(Batch).where(Batch.status == BatchStatus.PREPARED).order_by(Batch.nonce)
    return list(session.scalars(query))


def highest_nonce(session: Session, sender: str) -> int | None:
    nonce: int | None = session.scalar(select(func.max(Batch.nonce)).where(Batch.sender == sender))
    return nonce


def records_of_batch(session: Session, batch_id: int) -> list[ChainRecord]:
    return list(
        session.scalars(select(ChainRecord).where(ChainRecord.batch_id == batch_id).order_by(ChainRecord.id))
    )


def fail_jobs_of(session: Session, records: Sequence[ChainRecord], reason: str, now: datetime) -> None:
    """The capture jobs these records belong to failed, with the chain's reason."""
    event_ids = {record.event_id for record in records}
    capture_ids = set(session.scalars(select(Event.capture_id).where(Event.event_id.in_(event_ids))))
    for job in session.scalars(select(CaptureJob).where(CaptureJob.id.in_(capture_ids))):
        job.status, job.finished_at = CaptureStatus.FAILED, now
        job.errors = {"reason": reason}


# ---------------------------------------------------------------- indexing


def records_for_logs(
    session: Session, logs: Collection[tuple[bytes, bytes]]
) -> dict[tuple[bytes, bytes], tuple[int, str]]:
    """The ids of the records behind logged (subject, head) pairs, with their capture job's id, in
    one query (plain rows: the indexer updates them in bulk, `confirm_records`)."""
    if not logs:
        return {}
    wanted = set(logs)
    query = (
        select(ChainRecord.id, ChainRecord.subject, ChainRecord.head, Event.capture_id)
        .join(Event, Event.event_id == ChainRecord.event_id)
        .where(ChainRecord.subject.in_({subject for subject, _ in wanted}))
    )
    return {
        (subject, head): (record_id, capture_id)
        for record_id, subject, head, capture_id in session.execute(query)
        if (subject, head) in wanted
    }


def confirm_records(session: Session, confirmations: Sequence[dict[str, Any]]) -> None:
    """Records confirmed where the chain holds them: dicts of id, block_number, log_index, tx_hash."""
    if confirmations:
        rows = [{**row, "status": RecordStatus.CONFIRMED} for row in confirmations]
        session.execute(update(ChainRecord), rows)


def records_for_roots(session: Session, roots: Collection[bytes]) -> dict[bytes, list[tuple[int, str]]]:
    """The ids of the records anchored under each of `roots` (merkle mode), with their capture
    job's id (plain rows, as `records_for_logs`)."""
    if not roots:
        return {}
    query = (
        select(ChainRecord.id, ChainRecord.anchor_root, Event.capture_id)
        .join(Event, Event.event_id == ChainRecord.event_id)
        .where(ChainRecord.anchor_root.in_(set(roots)))
    )
    found: dict[bytes, list[tuple[int, str]]] = {}
    for record_id, root, capture_id in session.execute(query):
        assert root is not None  # selected by its root
        found.setdefault(bytes(root), []).append((record_id, capture_id))
    return found


def last_indexed_block(session: Session) -> IndexedBlock | None:
    return session.scalars(select(IndexedBlock).order_by(IndexedBlock.number.desc()).limit(1)).first()


def indexed_block(session: Session, number: int) -> IndexedBlock | None:
    return session.get(IndexedBlock, number)


def forget_blocks_before(session: Session, number: int) -> None:
    session.execute(delete(IndexedBlock).where(IndexedBlock.number < number))


def forget_blocks_after(session: Session, number: int) -> list[ChainRecord]:
    """Undo indexing above block `number` (a reorganisation): those records are unconfirmed again."""
    session.execute(delete(IndexedBlock).where(IndexedBlock.number > number))
    records = list(session.scalars(select(ChainRecord).where(ChainRecord.block_number > number)))
    for record in records:
        record.status, record.block_number, record.log_index, record.tx_hash = (
            RecordStatus.SENT,
            None,
            None,
            None,
        )
    batch_ids = {record.batch_id for record in records}
    session.execute(update(Batch).where(Batch.id.in_(batch_ids)).values(status=BatchStatus.PREPARED))
    capture_ids = select(Event.capture_id).where(Event.event_id.in_({r.event_id for r in records}))
    session.execute(
        update(CaptureJob)
        .where(CaptureJob.id.in_(capture_ids))
        .values(status=CaptureStatus.PENDING, finished_at=None)
    )
    return records


def complete_jobs(session: Session, capture_ids: set[str], now: datetime) -> None:
    """Jobs whose every record is confirmed succeeded."""
    for capture_id in capture_ids:
        open_records = session.scalar(
            select(func.count())
            .select_from(ChainRecord)
            .join(Event, Event.event_id == ChainRecord.event_id)
            .where(Event.capture_id == capture_id, ChainRecord.status != RecordStatus.CONFIRMED)
        )
        job = session.get(CaptureJob, capture_id)
        if job is not None and open_records == 0 and job.status == CaptureStatus.PENDING:
            job.status, job.finished_at = CaptureStatus.SUCCEEDED, now
