"""Big documents: a JSON body over TRACECHAIN_CAPTURE_STREAM_FROM_BYTES is spooled to disk and
captured a chunk of events at a time, after the answer; its job is `capturing`, with progress,
until every event is stored, and a refused document stores nothing of itself. An XML body is
streamed too: test_capture_streamed_xml.py."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tracechain.api.app import create_app
from tracechain.capture import (
    CHUNK_EVENTS,
    ErrorBehaviour,
    capture_in_chunks,
    open_streamed_job,
    stored_content,
)
from tracechain.chain.connect import Chain
from tracechain.demo.big_document import EVENTS_PER_CASE, factory_events, write_document
from tracechain.epcis.stream import event_chunks, read_outline
from tracechain.store.models import CaptureJob, CaptureStatus, ChainRecord, Event, MasterData, SubjectState
from tracechain.trace import build_trace

from ..conftest import temporary_database
from .conftest import Api, service_settings
from .test_capture import commissioning

START = datetime(2026, 1, 5, 8, tzinfo=UTC)
STREAMED_FROM = 100_000
"""Bytes: the tests' documents (a few MB) are streamed, in several chunks."""
MASTER_DATA = {
    "vocabularyList": [
        {
            "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
            "vocabularyElementList": [
                {
                    "id": "urn:epc:id:sgln:6901234.00001.0",
                    "attributes": [{"id": "urn:epcglobal:cbv:mda#name", "attribute": "Longhua factory"}],
                }
            ],
        }
    ]
}


@contextlib.contextmanager
def _service(tmp_path: Path, chain: Chain, database: str, streamed_from: int) -> Iterator[Api]:
    with contextlib.ExitStack() as stack:
        overrides: dict[str, Any] = {"capture_stream_from_bytes": streamed_from}
        if database == "postgresql":
            overrides["database_url"] = stack.enter_context(temporary_database())
        settings = service_settings(tmp_path, **overrides)
        app = create_app(settings, chain=chain, run_workers=False)
        client = stack.enter_context(TestClient(app))
        yield Api(client)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def streaming(tmp_path: Path, tester_chain: Chain, database: str) -> Iterator[Api]:
    with _service(tmp_path / "streaming", tester_chain, database, STREAMED_FROM) as api:
        yield api


def _maker(api: Api) -> dict[str, Any]:
    maker = api.create_participant("Shenzhen Bright", ["manufacturer"], "urn:epc:id:pgln:6901234.00000", "CN")
    api.settle()
    return maker


def _body(events: list[dict[str, Any]], header_last: bool = False) -> bytes:
    out = io.BytesIO()
    write_document(out, events, header_last=header_last, master_data=MASTER_DATA)
    return out.getvalue()


def _post(api: Api, maker: dict[str, Any], body: bytes, behaviour: str | None = None) -> Any:
    headers = {**api.as_participant(maker), "Content-Type": "application/json"}
    if behaviour:
        headers["GS1-Capture-Error-Behaviour"] = behaviour
    return api.client.post("/capture", content=body, headers=headers)


def _captured(api: Api, maker: dict[str, Any], location: str) -> dict[str, Any]:
    """The job once it no longer reads its document (polled, with a deadline)."""
    deadline = time.monotonic() + 120
    while True:
        job: dict[str, Any] = api.client.get(location, headers=api.as_participant(maker)).json()
        if job["status"] != CaptureStatus.CAPTURING:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def _stored(api: Api) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """The events (hash id, body, context) and chain records (what each says, the random
    commitment aside) in the order they were stored, and how many projection rows."""
    with api.services.sessions() as session:
        events = session.execute(select(Event.event_id, Event.body, Event.context).order_by(Event.id)).all()
        records = session.execute(
            select(ChainRecord.subject, ChainRecord.kind, ChainRecord.ref, ChainRecord.time).order_by(
                ChainRecord.id
            )
        ).all()
        subjects = session.scalar(select(func.count()).select_from(SubjectState)) or 0
    return [tuple(row) for row in events], [tuple(row) for row in records], subjects


