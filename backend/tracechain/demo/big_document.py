"""A big EPCIS 2.0 document, as trading partners exchange them: tens of thousands of events in one
file, written as it is generated so that no document is ever held whole (`make bench` writes
100 MB of it, the tests a few).

The events follow lots of goods through a factory: items commissioned with their lot's master data
(`ilmd`, with an extension of the maker's own), packed into a case, the case shipped, and the
shipment observed with sensor readings along the way; every event carries the maker's extension
fields, as real exchanges carry ERP references. About 2 KB an event on average.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Final

from tracechain.epcis.builders import aggregation_event, object_event, sensor_event
from tracechain.epcis.event_hash import EPCIS_CONTEXT

EXTENSION_PREFIX: Final = "maker"
EXTENSION_NAMESPACE: Final = "https://ns.bright-electronics.example/epcis/"
CONTEXT: Final = [EPCIS_CONTEXT, {EXTENSION_PREFIX: EXTENSION_NAMESPACE}]

ITEMS_PER_CASE: Final = 4
READINGS_PER_CASE: Final = 5
EVENTS_PER_CASE: Final = 3 + READINGS_PER_CASE
"""Commissioning, packing, shipping, then the readings."""

_SITE: Final = "urn:epc:id:sgln:6901234.00001.0"


def factory_events(
    count: int, *, lot: int, start: datetime, company: str = "6901234"
) -> Iterator[dict[str, Any]]:
    """`count` events of goods made in lot `lot` (its serial numbers start with it, so that lots
    never collide), a second apart from `start`."""
    made = 0
    case = 0
    while made < count:
        at = start + timedelta(seconds=case * EVENTS_PER_CASE)
        items = [f"urn:epc:id:sgtin:{company}.067890.{lot}c{case}i{i}" for i in range(ITEMS_PER_CASE)]
        parent = f"urn:epc:id:sscc:{company}.{lot % 1000:03d}{case:07d}"
        for event in _case_events(case, lot, items, parent, at):
            if made == count:
                return
            made += 1
            yield event
        case += 1


def _case_events(
    case: int, lot: int, items: list[str], parent: str, at: datetime
) -> Iterator[dict[str, Any]]:
    commissioning = object_event(
        items, biz_step="commissioning", action="ADD", disposition="active", at=at, location=_SITE
    )
    commissioning["ilmd"] = {
        "cbvmda:lotNumber": lot,
        "cbvmda:itemExpirationDate": "2031-12-31",
        f"{EXTENSION_PREFIX}:production": {
            f"{EXTENSION_PREFIX}:line": f"SMT-{case % 7}",
            f"{EXTENSION_PREFIX}:shift": ("early", "late", "night")[case % 3],
            f"{EXTENSION_PREFIX}:firmware": f"4.{case % 11}.{case % 97}",
            f"{EXTENSION_PREFIX}:inspector": f"QA-{case % 23:03d}",
        },
    }
    yield _with_references(commissioning, case, "commissioned")
    yield _with_references(
        aggregation_event(parent, items, at=at + timedelta(seconds=1), location=_SITE), case, "packed"
    )
    shipping = object_event(
        [parent],
        biz_step="shipping",
        disposition="in_transit",
        at=at + timedelta(seconds=2),
        location=_SITE,
        destination="urn:epc:id:pgln:8712345.00000",
    )
    shipping["bizTransactionList"] = [
        {"type": "po", "bizTransaction": f"urn:epcglobal:cbv:bt:8712345000007:PO-{lot}-{case}"},
        {"type": "desadv", "bizTransaction": f"urn:epcglobal:cbv:bt:6901234000009:ASN-{lot}-{case}"},
    ]
    yield _with_references(shipping, case, "shipped")
    for reading in range(READINGS_PER_CASE):
        observed = sensor_event(
            [parent],
            at=at + timedelta(seconds=3 + reading),
            measurement="gs1:Temperature",
            value=4.0 + (case + reading) % 5 * 0.5,
            uom="CEL",
            minimum=2.0,
            maximum=8.0,
            location=_SITE,
        )
        reports = observed["sensorElementList"][0]["sensorReport"]
        time = reports[0]["time"]
        reports += [
            {"type": "gs1:RelativeHumidity", "value": 40 + reading, "uom": "A93", "time": time},
            {"type": "gs1:Illuminance", "value": 3.5, "uom": "LUX", "time": time},
            {"type": "gs1:Speed", "value": 0.2 * reading, "uom": "MTS", "time": time},
        ]
        observed["sensorElementList"][0]["sensorMetadata"] = {
            "deviceID": f"urn:epc:id:giai:4000001.{case % 50}",
            "deviceMetadata": "https://id.bright-electronics.example/loggers/model-7",
        }
        yield _with_references(observed, case, f"reading {reading}")


_REMARKS: Final = (
    "ESD-sensitive devices: handle on grounded mats only, wrist straps checked at every shift change. "
    "Keep dry (10-60 % RH) and between 2 and 8 degrees Celsius in transit; the logger in each case "
    "reports temperature, humidity, light and motion. Cases are sealed with tamper-evident tape "
    "bearing the case's SSCC; a broken seal is reported to quality assurance before the case is "
    "opened. Return damaged goods with the original packaging and the RMA number on the outer box. "
    "Export control classification EAR99; country of origin China; HS code 8542.31; RoHS and REACH "
    "declarations available on request from compliance@bright-electronics.example. "
) * 2


def _with_references(event: dict[str, Any], case: int, what: str) -> dict[str, Any]:
    """The maker's ERP fields, in its own namespace, as exchanges carry them."""
    event[f"{EXTENSION_PREFIX}:erp"] = {
        f"{EXTENSION_PREFIX}:order": f"SO-{2026_000_000 + case}",
        f"{EXTENSION_PREFIX}:plant": "Shenzhen Longhua, building 3",
        f"{EXTENSION_PREFIX}:note": f"case {case} {what}; handled per work instruction WI-0457 rev. C",
        f"{EXTENSION_PREFIX}:remarks": _REMARKS,
    }
    return event


def write_document(
    out: BinaryIO, events: Iterable[dict[str, Any]], *, header_last: bool = False, master_data: Any = None
) -> int:
    """Write an EPCIS document holding `events` to `out`, one event at a time; returns how many.
    `header_last` puts `@context` and `epcisHeader` after the event list, which JSON allows and a
    streaming reader must therefore handle."""
    head: dict[str, Any] = {"@context": CONTEXT}
    if master_data is not None:
        head["epcisHeader"] = {"epcisMasterData": master_data}
    shell = {"type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-01-05T08:00:00Z"}
    opening = json.dumps(shell if header_last else {**head, **shell})[:-1]
    out.write(f'{opening}, "epcisBody": {{"eventList": ['.encode())
    written = 0
    for event in events:
        out.write((b"," if written else b"") + json.dumps(event, separators=(",", ":")).encode())
        written += 1
    closing = ", " + json.dumps(head)[1:] if header_last else "}"
    out.write(f"]}}{closing}".encode())
    return written
