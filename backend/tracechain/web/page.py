"""What the consumer page shows, built from a verified trace: plain values for the template.

Facts (origin, custody, inspections, sale, recall, excursions) come only from the chain records of
their kind, signed by the party the chain lets record them; everything else an event says is shown
as what it is, an observation by a named party ("reported by Blue Water Lines").

Names come from EPCIS master data, each from the party entitled to give it: the product's from its
maker (the commissioning signer), a place's from the party that signed a fact there (not an
observation, which anyone may make). A name anyone else gives is not shown; without one the page
shows the identifier.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import segno

from tracechain.chain.trace_event import Kind, subject_id
from tracechain.epcis.identifiers import InvalidIdentifier, canonical_identifier, digital_link
from tracechain.epcis.mapping import describe
from tracechain.epcis.query import canonical_location
from tracechain.store.models import MasterData, Participant
from tracechain.trace import Statement, Trace, TraceEntry, Verdict
from tracechain.visibility import product_class

DESCRIBED_VOCABULARIES = ("EPCClass", "BusinessLocation", "ReadPoint")
"""The master data the page reads: product classes and places."""
_PRODUCT_NAMES = ("descriptionShort", "regulatedProductName", "tradeItemDescription", "name")
"""Attributes naming a product class, in order of preference (CBV master data attributes)."""
_UNITS = {"CEL": "°C", "FAH": "°F", "KEL": "K", "P1": "%"}
VERDICT_WORDS = {
    Verdict.VERIFIED: ("Verified record", "Every step below is signed by who did it and recorded on chain."),
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
    """The location's identifier, as the event gives it."""
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
    place: Place | None = None
    """The location as its signer describes it in master data, if it does."""


@dataclass(frozen=True)
class Place:
    """A site as the party acting there names it in master data (`cbvmda:name`, `city`, `countryCode`)."""

    name: str
    city: str = ""
    country: str = ""

    @property
    def region(self) -> str:
        return ", ".join(part for part in (self.city, self.country) if part)


@dataclass(frozen=True)
class Alert:
    """What a shopper must know beside the verdict: the record may be intact and the goods not."""

    title: str
    text: str


@dataclass
class Page:
    epc: str
    product_name: str
    """The maker's name for the product's class; empty if it gave none."""
    link: str
    qr_svg: str
    verdict: str
    verdict_title: str
    verdict_text: str
    origin: Step | None
    steps: list[Step]
    route: list[tuple[str, str]]
    """(place, region) the goods passed through, in order, consecutive repeats merged."""
    units: list[str]
    ingredients: list[str]
    alerts: list[Alert]
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
    master_data: dict[str, list[MasterData]] | None = None,
) -> Page:
    """`master_data`: each signer's own elements of DESCRIBED_VOCABULARIES, by address."""
    described = {
        (address, element.element_id): _attributes(element.attributes)
        for address, elements in (master_data or {}).items()
        for element in elements
    }
    anchors = {id(entry): f"step-{index}" for index, entry in enumerate(trace.entries)}
    steps = [_step(entry, participants, anchors, described) for entry in trace.entries]
    followed = {subject_id(identifier) for identifier in (trace.epc, *trace.units)}
    facts = [  # what happened to the goods themselves, not to their ingredients
        (entry, step, records)
        for entry, step in zip(trace.entries, steps, strict=True)
        if entry.statement is Statement.FACT
        if (records := [record for record in entry.event.records if record.subject in followed])
    ]
    route: list[tuple[str, str]] = []
    for entry, step, records in facts:
        if entry.withdrawn_by:  # its signer says it did not happen there (a recall stays: the chain keeps it)
            continue
        if step.place:  # where the goods were, as the party acting there names it
            stop = (step.place.name, step.place.region)
        elif any(record.kind in (Kind.COMMISSION, Kind.RECEIVE) for record in records):
            party = participants.get(entry.event.signer)  # no named place: who held the goods
            stop = (party.name, party.country) if party else (entry.event.signer, "")
        else:
            continue
        if not route or route[-1] != stop:
            route.append(stop)
    alerts = [
        alert
        for entry, step, records in facts
        for alert in _alerts(step, {record.kind for record in records})
    ]
    try:
        link = digital_link(trace.epc, resolver)
    except InvalidIdentifier:
        link = f"{resolver}/trace/{trace.epc}"
    title, text = VERDICT_WORDS[trace.verdict]
    return Page(
        epc=trace.epc,
        product_name=_product_name(trace, master_data or {}),
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
        alerts=alerts,
        payments=[_payment(order) for order in settlement or []],
    )


