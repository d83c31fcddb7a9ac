"""The tables the demo ends with: one product's verified history, events per party, each order's
payments, and the balances they moved."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from tracechain.demo.scenario import MANUFACTURER, RETAILER, DemoOrder, DemoParty
from tracechain.epcis.mapping import describe


def print_history(console: Console, trace: dict[str, Any], names: dict[str, str]) -> None:
    table = Table(title=f"History of {trace['epc']}")
    # In 80 columns the words wrap and a long identifier folds; nothing is cut off.
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("what", overflow="fold")
    table.add_column("unit", no_wrap=True)
    table.add_column("by")
    table.add_column("block", no_wrap=True)
    table.add_column("verified", no_wrap=True)
    for entry in trace["events"]:
        event, checks = entry["event"], entry["verification"]
        when = datetime.fromisoformat(event["eventTime"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        blocks = sorted({r["block"] for r in checks["records"] if r["block"] is not None})
        verdict = "[green]yes[/]" if checks["status"] == "verified" else f"[red]{checks['status']}[/]"
        unit = "item" if entry["relation"] == "self" else "pallet"
        by = names.get(entry["signer"], entry["signer"])
        table.add_row(when, describe(event), unit, by, ", ".join(map(str, blocks)), verdict)
    console.print(table)
    colour = "green" if trace["verdict"] == "verified" else "red"
    console.print(f"{len(trace['events'])} events; verdict: [bold {colour}]{trace['verdict']}[/]")
    for reason in trace["reasons"]:
        console.print(f"[red]{reason}[/]")


def print_views(console: Console, public: dict[str, Any], partner: dict[str, Any], partner_name: str) -> None:
    """The product's events as a consumer sees them (no key) beside a partner's view (its key)."""
    table = Table(title=f"Who sees what of {public['epc']}")
    table.add_column("when (UTC)")
    table.add_column("what")
    table.add_column("consumer (no key)")
    table.add_column(partner_name)
    for shown, seen in zip(public["events"], partner["events"], strict=True):
        when = datetime.fromisoformat(shown["event"]["eventTime"]).astimezone(UTC).strftime("%Y-%m-%d")
        table.add_row(when, describe(shown["event"]), _view(shown), _view(seen))
    console.print(table)


def _view(entry: dict[str, Any]) -> str:
    """`full`, or the view and what it withholds: "partner; withheld: bizTransactionList"."""
    withheld = entry["withheld"]
    if not withheld:
        return str(entry["view"])
    if len(withheld) <= 2:
        return f"{entry['view']}; withheld: {', '.join(withheld)}"
    named = " incl. bizTransactionList" if "bizTransactionList" in withheld else ""
    return f"{entry['view']}; {len(withheld)} fields withheld{named}"


def print_events_per_party(console: Console, counts: Counter[str], parties: list[str]) -> None:
    table = Table(title="Events per party (each signed by it, recorded on chain)")
    table.add_column("party")
    table.add_column("events", justify="right")
    for name in parties:
        table.add_row(name, str(counts[name]))
    table.add_row("[bold]all[/]", f"[bold]{sum(counts.values())}[/]")
    console.print(table)


def print_orders(console: Console, orders: list[tuple[DemoOrder, dict[str, Any]]]) -> None:
    # Eight columns in an 80-column terminal: no vertical rules, and only the story wraps.
    table = Table(title="Orders: the retailer's escrow payments to the manufacturer", box=box.SIMPLE_HEAD)
    for column, justify in (
        ("#", "right"),
        ("story", "left"),
        ("amount", "right"),
        ("to seller", "right"),
        ("refunded", "right"),
        ("in escrow", "right"),
        ("state", "left"),
        ("ok", "left"),
    ):
        wraps = column == "story"
        table.add_column(column, justify=justify, no_wrap=not wraps, min_width=16 if wraps else None)  # type: ignore[arg-type]
    for story, order in orders:
        paid, refunded = Decimal(order["paid"]), Decimal(order["refunded"])
        expected = paid == story.expected_paid and refunded == story.expected_refunded
        table.add_row(
            str(order["orderId"]),
            story.label,
            money(order["amount"]),
            money(paid),
            money(refunded),
            money(order["unreleased"]),
            order["state"],
            "[green]yes[/]" if expected else "[red]no[/]",
        )
    console.print(table)


def print_balances(
    console: Console,
    before: dict[DemoParty, Decimal],
    after: dict[DemoParty, Decimal],
    orders: list[dict[str, Any]],
) -> None:
    symbol = orders[0]["token"]["symbol"] if orders else ""
    table = Table(title=f"Balances in {symbol}: this run's orders, after the buyer's faucet top-up")
    for column in ("party", "before", "after", "change"):
        table.add_column(column, justify="left" if column == "party" else "right")
    for party in (RETAILER, MANUFACTURER):
        change = after[party] - before[party]
        table.add_row(
            party.name,
            money(before[party]),
            money(after[party]),
            f"{'+' if change >= 0 else ''}{money(change)}",
        )
    held = sum((Decimal(o["unreleased"]) for o in orders), Decimal(0))
    table.add_row("TradeEscrow (these orders)", "", money(held), "")
    console.print(table)


def money(value: Decimal | str) -> str:
    return f"{Decimal(value):,.2f}"
