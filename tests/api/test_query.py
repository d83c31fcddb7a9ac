"""EPCIS queries: filters, paging with nextPageToken, by id, by EPC; answered as query documents."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest

from tracechain.epcis.builders import object_event
from tracechain.epcis.schema import validate_document

from .conftest import Api
from .test_capture import ITEM, T0, commissioning

SERIALS = [f"urn:epc:id:sgtin:6901234.067890.{n}" for n in range(2001, 2008)]


@pytest.fixture
def catalogue(api: Api, parties: dict[str, dict[str, Any]]) -> Api:
    """Seven items commissioned a day apart, then one observed."""
    api.capture(
        parties["manufacturer"], [commissioning(epc, T0 + timedelta(days=i)) for i, epc in enumerate(SERIALS)]
    )
    api.capture(
        parties["manufacturer"],
        [object_event([SERIALS[0]], biz_step="inspecting", at=T0 + timedelta(days=9))],
    )
    api.settle()
    return api


def event_list(response: Any) -> list[dict[str, Any]]:
    body = response.json()
    assert body["type"] == "EPCISQueryDocument"
    events: list[dict[str, Any]] = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def test_filters_by_biz_step_however_it_is_spelled(catalogue: Api) -> None:
    for spelling in (
        "inspecting",
        "urn:epcglobal:cbv:bizstep:inspecting",
        "https://ref.gs1.org/cbv/BizStep-inspecting",
    ):
        found = event_list(catalogue.admin("GET", "/events", params={"EQ_bizStep": spelling}))
        assert [e["epcList"] for e in found] == [[SERIALS[0]]], spelling


def test_filters_by_event_time_range_and_type(catalogue: Api) -> None:
    found = event_list(
        catalogue.admin(
            "GET",
            "/events",
            params={
                "GE_eventTime": (T0 + timedelta(days=2)).isoformat(),
                "LT_eventTime": (T0 + timedelta(days=4)).isoformat(),
                "eventType": "ObjectEvent",
            },
        )
    )
    assert sorted(e["epcList"][0] for e in found) == SERIALS[2:4]


def test_filters_by_epc_in_any_form(catalogue: Api) -> None:
    as_link = "https://id.gs1.org/01/06901234678901/21/2001"
    by_urn = event_list(catalogue.admin("GET", "/events", params={"MATCH_anyEPC": SERIALS[0]}))
    by_link = event_list(catalogue.admin("GET", "/events", params={"MATCH_anyEPC": as_link}))
    assert len(by_urn) == 2 and by_urn == by_link


def test_pages_cover_every_event_once_in_order(catalogue: Api) -> None:
    seen: list[str] = []
    url: str | None = "/events?perPage=3"
    pages = 0
    while url:
        response = catalogue.admin("GET", url)
        seen += [e["eventID"] for e in event_list(response)]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        pages += 1
        if url:
            assert parse_qs(urlparse(url).query)["perPage"] == ["3"]
    assert pages == 3 and len(seen) == 8 and len(set(seen)) == 8


def test_a_forged_page_token_is_a_400(catalogue: Api) -> None:
    response = catalogue.admin("GET", "/events", params={"nextPageToken": "not-a-token"})
    assert response.status_code == 400 and "nextPageToken" in response.json()["detail"]


def test_an_event_by_its_id_and_the_events_of_an_epc(catalogue: Api) -> None:
    first = event_list(catalogue.admin("GET", "/events", params={"perPage": 1}))[0]
    by_id = event_list(catalogue.admin("GET", "/events/" + quote(first["eventID"], safe="")))
    assert by_id == [first]
    of_epc = event_list(catalogue.admin("GET", f"/epcs/{SERIALS[0]}/events"))
    assert [e["bizStep"] for e in of_epc] == ["commissioning", "inspecting"]


def test_unknown_event_and_epc_are_404_problems(catalogue: Api) -> None:
    assert (
        catalogue.admin("GET", "/events/" + quote("ni:///sha-256;00?ver=CBV2.0", safe="")).status_code == 404
    )
    response = catalogue.admin("GET", f"/epcs/{ITEM}/events")
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


def test_bad_query_parameters_are_4xx_naming_the_parameter(catalogue: Api) -> None:
    response = catalogue.admin("GET", "/events", params={"GE_eventTime": "yesterday", "perPage": 0})
    assert response.status_code == 422
    locations = {error["location"] for error in response.json()["errors"]}
    assert locations == {"query.GE_eventTime", "query.perPage"}


def test_every_query_document_holds_to_gs1s_schema_with_record_times_in_utc(catalogue: Api) -> None:
    """SQLite keeps no UTC offset: a recordTime read back without one failed the EPCIS schema."""
    response = catalogue.admin("GET", "/events")
    assert validate_document(response.json()) == []
    for event in event_list(response):
        assert datetime.fromisoformat(event["recordTime"]).utcoffset() == timedelta(0), event["recordTime"]
