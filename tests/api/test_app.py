"""The app as a whole: secrets required outside demo mode, OpenAPI docs, problem+json everywhere."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain
from tracechain.config import ChainMode, Settings
from tracechain.errors import ConfigurationError
from tracechain.store.models import Order

from .conftest import Api, service_settings
from .test_capture import ITEM, commissioning


@pytest.mark.parametrize(
    ("admin_token", "master_secret", "missing"),
    [
        (None, None, "TRACECHAIN_MASTER_SECRET"),
        ("a" * 40, None, "TRACECHAIN_MASTER_SECRET"),
        ("a" * 40, "changeme", "TRACECHAIN_MASTER_SECRET"),
        (None, "b" * 40, "TRACECHAIN_ADMIN_TOKEN"),
        ("short", "b" * 40, "TRACECHAIN_ADMIN_TOKEN"),
    ],
)
def test_the_service_refuses_to_start_without_real_secrets(
    tmp_path: Path, tester_chain: Chain, admin_token: str | None, master_secret: str | None, missing: str
) -> None:
    settings = Settings(
        data_dir=tmp_path, chain=ChainMode.TESTER, admin_token=admin_token, master_secret=master_secret
    )
    with (
        pytest.raises(ConfigurationError, match=missing),
        TestClient(create_app(settings, chain=tester_chain)),
    ):
        pass


def test_demo_mode_starts_without_secrets(tmp_path: Path, tester_chain: Chain) -> None:
    settings = Settings(data_dir=tmp_path, chain=ChainMode.TESTER, demo_mode=True)
    with TestClient(create_app(settings, chain=tester_chain, run_workers=False)) as client:
        assert client.get("/eip712").json()["domain"]["name"] == "TraceRegistry"


def test_openapi_docs_are_served(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"/capture", "/events", "/trace/{epc}", "/01/{gtin}/21/{serial}", "/participants"} <= set(paths)


def test_the_order_endpoints_document_the_order_they_answer_with(api: Api) -> None:
    openapi = api.client.get("/openapi.json").json()
    order = openapi["components"]["schemas"]["OrderPublic"]
    assert {"orderId", "state", "paid", "refunded", "unreleased", "milestones", "deadline"} <= set(
        order["properties"]
    )
    answered = openapi["paths"]["/orders/{order_id}"]["get"]["responses"]["200"]["content"]
    assert answered["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderPublic"}


def test_an_unknown_path_is_a_problem_document(api: Api) -> None:
    response = api.client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["instance"] == "/no/such/thing"


def test_a_body_that_is_not_json_is_a_4xx_problem(api: Api) -> None:
    response = api.client.post(
        "/participants",
        content=b"{not json",
        headers={"Authorization": "Bearer x", "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


def test_the_published_eip712_domain_is_the_registry_s(api: Api) -> None:
    published = api.client.get("/eip712").json()
    assert published["domain"] == api.services.registry.domain.as_dict()
    assert published["types"]["TraceEvent"][0] == {"name": "subject", "type": "bytes32"}


def test_background_workers_complete_a_capture_on_their_own(tmp_path: Path, anvil_chain: Chain) -> None:
    """As `tracechain serve` runs: the submitter and indexer threads, no test driving them."""
    settings = service_settings(tmp_path, poll_interval=0.05)
    with TestClient(create_app(settings, chain=anvil_chain, run_workers=True)) as client:
        api = Api(client)
        maker = api.create_participant("Maker", ["manufacturer"], "urn:epc:id:pgln:6901234.00000", "CN")
        location = api.capture(maker, [commissioning()]).headers["Location"]
        deadline = time.monotonic() + 30
        while not (job := client.get(location, headers=api.as_participant(maker)).json())["success"]:
            assert time.monotonic() < deadline, f"capture job still {job['status']} after 30 s"
            time.sleep(0.05)
        assert client.get(f"/trace/{ITEM}").json()["verdict"] == "verified"


def test_a_request_commits_before_its_response_starts(api: Api) -> None:
    """A client acting on an answer must find what it promised: the request's transaction commits
    before the first byte of the response goes out, not after (FastAPI's default for yield deps)."""
    buyer = api.create_participant("Early Buyer", ["retailer"], "urn:epc:id:pgln:8712345.00002")
    seller = api.create_participant("Early Seller", ["manufacturer"], "urn:epc:id:pgln:6901234.00000")
    api.settle()
    deadline = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    order = {
        "seller": seller["id"],
        "shipment": "urn:epc:id:sscc:6901234.0000000009",
        "amount": "10",
        "milestones": {"received": 100},
        "deadline": deadline,
    }
    orders_at_response_start: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": json.dumps(order).encode(), "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 201
            with api.services.sessions() as session:
                orders_at_response_start.append(len(session.scalars(select(Order)).all()))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/orders",
        "raw_path": b"/orders",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {buyer['apiKey']}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(api.client.app(scope, receive, send))  # type: ignore[arg-type]
    assert orders_at_response_start == [1]
