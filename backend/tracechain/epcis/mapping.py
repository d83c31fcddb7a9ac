"""From one EPCIS 2.0 event to the TraceRegistry effects it asks for, and a line for consumers.

:func:`effects_of` reads an event (a dict, as in a JSON / JSON-LD capture document) and says what
it does to each subject on chain; the service resolves parties to addresses, signs and records.
bizStep, disposition and source/destination types may be bare CBV words (`shipping`) or CBV URIs
(`urn:epcglobal:cbv:bizstep:shipping`, `https://ref.gs1.org/cbv/BizStep-shipping`).

==================================================  ===================================================
EPCIS event                                         effect, per subject
==================================================  ===================================================
ObjectEvent ADD, bizStep commissioning              COMMISSION each EPC and each lot
ObjectEvent shipping, with a destination            SHIP each; counterpart_party = the destination
ObjectEvent shipping, no destination                OBSERVE each (nobody to propose custody to)
ObjectEvent receiving                               RECEIVE each
ObjectEvent inspecting, disposition conformant      INSPECT each, verdict VERDICT_CLEARED
ObjectEvent inspecting, disposition non_conformant  INSPECT each, verdict VERDICT_REJECTED
ObjectEvent retail_selling                          SELL each
ObjectEvent destroying                              CONSUME each (used up, as an ingredient is)
AggregationEvent ADD                                AGGREGATE each child; ref_subject = parentID
AggregationEvent DELETE                             DISAGGREGATE each child; ref_subject = parentID
                                                    (OBSERVE the parent when no child is listed)
AggregationEvent OBSERVE                            OBSERVE the parent and each child
TransformationEvent                                 CONSUME each input, ref_subject = the first output;
                                                    COMMISSION each output
any event, disposition recalled                     RECALL each subject it describes
any event, a sensor report with exception           EXCURSION each subject it describes
ALARM_CONDITION
any event carrying an errorDeclaration              WITHDRAW each identifier, nothing else
everything else (other bizSteps, TransactionEvent,  OBSERVE each identifier the event names
AssociationEvent, extension event types)
==================================================  ===================================================

- "Each" means the instance identifiers (epcList, childEPCs, inputEPCList, outputEPCList) and the
  lots in quantity lists (`urn:epc:class:lgtin:…`, `/01/{gtin}/10/{lot}`). A quantity of a product
  type with no lot (`urn:epc:idpat:sgtin:…*`, `/01/{gtin}`) names nothing anyone holds: it only
  ever gets OBSERVE.
- The destination is the destinationList entry of type owning_party, else possessing_party, else
  location. A GS1 party or location (SGLN, PGLN, as URN or Digital Link) is given as its canonical
  EPC URN, like subjects, so it matches a party id registered through
  :func:`~tracechain.epcis.identifiers.canonical_epc` however either was written; any other URI is
  given as written. The service resolves it to an address.
- The subjects an event "describes" are those its disposition and sensor reports are about: all
  it names, except a TransformationEvent's, which describes its outputs (the inputs are gone).
- RECALL and EXCURSION come on top of a custody effect (shipping recalled goods back is a SHIP and
  a RECALL) and replace an OBSERVE of the same subject.
- An error declaration says an earlier event was wrong; replaying that event's custody effects
  would be wrong twice, so it is a WITHDRAW of each subject the event names and changes nothing
  (capture names the withdrawn event and its signer: only that signer or an auditor may withdraw
  it). Corrective events are captured on their own.
- SHIP and RECEIVE come from ObjectEvents only: ship a pallet with an ObjectEvent naming its SSCC
  (the children follow it on chain); an AggregationEvent OBSERVE at receiving is an observation.
- Every subject is the canonical EPC URN (:mod:`tracechain.epcis.identifiers`), listed once even
  if the event names it twice or in both URN and Digital Link form. An event naming no identifier
  (a bare sensor reading at a read point) is an OBSERVE of its read point, else of its business
  location (GS1 locations): recorded on chain, tied to no product. One naming neither has no
  effect, and nothing goes on chain for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from tracechain.chain.trace_event import VERDICT_CLEARED, VERDICT_REJECTED, Kind
from tracechain.epcis.identifiers import (
    InvalidIdentifier,
    NotGS1Identifier,
    canonical_epc,
    canonical_identifier,
    gs1_key,
    is_class,
)
from tracechain.errors import TracechainError

_CBV_FORMS: Final = {  # CBV vocabulary -> its EPCglobal URN prefix
    "BizStep": "urn:epcglobal:cbv:bizstep:",
    "Disp": "urn:epcglobal:cbv:disp:",
    "SDT": "urn:epcglobal:cbv:sdt:",
}
_WEB_VOCABULARIES: Final = ("https://ref.gs1.org/cbv/", "https://gs1.org/voc/", "cbv:")
_ALARM: Final = "ALARM_CONDITION"
_DESTINATION_PREFERENCE: Final = ("owning_party", "possessing_party", "location")
_VERDICTS: Final = {"conformant": VERDICT_CLEARED, "non_conformant": VERDICT_REJECTED}
_BIZ_STEP_KINDS: Final = {"receiving": Kind.RECEIVE, "retail_selling": Kind.SELL, "destroying": Kind.CONSUME}

_EPC_LISTS: Final = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS: Final = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_ROLES: Final = {
    "epcList": "epc",
    "quantityList": "quantity",
    "childEPCs": "child",
    "childQuantityList": "child",
    "inputEPCList": "input",
    "inputQuantityList": "input",
    "outputEPCList": "output",
    "outputQuantityList": "output",
}
_CBV_URN: Final = "urn:epcglobal:cbv:"

_DONE: Final = {
    "accepting": "Accepted",
    "arriving": "Arrived",
    "assembling": "Assembled",
    "collecting": "Collected",
    "commissioning": "Produced",
    "consigning": "Consigned",
    "creating_class_instance": "Produced",
    "cycle_counting": "Counted",
    "decommissioning": "Taken out of use",
    "departing": "Departed",
    "destroying": "Destroyed",
    "disassembling": "Taken apart",
    "dispensing": "Dispensed",
    "encoding": "Labelled",
    "entering_exiting": "Entered or left a site",
    "holding": "Held",
    "inspecting": "Inspected",
    "installing": "Installed",
    "killing": "Tag deactivated",
    "loading": "Loaded",
    "packing": "Packed",
    "picking": "Picked",
    "receiving": "Received",
    "removing": "Removed",
    "repackaging": "Repackaged",
    "repairing": "Repaired",
    "replacing": "Replaced",
    "reserving": "Reserved",
    "retail_selling": "Sold",
    "sampling": "Sampled",
    "sensor_reporting": "Sensor readings taken",
    "shipping": "Shipped",
    "staging_outbound": "Ready for shipping",
    "stock_taking": "Counted in stock",
    "stocking": "Stocked",
    "storing": "Stored",
    "transporting": "In transport",
    "unloading": "Unloaded",
    "unpacking": "Unpacked",
    "void_shipping": "Shipment cancelled",
}


class InvalidEvent(TracechainError, ValueError):
    """An event whose structure tracechain cannot read: not an object, or a list field that is not a list."""


@dataclass(frozen=True, slots=True)
class Effect:
    """What one event does to one subject on chain (see the module docstring for the table)."""

    subject: str
    kind: Kind
    counterpart_party: str | None = None
    """SHIP: the party custody is proposed to (canonical EPC URN if a GS1 id); the service resolves it."""
    ref_subject: str | None = None
    """AGGREGATE / DISAGGREGATE: the parent; CONSUME: the first output."""
    verdict: bytes | None = None
    """INSPECT: VERDICT_CLEARED or VERDICT_REJECTED."""


def effects_of(event: dict[str, Any]) -> list[Effect]:
    """The on-chain effects an EPCIS event asks for, subject by subject, in the order it names them.

    Raises InvalidIdentifier for an identifier that is not a valid EPC URN or Digital Link, and
    InvalidEvent for an event that is not an object or has a list field that is not a list.
    """
    if not isinstance(event, dict):
        raise InvalidEvent(f"an EPCIS event is a JSON object, not {type(event).__name__}")
    named = _named(event)
    if not named:  # a reading at a place, about no product: recorded as an observation of the place
        return [
            Effect(place, Kind.WITHDRAW if "errorDeclaration" in event else Kind.OBSERVE)
            for place in _place(event)
        ]
    if "errorDeclaration" in event:
        return [Effect(s, Kind.WITHDRAW) for s in named]

    kind = event.get("type")
    described = _held(named)
    if kind == "ObjectEvent":
        effects = _object_event(event, named)
    elif kind == "AggregationEvent":
        effects = _aggregation_event(event, named)
    elif kind == "TransformationEvent":
        inputs = _held(_identifiers(event, "inputEPCList", "inputQuantityList"))
        described = _held(_identifiers(event, "outputEPCList", "outputQuantityList"))
        first_output = next(iter(described), None)
        effects = [
            *(Effect(s, Kind.CONSUME, ref_subject=first_output) for s in inputs),
            *(Effect(s, Kind.COMMISSION) for s in described),
            *_observe(s for s in named if is_class(s)),
        ]
    else:
        effects = _observe(named)

    recalled = _cbv_word(event.get("disposition"), "Disp") == "recalled"
    alerts = [
        *(Effect(s, Kind.RECALL) for s in described if recalled),
        *(Effect(s, Kind.EXCURSION) for s in described if _alarmed(event)),
    ]
    alerted = {alert.subject for alert in alerts}
    return [e for e in effects if not (e.kind == Kind.OBSERVE and e.subject in alerted)] + alerts


def describe(event: dict[str, Any]) -> str:
    """A short plain-language line for consumers: "Shipped", "Packed onto pallet …", "Inspected: cleared"."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"an EPCIS event is a JSON object, not {type(event).__name__}")
    if "errorDeclaration" in event:
        return "Record withdrawn as erroneous"
    biz_step = _cbv_word(event.get("bizStep"), "BizStep")
    disposition = _cbv_word(event.get("disposition"), "Disp")
    kind, action = event.get("type"), event.get("action")
    if disposition == "recalled":
        line = "Recalled"
    elif kind == "AggregationEvent" and action in ("ADD", "DELETE") and event.get("parentID"):
        unit = _unit(str(event["parentID"]))
        line = f"Packed {unit[0]} {unit[1]}" if action == "ADD" else f"Unpacked from {unit[1]}"
    elif kind == "TransformationEvent":
        inputs = len(_identifiers(event, "inputEPCList", "inputQuantityList"))
        line = f"Made from {inputs} ingredient{'s' if inputs != 1 else ''}" if inputs else "Produced"
    elif biz_step == "inspecting":
        verdict = {"conformant": ": cleared", "non_conformant": ": rejected"}.get(disposition or "", "")
        line = f"Inspected{verdict}"
    else:
        line = _DONE.get(biz_step or "", "Recorded")
    alarm = _alarm_type(event)
    if alarm is not None:
        line += f"; {alarm} out of range" if alarm else "; sensor alarm"
    return line


