"""`tracechain work` runs the submitter, indexer and settler beside a `tracechain serve` started with
TRACECHAIN_RUN_WORKERS=false, both as real processes on anvil and PostgreSQL: serve accepts and signs,
nothing reaches the chain until the worker runs, and then everything does. One process per database
runs the workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from tracechain.chain.connect import Chain
from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode
from tracechain.config import ChainMode, Settings
from tracechain.epcis.builders import object_event
from tracechain.errors import ConfigurationError
from tracechain.services import Services
from tracechain.worker import run_worker

from .api.conftest import ADMIN_TOKEN, MASTER_SECRET, document, service_settings
from .api.test_capture import ITEM, T0
from .conftest import free_port

SECRETS = {"admin_token": ADMIN_TOKEN, "master_secret": MASTER_SECRET}


def test_work_refuses_the_in_process_chain(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, chain=ChainMode.TESTER, **SECRETS)
    with pytest.raises(ConfigurationError, match="chain=tester"):
        run_worker(settings, Console(quiet=True), wait=0)


def test_work_refuses_a_sqlite_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, chain=ChainMode.RPC, rpc_url="http://127.0.0.1:9", **SECRETS)
    with pytest.raises(ConfigurationError, match="needs PostgreSQL"):
        run_worker(settings, Console(quiet=True), wait=0)


@pytest.mark.anvil
def test_one_process_per_database_runs_the_workers(
    tmp_path: Path, anvil_chain: Chain, postgres_url: str
) -> None:
    settings = service_settings(
        tmp_path, database_url=postgres_url, chain=ChainMode.RPC, rpc_url="http://unused"
    )
    first, second = Services.start(settings, anvil_chain), Services.start(settings, anvil_chain)
    try:
        first.start_workers()
        with pytest.raises(ConfigurationError, match="another process runs the workers for this database"):
            second.start_workers()
        first.stop()
        second.start_workers()  # free again once the first has stopped
    finally:
        first.stop()
        second.stop()


@pytest.fixture
def environment(tmp_path: Path, anvil_node: AnvilNode, postgres_url: str) -> dict[str, str]:
    values = {
        "DATA_DIR": str(tmp_path),
        "CHAIN": "rpc",
        "RPC_URL": anvil_node.url,
        "RELAYER_KEY": ANVIL_DEV_KEY,
        "DATABASE_URL": postgres_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "MASTER_SECRET": MASTER_SECRET,
        "RUN_WORKERS": "false",
        "POLL_INTERVAL": "0.05",
    }
    return {**os.environ, **{f"TRACECHAIN_{name}": value for name, value in values.items()}}


@pytest.fixture
def serve(environment: dict[str, str]) -> Iterator[httpx.Client]:
    port = free_port()
    with (
        _running(environment, "serve", "--port", str(port), "--log-level", "warning") as process,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        deadline = time.monotonic() + 60
        while not _answers(client):
            assert process.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not answer within 60 s"
            time.sleep(0.1)
        yield client


@pytest.mark.anvil
def test_serve_records_nothing_until_work_runs_beside_it(
    serve: httpx.Client, environment: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    created = serve.post(
        "/participants",
        headers=admin,
        json={
            "name": "Shenzhen Bright",
            "roles": ["manufacturer"],
            "partyId": "urn:epc:id:pgln:6901234.00000",
            "country": "CN",
        },
    )
    assert created.status_code == 201, created.text
    maker = {"Authorization": f"Bearer {created.json()['apiKey']}"}
    events = [object_event([ITEM], biz_step="commissioning", action="ADD", disposition="active", at=T0)]
    accepted = serve.post("/capture", json=document(events), headers=maker)
    assert accepted.status_code == 202, accepted.text
    job_url = accepted.headers["Location"]

    time.sleep(1)  # serve's own workers would have recorded it by now (poll interval 0.05 s)
    assert serve.get(job_url, headers=maker).json()["status"] == "pending"

    with _running(environment, "work") as worker:
        job = _when_finished(serve, job_url, maker, worker)
        assert job["status"] == "succeeded", job["errors"]
        trace = serve.get(f"/trace/{ITEM}").json()
        assert trace["verdict"] == "verified", trace["reasons"]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0  # stops cleanly, between rounds


def _when_finished(
    client: httpx.Client, job_url: str, headers: dict[str, str], worker: subprocess.Popen[bytes]
) -> Any:
    deadline = time.monotonic() + 120
    while True:
        job = client.get(job_url, headers=headers).json()
        if job["status"] != "pending":
            return job
        assert worker.poll() is None, "work exited"
        assert time.monotonic() < deadline, "the capture was not recorded within 120 s"
        time.sleep(0.1)


class _running:
    """`tracechain <arguments>` as a process, stopped on the way out."""

    def __init__(self, environment: dict[str, str], *arguments: str) -> None:
        command = [sys.executable, "-m", "tracechain", *arguments]
        self.process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)

    def __enter__(self) -> subprocess.Popen[bytes]:
        return self.process

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/openapi.json").status_code == 200
    except httpx.TransportError:
        return False
