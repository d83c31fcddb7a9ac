"""store.bulk.insert_rows writes what an INSERT would, on SQLite (executemany) and PostgreSQL (COPY):
the same values read back, defaults filled in, keys in the order given, duplicates refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tracechain.store.bulk import allocate_ids, insert_rows
from tracechain.store.db import make_engine, migrate, session_factory, transaction
from tracechain.store.models import Batch, BatchStatus, CaptureJob, CaptureStatus, Event, Participant

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url)
    migrate(engine)
    with transaction(session_factory(engine)) as session:
        session.add(
            Participant(
                id="p1", name="Maker", roles=["manufacturer"], party_id=None, country="CN",
                address="0x" + "11" * 20, encrypted_key=None, created_at=NOW,
            )
        )  # fmt: skip
    yield session_factory(engine)
    engine.dispose()


def job(job_id: str, **values: object) -> dict[str, object]:
    row = {"id": job_id, "participant_id": "p1", "created_at": NOW, "finished_at": None, "event_count": 3}
    return {**row, **values}


def test_values_read_back_as_written_with_defaults_filled_in(sessions: sessionmaker[Session]) -> None:
    errors = {"reason": "TraceRegistryInvalidSignature()", "records": [1, 2], "nested": {"ok": False}}
    with transaction(sessions) as session:
        insert_rows(session, CaptureJob, [job("a", errors=errors, status=CaptureStatus.FAILED)])
        insert_rows(session, CaptureJob, [job("b", errors=None)])
    with sessions() as session:
        a, b = session.scalars(select(CaptureJob).order_by(CaptureJob.id))
        assert (a.status, a.errors, a.event_count, a.created_at.timestamp()) == (
            "failed",  # a StrEnum is written as its value
            errors,  # JSON, nested, read back equal
            3,
            NOW.timestamp(),
        )
        assert b.status == "pending"  # left out: the column's default, as an INSERT gives it
        assert b.errors is None


def test_autoincrement_keys_follow_the_order_of_the_rows(sessions: sessionmaker[Session]) -> None:
    sender = "0x" + "22" * 20
    rows = [
        {
            "nonce": n,
            "sender": sender,
            "tx_hash": f"0x{n:064x}",
            "raw_tx": bytes([n]) * 40,
            "call": {"to": sender, "data": "0x", "value": 0, "gas": 21_000},
            "created_at": NOW,
        }
        for n in (7, 3, 9, 1)
    ]
    with transaction(sessions) as session:
        insert_rows(session, Batch, rows)
    with sessions() as session:
        stored = session.scalars(select(Batch).order_by(Batch.id)).all()
        assert [b.nonce for b in stored] == [7, 3, 9, 1]
        assert [b.raw_tx for b in stored] == [bytes([n]) * 40 for n in (7, 3, 9, 1)]
        assert {b.status for b in stored} == {BatchStatus.PREPARED}


def test_a_duplicate_key_is_an_integrity_error_and_nothing_of_the_transaction_is_kept(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        insert_rows(session, CaptureJob, [job("a")])
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        insert_rows(session, CaptureJob, [job("b")])
        insert_rows(session, CaptureJob, [job("c"), job("a")])
    with sessions() as session:
        assert session.scalars(select(CaptureJob.id)).all() == ["a"]


def test_no_rows_writes_nothing(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        insert_rows(session, CaptureJob, [])
    with sessions() as session:
        assert session.scalars(select(CaptureJob.id)).all() == []


def test_allocated_keys_are_free_ascending_and_the_key_counts_on_after_them(
    sessions: sessionmaker[Session],
) -> None:
    """Capture links identifiers and records to events written by COPY, which hands no keys back:
    keys taken up front must be ones the table then accepts, and an INSERT after them must not
    reuse them."""
    with transaction(sessions) as session:
        insert_rows(session, CaptureJob, [job("a")])
        first = allocate_ids(session, Event, 3)
        insert_rows(session, Event, [event(key, "a") for key in first])
    with transaction(sessions) as session:
        second = allocate_ids(session, Event, 2)
        insert_rows(session, Event, [event(key, "a") for key in second])
        session.add(Event(**{k: v for k, v in event(None, "a").items() if k != "id"}))
    with sessions() as session:
        keys = session.scalars(select(Event.id).order_by(Event.id)).all()
    assert first == sorted(first) and len(set(first + second)) == 5 and max(first) < min(second)
    assert len(keys) == 6 and keys[:5] == first + second and keys[5] > max(second)


def event(key: int | None, capture: str) -> dict[str, object]:
    return {
        "id": key,
        "event_id": f"ni:///sha-256;{key or 0:064x}?ver=CBV2.0",
        "declaration": False,
        "capture_id": capture,
        "event_type": "ObjectEvent",
        "event_time": NOW,
        "record_time": NOW,
        "body": {"type": "ObjectEvent"},
        "context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "signer": "0x" + "33" * 20,
        "disclosure_seed": bytes(32),
    }