def elements_named(trace: Trace) -> set[str]:
    """The master data elements whose names the page may show: the product's class (its GTIN as
    an EPC class pattern, or its lot) and the places of its events, as the store keeps their ids."""
    found = set()
    gtin = product_class(trace.epc)
    if gtin:
        found |= {canonical_identifier(f"https://id.gs1.org/01/{gtin}"), trace.epc}
    for entry in trace.entries:
        where = _location(entry.event.body)
        if where:
            with suppress(InvalidIdentifier):
                found.add(canonical_location(where))
    return found


def _location(event: dict[str, Any]) -> str:
    return str((event.get("bizLocation") or event.get("readPoint") or {}).get("id", ""))


def _alerts(step: Step, kinds: set[int]) -> list[Alert]:
    """A recall or an excursion of the goods, said with when and where: "Cold chain broken on
    6 Nov 2026 · MV Blue Horizon (at sea)"."""
    when = f"{step.when.day} {step.when:%b %Y}"
    where = f" · {step.place.name}" if step.place else ""
    found = []
    if Kind.RECALL in kinds:
        found.append(
            Alert(
                f"Recalled on {when}",
                f"This product has been recalled by {step.who}. Do not use it; contact the seller.",
            )
        )
    if Kind.EXCURSION in kinds:
        cold = any(reading.lower().startswith("temperature") for reading in step.readings)
        title = "Cold chain broken" if cold else "Kept outside the agreed conditions"
        readings = "; ".join(step.readings)
        found.append(Alert(f"{title} on {when}{where}", f"{readings} (reported by {step.who})."))
    return found


def _product_name(trace: Trace, master_data: dict[str, list[MasterData]]) -> str:
    """The name the product's maker gives its class (its GTIN, as an EPC class pattern, a lot or a
    Digital Link): only the maker's, so no one else can name its product."""
    gtin = product_class(trace.epc)
    if trace.origin is None or gtin is None:
        return ""
    for element in master_data.get(trace.origin.event.signer, []):
        if product_class(element.element_id) == gtin and element.vocabulary_type.endswith("EPCClass"):
            attributes = _attributes(element.attributes)
            name = next((attributes[a] for a in _PRODUCT_NAMES if attributes.get(a)), "")
            if name:
                return name
    return ""


def _attributes(attributes: list[Any]) -> dict[str, str]:
    """Master data attributes by their short name, whatever form their id takes
    (`urn:epcglobal:cbv:mda#name`, `cbvmda:name`, `https://ref.gs1.org/cbv/MDA-name`); text only."""
    found: dict[str, str] = {}
    for attribute in attributes if isinstance(attributes, list) else ():
        if isinstance(attribute, dict) and isinstance(attribute.get("attribute"), str):
            short = re.split(r"[#:/-]", str(attribute.get("id", "")))[-1]
            found.setdefault(short, attribute["attribute"].strip())
    return found


def _place(signer: str, location: str, described: dict[tuple[str, str], dict[str, str]]) -> Place | None:
    """The location as the event's signer names it in its own master data."""
    try:
        attributes = described.get((signer, canonical_location(location)), {})
    except InvalidIdentifier:
        return None
    name = attributes.get("name", "")
    return Place(name, attributes.get("city", ""), attributes.get("countryCode", "")) if name else None


def _payment(order: dict[str, Any]) -> Payment:
    return Payment(order["shipment"], order["payment"].capitalize())


def _step(
    entry: TraceEntry,
    participants: dict[str, Participant],
    anchors: dict[int, str],
    described: dict[tuple[str, str], dict[str, str]],
) -> Step:
    event, signer = entry.event.body, entry.event.signer
    party = participants.get(signer)
    where = _location(event)
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
        # An observation's place is left as its identifier: anyone may observe, and so name, anywhere.
        place=_place(signer, str(where), described)
        if where and entry.statement is not Statement.OBSERVATION
        else None,
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
