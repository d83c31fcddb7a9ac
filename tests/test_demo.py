"""`tracechain demo` runs the scenario through the HTTP API: the product's history verifies and the
three orders settle as the story says, shown in its tables."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from web3 import HTTPProvider, Web3

from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode
from tracechain.config import ChainMode, Settings
from tracechain.demo import run_demo
from tracechain.demo.client import served
from tracechain.verification import verify_bundle

from .conftest import free_port
from .nodes.hardhat_network import HARDHAT_DEV_KEY, HardhatNetworkNode

Tamper = Callable[[dict[str, Any]], None]

COMMERCIAL = (
    "PO-",
    "BOL-",
    "urn:epcglobal:cbv:bt:",
    "dUSD",
    "10000.0",
    "10,000",
    "amount",
    "milestone",
    "penalt",
    "30%",
)


def row(*cells: str) -> re.Pattern[str]:
    """A table row holding these cells in order, however rich pads them."""
    return re.compile(r"│\s*" + r"\s*│\s*".join(re.escape(cell) for cell in cells) + r"\s*│")


def unruled_row(*cells: str) -> re.Pattern[str]:
    """A row of a table drawn without vertical rules (the orders), from its first cell: cells two or
    more spaces apart."""
    return re.compile(r"^ *" + r" {2,}".join(re.escape(cell) for cell in cells) + r"(?: |$)", re.MULTILINE)


def test_the_demo_records_the_journey_and_settles_three_orders(tmp_path: Path, anvil_node: AnvilNode) -> None:
    settings = Settings(
        chain=ChainMode.RPC,
        rpc_url=anvil_node.url,
        relayer_key=ANVIL_DEV_KEY,
        data_dir=tmp_path,
        poll_interval=0.05,
        port=free_port(),  # TRACECHAIN_PORT: the demo serves there and its links point there
    )
    output = io.StringIO()
    assert run_demo(settings, Console(file=output, width=200))
    printed = output.getvalue()
    assert_the_story_is_told(printed)
    link = f"http://127.0.0.1:{settings.port}/01/06901234678901/21/"
    assert f"Consumer page (anyone, no key): run make serve and open {link}" in printed

    # Who sees what: the consumer sees custody facts, the carrier its own events in full and the
    # maker's shipment to it without the purchase order.
    assert row(
        "Shipped",
        "public; 3 fields withheld incl. bizTransactionList",
        "partner; withheld: bizTransactionList",
    ).search(printed)
    assert row("Shipped", "public; 3 fields withheld incl. bizTransactionList", "full").search(printed)
    # The public bundle, saved by the demo, verifies against the chain alone and holds nothing commercial.
    bundle_text = (tmp_path / "demo-public-proof.json").read_text()
    bundle = json.loads(bundle_text)
    result = verify_bundle(bundle, Web3(HTTPProvider(anvil_node.url)))
    assert result.verified, result.every_problem
    assert any(r.withheld for r in result.records)
    w3 = Web3(HTTPProvider(anvil_node.url))
    for tamper, named in _tamperings(bundle):
        tampered = copy.deepcopy(bundle)
        tamper(tampered)
        problems = verify_bundle(tampered, w3).every_problem
        assert any(named in problem for problem in problems), (named, problems)
    item = bundle["epc"]
    with (
        served(settings.model_copy(update={"demo_mode": True})) as service,
        httpx.Client(base_url=service.url) as http,
    ):
        serial = item.rsplit(".", 1)[1]
        page = http.get(f"/01/06901234678901/21/{serial}", headers={"Accept": "text/html"}).text
        trace = http.get(f"/trace/{item}").text
        too_warm = http.get(f"/01/06901234678901/21/{serial[:-1]}1", headers={"Accept": "text/html"}).text
    # The pages name the product and the places from the demo's master data; the excursion order's
    # item warns beside its verdict.
    assert "<h1>Bright desk lamp</h1>" in page and 'class="alert"' not in page
    route = page.split('<ol class="route">', 1)[1].split("</ol>", 1)[0]
    assert re.findall(r"<strong>(.*?)</strong>", route) == [
        "Shenzhen Bright factory",
        "MV Blue Horizon (at sea)",
        "Port of Rotterdam",
        "Amsterdam Home Retail store",
    ]
    assert re.search(r"Cold chain broken on \d+ \w+ \d{4} · MV Blue Horizon \(at sea\)", too_warm)
    for served_text in (bundle_text, page, trace):
        for commercial in COMMERCIAL:
            assert commercial not in served_text, commercial

    # A second run finds its parties again (their API keys kept in the data folder) and adds three
    # more orders; the manufacturer's balance carries over.
    output = io.StringIO()
    assert run_demo(settings, Console(file=output, width=200))
    assert unruled_row("4", "on time, 30% shipped / 70% received").search(output.getvalue())
    assert row("Shenzhen Bright Electronics", "16,000.00", "32,000.00", "+16,000.00").search(
        output.getvalue()
    )


@pytest.mark.hardhat
def test_the_demo_passes_on_hardhat_network_by_its_rpc_url(
    tmp_path: Path, hardhat_node: HardhatNetworkNode
) -> None:
    """`tracechain demo` as a user runs it against another node implementation, named only by
    TRACECHAIN_RPC_URL and its development key: Hardhat Network stamps a burst of blocks seconds
    ahead of the wall clock, and the demo moves its clock past the missed deadline."""
    env = {
        **os.environ,
        "TRACECHAIN_RPC_URL": hardhat_node.url,
        "TRACECHAIN_RELAYER_KEY": HARDHAT_DEV_KEY,
        "TRACECHAIN_DATA_DIR": str(tmp_path),
        "TRACECHAIN_PORT": str(free_port()),
        "TRACECHAIN_POLL_INTERVAL": "0.05",
        "COLUMNS": "200",  # rich's width, as the anvil test's console has
    }
    finished = subprocess.run(
        [sys.executable, "-m", "tracechain", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert_the_story_is_told(finished.stdout)
    bundle = json.loads((tmp_path / "demo-public-proof.json").read_text())
    result = verify_bundle(bundle, Web3(HTTPProvider(hardhat_node.url)))
    assert result.verified, result.every_problem


def test_the_demo_passes_on_the_in_process_chain(tmp_path: Path) -> None:
    """TRACECHAIN_CHAIN=tester: eth-tester stamps a block with the time its predecessor was mined,
    so an idle chain's clock never passes the unshipped order's deadline by waiting; the demo moves
    it (its time travel), and the buyer reclaims."""
    settings = Settings(chain=ChainMode.TESTER, data_dir=tmp_path, poll_interval=0.05, port=free_port())
    output = io.StringIO()
    assert run_demo(settings, Console(file=output, width=200))
    assert_the_story_is_told(output.getvalue())


def assert_the_story_is_told(printed: str) -> None:
    """The product's history verified and the three orders settled as the scenario says."""
    for step in ("Produced", "Packed onto pallet", "Sensor readings taken", "Inspected: cleared", "Sold"):
        assert step in printed, step
    assert "9 events; verdict: verified" in printed and "tampered" not in printed
    assert row("Blue Water Ocean Lines", "7").search(printed)
    assert row("all", "21").search(printed)

    assert unruled_row(
        "1", "on time, 30% shipped / 70% received", "10,000.00", "10,000.00", "0.00", "0.00", "closed", "yes"
    ).search(printed)
    assert unruled_row(
        "2", "temperature excursion, 25% penalty", "8,000.00", "6,000.00", "2,000.00", "0.00", "closed", "yes"
    ).search(printed)
    assert unruled_row(
        "3", "never shipped, deadline missed", "5,000.00", "0.00", "5,000.00", "0.00", "closed", "yes"
    ).search(printed)
    assert row("Amsterdam Home Retail", "23,000.00", "7,000.00", "-16,000.00").search(printed)
    assert row("Shenzhen Bright Electronics", "0.00", "16,000.00", "+16,000.00").search(printed)


