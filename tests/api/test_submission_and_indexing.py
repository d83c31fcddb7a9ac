"""The outbox and the indexer survive crashes, restarts and reorganisations without losing or
duplicating an event. The last tests run on a real anvil node and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from tracechain.indexer import Indexer
from tracechain.store.models import Batch, BatchStatus, CaptureJob, ChainRecord, RecordStatus
from tracechain.submission import Submitter

from .conftest import Api
from .test_capture import ITEM, OTHER_ITEM, commissioning, journey


def statuses(api: Api) -> list[str]:
    with api.services.sessions() as session:
        return list(session.scalars(select(ChainRecord.status).order_by(ChainRecord.id)))


def restarted_submitter(api: Api) -> Submitter:
    return Submitter(api.services.sessions, api.services.registry)


def test_a_batch_stored_but_never_broadcast_is_sent_after_a_restart(
    api: Api, parties: dict[str, Any]
) -> None:
    api.capture(parties["manufacturer"], [commissioning(), commissioning(OTHER_ITEM)])
    submitter = api.services.submitter
    with submitter.outbox() as session:  # the crash: stored and committed, then the process died
        submitter.prepare_records(session, session.scalars(select(ChainRecord)).all())
    assert api.services.registry.recorded_events() == []

    restarted = restarted_submitter(api)
    restarted.run_once()
    restarted.run_once()
    api.services.indexer.run_once()

    assert len(api.services.registry.recorded_events()) == 2
    assert statuses(api) == [RecordStatus.CONFIRMED] * 2


def test_a_batch_broadcast_but_not_marked_is_not_recorded_twice(api: Api, parties: dict[str, Any]) -> None:
    api.capture(parties["manufacturer"], [commissioning()])
    api.settle()
    with api.services.sessions() as session, session.begin():  # the crash: mined, but not yet marked
        session.execute(update(Batch).values(status=BatchStatus.PREPARED))

    restarted = restarted_submitter(api)
    restarted.run_once()
    restarted.run_once()

    assert len(api.services.registry.recorded_events()) == 1
    with api.services.sessions() as session:
        assert set(session.scalars(select(Batch.status))) == {BatchStatus.MINED}


def test_the_indexer_resumes_from_its_last_block_after_a_restart(api: Api, parties: dict[str, Any]) -> None:
    api.capture(parties["manufacturer"], [commissioning()])
    api.settle()
    api.capture(parties["manufacturer"], [commissioning(OTHER_ITEM)])
    api.services.submitter.run_once()
    api.services.submitter.run_once()

    restarted = Indexer(api.services.sessions, api.services.registry)
    assert restarted.run_once() == 1  # only the record it had not seen
    assert restarted.run_once() == 0
    assert statuses(api) == [RecordStatus.CONFIRMED] * 2


def test_records_wait_for_the_confirmation_depth(api: Api, parties: dict[str, Any]) -> None:
    indexer = api.services.indexer
    indexer.confirmations = 2
    api.capture(parties["manufacturer"], [commissioning()])
    api.services.submitter.run_once()
    api.services.submitter.run_once()
    assert indexer.run_once() == 0 and statuses(api) == [RecordStatus.SENT]
    api.services.chain.w3.provider.make_request("evm_mine", [1])  # type: ignore[arg-type]
    assert indexer.run_once() == 0 and statuses(api) == [RecordStatus.SENT]
    api.services.chain.w3.provider.make_request("evm_mine", [1])  # type: ignore[arg-type]
    assert indexer.run_once() == 1 and statuses(api) == [RecordStatus.CONFIRMED]


def test_a_failed_transaction_fails_its_capture_job_with_the_chain_reason(
    api: Api, parties: dict[str, Any]
) -> None:
    api.capture(parties["manufacturer"], [commissioning()])
    with api.services.sessions() as session, session.begin():  # the projection was wrong: a stale head
        session.execute(update(ChainRecord).values(prev_head=b"\x07" * 32))
    api.settle()
    with api.services.sessions() as session:
        (job,) = session.scalars(select(CaptureJob)).all()
        assert job.status == "failed"
        assert job.errors is not None and "TraceRegistryInvalidSignature" in job.errors["reason"]
        assert (
            session.scalar(
                select(func.count()).select_from(ChainRecord).where(ChainRecord.status == "failed")
            )
            == 1
        )


def test_a_reorganisation_unconfirms_and_resends_what_it_removed(
    real_api: Api, real_parties: dict[str, Any]
) -> None:
    api, w3 = real_api, real_api.services.chain.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    api.capture(real_parties["manufacturer"], [commissioning()])
    api.settle()
    assert statuses(api) == [RecordStatus.CONFIRMED]

    # The chain drops the block that held the record and grows past it on another branch.
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_mine", [5])  # type: ignore[arg-type]
    assert api.services.registry.recorded_events() == []  # the record's log went with its block
    api.services.indexer.run_once()
    assert statuses(api) == [RecordStatus.SENT]

    api.settle()
    api.services.indexer.run_once()
    assert statuses(api) == [RecordStatus.CONFIRMED]
    assert api.client.get(f"/trace/{ITEM}").json()["verdict"] == "verified"


def test_an_unmined_transaction_is_sent_again_only_after_a_while(
    real_api: Api, real_parties: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resending every round doubled the node's work; never resending would strand a transaction
    that a restarted node lost from its pool."""
    api, w3 = real_api, real_api.services.chain.w3
    submitter = api.services.submitter

    def in_pool(tx_hash: str) -> bool:
        return w3.provider.make_request("eth_getTransactionByHash", [tx_hash])["result"] is not None  # type: ignore[arg-type]

    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        api.capture(real_parties["manufacturer"], [commissioning()])
        submitter.run_once()
        with api.services.sessions() as session:
            (tx_hash,) = session.scalars(select(Batch.tx_hash).where(Batch.status == BatchStatus.PREPARED))
        assert in_pool(tx_hash)
        w3.provider.make_request("anvil_dropTransaction", [tx_hash])  # type: ignore[arg-type]
        submitter.run_once()
        assert not in_pool(tx_hash)  # broadcast a moment ago: not yet sent again
        monkeypatch.setattr("tracechain.submission.REBROADCAST_AFTER_S", 0.0)
        submitter.run_once()
        assert in_pool(tx_hash)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    api.settle()
    assert statuses(api) == [RecordStatus.CONFIRMED]


def test_a_journey_on_anvil_and_postgresql_is_verified(real_api: Api, real_parties: dict[str, Any]) -> None:
    journey(real_api, real_parties)
    trace = real_api.client.get(f"/trace/{ITEM}").json()
    assert trace["verdict"] == "verified", trace["reasons"]
    assert len(trace["events"]) == 8
