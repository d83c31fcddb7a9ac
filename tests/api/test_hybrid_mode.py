"""The service in hybrid recording mode: facts go through record() (custody on chain, escrow on),
observations are anchored; each reporter's chain of observations lives wholly in anchors, and the
trace verifies both kinds of record."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain
from tracechain.chain.registry import Role
from tracechain.chain.trace_event import OBSERVATION_KINDS, ZERO_HASH, Kind, Status, subject_id
from tracechain.epcis.builders import object_event
from tracechain.store import queries
from tracechain.store.models import Batch, CaptureJob, ChainRecord, SubjectState
from tracechain.verification import verify_bundle

from ..conftest import temporary_database
from .conftest import Api, _cast, service_settings
from .test_capture import ITEM, PALLET, T0, commissioning, journey


@pytest.fixture(params=["sqlite", "postgresql"])
def hybrid_api(request: pytest.FixtureRequest, tmp_path: Path, tester_chain: Chain) -> Iterator[Api]:
    with contextlib.ExitStack() as stack:
        overrides: dict[str, Any] = {"recording_mode": "hybrid"}
        if request.param == "postgresql":
            overrides["database_url"] = stack.enter_context(temporary_database())
        app = create_app(service_settings(tmp_path, **overrides), chain=tester_chain, run_workers=False)
        yield Api(stack.enter_context(TestClient(app)))


def _storing(epc: str, hours: int) -> dict[str, Any]:
    """An observation: a bizStep with no custody effect."""
    return object_event([epc], biz_step="storing", at=T0 + timedelta(days=2, hours=hours))


@pytest.fixture
def travelled(hybrid_api: Api) -> tuple[Api, dict[str, dict[str, Any]]]:
    """The demo journey, with the carrier's storing scans of the pallet in two captures between."""
    parties = _cast(hybrid_api)
    journey(hybrid_api, parties)
    for hours in (1, 2):
        response = hybrid_api.capture(parties["carrier"], [_storing(PALLET, hours), _storing(ITEM, hours)])
        assert response.status_code == 202, response.text
    hybrid_api.settle()
    return hybrid_api, parties


def _records(api: Api) -> list[ChainRecord]:
    with api.services.sessions() as session:
        return list(session.scalars(select(ChainRecord).order_by(ChainRecord.id)))


def test_facts_are_recorded_and_observations_anchored_each_in_its_own_transactions(
    travelled: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    api, _ = travelled
    records = _records(api)
    observations = [r for r in records if r.kind in OBSERVATION_KINDS]
    facts = [r for r in records if r.kind not in OBSERVATION_KINDS]
    assert len(observations) == 4 and len(facts) == 8
    assert all(r.status == "confirmed" for r in records)
    assert all(r.anchor_root is not None and r.merkle_proof is not None for r in observations)
    assert all(r.anchor_root is None for r in facts)

    registry = api.services.registry
    recorded = {event.event_hash for event in registry.recorded_events()}
    assert {r.event_hash for r in facts} <= recorded
    assert not recorded & {r.event_hash for r in observations}
    for record in observations:
        proof = [bytes.fromhex(p[2:]) for p in record.merkle_proof or []]
        assert registry.verify_anchored(record.signed_event(), proof, record.anchor_root or b"")
    with api.services.sessions() as session:
        for batch in session.scalars(select(Batch)):
            carried = [r for r in records if r.batch_id == batch.id]
            assert len({r.anchor_root is None for r in carried}) <= 1  # never both in one transaction
    assert registry.has_role(Role.ANCHORER, api.services.chain.relayer.address)


def test_custody_stays_on_chain_so_escrow_runs_while_observation_chains_stay_off_it(
    travelled: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    api, parties = travelled
    registry = api.services.registry
    assert registry.product_of(subject_id(ITEM)).status is Status.SOLD
    assert api.services.settlement is not None
    carrier = parties["carrier"]["address"]
    first, second = [r for r in _records(api) if r.kind == Kind.OBSERVE and r.subject_epc == PALLET]
    assert first.prev_head == ZERO_HASH and second.prev_head == first.head  # one chain, across anchors
    assert registry.observation_head_of(subject_id(PALLET), carrier) == ZERO_HASH  # never recorded


def test_the_trace_verifies_recorded_and_anchored_events_alike(
    travelled: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    api, _ = travelled
    trace = api.client.get(f"/trace/{ITEM}").json()
    assert trace["verdict"] == "verified", trace["reasons"]
    assert len(trace["events"]) >= 6


def test_a_hybrid_bundle_carries_logs_and_anchors_and_verifies_against_the_chain(
    travelled: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    api, _ = travelled
    bundle = api.client.get(f"/trace/{ITEM}/proof").json()
    records = [record for event in bundle["events"] for record in event["records"]]
    anchored = [record for record in records if record.get("anchor")]
    assert anchored and len(anchored) < len(records)  # the item's scans anchored, its facts logged
    result = verify_bundle(bundle, api.services.chain.w3)
    assert result.problems == [] and all(check.problems == [] for check in result.records)
    assert result.verified and len(result.records) == len(records)


def test_a_refused_record_call_fails_its_fact_alone_while_the_rounds_observations_are_anchored(
    hybrid_api: Api,
) -> None:
    parties = _cast(hybrid_api)
    assert hybrid_api.capture(parties["manufacturer"], [commissioning()]).status_code == 202
    assert hybrid_api.capture(parties["carrier"], [_storing(ITEM, 1)]).status_code == 202
    with hybrid_api.services.sessions.begin() as session:  # the projection was wrong: a stale head
        session.execute(
            update(ChainRecord).where(ChainRecord.kind == Kind.COMMISSION).values(prev_head=b"\x07" * 32)
        )
    hybrid_api.settle()

    with hybrid_api.services.sessions() as session:
        jobs = {job.participant_id: job for job in session.scalars(select(CaptureJob))}
        records = list(session.scalars(select(ChainRecord)))
    assert sorted(job.status for job in jobs.values()) == ["failed", "succeeded"]
    (observation,) = records  # the refused commissioning is gone, so it can be captured again
    assert observation.kind == Kind.OBSERVE and observation.status == "confirmed" and observation.anchor_root


def test_a_stale_observation_chain_is_repaired_from_its_anchored_records_not_from_the_registry(
    travelled: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    """The registry never saw an anchored chain (its head there is zero): re-reading it from there
    would fork the chain at its next observation."""
    api, _ = travelled
    last = [r for r in _records(api) if r.kind == Kind.OBSERVE and r.subject_epc == PALLET][-1]
    with api.services.sessions.begin() as session:
        queries.mark_stale(session, [session.get(ChainRecord, last.id)])  # type: ignore[list-item]
        session.execute(
            SubjectState.__table__.update().values(head=ZERO_HASH).where(SubjectState.subject == last.chain)
        )
    with api.services.sessions.begin() as session:
        assert api.services.submitter.recovery.repair_stale(session) == 1
    with api.services.sessions() as session:
        state = session.get(SubjectState, last.chain)
        assert state is not None and state.head == last.head
