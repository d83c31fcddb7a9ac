"""Every query the service makes, by purpose. Callers pass a session and get models or values."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, bindparam, case, cast, delete, func, literal, select, update
from sqlalchemy.orm import Session

from tracechain.chain.trace_event import Kind, SignedEvent
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
    signed_event_of,
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


# ---------------------------------------------------------------- traces


@dataclass(frozen=True, slots=True)
class RecordRow:
    """A chain record as a trace reads it: plain values, not an ORM object (a trace reads dozens)."""

    id: int
    event_id: str
    subject: bytes
    subject_epc: str
    kind: int
    event_hash: bytes
    counterpart: str
    ref: bytes
    time: int
    prev_head: bytes
    head: bytes
    signer: str
    r: bytes | None
    vs: bytes | None
    status: str
    block_number: int | None
    log_index: int | None
    tx_hash: str | None
    anchor_root: bytes | None
    merkle_proof: list[str] | None

    def signed_event(self) -> SignedEvent:
        """What the signer signed and record() carries; only for a record that has its signature."""
        return signed_event_of(self)


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event as a trace reads it, with the identifiers it names and its chain records."""

    event_id: str
    event_type: str
    biz_step: str | None
    event_time: datetime
    signer: str
    stored_body: str
    stored_context: str | None
    """The body and context exactly as stored: what the content checks are memoised by."""
    body: dict[str, Any]
    context: Any
    epcs: tuple[str, ...]
    records: tuple[RecordRow, ...]


# Plain columns: these statements run on every trace, so they skip the ORM's per-row work.
_event, _named, _record = Event.__table__.c, EventEpc.__table__.c, ChainRecord.__table__.c


def _trace_closure_query() -> Select[str]:
    """Identifiers reached from :epc within :depth levels (see `trace_closure`)."""
    named, parent = EventEpc.__table__.alias("named"), EventEpc.__table__.alias("parent")
    start = select(bindparam("epc", type_=_named.epc.type).label("epc"), literal(0).label("depth"))
    related = start.cte("related", recursive=True)
    step = (
        select(
            case((_record.kind == Kind.AGGREGATE, parent.c.epc), else_=_record.subject_epc),
            related.c.depth + 1,
        )
        .select_from(related)
        .join(named, named.c.epc == related.c.epc)
        .join(
            ChainRecord.__table__,
            (_record.event_id == named.c.event_id)
            & (
                ((_record.kind == Kind.AGGREGATE) & (_record.subject_epc == related.c.epc))
                | ((_record.kind == Kind.CONSUME) & (named.c.role == "output"))
            ),
        )
        .outerjoin(parent, (parent.c.event_id == _record.event_id) & (parent.c.role == "parent"))
        .where(related.c.depth < bindparam("depth"))
    )
    related = related.union(step)
    return select(related.c.epc).where(related.c.epc.is_not(None)).distinct()


# Built once: building a statement costs more than running it.
_TRACE_CLOSURE = _trace_closure_query()
_NAMING = select(_named.event_id).where(_named.epc.in_(bindparam("epcs", expanding=True)))
_IDENTIFIERS_OF_NAMING = select(_named.event_id, _named.epc).where(_named.event_id.in_(_NAMING))
_RECORDS_OF_NAMING = (
    select(*(_record[field.name] for field in fields(RecordRow)))
    .where(_record.event_id.in_(_NAMING))
    .order_by(_record.id)
)
_EVENTS_NAMING = (
    select(
        _event.event_id,
        _event.event_type,
        _event.biz_step,
        _event.event_time,
        _event.signer,
        cast(_event.body, Text),  # as stored, for the content checks' memo
        cast(_event.context, Text),
    )
    .where(_event.event_id.in_(_NAMING))
    .order_by(_event.event_time, _event.event_id)
)


def trace_closure(session: Session, epc: str, depth: int) -> list[str]:
    """`epc` and every identifier its trace reaches within `depth` levels, in one recursive query:
    the units it was packed in (the parent of an aggregation recorded for it), its ingredients (the
    inputs consumed by a transformation naming it as an output), and theirs in turn."""
    rows = session.connection().execute(_TRACE_CLOSURE, {"epc": epc, "depth": depth})
    return list(rows.scalars())


def event_rows_naming(session: Session, epcs: Collection[str]) -> list[EventRow]:
    """Every event naming any of `epcs`, with its identifiers and records, ordered by event time
    (then id): three plain queries, whatever the number of events."""
    if not epcs:
        return []
    connection, naming = session.connection(), {"epcs": list(epcs)}
    identifiers: dict[str, list[str]] = {}
    for event_id, identifier in connection.execute(_IDENTIFIERS_OF_NAMING, naming):
        identifiers.setdefault(event_id, []).append(identifier)
    records: dict[str, list[RecordRow]] = {}
    for row in connection.execute(_RECORDS_OF_NAMING, naming):
        records.setdefault(row.event_id, []).append(RecordRow(*row))
    return [
        EventRow(
            event_id,
            event_type,
            biz_step,
            event_time,
            signer,
            body,
            context,
            json.loads(body),
            None if context is None else json.loads(context),
            tuple(identifiers.get(event_id, ())),
            tuple(records.get(event_id, ())),
        )
        for event_id, event_type, biz_step, event_time, signer, body, context in connection.execute(
            _EVENTS_NAMING, naming
        )
    ]


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