def test_a_streamed_document_stores_the_same_events_and_ids_as_one_read_whole(
    streaming: Api, tmp_path: Path, tester_chain: Chain, database: str
) -> None:
    events = list(factory_events(2 * CHUNK_EVENTS + 37, lot=1, start=START))
    body = _body(events, header_last=True)  # the context after the events: read before hashing them
    assert len(body) > 2_000_000
    maker = _maker(streaming)

    response = _post(streaming, maker, body)
    assert response.status_code == 202, response.text
    answered = response.json()
    assert answered["status"] == "capturing" and answered["running"] is True
    assert answered["eventsTotal"] == len(events)
    job = _captured(streaming, maker, response.headers["Location"])
    assert job["status"] == "pending" and job["eventCount"] == len(events), job
    assert "eventsAccepted" not in job or job["eventsAccepted"] is None
    streaming.settle()
    job = streaming.client.get(response.headers["Location"], headers=streaming.as_participant(maker)).json()
    assert job["success"] is True, job

    with _service(tmp_path / "whole", tester_chain, database, len(body) + 1) as whole:
        whole_maker = _maker(whole)
        read_whole = _post(whole, whole_maker, _body(events))
        assert read_whole.status_code == 202, read_whole.text
        assert read_whole.json()["status"] == "pending"
        expected = _stored(whole)
    assert _stored(streaming) == expected
    assert len(expected[0]) == len(events)
    with streaming.services.sessions() as session:
        (location,) = session.scalars(select(MasterData)).all()
    assert location.attributes == MASTER_DATA["vocabularyList"][0]["vocabularyElementList"][0]["attributes"]


def test_an_invalid_event_late_in_a_streamed_document_stores_nothing_and_names_it(streaming: Api) -> None:
    events = list(factory_events(3 * CHUNK_EVENTS, lot=2, start=START))
    late = 3 * CHUNK_EVENTS - 20
    events[late]["eventTime"] = "yesterday"
    maker = _maker(streaming)
    before = _stored(streaming)

    response = _post(streaming, maker, _body(events))
    assert response.status_code == 202, response.text
    job = _captured(streaming, maker, response.headers["Location"])

    assert job["status"] == "failed" and job["success"] is False and job["running"] is False
    (error,) = job["errors"]
    assert error["status"] == 400
    assert any(item["location"].startswith(f"epcisBody.eventList[{late}]") for item in error["errors"]), error
    assert _stored(streaming) == before  # the chunks before it were written, and rolled back


def test_a_custody_violation_late_in_a_streamed_document_stores_nothing_and_names_it(streaming: Api) -> None:
    events = list(factory_events(2 * CHUNK_EVENTS + 10, lot=3, start=START))
    again = dict(events[0], eventTime="2026-01-06T08:00:00.000+00:00")  # commissions the first case again
    events.append(again)
    maker = _maker(streaming)
    before = _stored(streaming)

    job = _captured(streaming, maker, _post(streaming, maker, _body(events)).headers["Location"])

    assert job["status"] == "failed", job
    (error,) = job["errors"]
    assert [item["location"] for item in error["errors"]] == [f"epcisBody.eventList[{len(events) - 1}]"] * 4
    assert _stored(streaming) == before


def test_proceed_captures_a_streamed_document_but_the_event_it_names(streaming: Api) -> None:
    events = list(factory_events(2 * CHUNK_EVENTS, lot=4, start=START))
    late = 2 * CHUNK_EVENTS - 1  # a sensor reading: nothing depends on it
    del events[late]["eventTime"]
    maker = _maker(streaming)

    response = _post(streaming, maker, _body(events), "proceed")
    job = _captured(streaming, maker, response.headers["Location"])

    assert job["status"] == "pending" and job["eventCount"] == len(events) - 1, job
    (error,) = job["errors"]
    assert error["events"] and all(
        item["location"].startswith(f"epcisBody.eventList[{late}]") for item in error["events"]
    ), error
    assert len(_stored(streaming)[0]) == len(events) - 1


