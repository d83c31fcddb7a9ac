"""The real app served over HTTP in this process, and the calls the demo's parties make to it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain
from tracechain.config import Settings
from tracechain.demo.scenario import PARTIES, DemoParty
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.errors import TracechainError

WAIT_TIMEOUT = 120.0


class DemoFailed(TracechainError):
    """A step of the demo was refused or did not complete."""


@dataclass(frozen=True)
class Served:
    """The app being served, and where."""

    url: str
    app: FastAPI

    @property
    def chain(self) -> Chain:
        """The chain the app runs on (in this process: the in-process eth-tester lives only here)."""
        chain: Chain = self.app.state.services.chain
        return chain


@contextmanager
def served(settings: Settings) -> Iterator[Served]:
    """The real app over HTTP on a local port, its workers running, for as long as the block runs."""
    # The port `tracechain serve` will listen on, if free: the demo's printed links work there too.
    port = settings.port if _free(settings.port) else _any_free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="tracechain-demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive():
            raise DemoFailed("the service did not start; see the messages above")
        if time.monotonic() > deadline:
            raise DemoFailed("the service did not start within 60 s")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _any_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoClient:
    """HTTP calls as one party or the admin; any refusal stops the demo with the service's answer."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(self, method: str, path: str, token: str, body: Any = None, expect: int = 200) -> Any:
        response = self.http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != expect:
            raise DemoFailed(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    def participants(self, admin_token: str, keys_file: Path) -> dict[str, str]:
        """Each party's API key: the one kept from an earlier run if the service still knows it."""
        kept: dict[str, str] = json.loads(keys_file.read_text()) if keys_file.is_file() else {}
        keys = {}
        for party in PARTIES:
            key = kept.get(party.name)
            known = key and self.http.get("/participants/me", headers={"Authorization": f"Bearer {key}"})
            if key and known and known.status_code == 200:
                keys[party.name] = key
                continue
            created = self.call("POST", "/participants", admin_token, _participant(party), expect=201)
            keys[party.name] = created["apiKey"]
        keys_file.parent.mkdir(parents=True, exist_ok=True)
        keys_file.write_text(json.dumps(keys, indent=2) + "\n")
        keys_file.chmod(0o600)
        return keys

    def capture(
        self, key: str, events: list[dict[str, Any]], master_data: dict[str, Any] | None = None
    ) -> str:
        document: dict[str, Any] = {
            "@context": [EPCIS_CONTEXT],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": datetime.now(UTC).isoformat(),
            "epcisBody": {"eventList": events},
        }
        if master_data:
            document["epcisHeader"] = {"epcisMasterData": master_data}
        response = self.http.post("/capture", json=document, headers={"Authorization": f"Bearer {key}"})
        if response.status_code != 202:
            raise DemoFailed(f"capture refused: {response.text}")
        return str(response.headers["Location"])

    def wait_for_job(self, key: str, location: str) -> None:
        def done() -> bool:
            job = self.call("GET", location, key)
            if job["status"] == "failed":
                raise DemoFailed(f"capture job {location} failed: {job['errors']}")
            return bool(job["success"])

        wait_until(f"capture job {location}", done)


def wait_until(what: str, done: Callable[[], bool], timeout: float = WAIT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what}: still not done after {timeout:.0f} s")
        time.sleep(0.1)


def _participant(party: DemoParty) -> dict[str, Any]:
    return {
        "name": party.name,
        "roles": list(party.roles),
        "partyId": party.party_id,
        "country": party.country,
    }
