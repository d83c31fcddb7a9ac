"""Proof bundles: downloaded from the API, verified against the chain alone; every tampered copy fails
with a reason naming what was wrong."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tracechain.chain.trace_event import subject_id
from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.proof import Disclose, proof_bundle
from tracechain.store.models import Event
from tracechain.trace import TraceEntry, build_trace
from tracechain.verification import verify_bundle

from .conftest import Api
from .test_capture import ITEM, OTHER_ITEM, PALLET, T0, journey

TRACECHAIN = str(Path(sys.executable).parent / "tracechain")


@pytest.fixture
def bundle(api: Api, parties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    journey(api, parties)
    response = api.admin("GET", f"/trace/{ITEM}/proof")  # every event in full: the operator's bundle
    assert response.status_code == 200
    downloaded: dict[str, Any] = response.json()
    return downloaded


def test_a_downloaded_bundle_verifies_against_the_chain(api: Api, bundle: dict[str, Any]) -> None:
    assert bundle["chain"]["registry"] == api.services.registry.address
    assert bundle["contracts"]["compiler"].startswith("solc 0.8.28")
    result = verify_bundle(bundle, api.services.chain.w3)
    assert result.problems == [] and all(check.problems == [] for check in result.records)
    assert result.verified and len(result.records) == 8


def _first_record(bundle: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = bundle["events"][0]["records"][0]
    return record


def _set(
    path: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any
) -> Callable[[dict[str, Any]], None]:
    def tamper(bundle: dict[str, Any]) -> None:
        path(bundle)[key] = value

    return tamper


def _flip_hex(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


TAMPERINGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "event content": (
        lambda b: b["events"][0]["event"].update(eventTime="2026-10-01T09:00:00+00:00"),
        "content hashes to",
    ),
    "event id": (lambda b: b["events"][0].update(eventID=b["events"][1]["eventID"]), "content hashes to"),
    "event hash": (
        lambda b: _first_record(b).update(eventHash=_flip_hex(_first_record(b)["eventHash"])),
        "not the commitment to the event's fields",
    ),
    "disclosure seed": (
        lambda b: b["events"][0].update(seed=_flip_hex(b["events"][0]["seed"])),
        "not the commitment to the event's fields",
    ),
    "seed left out": (lambda b: b["events"][0].pop("seed"), "no disclosure seed"),
    "signer": (
        _set(_first_record, "signer", "0x000000000000000000000000000000000000dEaD"),
        "does not recover",
    ),
    "signature": (
        lambda b: _first_record(b)["signature"].update(r=_flip_hex(_first_record(b)["signature"]["r"])),
        "does not recover",
    ),
    "previous head": (lambda b: _first_record(b).update(prevHead="0x" + "11" * 32), "keccak256(prevHead"),
    "head": (lambda b: _first_record(b).update(head="0x" + "22" * 32), "keccak256(prevHead"),
    "counterpart": (
        _set(_first_record, "counterpart", "0x000000000000000000000000000000000000dEaD"),
        "recover",
    ),
    "time": (_set(_first_record, "time", 1), "does not recover"),
    "kind": (_set(_first_record, "kind", "observe"), "kind differs"),
    "transaction": (_set(_first_record, "transaction", "0x" + "33" * 32), "no EventRecorded log"),
    "log index": (_set(_first_record, "logIndex", 99), "no EventRecorded log"),
    "block": (_set(_first_record, "block", 1), "block differs"),
    "missing event": (lambda b: b["events"].pop(0), "missing or reordered"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_tampered_bundle_fails_naming_what_was_wrong(api: Api, bundle: dict[str, Any], name: str) -> None:
    tamper, reason = TAMPERINGS[name]
    tampered = copy.deepcopy(bundle)
    tamper(tampered)
    result = verify_bundle(tampered, api.services.chain.w3)
    assert not result.verified
    found = result.every_problem
    assert any(reason in problem for problem in found), found


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("chainId", 1, "the bundle claims chain 1"),
        ("registry", "0x000000000000000000000000000000000000dEaD", "no contract"),
    ],
)
def test_a_bundle_for_another_chain_or_contract_fails(
    api: Api, bundle: dict[str, Any], field: str, value: Any, reason: str
) -> None:
    bundle["chain"][field] = value
    result = verify_bundle(bundle, api.services.chain.w3)
    assert not result.verified and any(reason in problem for problem in result.problems)


def test_the_verify_command_checks_a_bundle_from_the_service_on_anvil(
    real_api: Api, real_parties: dict[str, dict[str, Any]], tmp_path: Path, anvil_node: Any
) -> None:
    journey(real_api, real_parties)
    path = tmp_path / "bundle.json"
    path.write_text(real_api.admin("GET", f"/trace/{ITEM}/proof").text)

    good = subprocess.run(
        [TRACECHAIN, "verify", str(path), "--rpc", anvil_node.url], capture_output=True, text=True
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.count("verified") >= 8

    bundle = json.loads(path.read_text())
    bundle["events"][2]["records"][0]["signer"] = "0x000000000000000000000000000000000000dEaD"
    path.write_text(json.dumps(bundle))
    bad = subprocess.run(
        [TRACECHAIN, "verify", str(path), "--rpc", anvil_node.url], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "does not recover" in bad.stdout and "NOT verified" in bad.stdout


# ---------------------------------------------------------------- partial bundles

SHOWN = {"type", "eventTime", "bizStep", "readPoint"}
ORDER_NUMBER = "urn:epcglobal:cbv:bt:6901234000003:PO-CONFIDENTIAL-4711"
CARRIER_PARTY = "urn:epc:id:pgln:5790001.00000"
SITE = "urn:epc:id:sgln:6901234.00001.0"


def made(epc: str) -> dict[str, Any]:
    return object_event(
        [epc], biz_step="commissioning", action="ADD", disposition="active", at=T0, location=SITE
    )


def traded_journey(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    """ITEM and OTHER_ITEM made and packed on one pallet, shipped against an order, received."""
    day = timedelta(days=1)
    shipped = object_event(
        [PALLET], biz_step="shipping", at=T0 + day, destination=CARRIER_PARTY, location=SITE
    )
    shipped["bizTransactionList"] = [{"type": "po", "bizTransaction": ORDER_NUMBER}]
    steps = [
        (
            "manufacturer",
            [
                made(ITEM),
                made(OTHER_ITEM),
                aggregation_event(PALLET, [ITEM, OTHER_ITEM], at=T0 + day / 4),
            ],
        ),
        ("manufacturer", [shipped]),
        ("carrier", [object_event([PALLET], biz_step="receiving", at=T0 + 2 * day)]),
    ]
    for party, events in steps:
        response = api.capture(parties[party], events)
        assert response.status_code == 202, response.text
    api.settle()


def built_bundle(api: Api, disclose: Disclose | None) -> dict[str, Any]:
    """A bundle as the service would serve it, read back from JSON as a verifier reads it."""
    with api.services.sessions() as session:
        trace = build_trace(session, ITEM, api.services.registry.domain)
        built = proof_bundle(trace, api.services.registry.domain, disclose)
    copied: dict[str, Any] = json.loads(json.dumps(built))
    return copied


@pytest.fixture
def partial(api: Api, parties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    traded_journey(api, parties)
    return built_bundle(api, lambda entry: SHOWN)


def test_a_partial_bundle_verifies_and_says_which_fields_it_withheld(
    api: Api, partial: dict[str, Any]
) -> None:
    assert partial["format"] == "tracechain-proof/2" and partial["disclosure"] == "partial"
    result = verify_bundle(partial, api.services.chain.w3)
    assert result.every_problem == [] and result.verified
    shipping = [check for check in result.records if check.biz_step == "shipping"]
    assert shipping and all("bizTransactionList" in check.withheld for check in shipping)
    assert all("destinationList" in check.withheld for check in shipping)
    assert all(check.event_id is None and "#hashId" in check.withheld for check in result.records)
    for entry in partial["events"]:
        assert {"event", "context", "seed", "eventID"}.isdisjoint(entry)
        shown = {field["name"] for field in entry["fields"] if "value" in field}
        assert shown == SHOWN & {field["name"] for field in entry["fields"]}


def test_a_partial_bundle_holds_none_of_the_withheld_values_nor_the_goods_packed_beside(
    partial: dict[str, Any], api: Api
) -> None:
    text = json.dumps(partial)
    full = json.dumps(built_bundle(api, None))
    assert ORDER_NUMBER in full and OTHER_ITEM in full and CARRIER_PARTY in full
    for secret in ("PO-CONFIDENTIAL-4711", OTHER_ITEM, subject_id(OTHER_ITEM).hex(), CARRIER_PARTY):
        assert secret not in text, secret


def _partial_field(bundle: dict[str, Any], name: str, event: int = 0) -> dict[str, Any]:
    field: dict[str, Any] = next(f for f in bundle["events"][event]["fields"] if f["name"] == name)
    return field


def _shipping(bundle: dict[str, Any]) -> int:
    return next(
        index
        for index, entry in enumerate(bundle["events"])
        if any(f.get("value") == "shipping" for f in entry["fields"])
    )


PARTIAL_TAMPERINGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a disclosed value": (
        lambda b: _partial_field(b, "bizStep").update(value="receiving"),
        "disclosed field bizStep does not lead to the field root",
    ),
    "a disclosed salt": (
        lambda b: _partial_field(b, "eventTime").update(
            salt=_flip_hex(_partial_field(b, "eventTime")["salt"])
        ),
        "disclosed field eventTime does not lead to the field root",
    ),
    "a proof sibling": (
        lambda b: _partial_field(b, "type")["proof"].__setitem__(
            0, _flip_hex(_partial_field(b, "type")["proof"][0])
        ),
        "disclosed field type does not lead to the field root",
    ),
    "a withheld value hash": (
        lambda b: _partial_field(b, "bizTransactionList", _shipping(b)).update(
            valueHash=_flip_hex(_partial_field(b, "bizTransactionList", _shipping(b))["valueHash"])
        ),
        "withheld field bizTransactionList does not lead to the field root",
    ),
    "a dropped field": (
        lambda b: b["events"][0]["fields"].remove(_partial_field(b, "epcList")),
        "fields, the event has",
    ),
    "a dropped field and a lowered count": (
        lambda b: (
            b["events"][0]["fields"].remove(_partial_field(b, "epcList")),
            b["events"][0].update(fieldCount=b["events"][0]["fieldCount"] - 1),
        ),
        "not the commitment to the event's fields",
    ),
    "the field root": (
        lambda b: b["events"][0].update(fieldRoot=_flip_hex(b["events"][0]["fieldRoot"])),
        "does not lead to the field root",
    ),
    "an eventID the fields do not show": (
        lambda b: b["events"][0].update(eventID="ni:///sha-256;" + "00" * 32 + "?ver=CBV2.0"),
        "the eventID is not the disclosed #hashId",
    ),
    "the signer": (
        _set(lambda b: b["events"][0]["records"][0], "signer", "0x000000000000000000000000000000000000dEaD"),
        "does not recover",
    ),
    "a missing event": (lambda b: b["events"].pop(0), "missing or reordered"),
}


@pytest.mark.parametrize("name", list(PARTIAL_TAMPERINGS))
def test_a_tampered_partial_bundle_fails_naming_what_was_wrong(
    api: Api, partial: dict[str, Any], name: str
) -> None:
    tamper, reason = PARTIAL_TAMPERINGS[name]
    tampered = copy.deepcopy(partial)
    tamper(tampered)
    result = verify_bundle(tampered, api.services.chain.w3)
    assert not result.verified
    assert any(reason in problem for problem in result.every_problem), result.every_problem


def test_a_partial_bundle_can_show_some_events_whole(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    traded_journey(api, parties)
    bundle = built_bundle(api, lambda entry: None if entry.event.biz_step == "commissioning" else SHOWN)
    assert [("event" in entry) for entry in bundle["events"]].count(True) == 1  # ITEM's own commissioning
    result = verify_bundle(bundle, api.services.chain.w3)
    assert result.every_problem == [] and result.verified
    assert all(check.withheld == [] for check in result.records if check.biz_step == "commissioning")


def test_a_full_bundle_names_every_event_and_withholds_nothing(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    traded_journey(api, parties)
    bundle = built_bundle(api, None)
    assert bundle["disclosure"] == "full"
    result = verify_bundle(bundle, api.services.chain.w3)
    assert result.verified and all(check.withheld == [] and check.event_id for check in result.records)


@pytest.mark.parametrize(
    "show_withdrawn_id", [True, False], ids=["its hash id shown", "its hash id withheld"]
)
def test_a_withdrawal_in_a_partial_bundle_links_to_its_capture_when_its_hash_id_is_shown(
    api: Api, parties: dict[str, dict[str, Any]], show_withdrawn_id: bool
) -> None:
    traded_journey(api, parties)
    with api.services.sessions() as session:
        (shipped,) = [
            event.body for event in session.scalars(select(Event)) if event.body.get("bizStep") == "shipping"
        ]
    declared = {
        **shipped,
        "errorDeclaration": {"declarationTime": "2026-11-20T10:00:00Z", "reason": "did_not_occur"},
    }
    assert api.capture(parties["manufacturer"], [declared]).status_code == 202
    api.settle()

    def disclose(entry: TraceEntry) -> set[str]:
        return SHOWN | {"#hashId"} if entry.withdrawn_by and show_withdrawn_id else SHOWN

    bundle = built_bundle(api, disclose)
    assert any("errorDeclaration" in entry for entry in bundle["events"])
    result = verify_bundle(bundle, api.services.chain.w3)
    assert result.every_problem == [] and result.verified
    notes = [note for check in result.records for note in check.notes]
    if show_withdrawn_id:
        assert notes == []
    else:
        assert notes and all("cannot be checked" in note for note in notes)
    if show_withdrawn_id:  # the id shown is the one committed to, not any the bundle likes
        (hash_id,) = [
            field
            for entry in bundle["events"]
            for field in entry.get("fields", [])
            if "value" in field and field["name"] == "#hashId"
        ]
        hash_id["value"] = "ni:///sha-256;" + "00" * 32 + "?ver=CBV2.0"
        failed = verify_bundle(bundle, api.services.chain.w3)
        assert any(
            "disclosed field #hashId does not lead to the field root" in p for p in failed.every_problem
        )
