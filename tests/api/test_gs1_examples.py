"""Every capture document among GS1's EPCIS 2.0 examples goes through the API, is recorded on chain
and is queryable under the event ids GS1's reference hash algorithm gives. An example declaring an
error in an event goes after that event, captured by the same participant: only an event's own
signer (or an auditor) may withdraw it, and only once it was captured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tracechain.epcis.event_hash import event_hash_id

from ..epcis.reference import reference_hash_ids_of
from .conftest import Api

EXAMPLES = Path(__file__).parents[1] / "data" / "epcis"
CAPTURE_DOCUMENTS = sorted(
    path for path in EXAMPLES.rglob("*.jsonld") if json.loads(path.read_text())["type"] == "EPCISDocument"
)


@pytest.mark.parametrize("path", CAPTURE_DOCUMENTS, ids=[p.name for p in CAPTURE_DOCUMENTS])
def test_a_gs1_example_is_accepted_recorded_and_queryable(
    api: Api, parties: dict[str, dict[str, Any]], path: Path
) -> None:
    document = json.loads(path.read_text())
    maker = api.as_participant(parties["manufacturer"])
    withdrawn = [
        {key: value for key, value in event.items() if key != "errorDeclaration"}
        for event in document["epcisBody"]["eventList"]
        if "errorDeclaration" in event
    ]
    if withdrawn:  # an error declaration withdraws an event its author captured before
        earlier = {**document, "epcisBody": {"eventList": withdrawn}}
        assert api.client.post("/capture", json=earlier, headers=maker).status_code == 202
    response = api.client.post("/capture", json=document, headers=maker)
    assert response.status_code == 202, response.text
    api.settle()
    job = api.client.get(response.headers["Location"], headers=maker).json()
    assert job["success"], job

    # The reference's ids; for Example-TransactionEvents-2020_07_03y.jsonld, which the reference
    # tool crashes on, the ids its algorithm gives a form of it the tool reads (see
    # tests/epcis/test_event_hash.py::test_the_example_the_reference_crashes_on_hashes_as_its_readable_form).
    expected = reference_hash_ids_of(document)
    assert len(expected) == len(document["epcisBody"]["eventList"])
    for event_id in expected:
        found = api.admin("GET", "/events/" + quote(event_id, safe=""))
        assert found.status_code == 200, event_id
        # the event as captured, and any error declaration withdrawing it
        captured = found.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert {event.get("tracechain:hashId", event["eventID"]) for event in captured} == {event_id}
    # Each event's own declared eventID finds it too, and is served as its eventID.
    for declared in {e["eventID"] for e in document["epcisBody"]["eventList"] if "eventID" in e}:
        found = api.admin("GET", "/events/" + quote(declared, safe=""))
        assert found.status_code == 200, declared
        served = found.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert declared in {event["eventID"] for event in served}
        by_parameter = api.admin("GET", "/events", params={"EQ_eventID": declared}).json()
        assert by_parameter["epcisBody"]["queryResults"]["resultsBody"]["eventList"]

    # Every event served re-hashes to its id with the context it is served with: the document's
    # inline context (extension prefixes such as `example:`) travels with each event it applies to.
    answer = api.admin("GET", "/events", params={"perPage": "1000"}).json()
    served = answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert {event.get("tracechain:hashId", event["eventID"]) for event in served} == set(expected)
    for event in served:  # the events, and declarations (the CBV hash leaves errorDeclaration out)
        context = event.get("@context", answer["@context"])
        body = {key: value for key, value in event.items() if not key.startswith(("@", "tracechain:"))}
        assert event_hash_id(body, context) == event.get("tracechain:hashId", event["eventID"]), event