def identifiers_of(event: dict[str, Any]) -> list[tuple[str, str]]:
    """Every identifier an event names, canonical, with its role: epc, quantity, parent, child,
    input or output (a quantity list's class takes the role of its list: childQuantityList -> child)."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"an EPCIS event is a JSON object, not {type(event).__name__}")
    parent = _canonical(event.get("parentID"), "parentID")
    found = [(parent, "parent")] if parent else []
    for field, role in _ROLES.items():
        found += [(identifier, role) for identifier in _identifiers(event, field)]
    return list(dict.fromkeys(found))


def bare_vocabulary(value: str) -> str:
    """The bare CBV word of a CBV URN or web vocabulary URI ("urn:epcglobal:cbv:bizstep:shipping",
    "https://ref.gs1.org/cbv/BizStep-shipping" -> "shipping"); any other value as it is."""
    value = value.strip()
    if value.startswith(_CBV_URN) and value.count(":") == 4:
        return value.rsplit(":", 1)[1]
    for prefix in _WEB_VOCABULARIES:
        vocabulary, dash, word = value.removeprefix(prefix).partition("-")
        if value.startswith(prefix) and dash and vocabulary.isalpha():
            return word
    return value


# ---------------------------------------------------------------- per event type


def _object_event(event: dict[str, Any], named: list[str]) -> list[Effect]:
    biz_step = _cbv_word(event.get("bizStep"), "BizStep")
    held = _held(named)
    effects: list[Effect]
    if biz_step == "commissioning" and event.get("action") == "ADD":
        effects = [Effect(s, Kind.COMMISSION) for s in held]
    elif biz_step == "shipping" and (destination := _destination(event)) is not None:
        effects = [Effect(s, Kind.SHIP, counterpart_party=destination) for s in held]
    elif biz_step in _BIZ_STEP_KINDS:
        effects = [Effect(s, _BIZ_STEP_KINDS[biz_step]) for s in held]
    elif biz_step == "inspecting" and (
        verdict := _VERDICTS.get(_cbv_word(event.get("disposition"), "Disp") or "")
    ):
        effects = [Effect(s, Kind.INSPECT, verdict=verdict) for s in held]
    else:
        return _observe(named)
    return effects + _observe(s for s in named if is_class(s))


def _aggregation_event(event: dict[str, Any], named: list[str]) -> list[Effect]:
    action = event.get("action")
    parent = _canonical(event.get("parentID"), "parentID")
    if action not in ("ADD", "DELETE") or parent is None:
        return _observe(named)
    children = _identifiers(event, "childEPCs", "childQuantityList")
    kind = Kind.AGGREGATE if action == "ADD" else Kind.DISAGGREGATE
    effects = [Effect(s, kind, ref_subject=parent) for s in _held(children) if s != parent]
    if not effects:
        effects = [Effect(parent, Kind.OBSERVE)]
    return effects + _observe(s for s in children if is_class(s))


# ---------------------------------------------------------------- reading events


def _named(event: dict[str, Any]) -> list[str]:
    """Every identifier the event names: parentID, EPC lists, quantity lists' classes."""
    parent = _canonical(event.get("parentID"), "parentID")
    return _unique([*([parent] if parent else []), *_identifiers(event, *_EPC_LISTS, *_QUANTITY_LISTS)])


