"""The service in merkle recording mode: a journey's events are anchored as Merkle roots, custody is
still enforced at capture, the trace verifies each event by its inclusion proof, tampered rows and
bundles are caught, and `tracechain verify` checks a bundle against the chain, verifyAnchored included."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain
from tracechain.chain.registry import Role
from tracechain.chain.trace_event import Status, subject_id
from tracechain.config import ChainMode
from tracechain.store.models import Batch, ChainRecord
from tracechain.verification import verify_bundle

from .conftest import Api, _cast, service_settings
from .test_capture import ITEM, PALLET, T0, journey, object_event
from .test_proof import SHOWN, TRACECHAIN, built_bundle


@pytest.fixture
def merkle_api(tmp_path: Path, tester_chain: Chain) -> Iterator[Api]:
    settings = service_settings(tmp_path, recording_mode="merkle")
    with TestClient(create_app(settings, chain=tester_chain, run_workers=False)) as client:
        yield Api(client)


@pytest.fixture
def travelled(merkle_api: Api) -> Api:
    """The demo journey captured in merkle mode and settled: seven captures, anchored."""
    journey(merkle_api, _cast(merkle_api))
    return merkle_api


def _records(api: Api) -> list[ChainRecord]:
    with api.services.sessions() as session:
        return list(session.scalars(select(ChainRecord).order_by(ChainRecord.id)))


def test_a_journey_is_anchored_and_its_trace_verified(travelled: Api) -> None:
    registry = travelled.services.registry
    records = _records(travelled)
    assert len(records) == 8 and all(r.status == "confirmed" and r.anchor_root for r in records)
    for record in records:
        anchor = registry.anchor_of(record.anchor_root or b"")
        assert anchor.block_number == record.block_number and anchor.count >= 1
        proof = [bytes.fromhex(p[2:]) for p in record.merkle_proof or []]
        assert registry.verify_anchored(record.signed_event(), proof, record.anchor_root or b"")

    trace = travelled.client.get(f"/trace/{ITEM}").json()
    assert trace["verdict"] == "verified", trace["reasons"]
    assert all(e["verification"]["anchorProofValid"] for e in trace["events"])
    assert registry.has_role(Role.ANCHORER, travelled.services.chain.relayer.address)


def test_anchored_events_leave_custody_on_chain_untouched_and_settlement_off(travelled: Api) -> None:
    for epc in (ITEM, PALLET):
        state = travelled.services.registry.product_of(subject_id(epc))
        assert state.status is Status.UNKNOWN
    assert travelled.services.settlement is None
    refused = travelled.client.get("/settlement")
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    assert "escrow needs batched" in refused.json()["detail"]


def test_each_anchor_goes_through_the_outbox_one_transaction_per_batch(travelled: Api) -> None:
    with travelled.services.sessions() as session:
        batches = {b.id: b for b in session.scalars(select(Batch))}
    records = _records(travelled)
    roots_by_batch: dict[int, set[bytes]] = {}
    for record in records:
        assert record.batch_id in batches and batches[record.batch_id].status == "mined"
        roots_by_batch.setdefault(record.batch_id, set()).add(record.anchor_root or b"")
    assert all(len(roots) == 1 for roots in roots_by_batch.values())


def test_custody_is_still_enforced_before_anything_is_anchored(merkle_api: Api) -> None:
    parties = _cast(merkle_api)
    journey(merkle_api, parties)
    # The retailer received the pallet and holds it; the carrier cannot ship it again.
    response = merkle_api.capture(
        parties["carrier"],
        [
            object_event(
                [PALLET],
                biz_step="shipping",
                at=T0 + timedelta(days=40),
                destination="urn:epc:id:pgln:6901234.00000",
            )
        ],
    )
    assert response.status_code == 400
    assert "TraceRegistryNotCustodian" in response.text


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"merkle_proof": ["0x" + "44" * 32]}, id="proof"),
        pytest.param({"anchor_root": b"\x05" * 32}, id="root"),
        pytest.param({"time": 1}, id="signed field"),
        pytest.param({"r": b"\x04" * 32}, id="signature"),
    ],
)
def test_editing_an_anchored_record_turns_the_verdict_to_tampered(
    travelled: Api, values: dict[str, Any]
) -> None:
    with travelled.services.sessions() as session, session.begin():
        record_id = session.scalars(select(ChainRecord.id).order_by(ChainRecord.id)).first()
        session.execute(update(ChainRecord).where(ChainRecord.id == record_id).values(**values))
    trace = travelled.client.get(f"/trace/{ITEM}").json()
    assert trace["verdict"] == "tampered"


# ---------------------------------------------------------------- proof bundles


@pytest.fixture
def bundle(travelled: Api) -> dict[str, Any]:
    downloaded: dict[str, Any] = travelled.client.get(f"/trace/{ITEM}/proof").json()
    return downloaded


def test_a_merkle_bundle_carries_roots_and_proofs_and_verifies(
    travelled: Api, bundle: dict[str, Any]
) -> None:
    records = [record for event in bundle["events"] for record in event["records"]]
    assert all(record["anchor"]["root"] and record["transaction"] for record in records)
    result = verify_bundle(bundle, travelled.services.chain.w3)
    assert result.problems == [] and all(check.problems == [] for check in result.records)
    assert result.verified and len(result.records) == 8


def test_a_partial_merkle_bundle_verifies_by_its_anchors_and_names_a_changed_field(travelled: Api) -> None:
    partial = built_bundle(travelled, lambda entry: SHOWN)
    records = [record for event in partial["events"] for record in event["records"]]
    assert records and all(record["anchor"]["root"] for record in records)
    result = verify_bundle(partial, travelled.services.chain.w3)
    assert result.verified, [check.problems for check in result.records]
    assert all("#hashId" in check.withheld for check in result.records)

    bizstep = next(f for f in partial["events"][1]["fields"] if f["name"] == "bizStep")
    bizstep["value"] = "destroying"
    tampered = verify_bundle(partial, travelled.services.chain.w3)
    assert not tampered.verified
    problems = [problem for check in tampered.records for problem in check.problems]
    assert "disclosed field bizStep does not lead to the field root" in problems


def _anchor(bundle: dict[str, Any]) -> dict[str, Any]:
    anchor: dict[str, Any] = bundle["events"][0]["records"][0]["anchor"]
    return anchor


TAMPERINGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "proof": (lambda b: _anchor(b).update(proof=["0x" + "55" * 32]), "inclusion proof"),
    "root": (lambda b: _anchor(b).update(root="0x" + "66" * 32), "anchor root differs"),
    "signed field": (lambda b: b["events"][0]["records"][0].update(time=1), "verifyAnchored refuses"),
    "log index": (lambda b: b["events"][0]["records"][0].update(logIndex=99), "no BatchAnchored log"),
    "missing event": (lambda b: b["events"].pop(0), "missing or reordered"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_tampered_merkle_bundle_fails_naming_what_was_wrong(
    travelled: Api, bundle: dict[str, Any], name: str
) -> None:
    tamper, reason = TAMPERINGS[name]
    tampered = copy.deepcopy(bundle)
    tamper(tampered)
    result = verify_bundle(tampered, travelled.services.chain.w3)
    assert not result.verified
    found = result.every_problem
    assert any(reason in problem for problem in found), found


def test_the_verify_command_checks_a_merkle_bundle_on_anvil(
    tmp_path: Path, anvil_chain: Chain, anvil_node: Any, postgres_url: str
) -> None:
    settings = service_settings(
        tmp_path,
        database_url=postgres_url,
        chain=ChainMode.RPC,
        rpc_url="http://unused",
        recording_mode="merkle",
    )
    with TestClient(create_app(settings, chain=anvil_chain, run_workers=False)) as client:
        api = Api(client)
        journey(api, _cast(api))
        path = tmp_path / "bundle.json"
        path.write_text(client.get(f"/trace/{ITEM}/proof").text)
        partial_path = tmp_path / "partial.json"
        partial_path.write_text(json.dumps(built_bundle(api, lambda entry: SHOWN)))

    good = subprocess.run(
        [TRACECHAIN, "verify", str(path), "--rpc", anvil_node.url], capture_output=True, text=True
    )
    assert good.returncode == 0, good.stdout + good.stderr
    wide = {**os.environ, "COLUMNS": "400"}
    partial = subprocess.run(
        [TRACECHAIN, "verify", str(partial_path), "--rpc", anvil_node.url],
        capture_output=True,
        text=True,
        env=wide,
    )
    assert partial.returncode == 0, partial.stdout + partial.stderr
    assert "withheld fields" in partial.stdout and "#context, #hashId, action" in partial.stdout

    bundle = json.loads(path.read_text())
    bundle["events"][2]["records"][0]["anchor"]["proof"] = ["0x" + "77" * 32]
    path.write_text(json.dumps(bundle))
    bad = subprocess.run(
        [TRACECHAIN, "verify", str(path), "--rpc", anvil_node.url], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "inclusion proof" in bad.stdout and "NOT verified" in bad.stdout
