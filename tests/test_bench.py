"""`make bench --quick` runs end to end, so the benchmark cannot rot; its figures are not judged here
(speed is measured by `make bench`, not asserted in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {
    "naive_events_per_s",
    "batched_events_per_s",
    "merkle_events_per_s",
    "speedup_vs_naive",
    "gas_single",
    "gas_per_event_batched",
    "gas_per_event_merkle",
    "trace_p95_ms_1k",
    "trace_p95_ms_100k",
    "trace_p95_ms_1m",
    "demo_s",
    "big_document_s",
    "big_document_peak_mb",
}
MEASURED_BY_QUICK = FIGURES - {"trace_p95_ms_100k", "trace_p95_ms_1m"}


@pytest.mark.anvil
def test_quick_bench_prints_every_figure_as_its_last_line() -> None:
    finished = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    assert set(figures) == FIGURES
    for name in MEASURED_BY_QUICK:
        assert isinstance(figures[name], int | float) and figures[name] > 0, name
    assert figures["trace_p95_ms_100k"] is None and figures["trace_p95_ms_1m"] is None
    assert "naive: one transaction per event" in finished.stdout  # the table came before it
