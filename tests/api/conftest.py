"""The service through its HTTP API, on the in-process chain and SQLite, workers driven by the test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain
from tracechain.config import ChainMode, Settings
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.services import Services

from ..conftest import temporary_database

ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123456789"
MASTER_SECRET = "test-master-secret-0123456789abcdef0123456789"


class Api:
    """A client plus the service behind it, with helpers named by what a participant does."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.services: Services = client.app.state.services  # type: ignore[attr-defined]

    def admin(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return self.client.request(method, path, headers={**admin, **(headers or {})}, **kwargs)

    def create_participant(
        self, name: str, roles: list[str], party_id: str, country: str = "NL"
    ) -> dict[str, Any]:
        response = self.admin(
            "POST",
            "/participants",
            json={"name": name, "roles": roles, "partyId": party_id, "country": country},
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def as_participant(self, participant: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {participant['apiKey']}"}

    def capture(self, participant: dict[str, Any], events: list[dict[str, Any]]) -> Any:
        return self.client.post("/capture", json=document(events), headers=self.as_participant(participant))

    def settle(self) -> None:
        """Run the submitter until the outbox is empty and mined, then the indexer, then the settler
        and again the submitter for what the settler queued, until nothing moves."""
        settlement = self.services.settlement
        for _ in range(10):
            for _ in range(10):
                sent = self.services.submitter.run_once()
                self.services.submitter.run_once()  # settles what the round above broadcast
                if not sent:
                    break
            self.services.indexer.run_once()
            if settlement is None or not settlement.settle_round():
                break
            self.services.submitter.run_once()  # broadcasts the settler's transactions


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {"eventList": events},
    }


def service_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "chain": ChainMode.TESTER,
        "admin_token": ADMIN_TOKEN,
        "master_secret": MASTER_SECRET,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path: Path, tester_chain: Chain) -> Iterator[Api]:
    """A fresh service (new registry, new database) on the session's in-process chain: every test
    that uses it runs on SQLite and again on PostgreSQL (a database of its own, dropped after)."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(temporary_database()) if request.param == "postgresql" else None
        yield stack.enter_context(_tester_service(tmp_path, tester_chain, database_url))


@pytest.fixture
def sqlite_api(tmp_path: Path, tester_chain: Chain) -> Iterator[Api]:
    """The in-process chain and SQLite only: for tests that name their service (this or real_api)."""
    with _tester_service(tmp_path, tester_chain, None) as api:
        yield api


@contextlib.contextmanager
def _tester_service(tmp_path: Path, tester_chain: Chain, database_url: str | None) -> Iterator[Api]:
    overrides = {"database_url": database_url} if database_url else {}
    app = create_app(service_settings(tmp_path, **overrides), chain=tester_chain, run_workers=False)
    with TestClient(app) as client:
        yield Api(client)


@pytest.fixture
def parties(api: Api) -> dict[str, dict[str, Any]]:
    """The demo's cast, created through the API, their roles granted on chain."""
    return _cast(api)


@pytest.fixture
def sqlite_parties(sqlite_api: Api) -> dict[str, dict[str, Any]]:
    return _cast(sqlite_api)


def _cast(api: Api) -> dict[str, dict[str, Any]]:
    cast = {
        "manufacturer": api.create_participant(
            "Shenzhen Bright", ["manufacturer"], "urn:epc:id:pgln:6901234.00000", "CN"
        ),
        "carrier": api.create_participant(
            "Blue Water Lines", ["carrier"], "urn:epc:id:pgln:5790001.00000", "DK"
        ),
        "customs": api.create_participant(
            "EU Customs Rotterdam", ["customs"], "urn:epc:id:pgln:8712345.00009", "NL"
        ),
        "retailer": api.create_participant(
            "Amsterdam Retail", ["retailer"], "urn:epc:id:pgln:8712345.00002", "NL"
        ),
    }
    api.settle()
    return cast


@pytest.fixture
def real_api(tmp_path: Path, anvil_chain: Chain, postgres_url: str) -> Iterator[Api]:
    """The service on a real anvil node and PostgreSQL."""
    settings = service_settings(
        tmp_path, database_url=postgres_url, chain=ChainMode.RPC, rpc_url="http://unused"
    )
    app = create_app(settings, chain=anvil_chain, run_workers=False)
    with TestClient(app) as client:
        yield Api(client)


@pytest.fixture
def real_parties(real_api: Api) -> dict[str, dict[str, Any]]:
    return _cast(real_api)
