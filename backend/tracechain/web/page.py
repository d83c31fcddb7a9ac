"""What the consumer page shows, built from a verified trace: plain values for the template."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import segno

from tracechain.epcis.identifiers import InvalidIdentifier, digital_link
from tracechain.epcis.mapping import describe
from tracechain.store.models import Participant
from tracechain.trace import Trace, TraceEntry, Verdict

_UNITS = {"CEL": "°C", "FAH": "°F", "KEL": "K", "P1": "%"}
VERDICT_WORDS = {
    Verdict.VERIFIED: ("Verified", "Every step below is signed by who did it and recorded on chain."),
    Verdict.PENDING: ("Being recorded", "The newest steps are still being confirmed on chain."),
    Verdict.TAMPERED: ("Warning: not verified", "Some records do not match what was signed."),
}


@dataclass
class Step:
    what: str
    when: datetime
    who: str
    country: str
    where: str
    via: str
    badge: str
    problems: list[str]
    readings: list[str] = field(default_factory=list)


@dataclass
class Page:
    epc: str
    link: str
    qr_svg: str
    verdict: str
    verdict_title: str
    verdict_text: str
    origin: Step | None
    steps: list[Step]
    route: list[tuple[str, str]]  # (country, party) in travel order, consecutive duplicates merged
    units: list[str]
    ingredients: list[str]
    recalled: bool
    excursions: int
    payments: list[Payment] = field(default_factory=list)


@dataclass
class Payment:
    """How an order for one of the product's shipments settled, in words: no amounts, no parties."""

    shipment: str
    status: str
    lines: list[str]


_MILESTONE_WORDS = {
    "shipped": "when shipped",
    "customsCleared": "when cleared by customs",
    "received": "on delivery",
}
_PENALTY_WORDS = {"excursion": "a temperature excursion", "recall": "a recall"}
_ORDER_STATES = {
    "created": "Awaiting the buyer's payment into escrow",
    "funded": "Buyer's payment held in escrow, paid out as the goods move",
    "disputed": "Payment frozen: buyer and seller are in dispute",
    "closed": "Settled",
}


def build_page(
    trace: Trace,
    participants: dict[str, Participant],
    resolver: str,
    settlement: list[dict[str, Any]] | None = None,
) -> Page:
    steps = [
        _step(entry.event.body, entry.event.signer, entry, participants.get(entry.event.signer))
        for entry in trace.entries
    ]
    route: list[tuple[str, str]] = []
    for step in steps:
        stop = (step.country, step.who)
        if not route or route[-1] != stop:
            route.append(stop)
    try:
        link = digital_link(trace.epc, resolver)
    except InvalidIdentifier:
        link = f"{resolver}/trace/{trace.epc}"
    title, text = VERDICT_WORDS[trace.verdict]
    return Page(
        epc=trace.epc,
        link=link,
        qr_svg=segno.make(link, error="m").svg_inline(scale=4, dark="#111", light="#fff"),
        verdict=trace.verdict.value,
        verdict_title=title,
        verdict_text=text,
        origin=next(
            (s for s, e in zip(steps, trace.entries, strict=True) if _commissioning(e.event.body)), None
        ),
        steps=steps,
        route=route,
        units=trace.units,
        ingredients=trace.ingredients,
        recalled=any("Recalled" in step.what for step in steps),
        excursions=sum(1 for step in steps if "out of range" in step.what or "sensor alarm" in step.what),
        payments=[_payment(order) for order in settlement or []],
    )


def _payment(order: dict[str, Any]) -> Payment:
    lines = [
        f"{_share(m['share'])} {'paid' if m['released'] else 'to be paid'} to the seller "
        f"{_MILESTONE_WORDS[m['milestone']]}"
        for m in order["milestones"]
    ]
    lines += [
        f"{_share(p['share'])} refunded to the buyer for {_PENALTY_WORDS[p['penalty']]}"
        for p in order["penalties"]
        if p["applied"]
    ]
    return Payment(order["shipment"], _ORDER_STATES.get(order["state"], order["state"]), lines)


def _share(percent: float) -> str:
    return f"{percent:g}%"


def _commissioning(event: dict[str, Any]) -> bool:
    return str(event.get("bizStep", "")).endswith("commissioning")


def _step(event: dict[str, Any], signer: str, entry: TraceEntry, party: Participant | None) -> Step:
    where = (event.get("bizLocation") or event.get("readPoint") or {}).get("id", "")
    what = describe(event)
    if entry.relation == "packed in":
        what = f"{what} (with its {_unit_word(entry.via)})"
    elif entry.relation == "ingredient":
        what = f"{what} (ingredient {entry.via})"
    return Step(
        what=what,
        when=entry.event.event_time,
        who=party.name if party else signer,
        country=party.country if party else "",
        where=str(where),
        via=entry.via,
        badge=entry.check.verdict.value,
        problems=entry.check.problems,
        readings=_readings(event),
    )


def _unit_word(epc: str) -> str:
    return "pallet" if ":sscc:" in epc else "container" if ":grai:" in epc else "unit"


def _readings(event: dict[str, Any]) -> list[str]:
    lines = []
    for element in event.get("sensorElementList") or []:
        for report in element.get("sensorReport") or []:
            measured = str(report.get("type", "reading")).rsplit("-", 1)[-1].rsplit("/", 1)[-1]
            uom = str(report.get("uom", ""))
            value, unit = report.get("value"), _UNITS.get(uom, uom)
            alarm = " — out of the agreed range" if report.get("exception") else ""
            lines.append(f"{measured}: {value} {unit}{alarm}".strip())
    return lines