def test_a_streamed_document_over_the_event_limit_is_refused_before_its_job_starts(
    tmp_path: Path, tester_chain: Chain
) -> None:
    with _service(tmp_path, tester_chain, "sqlite", STREAMED_FROM) as api:
        api.services.settings.capture_max_events = CHUNK_EVENTS
        maker = _maker(api)
        response = _post(api, maker, _body(list(factory_events(CHUNK_EVENTS + 1, lot=5, start=START))))
        assert response.status_code == 413, response.text
        assert "TRACECHAIN_CAPTURE_MAX_EVENTS" in response.json()["detail"]
        with api.services.sessions() as session:
            assert session.scalar(select(func.count()).select_from(CaptureJob)) == 0


def test_a_capture_cut_off_by_a_restart_fails_its_job_when_the_service_starts_again(
    tmp_path: Path, tester_chain: Chain, database: str
) -> None:
    with contextlib.ExitStack() as stack:
        overrides: dict[str, Any] = {}
        if database == "postgresql":
            overrides["database_url"] = stack.enter_context(temporary_database())
        settings = service_settings(tmp_path, **overrides)
        with TestClient(create_app(settings, chain=tester_chain, run_workers=False)) as client:
            api = Api(client)
            maker = _maker(api)
            with api.services.sessions() as session, session.begin():
                participant = session.get(_participant_model(), maker["id"])
                job_id = open_streamed_job(session, participant, ErrorBehaviour.ROLLBACK).id
        # The process died here: its capture's transaction with it. A new one starts.
        with TestClient(create_app(settings, chain=tester_chain, run_workers=False)) as client:
            job = client.get(f"/capture/{job_id}", headers=Api(client).as_participant(maker)).json()
        assert job["status"] == "failed" and job["running"] is False
        assert "send it again" in job["errors"][0]["reason"]


def _participant_model() -> Any:
    from tracechain.store.models import Participant

    return Participant


def test_a_streamed_capture_holds_one_chunk_of_events_at_a_time(streaming: Api, tmp_path: Path) -> None:
    """Memory bounded whatever the document's size, as a structure: when the capture asks for the
    next chunk, no chunk before the one it just stored is still referenced."""
    maker = _maker(streaming)
    path = tmp_path / "document.json"
    with path.open("wb") as out:
        write_document(out, factory_events(4 * CHUNK_EVENTS, lot=6, start=START))

    class Chunk(list[Any]):
        """A list that can be referenced weakly."""

    alive: list[weakref.ref[Chunk]] = []
    most_held = 0

    def watched(chunks: Iterator[list[Any]]) -> Iterator[list[Any]]:
        nonlocal most_held
        for events in chunks:
            gc.collect()
            most_held = max(most_held, sum(ref() is not None for ref in alive))
            chunk = Chunk(events)
            del events
            alive.append(weakref.ref(chunk))
            yield chunk
            del chunk

    captured, _ = _streamed(streaming.services, maker["id"], path, watched)
    assert captured.new_events == 4 * CHUNK_EVENTS
    assert len(alive) == 4
    assert most_held <= 1


def test_the_outline_reads_a_header_after_the_events_and_counts_them() -> None:
    events = list(factory_events(25, lot=7, start=START))
    for header_last in (False, True):
        outline = read_outline(io.BytesIO(_body(events, header_last)), 64)
        assert outline.event_count == 25
        assert outline.shell["epcisBody"] == {"eventList": []}
        assert outline.shell["epcisHeader"] == {"epcisMasterData": MASTER_DATA}
        assert outline.shell["@context"][0].startswith("https://ref.gs1.org/standards/epcis/")
        chunks = list(event_chunks(io.BytesIO(_body(events, header_last)), 10))
        assert [len(chunk) for chunk in chunks] == [10, 10, 5]
        assert [event for chunk in chunks for event in chunk] == json.loads(json.dumps(events))


