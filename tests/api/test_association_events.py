"""GS1's TCR-54: the capture interface accepts AssociationEvents, a physical location as their
parent included, and refuses the two shapes the standard rules out (the JSON schema states both)."""

from __future__ import annotations

from typing import Any

import pytest

from tracechain.epcis.identifiers import digital_link

from .conftest import Api

SENSOR = "urn:epc:id:giai:6901234.SENSOR7"
DOOR = "urn:epc:id:sgln:6901234.00000.7"  # a physical location (SGLN) as the parent


def association(action: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "AssociationEvent",
        "eventTime": "2024-05-01T10:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": action,
        "bizStep": "assembling",
        **fields,
    }


def test_an_association_with_a_location_as_parent_is_captured_and_found(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    response = api.capture(parties["manufacturer"], [association("ADD", parentID=DOOR, childEPCs=[SENSOR])])
    assert response.status_code == 202, response.text
    api.settle()
    assert api.client.get(
        response.headers["Location"], headers=api.as_participant(parties["manufacturer"])
    ).json()["success"]
    found = api.admin(
        "GET", "/events", params={"eventType": "AssociationEvent", "MATCH_parentID": DOOR}
    ).json()
    events = found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    # Served as Digital Links, the binding's default GS1-EPC-Format.
    assert [(event["parentID"], event["childEPCs"]) for event in events] == [
        (digital_link(DOOR), [digital_link(SENSOR)])
    ]


@pytest.mark.parametrize(
    ("event", "missing"),
    [
        (association("ADD", childEPCs=[SENSOR]), "parentID"),  # TCR-54 step 3
        (association("DELETE", childEPCs=[SENSOR]), "parentID"),
        (association("ADD", parentID=DOOR), "childEPCs"),  # step 4: neither childEPCs nor childQuantityList
        (association("OBSERVE", parentID=DOOR), "childEPCs"),
    ],
    ids=["ADD-without-parent", "DELETE-without-parent", "ADD-without-children", "OBSERVE-without-children"],
)
def test_an_association_the_standard_rules_out_is_refused_naming_the_field(
    api: Api, parties: dict[str, dict[str, Any]], event: dict[str, Any], missing: str
) -> None:
    response = api.capture(parties["manufacturer"], [event])
    assert response.status_code == 400, response.text
    assert f"epcisBody.eventList[0].{missing}" in [error["location"] for error in response.json()["errors"]]
    assert (
        api.admin("GET", "/events", params={"eventType": "AssociationEvent"}).json()["epcisBody"][
            "queryResults"
        ]["resultsBody"]["eventList"]
        == []
    )
