"""Synthetic read-model rows for the benchmark (`make bench`): other products' histories, written
by PostgreSQL itself so that a million events take seconds rather than the hours capture would.

The rows have the shape capture writes: an EPCIS ObjectEvent body with its context, the identifiers
it names, one confirmed chain record per event with a head chain per subject, and each subject's
custody projection. Each synthetic product has five events (commissioned, shipped, received,
inspected, sold), so identifiers repeat across events as they do in real data. Hash ids, disclosure
seeds, recorded event hashes, heads and signatures are SHA-256 stand-ins: nobody traces these
products, they only make the tables large.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select, text

from tracechain.store.models import CaptureJob, CaptureStatus, Event, Participant

EVENTS_PER_PRODUCT = 5
_STEPS = "ARRAY['commissioning','shipping','receiving','inspecting','retail_selling']"
_DISPOSITIONS = "ARRAY['active','in_transit','in_progress','conformant','retail_sold']"

# g numbers the synthetic events from 0; product g / 5, step g % 5.
_EPC = "'urn:epc:id:sgtin:6901234.067891.' || (g / 5)"
_EVENT_ID = (
    "'ni:///sha-256;' || encode(sha256(convert_to('synthetic-' || g, 'UTF8')), 'hex') || '?ver=CBV2.0'"
)
_HEAD = "sha256(convert_to({epc} || '#' || ({g}), 'UTF8'))"
_ROW = "(CAST(:first_row AS bigint) + g - CAST(:first AS bigint))"  # the event's key, reserved in one go

_INSERT_EVENTS = f"""
INSERT INTO events (id, event_id, declaration, capture_id, event_type, biz_step, disposition, event_time,
                    record_time, body, context, signer, disclosure_seed)
