"""Error declarations withdraw an event already captured (by its signer or an auditor; anyone else
is refused), and the corrective events they name are linked to the event they correct in the trace
and on the consumer page, whether captured before or after the declaration."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tracechain.epcis.builders import object_event
from tracechain.store.models import Event

from .conftest import Api
from .test_capture import ITEM, T0, commissioning, count
from .test_trust import new_rival, page, trace

WRONG_ID = "urn:uuid:6c1a6d7e-5a1e-4f3b-9a55-0d1f3c2b8a01"
CORRECTIVE_ID = "urn:uuid:0b9c3f55-1d7a-4a64-8c2e-7e8f9a0b1c02"


def inspected(at_hours: int, event_id: str) -> dict[str, Any]:
    event = object_event([ITEM], biz_step="inspecting", at=T0 + timedelta(hours=at_hours))
    return {**event, "eventID": event_id}


def declaration(of: dict[str, Any], corrective: list[str] | None = None) -> dict[str, Any]:
    declared: dict[str, Any] = {"declarationTime": "2026-10-05T09:00:00Z", "reason": "incorrect_data"}
    if corrective is not None:
        declared["correctiveEventIDs"] = corrective
    return {**of, "errorDeclaration": declared}


@pytest.mark.parametrize("corrective_first", [False, True], ids=["corrected after", "corrected before"])
def test_a_declared_error_is_stored_and_linked_to_its_corrective_event(
    api: Api, parties: dict[str, dict[str, Any]], corrective_first: bool
) -> None:
    maker = parties["manufacturer"]
    wrong, corrective = inspected(1, WRONG_ID), inspected(2, CORRECTIVE_ID)
    assert api.capture(maker, [commissioning(), wrong]).status_code == 202
    if corrective_first:
        assert api.capture(maker, [corrective]).status_code == 202
    declared = api.capture(maker, [declaration(wrong, [CORRECTIVE_ID])])
    assert declared.status_code == 202, declared.text
    assert declared.json()["eventCount"] == 1  # not taken for a duplicate of the event it withdraws
    if not corrective_first:
        assert api.capture(maker, [corrective]).status_code == 202
    api.settle()
    assert count(api, Event) == 4

    served = api.admin("GET", "/events/" + quote(WRONG_ID, safe="")).json()
    events = served["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert sorted("errorDeclaration" in event for event in events) == [False, True]

    found = trace(api)
    assert found["verdict"] == "verified", found["reasons"]
    (withdrawn,) = [e for e in found["events"] if e["withdrawnBy"]]
    assert withdrawn["event"]["eventTime"] == wrong["eventTime"]  # the trace shows hash ids as eventID
    assert withdrawn["withdrawnBy"] == [maker["address"]]
    assert withdrawn["correctiveEventIDs"] == [CORRECTIVE_ID]
    (corrected_by,) = withdrawn["correctedBy"]
    (corrective_entry,) = [
        e
        for e in found["events"]
        if e["statement"] != "withdrawal" and e["event"]["eventTime"] == corrective["eventTime"]
    ]
    assert corrected_by["eventID"] == corrective_entry["eventID"]
    assert all(not e["correctedBy"] for e in found["events"] if e is not withdrawn)

    html = page(api)
    position = found["events"].index(corrective_entry)
    assert f'<a href="#step-{position}">Corrected by' in html
    assert f'id="step-{position}"' in html
    # the public page never shows the eventID the correction was found by; said once, not again
    assert html.count("Corrected by") == 1 and "Correction declared" not in html


def test_an_auditor_withdraws_anothers_event_and_a_rival_is_refused(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = parties["manufacturer"]
    auditor = api.create_participant("Audit & Co", ["auditor"], "urn:epc:id:pgln:8712345.00019")
    rival = new_rival(api)
    api.settle()
    wrong = inspected(1, WRONG_ID)
    assert api.capture(maker, [commissioning(), wrong]).status_code == 202
    api.settle()

    refused = api.capture(rival, [declaration(wrong)])
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["location"] == "epcisBody.eventList[0].errorDeclaration"
    assert "only its signer or an auditor may withdraw it" in error["reason"]
    assert "Shenzhen Bright" in error["reason"]

    withdrawn = api.capture(auditor, [declaration(wrong, [CORRECTIVE_ID])])
    assert withdrawn.status_code == 202, withdrawn.text
    api.settle()
    found = trace(api)
    assert found["verdict"] == "verified", found["reasons"]
    (entry,) = [e for e in found["events"] if e["withdrawnBy"]]
    assert entry["withdrawnBy"] == [auditor["address"]]
    assert entry["correctedBy"] == []  # named, not captured yet
    assert f"Correction declared: event {CORRECTIVE_ID}" in page(api)


def test_a_rivals_event_under_the_corrective_id_does_not_pass_for_the_correction(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """Anyone may declare any eventID: only the declarer's or the withdrawn event's signer's own
    event with that id is its correction."""
    maker, rival = parties["manufacturer"], new_rival(api)
    api.settle()
    wrong = inspected(1, WRONG_ID)
    assert api.capture(maker, [commissioning(), wrong]).status_code == 202
    assert api.capture(maker, [declaration(wrong, [CORRECTIVE_ID])]).status_code == 202
    assert api.capture(rival, [inspected(3, CORRECTIVE_ID)]).status_code == 202
    api.settle()
    (entry,) = [e for e in trace(api)["events"] if e["withdrawnBy"]]
    assert entry["correctedBy"] == []
    html = page(api)
    assert "Corrected by" not in html and f"Correction declared: event {CORRECTIVE_ID}" in html
