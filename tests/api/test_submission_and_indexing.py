"""The outbox and the indexer survive crashes, restarts and reorganisations without losing or
duplicating an event. The last tests run on a real anvil node and PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from sqlalchemy import func, select, update
from web3.types import Wei

from tracechain.chain.eip712 import EventSigner
from tracechain.chain.registry import Role
from tracechain.chain.trace_event import Kind, TraceEvent, subject_id
from tracechain.epcis.builders import object_event
from tracechain.indexer import Indexer
from tracechain.store.models import (
    Batch,
    BatchStatus,
    CaptureJob,
    ChainRecord,
    Participant,
    RecordStatus,
    SubjectState,
)
from tracechain.submission import Submitter

from .conftest import Api
from .test_capture import ITEM, OTHER_ITEM, T0, commissioning, journey


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


def test_a_refused_record_fails_its_job_naming_the_event_and_the_chain_reason(
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
        (failed,) = job.errors["events"]
        assert failed["eventID"].startswith("ni:///sha-256;") and ITEM in failed["reason"]
        # Nothing of it was recorded, so it is gone: the document can be captured again.
        assert session.scalar(select(func.count()).select_from(ChainRecord)) == 0
    again = api.capture(parties["manufacturer"], [commissioning()])
    assert again.status_code == 202 and again.json()["eventCount"] == 1
    api.settle()
    assert statuses(api) == [RecordStatus.CONFIRMED]


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


def test_an_unmined_transaction_is_sent_again_only_when_the_node_lost_it(
    real_api: Api, real_parties: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resending every round doubled the node's work; never resending would strand a transaction
    that a restarted node lost from its pool; resending only after 10 s made a node crash cost 10 s."""
    api, w3 = real_api, real_api.services.chain.w3
    submitter = api.services.submitter
    broadcasts: list[str] = []
    broadcast = submitter._broadcast

    def counted(tx_hash: str, raw_tx: bytes) -> None:
        broadcasts.append(tx_hash)
        broadcast(tx_hash, raw_tx)

    monkeypatch.setattr(submitter, "_broadcast", counted)

    def in_pool(tx_hash: str) -> bool:
        return w3.provider.make_request("eth_getTransactionByHash", [tx_hash])["result"] is not None  # type: ignore[arg-type]

    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        api.capture(real_parties["manufacturer"], [commissioning()])
        submitter.run_once()
        with api.services.sessions() as session:
            (tx_hash,) = session.scalars(select(Batch.tx_hash).where(Batch.status == BatchStatus.PREPARED))
        assert in_pool(tx_hash) and broadcasts == [tx_hash]
        monkeypatch.setattr("tracechain.submission.DROPPED_REBROADCAST_AFTER_S", 0.3)
        time.sleep(0.4)
        submitter.run_once()
        assert broadcasts == [tx_hash]  # the node holds it: not sent again before 10 s
        w3.provider.make_request("anvil_dropTransaction", [tx_hash])  # type: ignore[arg-type]
        submitter.run_once()
        assert in_pool(tx_hash) and broadcasts == [tx_hash, tx_hash]  # lost by the node: sent again
        submitter.run_once()
        assert broadcasts == [tx_hash, tx_hash]  # and not again each round
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


# ---------------------------------------------------------------- every transaction followed to finality


def _reorganise(api: Api, snapshot: str, depth: int) -> None:
    """The chain since `snapshot` (`depth` blocks) is replaced by a longer branch without them."""
    w3 = api.services.chain.w3
    assert w3.provider.make_request("evm_revert", [snapshot])["result"]  # type: ignore[arg-type]
    w3.provider.make_request("anvil_mine", [depth + 1])  # type: ignore[arg-type]


def _settle_until(api: Api, done: Any, rounds: int = 40) -> None:
    for _ in range(rounds):
        api.settle()
        api.services.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        if done():
            return
    raise AssertionError("did not settle")


