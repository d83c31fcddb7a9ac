"""What the consumer page shows, built from a verified trace: plain values for the template.

Facts (origin, custody, inspections, sale, recall, excursions) come only from the chain records of
their kind, signed by the party the chain lets record them; everything else an event says is shown
as what it is, an observation by a named party ("reported by Blue Water Lines").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import segno

from tracechain.chain.trace_event import Kind, subject_id
from tracechain.epcis.identifiers import InvalidIdentifier, digital_link
from tracechain.epcis.mapping import describe
from tracechain.store.models import Participant
from tracechain.trace import Statement, Trace, TraceEntry, Verdict

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
    statement: str = Statement.FACT.value
    """fact, observation (shown as reported by `who`) or withdrawal."""
    withdrawn: list[str] = field(default_factory=list)
    """Why and by whom the event was withdrawn as erroneous, if it was."""
    corrections: list[tuple[str, str | None]] = field(default_factory=list)
    """The events correcting a withdrawn one, in words, with the anchor of their step on the page
    (None for one named by the declaration that this trace does not hold)."""
    anchor: str = ""


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
    """How an order for one of the product's shipments stands, in words: no amounts, shares or parties."""

    shipment: str
    status: str


def build_page(
    trace: Trace,
    participants: dict[str, Participant],
    resolver: str,
    settlement: list[dict[str, Any]] | None = None,
) -> Page:
    anchors = {id(entry): f"step-{index}" for index, entry in enumerate(trace.entries)}
    steps = [_step(entry, participants, anchors) for entry in trace.entries]
    followed = {subject_id(identifier) for identifier in (trace.epc, *trace.units)}
    facts = [
        (entry, record)
        for entry in trace.entries
        if entry.statement is Statement.FACT
        for record in entry.event.records
        if record.subject in followed
    ]
    route: list[tuple[str, str]] = []
    for _, record in facts:  # who held it: its maker, then each party that received it or its units
        if record.kind in (Kind.COMMISSION, Kind.RECEIVE):
            party = participants.get(record.signer)
            stop = (party.country, party.name) if party else ("", record.signer)
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
        origin=next((s for s, e in zip(steps, trace.entries, strict=True) if e is trace.origin), None),
        steps=steps,
        route=route,
        units=trace.units,
        ingredients=trace.ingredients,
        recalled=any(record.kind == Kind.RECALL for _, record in facts),
        excursions=len({entry.event.row_id for entry, record in facts if record.kind == Kind.EXCURSION}),
        payments=[_payment(order) for order in settlement or []],
    )


def _payment(order: dict[str, Any]) -> Payment:
    return Payment(order["shipment"], order["payment"].capitalize())


def _step(entry: TraceEntry, participants: dict[str, Participant], anchors: dict[int, str]) -> Step:
    event, signer = entry.event.body, entry.event.signer
    party = participants.get(signer)
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
        readings=_readings(event, counted=bool(entry.facts(Kind.EXCURSION))),
        statement=entry.statement.value,
        withdrawn=[_withdrawal(declaration, participants) for declaration in entry.withdrawn_by],
        corrections=_corrections(entry, participants, anchors),
        anchor=anchors[id(entry)],
    )


def _corrections(
    entry: TraceEntry, participants: dict[str, Participant], anchors: dict[int, str]
) -> list[tuple[str, str | None]]:
    """Each corrective event of a withdrawn one, in words: those this trace holds link to their
    step; one only named (captured elsewhere, or not yet) is mentioned by its eventID."""
    found: list[tuple[str, str | None]] = []
    for corrective in entry.corrected_by:
        party = participants.get(corrective.event.signer)
        when = corrective.event.event_time.strftime("%d %b %Y")
        by = party.name if party else corrective.event.signer
        found.append(
            (f"Corrected by {describe(corrective.event.body)} on {when} by {by}", anchors[id(corrective)])
        )
    found += [
        (f"Correction declared: event {corrective_id}", None)
        for corrective_id in entry.corrective_ids
        if corrective_id not in entry.corrective_ids_found
    ]
    return found


def _withdrawal(declaration: TraceEntry, participants: dict[str, Participant]) -> str:
    party = participants.get(declaration.event.signer)
    declared = declaration.event.body.get("errorDeclaration") or {}
    reason = str(declared.get("reason") or "").rsplit("-", 1)[-1].rsplit(":", 1)[-1].replace("_", " ")
    when = str(declared.get("declarationTime") or "")[:10]
    by = party.name if party else declaration.event.signer
    return (
        f"Withdrawn as erroneous by {by}"
        + (f" on {when}" if when else "")
        + (f": {reason}" if reason else "")
    )


def _unit_word(epc: str) -> str:
    return "pallet" if ":sscc:" in epc else "container" if ":grai:" in epc else "unit"


def _readings(event: dict[str, Any], counted: bool) -> list[str]:
    """Each sensor reading in words. An alarm is "out of the agreed range" only when the chain
    counted it as an excursion (reported by the party holding the goods); any other exception is
    named for what it is."""
    lines = []
    for element in event.get("sensorElementList") or []:
        for report in element.get("sensorReport") or []:
            measured = str(report.get("type", "reading")).rsplit("-", 1)[-1].rsplit("/", 1)[-1]
            uom = str(report.get("uom", ""))
            value, unit = report.get("value"), _UNITS.get(uom, uom)
            lines.append(f"{measured}: {value} {unit}{_exception(report.get('exception'), counted)}".strip())
    return lines


def _exception(exception: Any, counted: bool) -> str:
    if not exception:
        return ""
    word = str(exception).rsplit("-", 1)[-1]
    if word == "ALARM_CONDITION":
        return " — out of the agreed range" if counted else " — alarm reported (not a recorded excursion)"
    if word == "ERROR_CONDITION":
        return " — sensor error"
    return f" — {word}"
