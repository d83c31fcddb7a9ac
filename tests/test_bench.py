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
    "gas_per_event_journey",
    "gas_per_event_observation",
    "trace_p95_ms_1k",
    "trace_p95_ms_100k",
    "trace_p95_ms_1m",
    "trace_cold_p95_ms_1k",
    "trace_cold_p95_ms_1m",
    "trace_cold_p95_ms_10m",
    "demo_s",
    "ingest_events_per_s_200_clients",
    "ingest_errors_200_clients",
    "big_document_s",
    "big_document_peak_mb",
}
NOT_MEASURED_BY_QUICK = {
    "trace_p95_ms_100k",
    "trace_p95_ms_1m",
    "trace_cold_p95_ms_1m",
    "trace_cold_p95_ms_10m",
    # --quick runs 20 clients (its table row shows them), not 200.
    "ingest_events_per_s_200_clients",
    "ingest_errors_200_clients",
}
MEASURED_BY_QUICK = FIGURES - NOT_MEASURED_BY_QUICK


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
    for name in NOT_MEASURED_BY_QUICK:
        assert figures[name] is None, name
    assert "naive: one transaction per event" in finished.stdout  # the table came before it
    # The small many-clients run: every POST accepted at once, every job succeeded.
    assert "20 clients of 4 manufacturers: 400 events confirmed" in finished.stdout
    assert "0 errors (0 failed jobs)" in finished.stdout
