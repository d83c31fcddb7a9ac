"""`tracechain demo` records the journey and every event of its history verifies."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from tracechain.config import ChainMode, Settings
from tracechain.demo import run_demo


def test_the_demo_journey_is_recorded_and_verified(tmp_path: Path) -> None:
    output = io.StringIO()
    assert run_demo(Settings(chain=ChainMode.TESTER, data_dir=tmp_path), Console(file=output, width=120))
    printed = output.getvalue()
    for step in ("origin: made in Shenzhen", "packed on a pallet", "cleared by customs in Rotterdam", "sold"):
        assert step in printed
    assert printed.count("│ yes") == 8
    assert "verdict: verified" in printed
