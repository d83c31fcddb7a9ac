"""README's path runs as written: `make demo`, then the curl session and the settlement session that
continues it, in the same folder, by bash, against `tracechain serve` on a managed anvil node. A step
the service refuses stops the run (`set -e`; `key` exits on an answer without an API key)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def sh_block_after(marker: str) -> str:
    """The first ```sh block after `marker` in README."""
    found = re.search(re.escape(marker) + r".*?```sh\n(.*?)```", README, re.DOTALL)
    assert found, f"README has no sh block after {marker!r}"
    return found.group(1)


@pytest.mark.anvil
def test_make_demo_then_the_curl_and_settlement_sessions_run_as_written(tmp_path: Path) -> None:
    """A new user's path: the Quick start's `make demo`, then the curl session in the same folder
    (where the demo left its parties, data and secrets), then the settlement session."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRACECHAIN_")} | {
        "TMPDIR": str(tmp_path),  # where the session's `mktemp -d` data folder goes
        "TRACECHAIN_PORT": str(free_port()),
        "TRACECHAIN_ANVIL_PORT": str(free_port()),
    }
    assert "make demo" in sh_block_after("## Quick start")
    demo = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "demo"],
        env=environment | {"TRACECHAIN_DATA_DIR": str(tmp_path / ".tracechain")},  # as if run here
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "verdict: verified" in demo.stdout

    script = (
        "set -eu\n"
        + sh_block_after("### A session with curl")
        + sh_block_after("Continuing the curl session")
    )
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # the session's commands name .venv/bin/tracechain
    session = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        printed, _ = session.communicate(timeout=420)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
    assert session.returncode == 0, printed[-4000:]

    answers = json_answers(printed)
    assert any(a.get("captureID") and a["success"] for a in answers)  # step 2's capture job
    traced = {a["epc"]: a["verdict"] for a in answers if "verdict" in a}
    assert traced["urn:epc:id:sgtin:6901234.067890.1001"] == "verified"  # step 4
    orders = [a for a in answers if "orderId" in a]
    assert orders[-1]["state"] == "closed" and Decimal(orders[-1]["paid"]) == 5000  # step 7
    assert any(Decimal(a.get("balance", 0)) == 5000 for a in answers)  # the maker was paid
    assert traced["urn:epc:id:sgtin:6901234.067890.1002"] == "verified"
    assert "Traceback" not in printed and "INFO" not in printed  # the service's log stays quiet


def json_answers(printed: str) -> list[dict[str, Any]]:
    """The JSON objects curl printed, in order (curl adds no newline, so they run into each other)."""
    decoder, answers, at = json.JSONDecoder(), [], printed.find("{")
    while at != -1:
        try:
            answer, end = decoder.raw_decode(printed, at)
        except json.JSONDecodeError:
            at = printed.find("{", at + 1)
            continue
        if isinstance(answer, dict):
            answers.append(answer)
        at = printed.find("{", end)
    return answers