def test_every_record_of_a_streamed_document_is_stamped_as_a_whole_capture_stamps_it(streaming: Api) -> None:
    """The streamed path writes each record's verification stamp as `capture_document` does: it
    holds for the row as stored, and a trace of a product from a later chunk relies on it."""
    events = list(factory_events(CHUNK_EVENTS + 24, lot=8, start=START))
    maker = _maker(streaming)
    job = _captured(streaming, maker, _post(streaming, maker, _body(events)).headers["Location"])
    assert job["status"] == "pending", job
    streaming.settle()

    services = streaming.services
    stamps = services.stamps
    with services.sessions() as session:
        records = session.scalars(select(ChainRecord).order_by(ChainRecord.id)).all()
        assert records
        for record in records:
            content = stored_content(stamps, record.event)
            assert stamps.holds(content, record.signed_event(), record.head, record.verification_stamp)
        late_case = CHUNK_EVENTS // EVENTS_PER_CASE + 1  # its events are in the second chunk
        trace = build_trace(
            session, f"urn:epc:id:sgtin:6901234.067890.8c{late_case}i0", services.registry.domain, stamps
        )
    assert trace.entries and all(entry.check.stamped and not entry.check.problems for entry in trace.entries)
    assert trace.verdict == "verified"


def test_small_captures_wait_for_a_streamed_document_then_commit(streaming: Api, tmp_path: Path) -> None:
    """A streamed capture holds the capture lock the group commit's transactions take: a small
    document sent meanwhile is neither a savepoint of its transaction nor run beside it; it is
    answered once the streamed document committed, and both are stored."""
    maker = _maker(streaming)
    path = tmp_path / "document.json"
    with path.open("wb") as out:
        write_document(out, factory_events(2 * CHUNK_EVENTS, lot=9, start=START))
    small: list[Any] = []
    sender = threading.Thread(
        target=lambda: small.append(
            streaming.capture(maker, [commissioning("urn:epc:id:sgtin:6901234.067890.9999")])
        )
    )

    def with_a_small_capture_sent(chunks: Iterator[list[Any]]) -> Iterator[list[Any]]:
        for number, events in enumerate(chunks):
            yield events
            if number == 0:  # mid-document, its first chunk written in its open transaction
                sender.start()
                time.sleep(1.0)
                assert sender.is_alive() and not small  # waiting for the capture lock

    services = streaming.services

    def before_commit() -> None:
        assert not small

    captured, job_id = _streamed(services, maker["id"], path, with_a_small_capture_sent, before_commit)
    sender.join(60)
    (answer,) = small
    assert answer.status_code == 202 and answer.json()["status"] == "pending", answer.text
    assert captured.new_events == 2 * CHUNK_EVENTS
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 2 * CHUNK_EVENTS + 1
        streamed_job = session.get(CaptureJob, job_id)
        assert streamed_job is not None and streamed_job.status == CaptureStatus.PENDING


def _streamed(
    services: Any,
    maker_id: str,
    path: Path,
    through: Callable[[Iterator[list[Any]]], Iterator[list[Any]]],
    before_commit: Callable[[], None] = lambda: None,
) -> tuple[Any, str]:
    """The document at `path` captured streamed as the maker, its chunks passed `through` a
    generator of the test's; (what capture_in_chunks answered, the job's id)."""
    with path.open("rb") as file:
        outline = read_outline(file, 64)
        with services.sessions() as session, session.begin():
            participant = session.get(_participant_model(), maker_id)
            job_id = open_streamed_job(session, participant, ErrorBehaviour.ROLLBACK).id
        with services.capturing() as session:
            participant = session.get(_participant_model(), maker_id)
            captured = capture_in_chunks(
                session,
                participant,
                job_id,
                outline.shell,
                through(event_chunks(file, CHUNK_EVENTS)),
                ErrorBehaviour.ROLLBACK,
                services.vault,
                services.registry.domain,
                services.capture_limits,
            )
            before_commit()
    return captured, job_id
