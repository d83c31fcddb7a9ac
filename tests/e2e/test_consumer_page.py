"""The consumer page in a real headless Chromium on a phone-sized screen: it loads, shows the journey
and the verdict, and asks nothing of any host but this server. A screenshot is left for a person in
tests/output/."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import uvicorn

from tracechain.epcis.builders import object_event

from ..api.conftest import Api
from ..api.test_capture import ITEM, PALLET, journey
from ..conftest import free_port

OUTPUT = Path(__file__).parents[1] / "output"
PAGE = "/01/06901234678901/21/1001"  # the journey's item
PHONE = "375,1800"


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    return found


def run_chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess[str]:
    # The flags keep Chromium from calling home: this machine's network is closed.
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-features=AutofillServerCommunication",
        "--hide-scrollbars", f"--user-data-dir={profile}", *arguments,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture
def served(api: Api, parties: dict[str, dict[str, Any]]) -> Iterator[str]:
    """The journey recorded, its pallet ordered, accepted by the seller and paid for through escrow, a
    bystander's observation of the item, then the same app served over real HTTP on a free port."""
    buyer = api.as_participant(parties["retailer"])
    api.client.post("/settlement/faucet", json={"amount": "1000"}, headers=buyer)
    order = {
        "seller": parties["manufacturer"]["id"],
        "shipment": PALLET,
        "amount": "1000",
        "milestones": {"shipped": 30, "received": 70},
        "deadline": (datetime.now(UTC) + timedelta(days=60)).isoformat(),
    }
    created = api.client.post("/orders", json=order, headers=buyer)
    assert created.status_code == 201, created.text
    order_id = created.json()["orderId"]
    seller = api.as_participant(parties["manufacturer"])
    accepted = api.client.post(f"/orders/{order_id}/acceptance", headers=seller)
    assert accepted.status_code == 200, accepted.text
    funded = api.client.post(f"/orders/{order_id}/funding", headers=buyer)
    assert funded.status_code == 200, funded.text
    journey(api, parties)
    bystander = api.create_participant("Harbour Watch", ["carrier"], "urn:epc:id:pgln:5790002.00000", "DK")
    api.settle()
    seen = object_event([ITEM], biz_step="storing", at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    assert api.capture(bystander, [seen]).status_code == 202
    api.services.settle()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.client.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_page_loads_on_a_phone_shows_the_verified_journey_and_stays_on_this_server(
    served: str, tmp_path: Path
) -> None:
    OUTPUT.mkdir(exist_ok=True)
    netlog, screenshot = tmp_path / "netlog.json", OUTPUT / "consumer-page-375px.png"
    run_chromium(f"--window-size={PHONE}", f"--screenshot={screenshot}", f"--log-net-log={netlog}",
                 served + PAGE, profile=tmp_path / "profile-1")  # fmt: skip
    dom = run_chromium("--dump-dom", served + PAGE, profile=tmp_path / "profile-2").stdout

    assert screenshot.stat().st_size > 10_000
    assert "Verified" in dom and "Every step below is signed" in dom
    for step in ("Made", "Packed", "Shipped", "Received", "Inspected: cleared", "Sold"):
        assert step in dom, step
    assert "Made by <strong>Shenzhen Bright</strong>" in dom  # from the commissioning record
    # The bystander's observation is on the page as what it is, and leaves the verdict alone.
    steps = re.findall(r'<li id="step-\d+" class="([a-z ]+)">', dom)  # each step is an anchor
    assert steps.count("observation") == 1 and "reported by Harbour Watch" in dom
    assert steps.count("fact") == 8
    assert dom.count('class="badge verified"') == 9
    assert "<svg" in dom and 'class="route"' in dom  # the route and the QR code, inline
    assert "Settled" in dom and "70%" not in dom  # the pallet's order: paid, and nothing commercial

    page_requests = _requests_of_site(netlog, "http://127.0.0.1")
    assert any(url.endswith(PAGE) for url in page_requests)
    hosts = {urlparse(url).hostname for url in page_requests}
    assert hosts == {"127.0.0.1"}, f"the page asked other hosts: {hosts}"


def _requests_of_site(netlog: Path, site: str) -> list[str]:
    """URLs requested on behalf of pages of `site` (Chromium's own background calls are keyed to
    no site, and fail here anyway: the network is closed)."""
    log = json.loads(netlog.read_text())
    type_id = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == type_id
        and "url" in event.get("params", {})
        and event["params"].get("network_isolation_key", "").startswith(site)
    ]
