"""Big XML documents: an XML body over TRACECHAIN_CAPTURE_STREAM_FROM_BYTES is spooled to disk,
read once for its outline (the XSD, the prefixes its events are bound to, how many there are),
answered `capturing`, and captured a chunk of events at a time, as a big JSON one is; it stores
what the same document read whole stores, and one the first pass refuses is refused as a whole
one is, naming the line, before a job exists."""

from __future__ import annotations

import gc
import io
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tracechain.capture import CHUNK_EVENTS, ErrorBehaviour, capture_in_chunks, open_streamed_job
from tracechain.chain.connect import Chain
from tracechain.demo.big_document import CONTEXT, factory_events
from tracechain.epcis.xml import capture_document_xml, read_xml_outline, xml_event_chunks
from tracechain.store.models import CaptureJob, Participant

from .conftest import Api
from .test_capture_streamed import START, STREAMED_FROM, _captured, _maker, _service, _stored


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def streaming(tmp_path: Path, tester_chain: Chain, database: str) -> Iterator[Api]:
    with _service(tmp_path / "streaming", tester_chain, database, STREAMED_FROM) as api:
        yield api


def _xml(events: list[dict[str, Any]]) -> bytes:
    return capture_document_xml(
        {
            "@context": CONTEXT,
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-01-05T08:00:00Z",
            "epcisBody": {"eventList": events},
        }
    )


def _post(api: Api, maker: dict[str, Any], body: bytes) -> Any:
    headers = {**api.as_participant(maker), "Content-Type": "application/xml"}
    return api.client.post("/capture", content=body, headers=headers)


def test_a_streamed_xml_document_stores_the_same_events_and_ids_as_one_read_whole(
    streaming: Api, tmp_path: Path, tester_chain: Chain, database: str
) -> None:
    events = list(factory_events(2 * CHUNK_EVENTS + 37, lot=11, start=START))
    body = _xml(events)
    assert len(body) > 20 * STREAMED_FROM
    maker = _maker(streaming)

    response = _post(streaming, maker, body)
    assert response.status_code == 202, response.text
    answered = response.json()
    assert answered["status"] == "capturing" and answered["running"] is True
    assert answered["eventsTotal"] == len(events)
    job = _captured(streaming, maker, response.headers["Location"])
    assert job["status"] == "pending" and job["eventCount"] == len(events), job
    streaming.settle()
    job = streaming.client.get(response.headers["Location"], headers=streaming.as_participant(maker)).json()
    assert job["success"] is True, job

    with _service(tmp_path / "whole", tester_chain, database, len(body) + 1) as whole:
        whole_maker = _maker(whole)
        read_whole = _post(whole, whole_maker, body)
        assert read_whole.status_code == 202, read_whole.text
        assert read_whole.json()["status"] == "pending"
        expected = _stored(whole)
    assert _stored(streaming) == expected
    assert len(expected[0]) == len(events)


def test_an_invalid_event_late_in_a_streamed_xml_document_is_refused_naming_its_line(streaming: Api) -> None:
    events = list(factory_events(2 * CHUNK_EVENTS, lot=12, start=START))
    body = _xml(events)
    late = body.rindex(b"<action>ADD</action>")
    body = body[:late] + b"<action>MOVE</action>" + body[late + len(b"<action>ADD</action>") :]
    line = body[:late].count(b"\n") + 1
    maker = _maker(streaming)
    before = _stored(streaming)

    response = _post(streaming, maker, body)

    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["title"] == "Invalid EPCIS XML"
    (error,) = problem["errors"]
    assert error["location"] == f"line {line}" and "'MOVE'" in error["reason"], error
    with streaming.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CaptureJob)) == 0
    assert _stored(streaming) == before


