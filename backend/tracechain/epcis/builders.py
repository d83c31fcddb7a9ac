"""EPCIS 2.0 events built from plain arguments, for users and demos that do not write EPCIS."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _when(at: datetime) -> dict[str, str]:
    """EPCIS times to the millisecond, as the CBV hash reads them: the hash rounds microseconds to
    milliseconds, and a time within half a millisecond of the next second cannot be hashed at all
    (GS1's reference fails it too), which `datetime.now()` hits once in two thousand calls."""
    offset = at.strftime("%z")  # "+0800"
    return {
        "eventTime": at.isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": f"{offset[:3]}:{offset[3:]}",
    }


def _where(location: str | None) -> dict[str, Any]:
    return {"readPoint": {"id": location}, "bizLocation": {"id": location}} if location else {}


def object_event(
    epcs: list[str],
    *,
    biz_step: str,
    at: datetime,
    action: str = "OBSERVE",
    disposition: str | None = None,
    location: str | None = None,
    source: str | None = None,
    destination: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        **_when(at),
        "epcList": list(epcs),
        "action": action,
        "bizStep": biz_step,
    }
    if disposition:
        event["disposition"] = disposition
    event.update(_where(location))
    if source:
        event["sourceList"] = [{"type": "owning_party", "source": source}]
    if destination:
        event["destinationList"] = [{"type": "owning_party", "destination": destination}]
    return event


def aggregation_event(
    parent: str,
    children: list[str],
    *,
    at: datetime,
    action: str = "ADD",
    biz_step: str = "packing",
    location: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "AggregationEvent",
        **_when(at),
        "parentID": parent,
        "childEPCs": list(children),
        "action": action,
        "bizStep": biz_step,
        "disposition": "in_progress",
        **_where(location),
    }


def sensor_event(
    epcs: list[str],
    *,
    at: datetime,
    measurement: str,
    value: float,
    uom: str,
    minimum: float | None = None,
    maximum: float | None = None,
    location: str | None = None,
) -> dict[str, Any]:
    """A sensor reading; outside [minimum, maximum] it carries the alarm that records an excursion."""
    report: dict[str, Any] = {
        "type": measurement,
        "value": value,
        "uom": uom,
        "time": at.isoformat(timespec="milliseconds"),
    }
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        report["exception"] = "ALARM_CONDITION"
    event = object_event(epcs, biz_step="sensor_reporting", at=at, location=location)
    # The time is the reading's: EPCIS 2.0 lets it be said of the reading or of the whole element, not both.
    event["sensorElementList"] = [{"sensorReport": [report]}]
    return event
