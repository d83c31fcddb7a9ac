"""`tracechain demo`: goods from Shenzhen to a shop in the Netherlands, paid through escrow, all
through the same HTTP API a user would call, ending with the verified history of one product, each
order's payments and balances, and the consumer page's address.

The demo serves the real app in this process (chain and database from the settings, the background
submitter, indexer and settler running) and creates the four parties through the admin API. The
retailer orders three pallets from the manufacturer, the manufacturer accepts each order, and the
retailer pays each into escrow; then the parties
capture what happens to them as EPCIS 2.0 documents, and the settler pays the manufacturer as the
trace shows the goods moving: one order on time, one with a temperature excursion at sea (a partial
refund), one never shipped (refunded after its deadline). Everything is kept: `tracechain serve`
afterwards shows the products, and a second run adds three more. The parties' API keys are kept in
the data folder, as a participant would keep its own.

It ends with who sees what: the product's journey as a consumer sees it (no key) beside the carrier's
view, and the public proof bundle, saved to the data folder, which proves what it shows and withholds
the purchase orders and bills of lading the shipments carry.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress

from tracechain.chain.clock import DEADLINE_MARGIN_S, wait_past
from tracechain.chain.connect import open_chain
from tracechain.chain.transactions import is_dev_chain
from tracechain.config import ChainMode, Settings
from tracechain.demo.client import WAIT_TIMEOUT, DemoClient, DemoFailed, Served, served, wait_until
from tracechain.demo.report import (
    print_balances,
    print_events_per_party,
    print_history,
    print_orders,
    print_views,
)
from tracechain.demo.scenario import (
    CARRIER,
    MANUFACTURER,
    ORDERS,
    PARTIES,
    RETAILER,
    SHENZHEN,
    SHORT_DEADLINE,
    DemoOrder,
    bill_of_lading,
    journey,
    master_data,
    purchase_order,
)
from tracechain.epcis.identifiers import digital_link
from tracechain.errors import ChainError
from tracechain.services import DEMO_ADMIN_TOKEN

__all__ = ["DemoFailed", "run_demo"]


def run_demo(settings: Settings, console: Console) -> bool:
    """Run the scenario through the API and print what happened; True when the product verifies and
    every order settled as the scenario says."""
    if settings.admin_token is None:
        settings = settings.model_copy(update={"demo_mode": True})
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else DEMO_ADMIN_TOKEN
    run = int(time.time())
    start = datetime.fromtimestamp(run, SHENZHEN).replace(microsecond=0) - timedelta(days=40)
    # One item on one pallet per order; a run's serials come from its start time, so runs never clash.
    goods = [
        (
            f"urn:epc:id:sgtin:6901234.067890.{run}{n}",
            f"urn:epc:id:sscc:6901234.{(run * 10 + n) % 10**10:010d}",
        )
        for n in range(len(ORDERS))
    ]
    item = goods[0][0]  # the product whose consumer page the demo ends with

    with served(settings) as service, httpx.Client(base_url=service.url, timeout=60) as http:
        console.print(f"tracechain is serving the demo at {service.url} (chain: {settings.chain.value})")
        api = DemoClient(http)
        keys_file = settings.data_dir / "demo-api-keys.json"
        keys = api.participants(admin_token, keys_file)
        buyer, seller = keys[RETAILER.name], keys[MANUFACTURER.name]
        seller_id = api.call("GET", "/participants/me", seller)["id"]
        steps = [
            (order, journey(i, p, start, order, purchase_order(run, n), bill_of_lading(run, n)))
            for n, (order, (i, p)) in enumerate(zip(ORDERS, goods, strict=True))
        ]

        with Progress(console=console, transient=True) as progress:
            opening = progress.add_task(
                "the retailer orders, the manufacturer accepts, the retailer pays into escrow",
                total=len(ORDERS),
            )
            api.call("POST", "/settlement/faucet", buyer, {"amount": str(sum(o.amount for o in ORDERS))})
            before = {party: _balance(api, keys[party.name]) for party in (RETAILER, MANUFACTURER)}
            order_ids = []
            for order, (_, pallet) in zip(ORDERS, goods, strict=True):
                order_ids.append(_open_order(api, buyer, seller, seller_id, pallet, order))
                progress.advance(opening)

            captures = progress.add_task("capturing the journeys", total=sum(len(s) for _, s in steps))
            jobs, events_per_party = [], Counter[str]()
            for _, order_steps in steps:
                for party, events in order_steps:
                    jobs.append((keys[party.name], api.capture(keys[party.name], events, master_data(party))))
                    events_per_party[party.name] += len(events)
                    progress.advance(captures)
            recorded = progress.add_task("waiting for the chain", total=len(jobs))
            for key, location in jobs:
                api.wait_for_job(key, location)
                progress.advance(recorded)

            progress.add_task("the settler pays as the trace shows the goods moving", total=None)
            for order_id, order in zip(order_ids, ORDERS, strict=True):
                if order.shipped:
                    _wait_until_closed(api, buyer, order_id)
            for order_id, order in zip(order_ids, ORDERS, strict=True):
                if not order.shipped:
                    _reclaim_after_deadline(api, service, settings, buyer, order_id)

        orders = [_order(api, buyer, order_id) for order_id in order_ids]
        after = {party: _balance(api, keys[party.name]) for party in (RETAILER, MANUFACTURER)}
        trace = http.get(f"/trace/{item}").json()
        carriers_view = api.call("GET", f"/trace/{item}", keys[CARRIER.name])
        public_bundle = http.get(f"/trace/{item}/proof").json()
        participants = api.call("GET", "/participants", admin_token)

    names = {p["address"]: p["name"] for p in participants}
    print_history(console, trace, names)
    print_events_per_party(console, events_per_party, [party.name for party in PARTIES])
    print_orders(console, list(zip(ORDERS, orders, strict=True)))
    print_balances(console, before, after, orders)
    print_views(console, trace, carriers_view, CARRIER.name)
    link = digital_link(item, f"http://{_browsable(settings.host)}:{settings.port}")
    serve = "make serve" if settings.demo_mode else "tracechain serve"
    bundle_file = settings.data_dir / "demo-public-proof.json"
    bundle_file.write_text(json.dumps(public_bundle, indent=1))
    rpc = f" --rpc {settings.rpc_url}" if settings.rpc_url else ""
    console.print(f"Consumer page (anyone, no key): run [bold]{serve}[/] and open {link}")
    console.print(f"The carrier's view: GET /trace/{item} with its API key (kept in {keys_file})")
    console.print(
        f"Public proof bundle: {bundle_file}; check it with [bold]tracechain verify {bundle_file}{rpc}[/]"
        + ("" if rpc else f" while {serve} runs")
    )
    settled = all(
        Decimal(o["paid"]) == d.expected_paid and Decimal(o["refunded"]) == d.expected_refunded
        for d, o in zip(ORDERS, orders, strict=True)
    )
    return bool(trace["verdict"] == "verified") and settled


def _open_order(
    api: DemoClient, buyer: str, seller: str, seller_id: str, pallet: str, order: DemoOrder
) -> int:
    """The buyer proposes the order, the seller accepts its terms, the buyer pays it into escrow.

    Deadlines count from the chain's clock, which the escrow checks them against (it may run ahead
    of this machine's); the missed one is as short as the service accepts, plus SHORT_DEADLINE."""
    clock = api.call("GET", "/settlement", buyer)
    if order.shipped:
        deadline = datetime.fromisoformat(clock["chainTime"]) + timedelta(days=60)
    else:
        deadline = datetime.fromisoformat(clock["earliestDeadline"]) + SHORT_DEADLINE
    terms = {
        "seller": seller_id,
        "shipment": pallet,
        "amount": str(order.amount),
        "milestones": order.milestones,
        "penalties": order.penalties,
        "deadline": deadline.isoformat(),
    }
    order_id = int(api.call("POST", "/orders", buyer, terms, expect=201)["orderId"])
    api.call("POST", f"/orders/{order_id}/acceptance", seller)
    api.call("POST", f"/orders/{order_id}/funding", buyer)
    return order_id


