"""The demo's tables in an 80-column terminal: words wrap, long identifiers fold, and no amount,
date or identifier is cut off (rich marks a cut with `…`)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Console

from tracechain.demo.report import print_balances, print_history, print_orders, print_views
from tracechain.demo.scenario import CARRIER, MANUFACTURER, ORDERS, RETAILER
from tracechain.epcis.builders import aggregation_event, object_event

ITEM = "urn:epc:id:sgtin:6901234.067890.17964388290"
PALLET = "urn:epc:id:sscc:6901234.9643882903"
SIGNER = "0x" + "ab" * 20


def _printed(draw: object, *arguments: object) -> str:
    output = io.StringIO()
    draw(Console(file=output, width=80), *arguments)  # type: ignore[operator]
    printed = output.getvalue()
    assert all(len(line) <= 80 for line in printed.splitlines())
    assert "…" not in printed
    return printed


def _trace() -> dict[str, object]:
    at = datetime(2026, 10, 26, 2, 47, tzinfo=UTC)
    events = [
        object_event([ITEM], biz_step="commissioning", action="ADD", at=at),
        aggregation_event(PALLET, [ITEM], at=at),
        object_event([PALLET], biz_step="inspecting", disposition="conformant", at=at),
    ]
    return {
        "epc": ITEM,
        "verdict": "verified",
        "reasons": [],
        "events": [
            {
                "event": event,
                "relation": "self",
                "signer": SIGNER,
                "view": "public",
                "withheld": ["epcList", "bizTransactionList", "sourceList"],
                "verification": {"status": "verified", "records": [{"block": 12345}]},
            }
            for event in events
        ],
    }


def test_the_history_and_views_fit_and_fold_long_identifiers() -> None:
    printed = _printed(print_history, _trace(), {SIGNER: MANUFACTURER.name})
    assert "2026-10-26 02:47" in printed and "12345" in printed
    what = "".join(line.split("│")[2].strip() for line in printed.splitlines() if line.startswith("│"))
    assert "pallet969012346438829031" in what  # the pallet's id, folded across lines but whole
    _printed(print_views, _trace(), _trace(), CARRIER.name)


def test_the_orders_and_balances_fit_with_every_amount_whole() -> None:
    orders = [
        {
            "orderId": n,
            "amount": "10000",
            "paid": str(story.expected_paid),
            "refunded": str(story.expected_refunded),
            "unreleased": "1250.5",
            "state": "closed",
            "token": {"symbol": "dUSD"},
        }
        for n, story in enumerate(ORDERS, start=1)
    ]
    printed = _printed(print_orders, list(zip(ORDERS, orders, strict=True)))
    assert printed.count("10,000.00") >= len(ORDERS) and "1,250.50" in printed

    before = {RETAILER: Decimal("23000"), MANUFACTURER: Decimal("0")}
    after = {RETAILER: Decimal("7000"), MANUFACTURER: Decimal("16000")}
    printed = _printed(print_balances, before, after, orders)
    assert "-16,000.00" in printed and "+16,000.00" in printed
