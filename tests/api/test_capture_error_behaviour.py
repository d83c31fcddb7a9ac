"""GS1-Capture-Error-Behaviour: `rollback` (the default) refuses a document with one bad event,
`proceed` captures its good events and names the bad ones in the capture job's errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tracechain.epcis.builders import object_event
from tracechain.epcis.event_hash import event_hash_ids
from tracechain.store.models import ChainRecord, Event

from .conftest import Api, document
from .test_capture import ITEM, OTHER_ITEM, T0, commissioning, count

HEADER = "GS1-Capture-Error-Behaviour"
THIRD_ITEM = "urn:epc:id:sgtin:6901234.067890.1003"


def post(api: Api, participant: dict[str, Any], events: list[dict[str, Any]], behaviour: str | None) -> Any:
    headers = api.as_participant(participant) | ({HEADER: behaviour} if behaviour else {})
    return api.client.post("/capture", json=document(events), headers=headers)


def served_ids(api: Api) -> set[str]:
    found = api.admin("GET", "/events").json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return {event["eventID"] for event in found}


def test_options_announce_both_behaviours(api: Api) -> None:
    response = api.client.options("/capture")
    assert response.headers[HEADER] == "all"


def test_proceed_captures_the_valid_events_and_names_each_invalid_one(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = parties["manufacturer"]
    schema_broken = commissioning(OTHER_ITEM)
    del schema_broken["eventTime"]
    bad_identifier = commissioning("urn:epc:id:sgtin:6901234.067890")  # no serial
    good, also_good = commissioning(), commissioning(THIRD_ITEM)
    events = [good, schema_broken, bad_identifier, also_good]

    response = post(api, maker, events, "proceed")
    assert response.status_code == 202, response.text
    api.settle()
    job = api.client.get(response.headers["Location"], headers=api.as_participant(maker)).json()
    assert job["captureErrorBehaviour"] == "proceed"
    assert job["running"] is False and job["success"] is False
    assert job["eventCount"] == 2
    (error,) = job["errors"]
    reasons = {item["location"]: item["reason"] for item in error["events"]}
    assert set(reasons) >= {"epcisBody.eventList[2]"}
    assert any(location.startswith("epcisBody.eventList[1]") for location in reasons)
    assert not any(
        location.startswith(("epcisBody.eventList[0]", "epcisBody.eventList[3]")) for location in reasons
    )
    assert "6901234.067890" in reasons["epcisBody.eventList[2]"]
    assert served_ids(api) == set(event_hash_ids(document([good, also_good])))
    assert count(api, Event) == 2


def test_proceed_leaves_out_an_event_that_needed_one_left_out(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """A shipment of a product the carrier never held is refused by custody; the inspection after it
    stands alone and is captured."""
    api.capture(parties["manufacturer"], [commissioning()])
    api.settle()
    shipping = object_event(
        [ITEM], biz_step="shipping", at=T0 + timedelta(days=1), destination="urn:epc:id:pgln:8712345.00002"
    )
    inspecting = object_event([ITEM], biz_step="inspecting", at=T0 + timedelta(days=2))
    response = post(api, parties["carrier"], [shipping, inspecting], "proceed")
    assert response.status_code == 202, response.text
    api.settle()
    job = api.client.get(response.headers["Location"], headers=api.as_participant(parties["carrier"])).json()
    (error,) = job["errors"]
    (refused,) = error["events"]
    assert refused["location"] == "epcisBody.eventList[0]"
    assert "TraceRegistryNotCustodian" in refused["reason"]
    assert event_hash_ids(document([inspecting]))[0] in served_ids(api)
    assert event_hash_ids(document([shipping]))[0] not in served_ids(api)


def test_proceed_with_no_valid_event_is_rejected_whole(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    broken = commissioning()
    del broken["eventTime"]
    response = post(api, parties["manufacturer"], [broken], "proceed")
    assert response.status_code == 400
    assert any("eventTime" in e["location"] + e["reason"] for e in response.json()["errors"])
    assert count(api, Event) == 0 and count(api, ChainRecord) == 0


def test_rollback_is_the_default_and_writes_nothing(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    bad = commissioning("urn:epc:id:sgtin:6901234.067890")
    for behaviour in (None, "rollback"):
        response = post(api, parties["manufacturer"], [commissioning(), bad], behaviour)
        assert response.status_code == 400
        assert [e["location"] for e in response.json()["errors"]] == ["epcisBody.eventList[1]"]
    assert count(api, Event) == 0 and count(api, ChainRecord) == 0
    response = post(api, parties["manufacturer"], [commissioning()], None)
    job = api.client.get(response.headers["Location"], headers=api.as_participant(parties["manufacturer"]))
    assert job.json()["captureErrorBehaviour"] == "rollback"


def test_an_unknown_behaviour_is_refused_naming_the_header(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    for value in ("all", "greedy"):
        response = post(api, parties["manufacturer"], [commissioning()], value)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert HEADER in response.json()["detail"] and repr(value) in response.json()["detail"]
    assert count(api, Event) == 0


def test_proceed_sent_again_answers_with_the_first_job(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    bad = commissioning("urn:epc:id:sgtin:6901234.067890")
    first = post(api, parties["manufacturer"], [commissioning(), bad], "proceed")
    again = post(api, parties["manufacturer"], [commissioning(), bad], "proceed")
    assert again.status_code == 202
    assert again.json()["captureID"] == first.json()["captureID"]
    assert count(api, Event) == 1


def test_proceed_judges_each_event_without_the_half_of_an_event_left_out(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """A commissions ITEM (already commissioned) and OTHER_ITEM; B commissions OTHER_ITEM. A is
    refused; B, checked against a state A had partly changed, would be refused with it."""
    maker = parties["manufacturer"]
    api.capture(maker, [commissioning()])
    api.settle()
    both = object_event(
        [ITEM, OTHER_ITEM], biz_step="commissioning", at=T0 + timedelta(hours=1), action="ADD"
    )
    other = commissioning(OTHER_ITEM, T0 + timedelta(hours=2))
    response = post(api, maker, [both, other], "proceed")
    assert response.status_code == 202, response.text
    api.settle()
    job = api.client.get(response.headers["Location"], headers=api.as_participant(maker)).json()
    assert [refused["location"] for refused in job["errors"][0]["events"]] == ["epcisBody.eventList[0]"]
    assert event_hash_ids(document([other]))[0] in served_ids(api)


def test_proceed_with_a_captured_event_and_a_new_bad_one_says_so(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """Not a document sent again: the earlier job, which refused nothing, does not answer for it."""
    maker = parties["manufacturer"]
    first = post(api, maker, [commissioning()], "proceed")
    bad = commissioning("urn:epc:id:sgtin:6901234.067890")
    response = post(api, maker, [commissioning(), bad], "proceed")
    assert response.status_code == 202, response.text
    assert response.json()["captureID"] != first.json()["captureID"]
    job = api.client.get(response.headers["Location"], headers=api.as_participant(maker)).json()
    assert not job["success"]
    assert [refused["location"] for refused in job["errors"][0]["events"]] == ["epcisBody.eventList[1]"]
    assert count(api, Event) == 1
