"""Proof bundles: downloaded from the API, verified against the chain alone; every tampered copy fails
with a reason naming what was wrong."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tracechain.verification import verify_bundle

from .conftest import Api
from .test_capture import ITEM, journey

TRACECHAIN = str(Path(sys.executable).parent / "tracechain")


@pytest.fixture
def bundle(api: Api, parties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    journey(api, parties)
    response = api.client.get(f"/trace/{ITEM}/proof")
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
    found = result.problems + [problem for check in result.records for problem in check.problems]
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
    path.write_text(real_api.client.get(f"/trace/{ITEM}/proof").text)

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