@pytest.mark.parametrize(
    ("confirmations", "depth"),
    [(3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (0, 1), (0, 5)],
    ids=lambda value: str(value),
)
def test_a_transaction_whose_block_left_the_chain_is_sent_again_and_recorded_once(
    real_api: Api, real_parties: dict[str, Any], confirmations: int, depth: int
) -> None:
    """Mined, then gone (a reorganisation, a node that lost its last blocks): the outbox had marked
    the transaction mined and never looked again, so it and every later one waited forever."""
    api, w3 = real_api, real_api.services.chain.w3
    api.services.indexer.confirmations = confirmations
    api.services.submitter.finality_depth = confirmations + 12
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    api.capture(real_parties["manufacturer"], [commissioning()])
    api.settle()
    w3.provider.make_request("anvil_mine", [depth - 1])  # type: ignore[arg-type]  # now `depth` deep
    with api.services.sessions() as session:
        assert set(session.scalars(select(Batch.status))) == {BatchStatus.MINED}

    _reorganise(api, snapshot, depth)
    assert api.services.registry.recorded_events() == []

    _settle_until(api, lambda: statuses(api) == [RecordStatus.CONFIRMED])
    assert len(api.services.registry.recorded_events()) == 1
    assert api.client.get(f"/trace/{ITEM}").json()["verdict"] == "verified"


def test_a_role_grant_whose_block_left_the_chain_is_granted_again(real_api: Api) -> None:
    """Transactions without records (role grants, settlement payments) are followed too."""
    api, w3 = real_api, real_api.services.chain.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    carrier = api.create_participant("Carrier", ["carrier"], "urn:epc:id:pgln:5790001.00000", "DK")
    api.settle()
    assert api.services.registry.has_role(Role.CARRIER, carrier["address"])

    _reorganise(api, snapshot, 2)
    assert not api.services.registry.has_role(Role.CARRIER, carrier["address"])

    _settle_until(api, lambda: api.services.registry.has_role(Role.CARRIER, carrier["address"]))


def test_a_transaction_the_chain_will_never_fill_the_nonce_of_is_skipped_by_a_filler(real_api: Api) -> None:
    """A transaction lost with its record leaves its nonce empty, and every later one waits behind
    it: the gap is filled with an empty transfer."""
    api = real_api
    submitter = api.services.submitter
    receiver = to_checksum_address("0x" + "ab" * 20)
    with submitter.outbox() as session:
        lost = submitter.prepare_transfer(session, receiver, Wei(1))
        waiting = submitter.prepare_transfer(session, receiver, Wei(2))
        waiting_hash = waiting.tx_hash
        session.delete(lost)

    def waiting_status() -> BatchStatus:
        with api.services.sessions() as session:
            return session.scalars(select(Batch.status).where(Batch.tx_hash == waiting_hash)).one()

    # The chain can mine the waiting transfer in the round that sends the filler; the outbox reads
    # its receipt in a later round, so both are waited for.
    _settle_until(
        api,
        lambda: (
            api.services.chain.w3.eth.get_balance(receiver) == 2
            and waiting_status() in (BatchStatus.MINED, BatchStatus.FINAL)
        ),
    )


def test_a_refused_transaction_whose_block_left_the_chain_gives_its_nonce_back(real_api: Api) -> None:
    """A refused transaction is settled at once; when a reorganisation then removes its block, its
    nonce is free again and every later transaction waited behind it for good (make chaos: a
    reorganisation after a poisoned batch stranded 26 transactions)."""
    api, w3 = real_api, real_api.services.chain.w3
    submitter, registry = api.services.submitter, api.services.registry
    receiver = to_checksum_address("0x" + "ef" * 20)
    start = w3.eth.block_number
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    with submitter.outbox() as session:
        # OpenZeppelin refuses to renounce a role on someone else's behalf.
        refusing = registry.contract.functions.renounceRole(Role.CARRIER, receiver)
        refused = submitter.prepare_call(session, refusing).tx_hash

    def status_of(tx_hash: str) -> BatchStatus:
        with api.services.sessions() as session:
            return session.scalars(select(Batch.status).where(Batch.tx_hash == tx_hash)).one()

    _settle_until(api, lambda: status_of(refused) == BatchStatus.FAILED)
    _reorganise(api, snapshot, w3.eth.block_number - start)
    with submitter.outbox() as session:
        waiting = submitter.prepare_transfer(session, receiver, Wei(7)).tx_hash

    _settle_until(api, lambda: w3.eth.get_balance(receiver) == 7)
    assert status_of(waiting) in (BatchStatus.MINED, BatchStatus.FINAL)
    _settle_until(api, lambda: status_of(refused) == BatchStatus.FAILED)  # refused again, on the new branch


def test_a_transaction_whose_nonce_another_took_is_signed_again_with_a_free_one(
    real_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tracechain.submission.REPLACE_AFTER_S", 0.0)  # it waits 10 s to be sure
    api = real_api
    submitter, chain = api.services.submitter, api.services.chain
    receiver = to_checksum_address("0x" + "cd" * 20)
    with submitter.outbox() as session:
        stranded = submitter.prepare_transfer(session, receiver, Wei(5)).tx_hash
    # The relayer's key sends something else with that nonce first (the outbox never broadcast).
    nonce = chain.w3.eth.get_transaction_count(chain.relayer.address)
    other = {
        "to": chain.relayer.address,
        "value": 0,
        "gas": 21_000,
        "chainId": chain.chain_id,
        "nonce": nonce,
    }
    signed = chain.relayer.sign_transaction({**other, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
    chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_raw_transaction(signed.raw_transaction))

    _settle_until(api, lambda: chain.w3.eth.get_balance(receiver) == 5)
    with api.services.sessions() as session:
        assert (
            session.scalars(select(Batch.status).where(Batch.tx_hash == stranded)).one()
            == BatchStatus.REPLACED
        )


# ---------------------------------------------------------------- one refused record poisons nothing else


INSPECTED = object_event([ITEM], biz_step="inspecting", disposition="conformant", at=T0 + timedelta(days=1))


def _queued(api: Api, parties: dict[str, Any]) -> None:
    """A customs inspection of the item (on the item's chain of facts) and someone else's new
    product, queued together: they go out in one transaction."""
    other = api.create_participant("Other Maker", ["manufacturer"], "urn:epc:id:pgln:6901235.00000", "CN")
    api.capture(parties["manufacturer"], [commissioning()])
    api.settle()
    assert api.capture(parties["customs"], [INSPECTED]).status_code == 202
    assert api.capture(other, [commissioning(OTHER_ITEM)]).status_code == 202


def test_a_record_staled_by_a_direct_chain_write_fails_alone_and_its_subject_is_re_read(
    api: Api, parties: dict[str, Any]
) -> None:
    """The item's maker writes an event on the item's chain directly, mined before the service's
    batch: the inspection in that batch was signed over a head that is gone. Only the inspection
    fails (its job says why); the other participant's new product in the same batch is recorded;
    the item's projection is re-read from the chain; the same inspection captured again records."""
    registry = api.services.registry
    _queued(api, parties)
    maker_key = api.services.vault.decrypt(*_encrypted_key(api, parties["manufacturer"]))
    maker = EventSigner(maker_key, registry.domain)
    direct = maker.sign(
        TraceEvent(
            subject_id(ITEM),
            Kind.EXCURSION,
            b"\x0e" * 32,
            time=1,
            prev_head=registry.head_of(subject_id(ITEM)),
        )
    )
    registry.record([direct])

    api.settle()
    api.settle()

    with api.services.sessions() as session:
        jobs = {job.event_count: job for job in session.scalars(select(CaptureJob)) if job.status == "failed"}
    (failed,) = jobs.values()
    assert "TraceRegistryStaleHead" in failed.errors["reason"]  # type: ignore[index]
    assert registry.product_of(subject_id(OTHER_ITEM)).status.name == "ACTIVE"
    with api.services.sessions() as session:
        assert session.get(SubjectState, subject_id(ITEM)).head == registry.head_of(subject_id(ITEM))  # type: ignore[union-attr]
    inspected = object_event(
        [ITEM], biz_step="inspecting", disposition="conformant", at=T0 + timedelta(days=1)
    )
    again = api.capture(parties["customs"], [inspected])
    assert again.status_code == 202, again.text
    api.settle()
    assert registry.product_of(subject_id(ITEM)).cleared


def test_a_signed_event_copied_out_of_a_pending_batch_and_mined_first_poisons_nothing(
    api: Api, parties: dict[str, Any]
) -> None:
    """Anyone may relay a signed event: mined first by an account with no role, it made the
    service's batch revert and every record in it fail."""
    registry = api.services.registry
    _queued(api, parties)
    with api.services.sessions() as session:
        inspection = session.scalars(select(ChainRecord).where(ChainRecord.kind == Kind.INSPECT)).one()
        copied = inspection.signed_event()
    registry.record([copied])  # relayed by someone else

    api.settle()
    api.settle()

    assert statuses(api) == [RecordStatus.CONFIRMED] * 3
    with api.services.sessions() as session:
        assert {job.status for job in session.scalars(select(CaptureJob))} == {"succeeded"}
    assert registry.product_of(subject_id(OTHER_ITEM)).status.name == "ACTIVE"


def test_an_unsigned_capture_expires_naming_the_setting_and_frees_its_subject(
    api: Api, parties: dict[str, Any]
) -> None:
    from .test_client_signing import new_own_key_maker

    wallet = Account.create()
    own = new_own_key_maker(api, wallet)
    waiting = api.capture(own, [commissioning()]).json()
    assert waiting["status"] == "awaiting_signatures"
    api.services.submitter.signature_timeout = timedelta(0)

    api.settle()

    expired = api.client.get(f"/capture/{waiting['captureID']}", headers=api.as_participant(own)).json()
    assert expired["status"] == "failed"
    assert "TRACECHAIN_SIGNATURE_TIMEOUT_HOURS" in expired["errors"][0]["reason"]
    api.settle()  # the item's projection is re-read: it was never made
    made = api.capture(parties["manufacturer"], [commissioning()])
    assert made.status_code == 202, made.text
    api.settle()
    assert (
        api.services.registry.product_of(subject_id(ITEM)).manufacturer == parties["manufacturer"]["address"]
    )


def _encrypted_key(api: Api, participant: dict[str, Any]) -> tuple[bytes, str]:
    with api.services.sessions() as session:
        row = session.get(Participant, participant["id"])
        assert row is not None and row.encrypted_key is not None
        return row.encrypted_key, row.address
