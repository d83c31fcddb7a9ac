"""An inline @context is kept with the events it applies to and served with each of them, so every
served event re-hashes to its id, even beside events whose documents gave a prefix another meaning."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tracechain.epcis.builders import object_event
from tracechain.epcis.event_hash import EPCIS_CONTEXT, event_hash_id
from tracechain.store.models import Event

from ..epcis.reference import reference_hash_ids
from .conftest import Api, document
from .test_capture import ITEM, T0, count


def noted(note: str, hours: int) -> dict[str, Any]:
    return {**object_event([ITEM], biz_step="inspecting", at=T0 + timedelta(hours=hours)), "ex:note": note}


def served(api: Api) -> tuple[list[dict[str, Any]], Any]:
    answer = api.admin("GET", "/events").json()
    return answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"], answer["@context"]


def test_events_whose_documents_define_one_prefix_differently_are_each_served_with_their_own(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    headers = api.as_participant(parties["carrier"])
    namespaces = ["http://ns.one.example/epcis/", "http://ns.two.example/epcis/"]
    for hours, namespace in enumerate(namespaces):
        sent = {**document([noted("same words", hours)]), "@context": [EPCIS_CONTEXT, {"ex": namespace}]}
        assert api.client.post("/capture", json=sent, headers=headers).status_code == 202
    events, page_context = served(api)
    assert [event["@context"] for event in events] == [[EPCIS_CONTEXT, {"ex": n}] for n in namespaces]
    ids = []
    for event in events:
        body = {key: value for key, value in event.items() if not key.startswith(("@", "tracechain:"))}
        ids.append(event_hash_id(body, event["@context"]))
        assert ids[-1] == event["eventID"]
        assert event_hash_id(body, page_context) != event["eventID"]  # the prefix does matter
    assert len(set(ids)) == 2


def test_an_event_with_a_context_of_its_own_keeps_it_and_is_served_with_its_documents_beside(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """GS1's reference hash reads prefixes from the document's @context and an event's own as one
    of its fields: both are needed to re-hash it."""
    event = {**noted("own words", 0), "@context": {"ex": "http://ns.own.example/epcis/"}}
    sent = {**document([event]), "@context": [EPCIS_CONTEXT, {"ex": "http://ns.document.example/"}]}
    response = api.client.post("/capture", json=sent, headers=api.as_participant(parties["carrier"]))
    assert response.status_code == 202, response.text
    (shown,), _ = served(api)
    assert shown["@context"] == event["@context"]
    assert shown["tracechain:capturedContext"] == sent["@context"]
    assert shown["eventID"] == reference_hash_ids(sent)[0]
    body = {key: value for key, value in shown.items() if not key.startswith("tracechain:")}
    assert event_hash_id(body, shown["tracechain:capturedContext"]) == shown["eventID"]


def test_an_event_in_the_standard_context_carries_none_of_its_own(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    event = object_event([ITEM], biz_step="inspecting", at=T0)
    api.capture(parties["carrier"], [event])
    (shown,), _ = served(api)
    assert "@context" not in shown


OUR_NS = "https://tracechain.dev/epcis#"
IN_EVENT = "epcisBody.eventList[0]."


@pytest.mark.parametrize(
    ("context", "fields", "location"),
    [
        ({"tracechain": "http://evil.example/"}, {}, "@context[1].tracechain"),
        # even to its own meaning: a capturer then writes tracechain's terms in events
        ({"tracechain": OUR_NS}, {}, "@context[1].tracechain"),
        ({"tc": OUR_NS}, {}, "@context[1].tc"),
        ({"hashId": {"@id": OUR_NS + "hashId"}}, {}, "@context[1].hashId"),
        ({"tc": "https://tracechain.dev/"}, {}, "@context[1].tc"),  # tc:epcis#hashId is ours
        ({"@vocab": OUR_NS}, {}, "@context[1].@vocab"),
        (
            None,
            {"tracechain:hashId": "ni:///sha-256;forged?ver=CBV2.0"},
            "epcisBody.eventList[0].tracechain:hashId",
        ),
        (None, {"tracechain:withheld": []}, IN_EVENT + "tracechain:withheld"),
        (None, {OUR_NS + "hashId": "forged"}, IN_EVENT + OUR_NS + "hashId"),
        (
            None,
            {"ex:note": {"tracechain:hashId": "forged"}},
            "epcisBody.eventList[0].ex:note.tracechain:hashId",
        ),
    ],
    ids=[
        "prefix-elsewhere",
        "prefix-ours",
        "other-prefix-ours",
        "term-ours",
        "stem-of-ours",
        "vocab-ours",
        "hash-id",
        "withheld",
        "full-iri",
        "nested",
    ],
)
def test_a_capture_speaking_in_tracechains_name_is_refused(
    api: Api, parties: dict[str, dict[str, Any]], context: Any, fields: dict[str, Any], location: str
) -> None:
    """Served events carry tracechain's terms (`tracechain:hashId`, `tracechain:withheld`) and their
    own context: a capturer's own such field, or a context giving tracechain's prefix or namespace
    to its terms, would be served as if tracechain had said it."""
    sent = document([{**noted("x", 0), **fields}])
    if context is not None:
        sent["@context"] = [EPCIS_CONTEXT, context]
    response = api.client.post("/capture", json=sent, headers=api.as_participant(parties["carrier"]))
    assert response.status_code == 400, response.text
    assert location in [error["location"] for error in response.json()["errors"]]
    assert "tracechain" in response.json()["detail"]
    assert count(api, Event) == 0