def _tamperings(bundle: dict[str, Any]) -> Iterator[tuple[Tamper, str]]:
    """Edits of the public bundle's first shipment, each with the words its failure must name."""
    position = next(i for i, e in enumerate(bundle["events"]) if _field(e, "bizStep", "shipping"))
    fields = bundle["events"][position]["fields"]
    shown = next(i for i, f in enumerate(fields) if f["name"] == "bizStep")
    withheld = next(i for i, f in enumerate(fields) if f["name"] == "bizTransactionList")

    def edit(index: int, key: str, value: Callable[[Any], Any]) -> Tamper:
        def tamper(tampered: dict[str, Any]) -> None:
            entry = tampered["events"][position]["fields"][index]
            entry[key] = value(entry[key])

        return tamper

    flipped: Callable[[str], str] = lambda h: h[:-1] + ("0" if h[-1] != "0" else "1")  # noqa: E731
    yield edit(shown, "value", lambda _: "receiving"), "disclosed field bizStep"
    yield edit(shown, "salt", flipped), "disclosed field bizStep"
    yield edit(shown, "proof", lambda proof: [flipped(proof[0]), *proof[1:]]), "disclosed field bizStep"
    yield edit(withheld, "valueHash", flipped), "withheld field bizTransactionList"


def _field(entry: dict[str, Any], name: str, value: str) -> bool:
    return any(f["name"] == name and f.get("value") == value for f in entry.get("fields", []))
