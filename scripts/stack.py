"""The real stack, as `make bench` and `make chaos` run it: an anvil node and a PostgreSQL database
of their own, `tracechain serve` and `tracechain work` as processes, driven over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.conftest: the free-port and temporary-database helpers

import httpx  # noqa: E402
from tests.conftest import free_port, temporary_database  # noqa: E402, F401

from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode  # noqa: E402
from tracechain.config import ChainMode, Settings  # noqa: E402
from tracechain.epcis.event_hash import EPCIS_CONTEXT  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123456789"
MASTER_SECRET = "bench-master-secret-0123456789abcdef0123456789"


def service_settings(node: AnvilNode, database_url: str, data_dir: Path, **values: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "chain": ChainMode.RPC,
        "rpc_url": node.url,
        "relayer_key": ANVIL_DEV_KEY,
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "master_secret": MASTER_SECRET,
    }
    return Settings(**{**base, **values})


def service_environment(settings: Settings, run_workers: bool) -> dict[str, str]:
    """The settings as the environment `tracechain serve` and `tracechain work` read them from."""
    values = {
        "DATA_DIR": str(settings.data_dir),
        "RPC_URL": str(settings.rpc_url),
        "RELAYER_KEY": ANVIL_DEV_KEY,
        "DATABASE_URL": str(settings.database_url),
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "MASTER_SECRET": MASTER_SECRET,
        "BATCH_SIZE": str(settings.batch_size),
        "RUN_WORKERS": str(run_workers).lower(),
        "RECORDING_MODE": settings.recording_mode,
        "CONFIRMATIONS": str(settings.confirmations),
        "SIGNATURE_TIMEOUT_HOURS": str(settings.signature_timeout_hours),
        "CAPTURE_QUEUE": str(settings.capture_queue),
        "CAPTURE_QUEUE_BYTES": str(settings.capture_queue_bytes),
        "CAPTURE_MAX_BYTES": str(settings.capture_max_bytes),
        "CAPTURE_MAX_EVENTS": str(settings.capture_max_events),
        "CAPTURE_STREAM_FROM_BYTES": str(settings.capture_stream_from_bytes),
        "WEBHOOK_ALLOW_PRIVATE": str(settings.webhook_allow_private).lower(),
        "WEBHOOK_RETRY_BASE_S": str(settings.webhook_retry_base_s),
        "WEBHOOK_TIMEOUT_S": str(settings.webhook_timeout_s),
    }
    return {**os.environ, **{f"TRACECHAIN_{name}": value for name, value in values.items()}}


def tracechain_command(*arguments: str) -> list[str]:
    """The CLI run by this interpreter, as a user runs it (the `tracechain` script is a thin wrapper)."""
    return [sys.executable, "-m", "tracechain", *arguments]


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Process:
    """One `tracechain` process, which can be killed (-9) and started again."""

    name: str
    command: list[str]
    environment: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, env=self.environment, stdout=log, stderr=log)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a crash or an OOM kill leaves it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Service:
    """`tracechain serve` on a free port (the API) and `tracechain work` beside it (the workers)."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        environment = service_environment(settings, run_workers=False)
        serve = tracechain_command("serve", "--port", str(self.port), "--log-level", "warning")
        self.serve = Process("serve", serve, environment, logs / "serve.log")
        self.work = Process("work", tracechain_command("work"), environment, logs / "work.log")

    def start(self) -> None:
        self.start_serve()
        self.start_work()

    def start_work(self, timeout: float = 60) -> None:
        """Until it says its workers run (the workers' lock is its own)."""
        said = self._work_started()
        self.work.start()
        deadline = time.monotonic() + timeout
        while self._work_started() == said:
            if not self.work.alive or time.monotonic() > deadline:
                raise RuntimeError(f"tracechain work did not start: see {self.work.log}")
            time.sleep(0.1)

    def _work_started(self) -> int:
        try:
            return self.work.log.read_text(errors="replace").count("running for registry")
        except FileNotFoundError:
            return 0

    def start_serve(self, timeout: float = 60) -> None:
        self.serve.start()
        deadline = time.monotonic() + timeout
        while not answers(self.base_url):
            if not self.serve.alive or time.monotonic() > deadline:
                raise RuntimeError(f"tracechain serve did not start: see {self.serve.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.work.stop()
        self.serve.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_participant(
    client: httpx.Client, name: str, roles: list[str], party: str, country: str, address: str | None = None
) -> dict[str, Any]:
    body = {"name": name, "roles": roles, "partyId": party, "country": country}
    if address:
        body["address"] = address
    response = client.post("/participants", headers=bearer(ADMIN_TOKEN), json=body)
    response.raise_for_status()
    created: dict[str, Any] = response.json()
    return created


def document(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "@context": [EPCIS_CONTEXT],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": datetime.now(UTC).isoformat(),
            "epcisBody": {"eventList": events},
        }
    ).encode()
