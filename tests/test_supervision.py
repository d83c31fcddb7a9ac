"""The workers' supervision: a failing worker says so once and again when it is over, heartbeats
reach /ready, and the workers' lock, lost with its connection, pauses them until it is theirs again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain
from tracechain.store.db import make_engine, migrate, session_factory
from tracechain.supervision import Supervisor

from .api.conftest import service_settings
from .conftest import POSTGRES_ADMIN_URL


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_failing_worker_says_so_once_then_once_more_when_it_works_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A node away for 30 s printed a traceback every round: 1,740 of them. Now one line says what
    failed, one says it is over."""
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    rounds = {"n": 0}

    def step() -> int:
        rounds["n"] += 1
        if rounds["n"] <= 8:
            raise ConnectionError("node at http://127.0.0.1:8545 refused the connection\nmore detail")
        return 0

    supervisor = Supervisor(
        engine, session_factory(engine), [("submitter", step)], poll_interval=0.01, retry_interval=0.01
    )
    with caplog.at_level(logging.WARNING, logger="tracechain.workers"):
        assert supervisor.start()
        wait_for(lambda: rounds["n"] > 10)
        supervisor.stop()
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "submitter: ConnectionError: node at http://127.0.0.1:8545 refused the connection; retrying",
        lines[1],
    ]
    assert lines[1].startswith("submitter: working again after") and lines[1].endswith("(8 failed rounds)")
    assert "Traceback" not in caplog.text


def test_ready_says_what_is_missing_and_turns_ready_once_the_workers_beat(
    tmp_path: Path, tester_chain: Chain
) -> None:
    app = create_app(service_settings(tmp_path), chain=tester_chain, run_workers=False)
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "alive"}
        not_yet = client.get("/ready")
        assert not_yet.status_code == 503
        checks = not_yet.json()["checks"]
        assert checks["database"]["ok"] and checks["node"]["ok"] and checks["chain"]["ok"]
        assert not checks["workers"]["ok"] and "never ran" in checks["workers"]["indexer"]["error"]

        client.app.state.services.start_workers()  # type: ignore[attr-defined]
        wait_for(lambda: client.get("/ready").status_code == 200)
        ready = client.get("/ready").json()["checks"]
        assert ready["workers"]["submitter"]["beatSecondsAgo"] < 15
        assert ready["outbox"]["queuedRecords"] == 0 and ready["indexer"]["lagBlocks"] is not None


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_workers_that_lose_their_lock_pause_until_it_is_theirs_again(engine: Engine) -> None:
    """After a database blip, the lock went with the connection holding it and a second `tracechain
    work` started beside the first: both sent, indexed and settled the same things."""
    counted = {"first": 0, "second": 0}

    def counting(name: str) -> Callable[[], int]:
        def step() -> int:
            counted[name] += 1
            return 0

        return step

    sessions = session_factory(engine)
    first = Supervisor(engine, sessions, [("indexer", counting("first"))], poll_interval=0.01)
    second = Supervisor(engine, sessions, [("indexer", counting("second"))], poll_interval=0.01)
    assert first.start()
    try:
        assert not second.start()  # one process per database runs the workers
        taking = threading.Thread(target=lambda: wait_for(second.start, timeout=30))
        taking.start()  # another process waits for the lock, as a second `tracechain work` would
        _cut(first)  # the database drops the first's lock connection: the lock is free
        taking.join()
        wait_for(lambda: first.paused)
        paused_at = counted["first"]
        time.sleep(3 * 2.0)
        assert first.paused and counted["first"] <= paused_at + 1  # it does not run beside the second
        second.stop()
        wait_for(lambda: not first.paused)  # the lock is free again: the first takes it back
        wait_for(lambda: counted["first"] > paused_at + 5)
    finally:
        first.stop()
        second.stop()


def _cut(supervisor: Supervisor) -> None:
    claim: Any = supervisor._claim
    pid = claim.execute(text("SELECT pg_backend_pid()")).scalar()
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
