"""`tracechain demo` records the journey through the HTTP API, and every event of it verifies."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode
from tracechain.config import ChainMode, Settings
from tracechain.demo import run_demo


def test_the_demo_journey_is_recorded_through_the_api_and_verified(
    tmp_path: Path, anvil_node: AnvilNode
) -> None:
    settings = Settings(
        chain=ChainMode.RPC,
        rpc_url=anvil_node.url,
        relayer_key=ANVIL_DEV_KEY,
        data_dir=tmp_path,
        poll_interval=0.05,
    )
    output = io.StringIO()
    assert run_demo(settings, Console(file=output, width=140))
    printed = output.getvalue()
    for step in ("Produced", "Packed onto pallet", "Inspected: cleared", "Received", "Sold"):
        assert step in printed, step
    assert printed.count("│ yes") == 8 and "verdict: verified" in printed
    link = "http://127.0.0.1:8000/01/06901234678901/21/"
    assert f"Consumer page: run make serve and open {link}" in printed

    # A second run finds its parties again (their API keys kept in the data folder) and adds a product.
    assert run_demo(settings, Console(file=io.StringIO(), width=140))
