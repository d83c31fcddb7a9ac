"""`scripts/chaos.py --quick` against real serve, work, anvil and PostgreSQL processes: a worker killed
mid-stream, a reorganisation under confirmations, a poisoned batch, an own-key capture never
signed, 50 concurrent clients. Unlike the benchmark's figures, these are verdicts: nothing accepted
may be lost, recorded twice or left stuck, and the pipeline must recover. How fast it recovers
(10 s is the target) is `make chaos`'s figure, measured on a quiet machine, not asserted here where
other tests share the cores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.anvil
def test_quick_chaos_loses_duplicates_and_strands_nothing() -> None:
    finished = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chaos.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
    )
    output = finished.stdout[-6000:] + finished.stderr[-3000:]
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    assert (figures["lost"], figures["duplicated"], figures["stuck"], figures["unexpected_5xx"]) == (
        0,
        0,
        0,
        0,
    ), output
    assert figures["all_correct"], output
    assert figures["max_recovery_s"] is not None, output
    assert figures["scenarios"] == 5
