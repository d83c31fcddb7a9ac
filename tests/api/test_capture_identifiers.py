"""One event may name anything the EPCIS 2.0 schema admits as an identifier: every EPC scheme, every
GS1 Digital Link primary key, private URIs; it is captured, recorded, and found by each of them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from tracechain.epcis.builders import object_event
from tracechain.epcis.identifiers import canonical_identifier
from tracechain.store.models import ChainRecord

from ..epcis.test_identifiers import EVERY_SCHEME
from .conftest import Api
from .test_capture import T0

PRIVATE = ["https://things.example.com/pallet/7", "urn:example:thing:7"]


def is_class(identifier: str) -> bool:
    """Named in a quantity list (a product type or a lot), not in an EPC list."""
    return identifier.startswith(("urn:epc:class:", "urn:epc:idpat:"))


def found_by(api: Api, parameter: str, value: str) -> list[dict[str, Any]]:
    as_captured = {"GS1-EPC-Format": "Never_Translates"}
    response = api.admin("GET", "/events", params={parameter: value}, headers=as_captured)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def test_an_event_naming_every_scheme_is_captured_and_found_by_each(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    written = [row[0] for row in EVERY_SCHEME] + PRIVATE
    # One spelling per thing: the schema wants epcList's entries unique, and so does the test.
    by_thing = {canonical_identifier(value): value for value in written}
    instances = [value for canonical, value in by_thing.items() if not is_class(canonical)]
    classes = [value for canonical, value in by_thing.items() if is_class(canonical)]
    event = object_event(instances, biz_step="inspecting", at=T0)
    event["quantityList"] = [{"epcClass": value, "quantity": 1} for value in classes]

    response = api.capture(parties["carrier"], [event])
    assert response.status_code == 202, response.text
    api.settle()
    job = api.client.get(response.headers["Location"], headers=api.as_participant(parties["carrier"])).json()
    assert job["success"], job

    for value in instances:
        assert len(found_by(api, "MATCH_anyEPC", value)) == 1, value
    for value in classes:
        assert len(found_by(api, "MATCH_anyEPCClass", value)) == 1, value
    # Found by the other spelling of each GS1 thing too.
    for written_as, canonical, link in EVERY_SCHEME:
        parameter = "MATCH_anyEPCClass" if is_class(canonical_identifier(written_as)) else "MATCH_anyEPC"
        for other in {canonical, link} - {None}:
            assert other is not None
            assert len(found_by(api, parameter, other)) == 1, other
    for value in PRIVATE:
        assert api.admin("GET", f"/events/{quote(value, safe='')}").status_code == 404  # not an event id
        assert found_by(api, "MATCH_anyEPC", value)[0]["epcList"] == instances
    # Each thing has a trace, however it is written, private URIs included.
    for value in [
        *PRIVATE,
        "urn:epc:id:bic:CSQU3054383",
        "https://example.com/8013/1987654Ad4X4bL5ttr2310c2K",
    ]:
        traced = api.client.get("/trace/" + quote(value, safe=""))
        assert traced.status_code == 200, value
        assert traced.json()["epc"] == canonical_identifier(value)
        assert len(traced.json()["events"]) == 1


def sensor_reading(read_point: str, hours: int) -> dict[str, Any]:
    event = object_event([], biz_step="sensor_reporting", at=T0 + timedelta(hours=hours))
    return {
        **event,
        "readPoint": {"id": read_point},
        "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 4.5, "uom": "CEL"}]}],
    }


def test_events_naming_no_identifier_complete_and_are_served_with_record_times_in_utc(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """A reading at a GS1 location is recorded on chain as an observation of that place; one at a
    private location names nothing the chain keys, so it waits for nothing."""
    carrier = parties["carrier"]
    at_dock = sensor_reading("urn:epc:id:sgln:6901234.00000.7", 1)
    at_shed = sensor_reading("https://places.example.com/shed/3", 2)
    for event, recorded in ((at_dock, True), (at_shed, False)):
        response = api.capture(carrier, [event])
        assert response.status_code == 202, response.text
        assert response.json()["success"] is not recorded  # no chain record: finished at once
    api.settle()
    for event in (at_dock, at_shed):
        (served,) = found_by(api, "EQ_readPoint", event["readPoint"]["id"])
        assert served["epcList"] == []
        assert datetime.fromisoformat(served["recordTime"]).utcoffset() == timedelta(0)
    with api.services.sessions() as session:
        records = session.scalars(select(ChainRecord)).all()
    assert {record.subject_epc for record in records} == {"urn:epc:id:sgln:6901234.00000.7"}
