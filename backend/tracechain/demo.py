"""`tracechain demo`: one product's journey from Shenzhen to a shop in the Netherlands, verified.

The demo runs on the default chain and keeps what it records: a second run adds a new product.
Participants' keys are derived from their names, so every run acts as the same four parties.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from eth_utils import keccak
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tracechain.chain.connect import open_chain
from tracechain.chain.deployments import load_or_deploy_registry
from tracechain.chain.eip712 import EventSigner
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import (
    VERDICT_CLEARED,
    ZERO_ADDRESS,
    ZERO_HASH,
    Kind,
    TraceEvent,
    subject_id,
)
from tracechain.config import Settings
from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.epcis.event_hash import event_hash_id, hash_id_digest
from tracechain.verification import verify_history

SHENZHEN = timezone(timedelta(hours=8))
ROTTERDAM = timezone(timedelta(hours=1))


@dataclass(frozen=True)
class DemoParty:
    name: str
    role: bytes
    location: str  # SGLN of where it acts
    short: str  # for tables

    def signer(self, registry: TraceRegistry) -> EventSigner:
        # Demo only: a key anyone can derive from the name. Real participants hold their own.
        return EventSigner(keccak(text=f"tracechain demo {self.name}"), registry.domain)


MANUFACTURER = DemoParty(
    "Shenzhen Bright Electronics (CN)",
    Role.MANUFACTURER,
    "urn:epc:id:sgln:6901234.00001.0",
    "Shenzhen Bright",
)
CARRIER = DemoParty("Blue Water Ocean Lines", Role.CARRIER, "urn:epc:id:sgln:5790001.00001.0", "Blue Water")
CUSTOMS = DemoParty(
    "EU Customs Rotterdam (NL)", Role.CUSTOMS, "urn:epc:id:sgln:8712345.00009.0", "EU Customs"
)
RETAILER = DemoParty(
    "Amsterdam Home Retail (NL)", Role.RETAILER, "urn:epc:id:sgln:8712345.00002.0", "Amsterdam Retail"
)
PARTIES = (MANUFACTURER, CARRIER, CUSTOMS, RETAILER)


@dataclass(frozen=True)
class Step:
    label: str
    party: DemoParty
    kind: Kind
    subject: str
    epcis: dict[str, Any]
    counterpart: DemoParty | None = None
    ref: bytes = ZERO_HASH


def journey(item: str, pallet: str, start: datetime) -> list[Step]:
    day = timedelta(days=1)
    departed, arrived = start + 2 * day, start + 30 * day
    return [
        Step(
            "origin: made in Shenzhen",
            MANUFACTURER,
            Kind.COMMISSION,
            item,
            object_event(
                [item],
                biz_step="commissioning",
                action="ADD",
                disposition="active",
                at=start,
                location=MANUFACTURER.location,
            ),
        ),
        Step(
            "packed on a pallet",
            MANUFACTURER,
            Kind.AGGREGATE,
            item,
            aggregation_event(pallet, [item], at=start + timedelta(hours=3), location=MANUFACTURER.location),
            ref=subject_id(pallet),
        ),
        Step(
            "shipped to the carrier",
            MANUFACTURER,
            Kind.SHIP,
            pallet,
            object_event(
                [pallet],
                biz_step="shipping",
                disposition="in_transit",
                at=start + day,
                location=MANUFACTURER.location,
            ),
            counterpart=CARRIER,
        ),
        Step(
            "loaded at Yantian port",
            CARRIER,
            Kind.RECEIVE,
            pallet,
            object_event(
                [pallet],
                biz_step="receiving",
                disposition="in_progress",
                at=departed,
                location=CARRIER.location,
            ),
        ),
        Step(
            "cleared by customs in Rotterdam",
            CUSTOMS,
            Kind.INSPECT,
            pallet,
            object_event(
                [pallet],
                biz_step="inspecting",
                disposition="conformant",
                at=arrived,
                location=CUSTOMS.location,
            ),
            ref=VERDICT_CLEARED,
        ),
        Step(
            "delivered to the retailer",
            CARRIER,
            Kind.SHIP,
            pallet,
            object_event(
                [pallet],
                biz_step="shipping",
                disposition="in_transit",
                at=arrived + day,
                location=CUSTOMS.location,
            ),
            counterpart=RETAILER,
        ),
        Step(
            "received in Amsterdam",
            RETAILER,
            Kind.RECEIVE,
            pallet,
            object_event(
                [pallet],
                biz_step="receiving",
                disposition="in_progress",
                at=arrived + 2 * day,
                location=RETAILER.location,
            ),
        ),
        Step(
            "sold to a consumer",
            RETAILER,
            Kind.SELL,
            item,
            object_event(
                [item],
                biz_step="retail_selling",
                disposition="retail_sold",
                at=arrived + 5 * day,
                location=RETAILER.location,
            ),
        ),
    ]


def run_demo(settings: Settings, console: Console) -> bool:
    """Record the journey and print its verified history; True when every event verifies."""
    run = int(time.time())
    item = f"urn:epc:id:sgtin:6901234.067890.{run}"
    pallet = f"urn:epc:id:sscc:6901234.{run % 10**10:010d}"
    start = datetime.fromtimestamp(run, SHENZHEN).replace(microsecond=0) - timedelta(days=40)

    with open_chain(settings) as chain:
        console.print(f"chain: [bold]{chain.mode.value}[/] (chain id {chain.chain_id})")
        registry = load_or_deploy_registry(chain, settings)
        console.print(f"TraceRegistry at {registry.address}")
        signers = {party.name: party.signer(registry) for party in PARTIES}
        for party in PARTIES:
            if not registry.has_role(party.role, signers[party.name].address):
                registry.grant_role(party.role, signers[party.name].address)

        steps = journey(item, pallet, start)
        recorded = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("recording the journey", total=len(steps))
            for step in steps:
                event_hash = hash_id_digest(event_hash_id(step.epcis))
                subject = subject_id(step.subject)
                signer = signers[step.party.name]
                event = TraceEvent(
                    subject=subject,
                    kind=step.kind,
                    event_hash=event_hash,
                    counterpart=signers[step.counterpart.name].address if step.counterpart else ZERO_ADDRESS,
                    ref=step.ref,
                    time=int(datetime.fromisoformat(step.epcis["eventTime"]).timestamp()),
                    prev_head=registry.head_of(subject),
                )
                recorded.append(registry.record([signer.sign(event)]))
                progress.advance(task)

        names: dict[str, str] = {signers[p.name].address: p.short for p in PARTIES}
        labels = {(subject_id(s.subject), hash_id_digest(event_hash_id(s.epcis))): s.label for s in steps}
        history = sorted(
            verify_history(registry, subject_id(item)) + verify_history(registry, subject_id(pallet)),
            key=lambda v: (v.recorded.block_number, v.recorded.log_index),
        )

    table = Table(title=f"History of {item}")
    for column in ("when (UTC)", "what", "unit", "by", "block", "verified"):
        table.add_column(column)
    for entry in history:
        logged = entry.recorded
        table.add_row(
            datetime.fromtimestamp(logged.time, UTC).strftime("%Y-%m-%d %H:%M"),
            labels.get((logged.subject, logged.event_hash), logged.kind.name.lower()),
            "item" if logged.subject == subject_id(item) else "pallet",
            names.get(logged.signer, logged.signer),
            str(logged.block_number),
            "[green]yes[/]" if entry.verified else f"[red]no: {'; '.join(entry.problems)}[/]",
        )
    console.print(table)
    gas = sum(result.gas_used for result in recorded)
    all_verified = len(history) == len(steps) and all(entry.verified for entry in history)
    console.print(
        f"{len(history)} events, {gas:,} gas in all; verdict: "
        + ("[bold green]verified[/]" if all_verified else "[bold red]NOT verified[/]")
    )
    return all_verified
