"""Capture under load and abuse: limits checked before work, callers known before their bodies are
read, a bounded queue instead of a collapse, and outages answered as problems a client can retry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain
from tracechain.store.models import CaptureJob, Event

from .conftest import Api, _cast, document, service_settings
from .test_capture import ITEM, OTHER_ITEM, commissioning

SMALL_LIMITS = {
    "capture_max_bytes": 20_000,
    "capture_max_events": 3,
    "capture_max_epcs_per_event": 4,
    "capture_max_event_bytes": 2_000,
    "capture_queue": 2,
}


@pytest.fixture
def limited(tmp_path: Path, tester_chain: Chain) -> Iterator[Api]:
    app = create_app(service_settings(tmp_path, **SMALL_LIMITS), chain=tester_chain, run_workers=False)
    with TestClient(app) as client:
        yield Api(client)


@pytest.fixture
def maker(limited: Api) -> dict[str, Any]:
    return _cast(limited)["manufacturer"]


def nothing_written(api: Api) -> bool:
    with api.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Event)) == 0


def post(api: Api, who: dict[str, Any] | None, body: bytes | dict[str, Any]) -> Any:
    headers = {"Content-Type": "application/json", **(api.as_participant(who) if who else {})}
    if isinstance(body, dict):
        return api.client.post("/capture", json=body, headers=headers)
    return api.client.post("/capture", content=body, headers=headers)


def test_the_capture_limits_are_advertised_as_epcis_does(limited: Api) -> None:
    response = limited.client.options("/capture")
    assert response.status_code == 204
    assert response.headers["GS1-EPCIS-Capture-Limit"] == "3"
    assert response.headers["GS1-EPCIS-Capture-File-Size-Limit"] == "20000"
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"


def test_a_body_nested_100000_deep_is_refused_before_it_is_parsed_and_the_service_lives_on(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """Python's parser recursed to the interpreter's limit, which py-evm raises to 100,000: the
    600 KB body below crashed the whole process (serve and its workers) with a segmentation fault."""
    deep = b"[" * 100_000 + b"]" * 100_000

    anonymous = post(api, None, deep)
    assert anonymous.status_code == 401  # the caller is known before its body is read

    refused = post(api, parties["manufacturer"], deep)
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert "how deep a document nests is at most 64" in refused.json()["detail"]
    assert post(api, parties["manufacturer"], document([commissioning()])).status_code == 202


def test_a_body_over_the_size_limit_is_refused_naming_the_setting(
    limited: Api, maker: dict[str, Any]
) -> None:
    big = document([commissioning(f"urn:epc:id:sgtin:6901234.067890.{n}") for n in range(300)])
    response = post(limited, maker, big)
    assert response.status_code == 413
    assert "TRACECHAIN_CAPTURE_MAX_BYTES" in response.json()["detail"]
    assert nothing_written(limited)


@pytest.mark.parametrize(
    ("events", "named"),
    [
        pytest.param(
            [commissioning(f"urn:epc:id:sgtin:6901234.067890.{n}") for n in range(4)],
            "TRACECHAIN_CAPTURE_MAX_EVENTS",
            id="events per document",
        ),
        pytest.param(
            [{**commissioning(), "epcList": [f"urn:epc:id:sgtin:6901234.067890.{n}" for n in range(5)]}],
            "TRACECHAIN_CAPTURE_MAX_EPCS_PER_EVENT",
            id="identifiers per event",
        ),
        pytest.param(
            [{**commissioning(), "ilmd": {"example:note": "x" * 3_000}}],
            "TRACECHAIN_CAPTURE_MAX_EVENT_BYTES",
            id="bytes per event",
        ),
    ],
)
def test_a_document_over_a_limit_is_refused_whole_naming_it(
    limited: Api, maker: dict[str, Any], events: list[dict[str, Any]], named: str
) -> None:
    response = post(limited, maker, document(events))
    assert response.status_code == 413, response.text
    assert named in response.json()["detail"]
    assert response.json()["type"] == "epcisException:CaptureLimitExceededException"
    assert nothing_written(limited)


def test_a_body_that_is_not_json_is_a_400_problem(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    response = post(api, parties["manufacturer"], b'{"type": "EPCISDocument", ')
    assert response.status_code == 400 and response.json()["title"] == "Invalid JSON"


def test_captures_beyond_the_queue_get_503_with_retry_after_and_the_queued_ones_succeed(
    limited: Api, maker: dict[str, Any]
) -> None:
    """While a capture holds the capture lock, two more may wait (capture_queue=2); the others are
    answered at once with 503 and Retry-After, and succeed when sent again."""
    documents = [document([commissioning(f"urn:epc:id:sgtin:6901234.067890.{n}")]) for n in range(6)]
    limited.services.capture_lock.acquire()
    try:
        with ThreadPoolExecutor(len(documents)) as pool:
            sent = [pool.submit(post, limited, maker, each) for each in documents]
            refused = [future.result(timeout=30) for future in _first_finished(sent, 4)]
            assert all(r.status_code == 503 and r.headers["Retry-After"] == "1" for r in refused)
            assert all(r.headers["content-type"] == "application/problem+json" for r in refused)
            # The overflow is refused before the key is looked up: it costs no database query.
            assert post(limited, {"apiKey": "not-a-key"}, documents[0]).status_code == 503
            limited.services.capture_lock.release()
            statuses = sorted(future.result(timeout=30).status_code for future in sent)
    finally:
        if limited.services.capture_lock.locked():
            limited.services.capture_lock.release()
    assert statuses == [202, 202, 503, 503, 503, 503]
    retried = [post(limited, maker, each).status_code for each in documents]
    assert sorted(retried) == [202] * 6  # the two accepted before answer with their original jobs


def _first_finished(futures: list[Any], count: int) -> list[Any]:
    finished: list[Any] = []
    done = threading.Event()

    def note(future: Any) -> None:
        finished.append(future)
        if len(finished) >= count:
            done.set()

    for future in futures:
        future.add_done_callback(note)
    assert done.wait(timeout=30), "the captures over the queue were not refused at once"
    return finished[:count]


def test_a_retried_document_answers_with_its_original_job(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """A client that lost the answer sends the document again: it gets the job that captured it."""
    maker = parties["manufacturer"]
    first = post(api, maker, document([commissioning(), commissioning(OTHER_ITEM)]))
    again = post(api, maker, document([commissioning(), commissioning(OTHER_ITEM)]))
    assert first.status_code == again.status_code == 202
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json()["eventCount"] == 2
    with api.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CaptureJob)) == 1


def test_a_database_outage_is_a_503_problem_with_retry_after(real_api: Api) -> None:
    """Connections refused by PostgreSQL: a problem the client can retry, not a plain-text 500."""
    maker = _cast(real_api)["manufacturer"]
    database = real_api.services.engine.url.database
    admin = "postgresql://root@127.0.0.1:5432/test"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        connection.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        )
    try:
        response = post(real_api, maker, document([commissioning(ITEM)]))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert response.json()["title"] == "Database unavailable"
    assert post(real_api, maker, document([commissioning(ITEM)])).status_code == 202


@pytest.fixture
def byte_limited(tmp_path: Path, tester_chain: Chain) -> Iterator[Api]:
    settings = service_settings(tmp_path, capture_queue=10, capture_queue_bytes=800)
    with TestClient(create_app(settings, chain=tester_chain, run_workers=False)) as client:
        yield Api(client)


def test_captures_beyond_the_queues_bytes_get_503_though_places_are_free(byte_limited: Api) -> None:
    """The queue is bounded by the bytes its bodies hold (their Content-Length, before they are
    read), not only by its places: a body that would take the waiting bytes over
    capture_queue_bytes is answered 503 with Retry-After, and succeeds when sent again."""
    maker = _cast(byte_limited)["manufacturer"]
    first, second = (
        json.dumps(document([commissioning(f"urn:epc:id:sgtin:6901234.067890.{n}")])).encode() for n in (1, 2)
    )
    assert 400 < len(first) <= len(second) < 800  # one fits alone, two do not
    byte_limited.services.capture_lock.acquire()
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(post, byte_limited, maker, first)
            deadline = time.monotonic() + 10
            while byte_limited.services._queued_bytes == 0:
                assert time.monotonic() < deadline, "the first capture never queued"
                time.sleep(0.01)
            refused = post(byte_limited, maker, second)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert "TRACECHAIN_CAPTURE_QUEUE_BYTES" in refused.json()["detail"]
            byte_limited.services.capture_lock.release()
            assert waiting.result(timeout=30).status_code == 202
    finally:
        if byte_limited.services.capture_lock.locked():
            byte_limited.services.capture_lock.release()
    assert post(byte_limited, maker, second).status_code == 202
    assert byte_limited.services._queued_bytes == 0
