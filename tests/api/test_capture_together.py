"""Captures that wait for the capture lock together are committed together (`group_commit`), and
still each is checked against every event before it: documents over the same product, sent at
once, are ordered, and one that breaks custody given another is refused alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracechain.chain.trace_event import Kind
from tracechain.epcis.builders import object_event
from tracechain.store.models import ChainRecord, Event

from .conftest import Api
from .test_capture import ITEM, T0, commissioning, count

CARRIER_PARTY = "urn:epc:id:pgln:5790001.00000"


def send_together(api: Api, sends: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[Any]:
    """Each capture from a thread of its own, queued in this order while the capture lock is held,
    then let go at once: their responses, in the same order."""
    responses: list[Any] = [None] * len(sends)

    def one(index: int) -> None:
        who, events = sends[index]
        responses[index] = api.capture(who, events)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(sends))]
    captures = api.services.captures
    with api.services.capture_lock:
        for queued, thread in enumerate(threads, start=1):
            thread.start()
            deadline = time.monotonic() + 30
            while True:  # the next one is sent once this one waits: the order is theirs
                with captures._condition:
                    if len(captures._waiting) >= queued:
                        break
                assert time.monotonic() < deadline, "the capture never queued"
                time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=60)
    return responses


@pytest.fixture
def transactions(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the capture transactions opened from now on (the real ones, counted)."""
    opened: list[int] = []
    capturing = api.services.capturing

    @contextmanager
    def counted() -> Iterator[Session]:
        opened.append(1)
        with capturing() as session:
            yield session

    monkeypatch.setattr(api.services, "capturing", counted)
    return opened


def test_documents_over_one_product_sent_at_once_are_ordered_and_a_custody_breach_is_refused_alone(
    api: Api, parties: dict[str, dict[str, Any]], transactions: list[int]
) -> None:
    """The maker commissions the item, ships it to the carrier, and commissions it again, three
    documents waiting together: the shipment is checked against the commissioning before it (a
    shipment, not an observation of an unknown product), the second commissioning is refused given
    the first, and what was accepted lands on chain as signed (the contract checks it again)."""
    maker = parties["manufacturer"]
    shipping = object_event(
        [ITEM], biz_step="shipping", at=T0 + timedelta(hours=1), destination=CARRIER_PARTY
    )
    again = commissioning(ITEM, at=T0 + timedelta(hours=2))
    made, shipped, twice = send_together(
        api, [(maker, [commissioning()]), (maker, [shipping]), (maker, [again])]
    )
    assert made.status_code == 202, made.text
    assert shipped.status_code == 202, shipped.text
    assert twice.status_code == 400
    (error,) = twice.json()["errors"]
    assert "commission" in error["reason"] and ITEM in error["reason"], error
    assert len(transactions) == 1  # the three waited together and ran in one transaction
    with api.services.sessions() as session:
        rows = session.execute(select(Event.capture_id, ChainRecord.kind).join(ChainRecord)).all()
    kinds: dict[str, list[Kind]] = {}
    for capture_id, kind in rows:
        kinds.setdefault(capture_id, []).append(Kind(kind))
    assert kinds[made.json()["captureID"]] == [Kind.COMMISSION]
    assert kinds[shipped.json()["captureID"]] == [Kind.SHIP]
    api.settle()
    for accepted in (made, shipped):
        job = api.client.get(accepted.headers["Location"], headers=api.as_participant(maker)).json()
        assert job["status"] == "succeeded" and job["success"], job
    assert len(api.services.registry.recorded_events()) == 2
    assert count(api, Event) == 2


def test_the_same_document_sent_twice_at_once_is_captured_once(
    api: Api, parties: dict[str, dict[str, Any]], transactions: list[int]
) -> None:
    """Two clients send the same document at the same moment (a retry racing the original): both
    waited together, the second finds the first's events stored in the same transaction and
    answers with its job."""
    maker = parties["manufacturer"]
    first, second = send_together(api, [(maker, [commissioning()]), (maker, [commissioning()])])
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    assert first.json()["captureID"] == second.json()["captureID"]
    assert len(transactions) == 1
    api.settle()
    assert count(api, Event) == 1
    assert len(api.services.registry.recorded_events()) == 1


def test_a_refused_document_leaves_no_trace_in_its_group(
    api: Api, parties: dict[str, dict[str, Any]], transactions: list[int]
) -> None:
    """A carrier shipping what it does not hold is refused, between two documents of the maker that
    are captured: its savepoint is rolled back alone."""
    maker, carrier = parties["manufacturer"], parties["carrier"]
    other = "urn:epc:id:sgtin:6901234.067890.1002"
    stolen = object_event([ITEM], biz_step="shipping", at=T0 + timedelta(hours=1), destination=CARRIER_PARTY)
    before, refused, after = send_together(
        api, [(maker, [commissioning()]), (carrier, [stolen]), (maker, [commissioning(other)])]
    )
    assert before.status_code == after.status_code == 202
    assert refused.status_code == 400 and "NotCustodian" in refused.json()["errors"][0]["reason"]
    assert len(transactions) == 1
    api.settle()
    assert count(api, Event) == 2
    assert len(api.services.registry.recorded_events()) == 2