def test_a_streamed_xml_document_over_the_event_limit_is_refused_before_its_job_starts(
    tmp_path: Path, tester_chain: Chain
) -> None:
    with _service(tmp_path, tester_chain, "sqlite", STREAMED_FROM) as api:
        api.services.settings.capture_max_events = CHUNK_EVENTS
        maker = _maker(api)
        response = _post(api, maker, _xml(list(factory_events(CHUNK_EVENTS + 1, lot=13, start=START))))
        assert response.status_code == 413, response.text
        assert "TRACECHAIN_CAPTURE_MAX_EVENTS" in response.json()["detail"]
        with api.services.sessions() as session:
            assert session.scalar(select(func.count()).select_from(CaptureJob)) == 0


def test_an_xml_body_over_the_size_limit_is_still_refused(tmp_path: Path, tester_chain: Chain) -> None:
    with _service(tmp_path, tester_chain, "sqlite", STREAMED_FROM) as api:
        api.services.settings.capture_max_bytes = 2 * STREAMED_FROM
        maker = _maker(api)
        body = _xml(list(factory_events(200, lot=14, start=START)))
        assert len(body) > 2 * STREAMED_FROM
        response = _post(api, maker, body)
        assert response.status_code == 413, response.text
        assert "TRACECHAIN_CAPTURE_MAX_BYTES" in response.json()["detail"]


def test_a_streamed_xml_capture_holds_one_chunk_of_events_at_a_time(streaming: Api) -> None:
    """Memory bounded whatever the document's size, as a structure: the events come a chunk at a
    time, and when the capture asks for the next chunk, no chunk before the one it just stored is
    still referenced (the XML reader holds no more: tests/epcis/test_xml.py)."""
    maker = _maker(streaming)
    file = io.BytesIO(_xml(list(factory_events(3 * CHUNK_EVENTS + 5, lot=15, start=START))))
    outline = read_xml_outline(file)

    class Chunk(list[Any]):
        """A list that can be referenced weakly."""

    alive: list[weakref.ref[Chunk]] = []
    sizes: list[int] = []
    most_held = 0

    def watched(chunks: Iterator[list[Any]]) -> Iterator[list[Any]]:
        nonlocal most_held
        for events in chunks:
            gc.collect()
            most_held = max(most_held, sum(ref() is not None for ref in alive))
            chunk = Chunk(events)
            del events
            sizes.append(len(chunk))
            alive.append(weakref.ref(chunk))
            yield chunk
            del chunk

    services = streaming.services
    with services.sessions() as session, session.begin():
        participant = session.get(Participant, maker["id"])
        job_id = open_streamed_job(session, participant, ErrorBehaviour.ROLLBACK).id
    with services.capturing() as session:
        participant = session.get(Participant, maker["id"])
        captured = capture_in_chunks(
            session,
            participant,
            job_id,
            outline.shell,
            watched(xml_event_chunks(file, outline, CHUNK_EVENTS)),
            ErrorBehaviour.ROLLBACK,
            services.vault,
            services.registry.domain,
            services.capture_limits,
        )
    assert captured.new_events == 3 * CHUNK_EVENTS + 5
    assert sizes == [CHUNK_EVENTS] * 3 + [5]
    assert most_held <= 1


def test_a_streamed_xml_document_nesting_deeper_than_json_may_is_refused_as_one_read_whole(
    tmp_path: Path, tester_chain: Chain
) -> None:
    """Its JSON form is what is stored, held to the depth a JSON document is: 62 nested extension
    elements in an event are within XML's bound but put the JSON form at 65 levels."""
    body = _xml(list(factory_events(CHUNK_EVENTS, lot=16, start=START)))
    nested = b'<acme:a xmlns:acme="https://acme.example/epcis/">' + b"<acme:a>" * 61 + b"x"
    nested += b"</acme:a>" * 62
    last = body.rindex(b"</ObjectEvent>")
    body = body[:last] + nested + body[last:]
    for streamed_from in (STREAMED_FROM, len(body) + 1):
        with _service(tmp_path / str(streamed_from), tester_chain, "sqlite", streamed_from) as api:
            maker = _maker(api)
            response = _post(api, maker, body)
            assert response.status_code == 413, response.text
            assert "how deep a document nests" in response.json()["detail"]
            with api.services.sessions() as session:
                assert session.scalar(select(func.count()).select_from(CaptureJob)) == 0