def _place(event: dict[str, Any]) -> list[str]:
    """Where an event happened, as a subject: its read point, else its business location (none if
    it names neither, or names them by something other than a GS1 location)."""
    for field in ("readPoint", "bizLocation"):
        location = event.get(field)
        if isinstance(location, dict) and isinstance(location.get("id"), str):
            try:
                return [canonical_epc(location["id"].strip())]
            except InvalidIdentifier:
                continue
    return []


def _identifiers(event: dict[str, Any], *fields: str) -> list[str]:
    found: list[str] = []
    for field in fields:
        entries = event.get(field)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise InvalidEvent(f"{field} must be a list, not {type(entries).__name__}")
        for index, entry in enumerate(entries):
            value = entry.get("epcClass") if field in _QUANTITY_LISTS and isinstance(entry, dict) else entry
            identifier = _canonical(value, f"{field}[{index}]")
            if identifier is None:
                raise InvalidIdentifier(repr(value), f"{field}[{index}] names no identifier")
            found.append(identifier)
    return _unique(found)


def _canonical(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidIdentifier(repr(value), f"{where} must be a string")
    return canonical_identifier(value)


def _held(identifiers: Iterable[str]) -> list[str]:
    """Identifiers of things someone can hold: instances and lots, not product types."""
    return [s for s in identifiers if not is_class(s)]


def _observe(identifiers: Iterable[str]) -> list[Effect]:
    return [Effect(s, Kind.OBSERVE) for s in identifiers]


def _unique(identifiers: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(identifiers))


def _destination(event: dict[str, Any]) -> str | None:
    destinations = event.get("destinationList") or []
    if not isinstance(destinations, list):
        raise InvalidEvent(f"destinationList must be a list, not {type(destinations).__name__}")
    by_type: dict[str, str] = {}
    for entry in destinations:
        if isinstance(entry, dict) and isinstance(entry.get("destination"), str):
            word = _cbv_word(entry.get("type"), "SDT")
            if word is not None:
                by_type.setdefault(word, entry["destination"])
    chosen = next((by_type[t] for t in _DESTINATION_PREFERENCE if t in by_type), None)
    return None if chosen is None else _party(chosen.strip())


def parties_of(event: dict[str, Any]) -> list[str]:
    """The parties and places an event's sourceList and destinationList name, canonical, each once.
    Malformed entries name nobody (the schema has refused a malformed document before this)."""
    found = []
    for field, key in (("sourceList", "source"), ("destinationList", "destination")):
        entries = event.get(field)
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get(key), str):
                found.append(_party(entry[key].strip()))
    return list(dict.fromkeys(found))