def _wait_until_closed(api: DemoClient, buyer: str, order_id: int) -> None:
    wait_until(f"settling order {order_id}", lambda: _order(api, buyer, order_id)["state"] == "closed")


def _reclaim_after_deadline(
    api: DemoClient, service: Served, settings: Settings, buyer: str, order_id: int
) -> None:
    deadline = int(datetime.fromisoformat(_order(api, buyer, order_id)["deadline"]).timestamp())
    _wait_for_the_chain_past(service, settings, deadline)

    def reclaimed() -> bool:  # a node whose clock only waiting moves may stamp the next block late
        response = api.http.post(f"/orders/{order_id}/reclaim", headers={"Authorization": f"Bearer {buyer}"})
        if response.status_code == 409 and response.json()["title"] == "TradeEscrowDeadlineNotPassed":
            return False
        if response.status_code != 200:
            raise DemoFailed(f"reclaiming order {order_id} answered {response.status_code}: {response.text}")
        return True

    wait_until(f"reclaiming order {order_id}", reclaimed, timeout=30)


def _wait_for_the_chain_past(service: Served, settings: Settings, deadline: int) -> None:
    """On a development node the demo moves the node's clock past the deadline; elsewhere it waits
    for the chain's clock to pass it, which is at most DEADLINE_MARGIN_S + SHORT_DEADLINE away."""
    timeout = DEADLINE_MARGIN_S + SHORT_DEADLINE.total_seconds() + WAIT_TIMEOUT
    try:
        if settings.chain is ChainMode.TESTER:  # that chain lives inside the served app
            wait_past(service.chain, deadline, advance=True, timeout=timeout)
            return
        with open_chain(settings, start_node=False) as chain:
            wait_past(chain, deadline, advance=is_dev_chain(chain), timeout=timeout)
    except ChainError as exc:
        raise DemoFailed(f"waiting for the deadline: {exc}") from exc


def _order(api: DemoClient, buyer: str, order_id: int) -> dict[str, Any]:
    order: dict[str, Any] = api.call("GET", f"/orders/{order_id}", buyer)
    return order


def _balance(api: DemoClient, key: str) -> Decimal:
    return Decimal(api.call("GET", "/settlement/balance", key)["balance"])


def _browsable(host: str) -> str:
    """Where a browser on this machine reaches `tracechain serve` listening on `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