SELECT {_ROW}, {_EVENT_ID}, false, :capture_id, 'ObjectEvent',
       ({_STEPS})[g % 5 + 1], ({_DISPOSITIONS})[g % 5 + 1],
       timestamptz '2025-01-01 00:00:00+00' + g * interval '7 seconds', now(),
       json_build_object(
           'type', 'ObjectEvent',
           'eventTime', to_char(timestamptz '2025-01-01 00:00:00+00' + g * interval '7 seconds',
                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'eventTimeZoneOffset', '+08:00',
           'epcList', json_build_array({_EPC}),
           'action', CASE WHEN g % 5 = 0 THEN 'ADD' ELSE 'OBSERVE' END,
           'bizStep', ({_STEPS})[g % 5 + 1],
           'disposition', ({_DISPOSITIONS})[g % 5 + 1],
           'readPoint', json_build_object('id', 'urn:epc:id:sgln:6901234.00001.0'),
           'bizLocation', json_build_object('id', 'urn:epc:id:sgln:6901234.00001.0')),
       '["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]'::json,
       :signer, sha256(convert_to('seed-' || g, 'UTF8'))
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
"""

_INSERT_EPCS = f"""
INSERT INTO event_epcs (event_row_id, epc, role)
SELECT {_ROW}, {_EPC}, 'epc' FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
"""

_INSERT_RECORDS = f"""
INSERT INTO chain_records (event_row_id, subject, subject_epc, chain, kind, event_hash, counterpart, ref,
                           time, prev_head, head, signer, r, vs, status, block_number, log_index, tx_hash)
SELECT {_ROW}, sha256(convert_to({_EPC}, 'UTF8')), {_EPC}, sha256(convert_to({_EPC}, 'UTF8')),
       (ARRAY[1, 4, 5, 6, 7])[g % 5 + 1],
       sha256(convert_to('synthetic-' || g, 'UTF8')),
       '0x0000000000000000000000000000000000000000', decode(repeat('00', 32), 'hex'),
       1735689600 + g * 7,
       CASE WHEN g % 5 = 0 THEN decode(repeat('00', 32), 'hex') ELSE {_HEAD.format(epc=_EPC, g="g - 1")} END,
       {_HEAD.format(epc=_EPC, g="g")},
       :signer,
       sha256(convert_to('r' || g, 'UTF8')), sha256(convert_to('vs' || g, 'UTF8')),
       'confirmed', 1000000 + g / 200, g % 200,
       '0x' || encode(sha256(convert_to('tx' || (g / 200), 'UTF8')), 'hex')
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
"""

_INSERT_SUBJECTS = f"""
INSERT INTO subject_states (subject, epc, head, unit)
SELECT sha256(convert_to({_EPC}, 'UTF8')), {_EPC}, {_HEAD.format(epc=_EPC, g="g + 4")},
       json_build_object('manufacturer', CAST(:signer AS text), 'status', 2, 'recalled', false,
                         'cleared', true, 'excursions', 0, 'height', 0, 'packed_unit', false,
                         'custodian', NULL,
                         'pending_receiver', '0x0000000000000000000000000000000000000000',
                         'parent', repeat('00', 32))
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
WHERE g % 5 = 0
"""


def event_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Event)) or 0)


def add_synthetic_events(engine: Engine, first: int, last: int, signer: Participant) -> None:
    """Synthetic events numbered first..last (inclusive; start at a multiple of 5 so each product
    is whole), recorded by `signer`, in one transaction. PostgreSQL only."""
    assert engine.dialect.name == "postgresql", "synthetic rows are generated by PostgreSQL"
    now = datetime.now(UTC)
    with engine.begin() as connection:
        capture_id = str(uuid.uuid4())
        connection.execute(
            insert(CaptureJob).values(
                id=capture_id,
                participant_id=signer.id,
                status=CaptureStatus.SUCCEEDED,
                created_at=now,
                finished_at=now,
                event_count=last - first + 1,
            )
        )
        sequence = "pg_get_serial_sequence('events', 'id')"
        first_row = int(connection.scalar(text(f"SELECT nextval({sequence})")) or 0)
        connection.execute(text(f"SELECT setval({sequence}, :top)"), {"top": first_row + last - first})
        values = {
            "first": first,
            "last": last,
            "first_row": first_row,
            "capture_id": capture_id,
            "signer": signer.address,
        }
        for statement in (_INSERT_EVENTS, _INSERT_EPCS, _INSERT_RECORDS, _INSERT_SUBJECTS):
            connection.execute(text(statement), values)


_FILLED_TABLES = ["events", "event_epcs", "chain_records", "subject_states"]
_KEPT_INDEXES = {"ix_chain_records_status"}
"""The workers poll by it while the rows are written: without it each round would scan the table."""

_CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE contype IN ('u', 'f') AND conrelid::regclass::text = ANY(:tables)
"""
_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = ANY(:tables)
  AND indexname NOT IN (SELECT conname FROM pg_constraint) AND NOT indexname = ANY(:kept)
"""


@contextmanager
def indexes_set_aside(engine: Engine) -> Iterator[None]:
    """The filled tables' secondary indexes, unique and foreign key constraints dropped for a big
    fill and made again after it, each in one sorted pass: inserting millions of hash-like keys one
    by one into each index (and checking each foreign key per row) is most of a fill's time.
    Nothing but the fill may write these tables meanwhile. PostgreSQL only."""
    assert engine.dialect.name == "postgresql", "synthetic rows are generated by PostgreSQL"
    tables = {"tables": _FILLED_TABLES, "kept": sorted(_KEPT_INDEXES)}
    with engine.begin() as connection:
        constraints = connection.execute(text(_CONSTRAINTS), tables).all()
        indexes = connection.execute(text(_INDEXES), tables).all()
        # Foreign keys first: a unique constraint may be what one refers to.
        for table, name, _ in sorted(constraints, key=lambda c: not c[2].startswith("FOREIGN")):
            connection.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        for name, _ in indexes:
            connection.execute(text(f'DROP INDEX "{name}"'))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for _, definition in indexes:
                connection.execute(text(definition))
            for table, name, definition in sorted(constraints, key=lambda c: c[2].startswith("FOREIGN")):
                connection.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))


def vacuum(engine: Engine) -> None:
    """VACUUM ANALYZE after a fill, as autovacuum would soon do on its own: measured requests
    should not share the machine with it, nor be planned on statistics of the empty tables."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
