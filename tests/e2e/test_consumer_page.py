"""The consumer page in a real headless Chromium on a phone and on a laptop screen: it loads, shows the
journey, the verdict and the excursion warning beside it, names the product and the places from
their owners' master data, and asks nothing of any host but this server. Screenshots at 375 and
1280 px are left for a person in tests/output/."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tracechain.epcis.builders import aggregation_event, object_event, sensor_event

from ..api.conftest import Api
from ..api.test_capture import ITEM, PALLET, T0
from ..api.test_trace import MAKER_SITE, VESSEL, capture_described, described
from .conftest import over_http

OUTPUT = Path(__file__).parents[1] / "output"
PAGE = "/01/06901234678901/21/1001"  # the journey's item
PHONE, LAPTOP = "375,2000", "1280,1400"
PORT_SITE, STORE = "urn:epc:id:sgln:8712345.00009.0", "urn:epc:id:sgln:8712345.00002.0"
PLACES = (
    "Shenzhen Bright factory",
    "MV Blue Horizon (at sea)",
    "Port of Rotterdam",
    "Amsterdam Retail store",
)


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
    described_journey(api, parties)
    bystander = api.create_participant("Harbour Watch", ["carrier"], "urn:epc:id:pgln:5790002.00000", "DK")
    api.settle()
    seen = object_event([ITEM], biz_step="storing", at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    assert api.capture(bystander, [seen]).status_code == 202
    api.services.settle()
    with over_http(api.client.app) as url:
        yield url


def described_journey(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    """The journey of ../api/test_capture.py at named places, each party naming its own sites (the
    maker its product too), with the container too warm at sea on 20 October."""
    day, port = timedelta(days=1), {PORT_SITE: ("Port of Rotterdam", "Rotterdam", "NL")}
    carrier, retailer = "urn:epc:id:pgln:5790001.00000", "urn:epc:id:pgln:8712345.00002"
    warm = sensor_event(
        [PALLET], at=datetime(2026, 10, 20, 3, 0, tzinfo=UTC), measurement="Temperature", value=11.5,
        uom="CEL", minimum=2, maximum=8, location=VESSEL,
    )  # fmt: skip
    steps = [
        (
            "manufacturer",
            described({MAKER_SITE: ("Shenzhen Bright factory", "Shenzhen", "CN")}, "Bright desk lamp"),
            [
                object_event([ITEM], biz_step="commissioning", action="ADD", at=T0, location=MAKER_SITE),
                aggregation_event(PALLET, [ITEM], at=T0 + day / 4, location=MAKER_SITE),
                object_event(
                    [PALLET], biz_step="shipping", at=T0 + day, location=MAKER_SITE, destination=carrier
                ),
            ],
        ),
        (
            "carrier",
            described({VESSEL: ("MV Blue Horizon (at sea)", "", ""), **port}),
            [object_event([PALLET], biz_step="receiving", at=T0 + 2 * day, location=VESSEL), warm],
        ),
        (
            "customs",
            described(port),
            [
                object_event(
                    [PALLET],
                    biz_step="inspecting",
                    disposition="conformant",
                    at=T0 + 30 * day,
                    location=PORT_SITE,
                )
            ],
        ),
        (
            "carrier",
            described(port),
            [
                object_event(
                    [PALLET], biz_step="shipping", at=T0 + 31 * day, location=PORT_SITE, destination=retailer
                )
            ],
        ),
        (
            "retailer",
            described({STORE: ("Amsterdam Retail store", "Amsterdam", "NL")}),
            [
                object_event([PALLET], biz_step="receiving", at=T0 + 32 * day, location=STORE),
                object_event(
                    [ITEM],
                    biz_step="retail_selling",
                    disposition="retail_sold",
                    at=T0 + 35 * day,
                    location=STORE,
                ),
            ],
        ),
    ]
    for party, header, events in steps:
        capture_described(api, parties[party], events, header)
    api.settle()


def test_the_page_on_a_phone_and_a_laptop_warns_names_and_stays_on_this_server(
    served: str, tmp_path: Path
) -> None:
    OUTPUT.mkdir(exist_ok=True)
    netlog = tmp_path / "netlog.json"
    phone, laptop = OUTPUT / "consumer-page-375px.png", OUTPUT / "consumer-page-1280px.png"
    run_chromium(f"--window-size={PHONE}", f"--screenshot={phone}", f"--log-net-log={netlog}",
                 served + PAGE, profile=tmp_path / "profile-1")  # fmt: skip
    run_chromium(
        f"--window-size={LAPTOP}", f"--screenshot={laptop}", served + PAGE, profile=tmp_path / "profile-2"
    )
    dom = run_chromium("--dump-dom", served + PAGE, profile=tmp_path / "profile-3").stdout

    assert phone.stat().st_size > 10_000 and laptop.stat().st_size > 10_000
    assert "Verified record" in dom and "Every step below is signed" in dom
    # The record is intact, the goods were not: the warning stands beside the verdict.
    status = dom.split('<div class="status">', 1)[1].split("</div>", 1)[0]
    assert "Cold chain broken on 20 Oct 2026 · MV Blue Horizon (at sea)" in status
    assert "<h1>Bright desk lamp</h1>" in dom  # the maker's name for its product
    route = dom.split('<ol class="route">', 1)[1].split("</ol>", 1)[0]
    assert re.findall(r"<strong>(.*?)</strong>", route) == list(
        PLACES
    )  # where it went, not who is from where
    for step in ("Made", "Packed", "Shipped", "Received", "Inspected: cleared", "Sold"):
        assert step in dom, step
    assert "Made by <strong>Shenzhen Bright</strong>" in dom  # from the commissioning record
    # The bystander's observation is on the page as what it is, and leaves the verdict alone.
    steps = re.findall(r'<li id="step-\d+" class="([a-z ]+)">', dom)  # each step is an anchor
    assert steps.count("observation") == 1 and "reported by Harbour Watch" in dom
    assert steps.count("fact") == 9  # the journey's 8 and the carrier's excursion
    assert dom.count('class="badge verified"') == 10
    assert "<svg" in dom  # the QR code, inline
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
