"""Done when: a webhook subscriber on 127.0.0.1 receives every matching event exactly once across a
kill -9 of the service, with a valid GS1-Signature.

The real stack, as `make chaos` runs it (scripts/stack.py): `tracechain serve` and `tracechain
work` as processes on an anvil node and PostgreSQL; a real HTTP receiver in a thread. The receiver
answers slowly, so the service is killed while a delivery's POST is in flight: the delivery is sent
again after the restart under the same id, and "exactly once" is each matching event in exactly
one distinct delivery id (what a receiver deduping on `Idempotency-Key` acts on)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracechain.chain.node import AnvilNode
from tracechain.epcis.builders import object_event

from .conftest import free_port, temporary_database
from .webhook_receiver import Receiver, running_receiver

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import stack  # noqa: E402 -- scripts/stack.py: the real serve and work processes

TOKEN = "kill-test-subscriber-secret-0123456789"
PER_BATCH = 6


def commissioning(serial: int) -> dict[str, Any]:
    at = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=serial)
    return object_event(
        [f"urn:epc:id:sgtin:6901234.067890.{serial}"], biz_step="commissioning", action="ADD", at=at
    )


def inspecting(serial: int) -> dict[str, Any]:
    at = datetime(2026, 11, 2, tzinfo=UTC) + timedelta(minutes=serial)
    return object_event([f"urn:epc:id:sgtin:6901234.067890.{serial}"], biz_step="inspecting", at=at)


@pytest.fixture
def service(anvil_node: AnvilNode, tmp_path: Path) -> Iterator[stack.Service]:
    with temporary_database("tracechain_webhooks") as database_url:
        settings = stack.service_settings(
            anvil_node,
            database_url,
            tmp_path / "data",
            webhook_allow_private=True,
            webhook_retry_base_s=0.5,
            webhook_timeout_s=30.0,
        )
        running = stack.Service(settings, tmp_path)
        try:
            running.start()
            yield running
        finally:
            running.stop()


def capture(client: httpx.Client, key: str, events: list[dict[str, Any]]) -> None:
    response = client.post(
        "/capture",
        content=stack.document(events),
        headers={**stack.bearer(key), "Content-Type": "application/ld+json"},
    )
    assert response.status_code == 202, response.text


def matching_event_ids(base_url: str, key: str, expected: int, timeout: float = 120) -> set[str]:
    """The ids of the commissioning events, once all `expected` are captured (they are served from
    capture on; the subscription delivers them once confirmed)."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(
            f"{base_url}/events",
            params={"EQ_bizStep": "commissioning", "perPage": 1000},
            headers=stack.bearer(key),
            timeout=30,
        )
        events = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        if len(events) >= expected:
            return {event["eventID"] for event in events}
        assert time.monotonic() < deadline, f"{len(events)} of {expected} events captured"
        time.sleep(0.2)


def delivered_ids(receiver: Receiver) -> Counter[str]:
    """Each event as many times as distinct deliveries carried it."""
    return Counter(event["eventID"] for post in receiver.accepted() for event in post.events)


def settled(client: httpx.Client, key: str, subscription_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    path = f"/queries/commissioned/subscriptions/{subscription_id}"
    while client.get(path, headers=stack.bearer(key)).json()["pendingDeliveries"]:
        assert time.monotonic() < deadline, "deliveries still pending"
        time.sleep(0.2)


@pytest.mark.anvil
def test_a_subscriber_gets_every_matching_event_once_across_a_kill_9_with_valid_signatures(
    service: stack.Service,
) -> None:
    with running_receiver() as receiver, httpx.Client(base_url=service.base_url, timeout=60) as client:
        maker = stack.create_participant(
            client,
            "Webhook Maker",
            ["manufacturer"],
            f"urn:epc:id:pgln:6901234.{free_port() % 100000:05d}",
            "CN",
        )
        key = maker["apiKey"]
        named = client.post(
            "/queries",
            json={"name": "commissioned", "query": {"EQ_bizStep": "commissioning"}},
            headers=stack.bearer(key),
        )
        assert named.status_code == 201, named.text
        subscribed = client.post(
            "/queries/commissioned/subscriptions",
            json={"dest": receiver.url, "signatureToken": TOKEN, "stream": True},
            headers=stack.bearer(key),
        )
        assert subscribed.status_code == 201, subscribed.text
        subscription_id = subscribed.json()["subscriptionID"]

        receiver.delay_s = 3.0  # slow: a POST is in flight when the service dies
        serials = iter(range(5000, 6000))
        for _ in range(2):
            capture(client, key, [commissioning(next(serials)) for _ in range(PER_BATCH)])
            capture(client, key, [inspecting(next(serials)) for _ in range(2)])
        receiver.wait_for(lambda got: len(got) >= 1, timeout=120)
        service.work.kill()
        service.serve.kill()
        in_flight = receiver.received[-1].delivery_id

        receiver.delay_s = 0.0
        service.start()
        capture(
            client,
            key,
            [commissioning(next(serials)) for _ in range(PER_BATCH)] + [inspecting(next(serials))],
        )
        expected = matching_event_ids(service.base_url, key, 3 * PER_BATCH)
        receiver.wait_for(lambda got: set(delivered_ids(receiver)) >= expected, timeout=180)
        settled(client, key, subscription_id)  # nothing left to send: no late copies to come

    deliveries = Counter(post.delivery_id for post in receiver.received)
    assert deliveries[in_flight] >= 2, "the delivery in flight at the kill was not sent again"
    counted = delivered_ids(receiver)
    assert set(counted) == expected  # every matching event, and none that does not match
    assert all(times == 1 for times in counted.values()), counted  # each in one delivery id
    for post in receiver.received:
        assert post.signed_with(TOKEN), post.delivery_id
        assert post.document["epcisBody"]["queryResults"]["subscriptionID"] == subscription_id
        assert post.document["tracechain:deliveryID"] == post.delivery_id
    by_id: dict[str, bytes] = {}
    for post in receiver.received:  # a resent delivery is the same bytes
        assert by_id.setdefault(post.delivery_id, post.body) == post.body
