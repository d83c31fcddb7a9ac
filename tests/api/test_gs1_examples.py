"""Every capture document among GS1's EPCIS 2.0 examples goes through the API, is recorded on chain
and is queryable under the event ids GS1's reference hash algorithm gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tracechain.epcis.event_hash import event_hash_ids

from .conftest import Api

EXAMPLES = Path(__file__).parents[1] / "data" / "epcis"
# GS1's reference hash generator itself crashes on this example (an inline @context with term
# definitions, then a bizTransaction structure it cannot read), so no reference id exists for it.
UNHASHABLE = {"Example-TransactionEvents-2020_07_03y.jsonld"}
CAPTURE_DOCUMENTS = sorted(
    path
    for path in EXAMPLES.rglob("*.jsonld")
    if json.loads(path.read_text())["type"] == "EPCISDocument" and path.name not in UNHASHABLE
)


@pytest.mark.parametrize("path", CAPTURE_DOCUMENTS, ids=[p.name for p in CAPTURE_DOCUMENTS])
def test_a_gs1_example_is_accepted_recorded_and_queryable(
    api: Api, parties: dict[str, dict[str, Any]], path: Path
) -> None:
    document = json.loads(path.read_text())
    response = api.client.post("/capture", json=document, headers=api.as_participant(parties["manufacturer"]))
    assert response.status_code == 202, response.text
    api.settle()
    job = api.client.get(
        response.headers["Location"], headers=api.as_participant(parties["manufacturer"])
    ).json()
    assert job["success"], job

    for event_id in event_hash_ids(document):
        found = api.client.get("/events/" + quote(event_id, safe=""))
        assert found.status_code == 200, event_id
        (event,) = found.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert event["eventID"] == event_id


def test_the_unhashable_example_is_rejected_with_the_reason(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    (name,) = UNHASHABLE
    document = json.loads((EXAMPLES / name).read_text())
    response = api.client.post("/capture", json=document, headers=api.as_participant(parties["manufacturer"]))
    assert response.status_code == 400
    assert "cannot be hashed" in response.json()["errors"][0]["reason"]