def _party(party: str) -> str:
    """A GS1 party or location as its canonical EPC URN; any other URI as written."""
    try:
        return canonical_epc(party)
    except NotGS1Identifier:
        return party


def _cbv_word(value: Any, vocabulary: str) -> str | None:
    """The CBV word of a bare word or CBV URI of `vocabulary` (BizStep, Disp, SDT); None for others."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.startswith(_CBV_FORMS[vocabulary]):
        return value[len(_CBV_FORMS[vocabulary]) :]
    for prefix in _WEB_VOCABULARIES:
        if value.startswith(f"{prefix}{vocabulary}-"):
            return value[len(prefix) + len(vocabulary) + 1 :]
    return None if ":" in value or "/" in value else value


def _sensor_reports(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    elements = event.get("sensorElementList")
    for element in elements if isinstance(elements, list) else []:
        reports = element.get("sensorReport") if isinstance(element, dict) else None
        for report in reports if isinstance(reports, list) else []:
            if isinstance(report, dict):
                yield report


def _is_alarm(report: dict[str, Any]) -> bool:
    value = report.get("exception")
    return isinstance(value, str) and (value == _ALARM or value.endswith(f"SensorAlertType-{_ALARM}"))


def _alarmed(event: dict[str, Any]) -> bool:
    return any(_is_alarm(report) for report in _sensor_reports(event))


def _alarm_type(event: dict[str, Any]) -> str | None:
    """None without an alarm; else what was measured ("temperature"), or "" if unsaid."""
    for report in _sensor_reports(event):
        if _is_alarm(report):
            measured = report.get("type")
            word = measured.rsplit("-", 1)[-1].rsplit("/", 1)[-1] if isinstance(measured, str) else ""
            return _spaced(word).lower()
    return None


def _spaced(word: str) -> str:
    """Split a CamelCase measurement type: AbsoluteHumidity -> Absolute Humidity."""
    return "".join(f" {c}" if c.isupper() and i else c for i, c in enumerate(word)).strip()


def _unit(parent: str) -> tuple[str, str]:
    """How a consumer reads a parent: ("onto", "pallet 106141412345678908") or ("into", its id)."""
    identifier = canonical_identifier(parent)
    if identifier.startswith("urn:epc:id:sscc:"):
        return "onto", f"pallet {gs1_key(identifier)}"
    return "into", identifier
