"""EPCIS queries: filters, paging with nextPageToken, by id, by EPC; answered as query documents."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlparse

import pytest

from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.epcis.identifiers import digital_link
from tracechain.epcis.schema import validate_document
from tracechain.store import queries

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
        assert [e["epcList"] for e in found] == [[digital_link(SERIALS[0])]], spelling


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
    assert sorted(e["epcList"][0] for e in found) == [digital_link(s) for s in SERIALS[2:4]]


def test_filters_by_epc_in_any_form(catalogue: Api) -> None:
    as_link = "https://id.gs1.org/01/06901234678901/21/2001"
    by_urn = event_list(catalogue.admin("GET", "/events", params={"MATCH_anyEPC": SERIALS[0]}))
    by_link = event_list(catalogue.admin("GET", "/events", params={"MATCH_anyEPC": as_link}))
    assert len(by_urn) == 2 and by_urn == by_link


def test_a_cpi_pattern_matches_the_serials_of_its_part(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    part, other_part = "urn:epc:id:cpi:0614141.123ABC.123456789", "urn:epc:id:cpi:0614141.124ABC.7"
    api.capture(
        parties["manufacturer"],
        [object_event([epc], biz_step="commissioning", at=T0, action="ADD") for epc in (part, other_part)],
    )
    api.settle()
    for name in ("MATCH_epc", "MATCH_anyEPC"):
        response = api.admin("GET", "/events", params={name: "urn:epc:idpat:cpi:0614141.123ABC.*"})
        assert [e["epcList"] for e in event_list(response)] == [[digital_link(part)]], name


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


def test_bad_query_parameters_are_400_query_parameter_exceptions_naming_each(catalogue: Api) -> None:
    response = catalogue.admin("GET", "/events", params={"GE_eventTime": "yesterday", "perPage": 0})
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "epcisException:QueryParameterException"
    assert set(problem["parameters"]) == {"GE_eventTime", "perPage"}
    locations = {error["location"] for error in problem["errors"]}
    assert locations == {"query.GE_eventTime", "query.perPage"}


def test_every_query_document_holds_to_gs1s_schema_with_record_times_in_utc(catalogue: Api) -> None:
    """SQLite keeps no UTC offset: a recordTime read back without one failed the EPCIS schema."""
    response = catalogue.admin("GET", "/events")
    assert validate_document(response.json()) == []
    for event in event_list(response):
        assert datetime.fromisoformat(event["recordTime"]).utcoffset() == timedelta(0), event["recordTime"]


# ---------------------------------------------------------------- every parameter, table-driven

A, B, C, D = (f"urn:epc:id:sgtin:6901234.067890.{n}" for n in (3001, 3002, 3003, 3004))
PALLET_3 = "urn:epc:id:sscc:6901234.0000000003"
LOT_1 = "urn:epc:class:lgtin:6901234.067890.LOT1"
LOT_2 = "urn:epc:class:lgtin:6901234.067890.LOT2"
GTIN_CLASS = "urn:epc:idpat:sgtin:6901234.067891.*"
DOCK, LINE, YARD = (f"urn:epc:id:sgln:6901234.00000.{n}" for n in (1, 2, 3))
MAKER, SHOP = "urn:epc:id:pgln:6901234.00000", "urn:epc:id:pgln:8712345.00002"
ORDER = "urn:epcglobal:cbv:bt:6901234000004:PO-17"
TRANSFORMATION = "urn:uuid:7d2b7e52-5d1c-4bbd-9d4b-6a3a0d7f1e01"
CORRECTION = "urn:uuid:0f7c1a34-2d5e-4c5a-8f0e-3d9e1a2b3c4d"


def _at(hour: int) -> Any:
    return T0 + timedelta(hours=hour)


def varied_events() -> dict[str, dict[str, Any]]:
    """One of each shape a filter can tell apart, by name; each at an hour of its own."""
    commission = object_event([A, B, C], biz_step="commissioning", at=_at(1), action="ADD", location=DOCK)
    commission |= {"disposition": "active", "bizTransactionList": [{"type": "po", "bizTransaction": ORDER}]}
    observe = object_event(
        [A],
        biz_step="inspecting",
        at=_at(2),
        disposition="in_progress",
        location=LINE,
    )
    stock = object_event([], biz_step="commissioning", at=_at(3), action="ADD", location=DOCK)
    stock |= {
        "quantityList": [
            {"epcClass": LOT_1, "quantity": 10, "uom": "KGM"},
            {"epcClass": GTIN_CLASS, "quantity": 5},
        ]
    }
    del stock["epcList"]
    pack = aggregation_event(PALLET_3, [A, B], at=_at(4), location=YARD)
    transform = {
        "type": "TransformationEvent",
        "eventTime": _at(5).isoformat(),
        "eventTimeZoneOffset": "+00:00",
        "inputEPCList": [C],
        "outputEPCList": [D],
        "inputQuantityList": [{"epcClass": LOT_1, "quantity": 4, "uom": "KGM"}],
        "outputQuantityList": [{"epcClass": LOT_2, "quantity": 3, "uom": "KGM"}],
        "transformationID": TRANSFORMATION,
        "bizStep": "https://ref.gs1.org/cbv/BizStep-creating_class_instance",
        "readPoint": {"id": LINE},
    }
    ship = object_event(
        [PALLET_3], biz_step="shipping", at=_at(6), disposition="in_transit", source=MAKER, destination=SHOP
    )
    ship["bizTransactionList"] = [{"type": "po", "bizTransaction": ORDER}]
    destroy = object_event(
        [D], biz_step="decommissioning", at=_at(7), action="DELETE", disposition="inactive", location=YARD
    )
    return {
        "commission": commission,
        "observe": observe,
        "stock": stock,
        "pack": pack,
        "transform": transform,
        "ship": ship,
        "destroy": destroy,
    }


@pytest.fixture
def varied(api: Api, parties: dict[str, dict[str, Any]]) -> Api:
    """The varied events, captured by the manufacturer, then an error declaration of `observe`."""
    events = varied_events()
    response = api.capture(parties["manufacturer"], list(events.values()))
    assert response.status_code == 202, response.text
    declared = events["observe"] | {
        "errorDeclaration": {
            "declarationTime": _at(8).isoformat(),
            "reason": "incorrect_data",
            "correctiveEventIDs": [CORRECTION],
        }
    }
    response = api.capture(parties["manufacturer"], [declared])
    assert response.status_code == 202, response.text
    api.settle()
    return api


def names_of(events: list[dict[str, Any]]) -> set[str]:
    """Which of `varied_events` (or `declaration`) the served events are, by their event time."""
    by_hour = {_at(hour).isoformat(): name for hour, name in enumerate(varied_events(), start=1)}
    found = set()
    for event in events:
        name = by_hour[datetime.fromisoformat(event["eventTime"]).isoformat()]
        found.add("declaration" if "errorDeclaration" in event else name)
    return found


EVERYTHING = {"commission", "observe", "stock", "pack", "transform", "ship", "destroy", "declaration"}

FILTERS: list[tuple[dict[str, str], set[str]]] = [
    ({"eventType": "AggregationEvent|TransformationEvent"}, {"pack", "transform"}),
    ({"eventType": "ObjectEvent", "EQ_action": "DELETE|ADD"}, {"commission", "stock", "destroy"}),
    ({"EQ_action": "OBSERVE"}, {"observe", "ship", "declaration"}),
    ({"GE_eventTime": _at(4).isoformat(), "LT_eventTime": _at(6).isoformat()}, {"pack", "transform"}),
    ({"GE_recordTime": "2000-01-01T00:00:00Z"}, EVERYTHING),
    ({"LT_recordTime": "2000-01-01T00:00:00Z"}, set()),
    (
        {"EQ_bizStep": "inspecting|https://ref.gs1.org/cbv/BizStep-shipping"},
        {"observe", "declaration", "ship"},
    ),
    ({"EQ_bizStep": "creating_class_instance"}, {"transform"}),
    ({"EQ_disposition": "urn:epcglobal:cbv:disp:in_transit|inactive"}, {"ship", "destroy"}),
    ({"EQ_readPoint": LINE}, {"observe", "declaration", "transform"}),
    ({"EQ_readPoint": f"{DOCK}|{YARD}", "EQ_bizStep": "commissioning"}, {"commission", "stock"}),
    ({"WD_bizLocation": YARD}, {"pack", "destroy"}),
    ({"EQ_bizLocation": "https://id.gs1.org/414/6901234000009/254/1"}, {"commission", "stock"}),
    ({"MATCH_epc": A}, {"commission", "observe", "declaration", "pack"}),
    ({"MATCH_epc": "urn:epc:idpat:sgtin:6901234.067890.*", "EQ_action": "DELETE"}, {"destroy"}),
    ({"MATCH_parentID": PALLET_3}, {"pack"}),
    ({"MATCH_inputEPC": C}, {"transform"}),
    ({"MATCH_outputEPC": f"{A}|{D}"}, {"transform"}),
    (
        {"MATCH_anyEPC": f"{PALLET_3}|https://id.gs1.org/01/06901234678901/21/3004"},
        {"pack", "ship", "transform", "destroy"},
    ),
    ({"MATCH_epcClass": LOT_1}, {"stock"}),
    ({"MATCH_epcClass": "urn:epc:idpat:sgtin:6901234.067891.*"}, {"stock"}),
    ({"MATCH_inputEPCClass": LOT_1}, {"transform"}),
    ({"MATCH_outputEPCClass": LOT_1}, set()),
    ({"MATCH_anyEPCClass": "urn:epc:idpat:sgtin:6901234.067890.*"}, {"stock", "transform"}),
    ({"EQ_transformationID": TRANSFORMATION}, {"transform"}),
    ({"EXISTS_errorDeclaration": "true"}, {"declaration"}),
    ({"EXISTS_errorDeclaration": "false"}, EVERYTHING),
    ({"EQ_errorReason": "urn:epcglobal:cbv:er:incorrect_data"}, {"declaration"}),
    ({"EQ_errorReason": "did_not_occur"}, set()),
    ({"EQ_correctiveEventID": f"urn:uuid:other|{CORRECTION}"}, {"declaration"}),
    ({"EQ_bizTransaction_urn:epcglobal:cbv:btt:po": ORDER}, {"commission", "ship"}),
    ({"EQ_bizTransaction_inv": ORDER}, set()),
    ({"EQ_source_owning_party": MAKER}, {"ship"}),
    ({"EQ_destination_urn:epcglobal:cbv:sdt:owning_party": MAKER}, set()),
    ({"EQ_destination_owning_party": SHOP}, {"ship"}),
    ({"eventCountLimit": "2", "orderBy": "eventTime", "orderDirection": "ASC"}, {"commission", "observe"}),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS, ids=[repr(p) for p, _ in FILTERS])
def test_each_parameter_selects_exactly_the_events_it_names(
    varied: Api, params: dict[str, str], expected: set[str]
) -> None:
    response = varied.admin("GET", "/events", params=params)
    assert response.status_code == 200, response.text
    assert names_of(event_list(response)) == expected


QUANTITY_AND_DECLARATION_FILTERS: list[tuple[dict[str, str], set[str]]] = [
    # stock: 10 KGM of LOT_1 and 5 (no unit); transform: 4 KGM in, 3 KGM out
    ({"EQ_quantity": "10"}, {"stock"}),
    ({"GT_quantity": "4"}, {"stock"}),
    ({"GE_quantity": "4"}, {"stock", "transform"}),
    ({"LT_quantity": "4"}, {"transform"}),
    ({"LE_quantity": "3"}, {"transform"}),
    ({"GT_quantity": "10"}, set()),
    ({"GE_quantity_GRM": "9000"}, {"stock"}),  # 10 KGM; the 5 without a unit converts to nothing
    ({"LT_quantity_GRM": "5000"}, {"transform"}),
    ({"EQ_quantity_TNE": "0.004"}, {"transform"}),
    ({"GE_quantity_MTR": "0"}, set()),  # a mass is no length
    ({"GE_errorDeclarationTime": _at(8).isoformat()}, {"declaration"}),
    ({"LT_errorDeclarationTime": _at(8).isoformat()}, set()),
    ({"EXISTS_transformationID": "true"}, {"transform"}),
    ({"EXISTS_bizTransactionList": "true", "EXISTS_sourceList": "false"}, {"commission"}),
    ({"EXISTS_quantityList": ""}, {"stock"}),
]


def test_quantity_declaration_time_and_exists_parameters_select_exactly_their_events(varied: Api) -> None:
    """Grouped in one test per database (one capture): the table's every row, each failure named."""
    wrong = []
    for params, expected in QUANTITY_AND_DECLARATION_FILTERS:
        response = varied.admin("GET", "/events", params=params)
        assert response.status_code == 200, (params, response.text)
        if names_of(event_list(response)) != expected:
            wrong.append((params, names_of(event_list(response)), expected))
    assert wrong == []


def test_eq_event_id_finds_the_event_and_its_declarations(varied: Api) -> None:
    observed = event_list(varied.admin("GET", "/events", params={"EQ_bizStep": "inspecting"}))
    event_id = observed[0]["eventID"]
    found = event_list(varied.admin("GET", "/events", params={"EQ_eventID": f"ni:///sha-256;00|{event_id}"}))
    assert names_of(found) == {"observe", "declaration"}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"EQ_colour": "red"}, "EQ_colour"),
        ({"eventType": "ObjectEvent", "MATCH_anything": "x"}, "MATCH_anything"),
        ({"eventType": "ShippingEvent"}, "eventType"),
        ({"EQ_action": "MOVE"}, "EQ_action"),
        ({"LT_recordTime": "soon"}, "LT_recordTime"),
        ({"perPage": "1001"}, "perPage"),
        ({"perPage": "many"}, "perPage"),
        ({"orderBy": "bizStep"}, "orderBy"),
        ({"orderBy": "eventTime", "orderDirection": "UP"}, "orderDirection"),
        ({"MATCH_epc": "urn:epc:id:sgtin:6901234.067890"}, "MATCH_epc"),
        ({"MATCH_anyEPC": f"{A}|"}, "MATCH_anyEPC"),
        ({"EXISTS_errorDeclaration": "maybe"}, "EXISTS_errorDeclaration"),
        ({"eventCountLimit": "0"}, "eventCountLimit"),
        ({"eventCountLimit": "2", "maxEventCount": "5", "orderBy": "eventTime"}, "maxEventCount"),
        ({"eventCountLimit": "2"}, "eventCountLimit"),
        ({"EQ_source_": MAKER}, "EQ_source_"),
        ({"nextPageToken": "not-a-token"}, "nextPageToken"),
        ({"GT_quantity": "lots"}, "GT_quantity"),
        ({"GE_value_CEL": "warm"}, "GE_value_CEL"),
        ({"EQ_booleanValue": "maybe"}, "EQ_booleanValue"),
        ({"GE_http://ns.example.com/epcis/grade": "high"}, "GE_http://ns.example.com/epcis/grade"),
        ({"EQ_myField": "x"}, "EQ_myField"),
        ({"EXISTS_colour": "true"}, "EXISTS_colour"),
        ({"LT_errorDeclarationTime": "later"}, "LT_errorDeclarationTime"),
        ({"orderBy": "http://ns.example.com/epcis/grade"}, "orderBy"),
        ({"HASATTR_epcList": "urn:epcglobal:cbv:mda#name"}, "HASATTR_epcList"),
        ({"EQATTR_bizLocation": "Main"}, "EQATTR_bizLocation"),
        ({"WD_readPoint": "urn:epc:id:sgln:6901234"}, "WD_readPoint"),
        ({"GE_eventTime": "0001-01-01T00:00:00+14:00"}, "GE_eventTime"),  # before year 1 in UTC
        ({"LT_recordTime": "9999-12-31T23:59:59-14:00"}, "LT_recordTime"),  # after year 9999 in UTC
    ],
)
def test_an_unknown_parameter_or_malformed_value_is_a_400_naming_it(
    varied: Api, params: dict[str, str], named: str
) -> None:
    response = varied.admin("GET", "/events", params=params)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"] == "epcisException:QueryParameterException"
    assert problem["parameters"] == [named]
    assert named in problem["detail"]


def test_max_event_count_exceeded_is_a_413_query_too_large(varied: Api) -> None:
    too_many = varied.admin("GET", "/events", params={"EQ_action": "ADD", "maxEventCount": "2"})
    assert too_many.status_code == 413
    assert too_many.json()["type"] == "epcisException:QueryTooLargeException"
    enough = varied.admin("GET", "/events", params={"EQ_action": "ADD", "maxEventCount": "3"})
    assert names_of(event_list(enough)) == {"commission", "stock", "pack"}


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("extra", [{}, {"EQ_action": "ADD|OBSERVE"}])
def test_pages_in_event_time_order_hold_every_event_once(
    varied: Api, direction: str, extra: dict[str, str]
) -> None:
    """With and without a filter applied over the body (EQ_action), which reads in batches."""
    params = {"orderBy": "eventTime", "orderDirection": direction, "perPage": "2", **extra}
    times: list[datetime] = []
    ids: list[tuple[str, bool]] = []
    url: str | None = "/events?" + urlencode(params)
    while url:
        response = varied.admin("GET", url)
        assert response.status_code == 200, response.text
        for event in event_list(response):
            times.append(datetime.fromisoformat(event["eventTime"]))
            ids.append((event["eventID"], "errorDeclaration" in event))
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    expected = EVERYTHING - ({"destroy", "transform"} if extra else set())  # DELETE; no action
    assert len(ids) == len(set(ids)) == len(expected)
    assert times == sorted(times, reverse=direction == "DESC")


def test_event_count_limit_holds_across_pages(varied: Api) -> None:
    params = {"orderBy": "eventTime", "orderDirection": "DESC", "perPage": "2", "eventCountLimit": "3"}
    first = varied.admin("GET", "/events", params=params)
    link = first.headers["Link"]
    second = varied.admin("GET", link[1 : link.index(">")])
    assert "Link" not in second.headers
    assert names_of(event_list(first)) | names_of(event_list(second)) == {"destroy", "ship", "transform"}


def test_a_page_token_is_refused_under_another_ordering(varied: Api) -> None:
    first = varied.admin("GET", "/events", params={"perPage": "2"})
    token = parse_qs(urlparse(first.headers["Link"][1:-13]).query)["nextPageToken"][0]
    response = varied.admin(
        "GET", "/events", params={"perPage": "2", "orderBy": "eventTime", "nextPageToken": token}
    )
    assert response.status_code == 400 and response.json()["parameters"] == ["nextPageToken"]


def test_filters_keep_to_what_the_viewer_may_see(varied: Api, parties: dict[str, dict[str, Any]]) -> None:
    """A participant with no part in the manufacturer's events finds none of them, however it filters."""
    customs = varied.as_participant(parties["customs"])
    for params in (
        {"MATCH_anyEPC": A},
        {"EQ_action": "ADD|OBSERVE|DELETE"},
        {"EXISTS_errorDeclaration": "true"},
    ):
        response = varied.client.get("/events", params=params, headers=customs)
        assert response.status_code == 200 and event_list(response) == []


GS1_EXAMPLES = Path(__file__).parents[1] / "data" / "epcis"


@pytest.mark.parametrize(
    ("example", "params"),
    [
        (
            "Example_9.6.3-AggregationEvent.jsonld",
            {"MATCH_parentID": "urn:epc:id:sscc:0614141.1234567890", "EQ_bizStep": "receiving"},
        ),
        (
            "Example_9.6.3-AggregationEvent.jsonld",
            {"eventType": "AggregationEvent", "EQ_readPoint": "urn:epc:id:sgln:0614141.00777.0"},
        ),
        (
            "Example_9.6.4-TransformationEvent.jsonld",
            {"MATCH_inputEPC": "urn:epc:id:sgtin:4012345.011122.25", "EQ_bizStep": "commissioning"},
        ),
    ],
)
def test_a_parameter_finds_the_events_of_a_gs1_example(
    api: Api, parties: dict[str, dict[str, Any]], example: str, params: dict[str, str]
) -> None:
    document = json.loads((GS1_EXAMPLES / example).read_text())
    response = api.client.post("/capture", json=document, headers=api.as_participant(parties["manufacturer"]))
    assert response.status_code == 202, response.text
    api.settle()
    found = event_list(api.admin("GET", "/events", params=params))
    assert [event["type"] for event in found] == [e["type"] for e in document["epcisBody"]["eventList"]]
    assert event_list(api.admin("GET", "/events", params={**params, "EQ_disposition": "no_such_word"})) == []


# ---------------------------------------------------------------- sensors, extensions, ILMD, master data

EXAMPLE_NS, EXAMPLE_COM = "http://ns.example.com/epcis/", "https://example.com"
COLD_ITEM, WARM_ITEM, PLAIN_ITEM = (f"urn:epc:id:sgtin:6901234.067890.{n}" for n in (4001, 4002, 4003))
WAREHOUSE, HALL, ROOM, ELSEWHERE = (f"urn:epc:id:sgln:6901234.00000.{n}" for n in (40, 41, 42, 43))
PROBE_1, PROBE_2 = "urn:epc:id:giai:6901234.P1", "urn:epc:id:giai:6901234.P2"
VTYPE, MDA_NAME = "urn:epcglobal:epcis:vtype:", "urn:epcglobal:cbv:mda#name"


def measured_document() -> dict[str, Any]:
    """Three events (by hour: cold, warm, plain) under a context defining `example:`, with master
    data placing ROOM in HALL in WAREHOUSE."""
    cold = object_event([COLD_ITEM], biz_step="inspecting", at=_at(11), location=ROOM)
    cold |= {
        "example:grade": 3,
        "sensorElementList": [
            {
                "sensorMetadata": {
                    "deviceID": PROBE_1,
                    "deviceMetadata": f"{EXAMPLE_COM}/probes/P1",
                    "rawData": f"{EXAMPLE_COM}/raw/cold",
                    "startTime": _at(10).isoformat(),
                    "endTime": _at(11).isoformat(),
                    "example:calibrated": "2026-01-01",
                },
                "sensorReport": [
                    {"type": "Temperature", "value": 4.5, "uom": "CEL", "example:probe": "front"},
                    {"type": "RelativeHumidity", "value": 80, "uom": "P1"},
                ],
            }
        ],
    }
    warm = object_event([WARM_ITEM], biz_step="commissioning", at=_at(12), action="ADD", location=WAREHOUSE)
    warm |= {
        "example:grade": "7",
        "example:pallet": {"example:axles": "4", "example:wheels": [{"example:size": 16}]},
        "ilmd": {"example:batch": "B7", "example:origin": {"example:country": "NL"}},
        "sensorElementList": [
            {
                "sensorReport": [
                    {
                        "type": "Temperature",
                        "deviceID": PROBE_2,
                        "time": _at(12).isoformat(),
                        "value": 30,
                        "minValue": 28,
                        "maxValue": 31,
                        "meanValue": 29.5,
                        "sDev": 0.4,
                        "percRank": 50,
                        "percValue": 29.4,
                        "uom": "CEL",
                    },
                    {
                        "type": "Dimensionless",
                        "stringValue": "sealed",
                        "booleanValue": True,
                        "hexBinaryValue": "0AFF",
                        "uriValue": "https://example.com/seal/9",
                        "microorganism": "https://www.ncbi.nlm.nih.gov/taxonomy/1496",
                        "chemicalSubstance": "https://identifiers.org/inchikey:CZMRCDWAGMRECN-UGDNZRGBSA-N",
                        "dataProcessingMethod": "https://example.com/method/avg",
                        "bizRules": "https://example.com/rules/cold-chain",
                    },
                ],
            }
        ],
    }
    plain = object_event([PLAIN_ITEM], biz_step="inspecting", at=_at(13), location=ELSEWHERE)
    locations = [
        {
            "id": WAREHOUSE,
            "attributes": [{"id": MDA_NAME, "attribute": "Main"}],
            "children": [HALL],
        },
        {"id": HALL, "children": [ROOM]},
    ]
    return {
        "@context": [
            "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
            {"example": EXAMPLE_NS},
        ],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _at(14).isoformat(),
        "epcisHeader": {
            "epcisMasterData": {
                "vocabularyList": [
                    {"type": "urn:epcglobal:epcis:vtype:ReadPoint", "vocabularyElementList": locations},
                    {
                        "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
                        "vocabularyElementList": locations,
                    },
                ]
            }
        },
        "epcisBody": {"eventList": [cold, warm, plain]},
    }


MEASURED_FILTERS: list[tuple[dict[str, str], set[str]]] = [
    ({"EQ_type": "Temperature"}, {"cold", "warm"}),
    ({"EQ_type": "https://gs1.org/voc/RelativeHumidity"}, {"cold"}),
    ({"EQ_type": "Temperature", "GE_value_CEL": "20"}, {"warm"}),
    # One report must pass every sensor condition: cold's humidity is not its temperature.
    ({"EQ_type": "RelativeHumidity", "LT_value_CEL": "10"}, set()),
    ({"GE_value_KEL": "300"}, {"warm"}),  # 30 °C is 303.15 K; 4.5 °C is 277.65 K
    ({"LT_value_FAH": "50"}, {"cold"}),  # 4.5 °C is 40.1 °F
    ({"EQ_value_CEL": "4.5"}, {"cold"}),
    ({"GT_value_MTR": "0"}, set()),  # a temperature is no length
    ({"GE_minValue_CEL": "28", "LE_maxValue_CEL": "31", "GT_meanValue_CEL": "29"}, {"warm"}),
    ({"LT_minValue_CEL": "28"}, set()),
    ({"LT_sDev": "0.5", "EQ_percRank": "50", "GE_percValue": "29.4"}, {"warm"}),
    ({"EQ_deviceID": PROBE_1}, {"cold"}),  # in the element's metadata
    ({"EQ_deviceMetadata": f"{EXAMPLE_COM}/probes/P1", "EQ_rawData": f"{EXAMPLE_COM}/raw/cold"}, {"cold"}),
    ({"EQ_time": _at(12).isoformat()}, {"warm"}),
    ({"EQ_deviceID": f"{PROBE_2}|urn:epc:id:giai:6901234.P9"}, {"warm"}),  # in the report itself
    ({"GE_time": _at(12).isoformat(), "LT_time": _at(13).isoformat()}, {"warm"}),
    ({"GE_startTime": _at(10).isoformat(), "LT_endTime": _at(12).isoformat()}, {"cold"}),
    ({"LT_startTime": _at(10).isoformat()}, set()),
    ({"EQ_stringValue": "sealed", "EQ_booleanValue": "true", "EQ_hexBinaryValue": "0aff"}, {"warm"}),
    ({"EQ_booleanValue": "false"}, set()),
    ({"EQ_uriValue": "https://example.com/seal/9"}, {"warm"}),
    ({"EQ_microorganism": "https://www.ncbi.nlm.nih.gov/taxonomy/1496"}, {"warm"}),
    (
        {"EQ_chemicalSubstance": "https://identifiers.org/inchikey:CZMRCDWAGMRECN-UGDNZRGBSA-N"},
        {"warm"},
    ),
    ({"EQ_dataProcessingMethod": "https://example.com/method/avg"}, {"warm"}),
    ({"EQ_bizRules": "https://example.com/rules/cold-chain"}, {"warm"}),
    ({"EQ_SENSORREPORT_http://ns.example.com/epcis/probe": "front"}, {"cold"}),
    ({"EQ_SENSORMETADATA_http://ns.example.com/epcis#calibrated": "2026-01-01"}, {"cold"}),
    ({"EXISTS_sensorElementList": "true"}, {"cold", "warm"}),
    ({"EXISTS_sensorElementList": "false"}, {"plain"}),
    ({"EQ_http://ns.example.com/epcis/grade": "3"}, {"cold"}),
    ({"EQ_http://ns.example.com/epcis#grade": "7|8"}, {"warm"}),
    ({"GT_http://ns.example.com/epcis/grade": "5"}, {"warm"}),
    ({"LE_http://ns.example.com/epcis/grade": "3"}, {"cold"}),
    ({"EXISTS_http://ns.example.com/epcis/grade": ""}, {"cold", "warm"}),
    ({"EQ_http://ns.example.com/other/grade": "3"}, set()),
    ({"EXISTS_ilmd": "true"}, {"warm"}),
    ({"EQ_ILMD_http://ns.example.com/epcis/batch": "B7"}, {"warm"}),
    ({"EXISTS_ILMD_http://ns.example.com/epcis/batch": "false"}, {"cold", "plain"}),
    ({"EQ_INNER_ILMD_http://ns.example.com/epcis/country": "NL"}, {"warm"}),
    ({"EQ_INNER_http://ns.example.com/epcis/axles": "4"}, {"warm"}),
    ({"GE_INNER_http://ns.example.com/epcis/size": "16"}, {"warm"}),
    ({"GT_INNER_http://ns.example.com/epcis/size": "16"}, set()),
    ({"EXISTS_INNER_http://ns.example.com/epcis/wheels": "true"}, {"warm"}),
    ({"EQ_ILMD_http://ns.example.com/epcis/axles": "4"}, set()),  # nested in an extension, not ILMD
    ({"WD_readPoint": WAREHOUSE}, {"cold", "warm"}),  # ROOM is in HALL in WAREHOUSE
    ({"WD_readPoint": HALL}, {"cold"}),
    ({"WD_bizLocation": ROOM}, {"cold"}),
    ({"EQ_readPoint": WAREHOUSE}, {"warm"}),
    ({"WD_readPoint": ELSEWHERE}, {"plain"}),
    ({f"EQATTR_bizLocation_{MDA_NAME}": "Main|Annex"}, {"warm"}),  # WAREHOUSE's name
    ({f"EQATTR_bizLocation_{MDA_NAME}": "Annex"}, set()),
    ({"HASATTR_readPoint": "cbvmda:name"}, {"warm"}),  # urn:epcglobal:cbv:mda:name, compact
    ({"HASATTR_readPoint": "urn:epcglobal:cbv:mda#sst"}, set()),
]


@pytest.fixture
def measured(api: Api, parties: dict[str, dict[str, Any]]) -> Api:
    response = api.client.post(
        "/capture", json=measured_document(), headers=api.as_participant(parties["manufacturer"])
    )
    assert response.status_code == 202, response.text
    api.settle()
    return api


def test_sensor_extension_ilmd_and_hierarchy_parameters_select_exactly_their_events(measured: Api) -> None:
    """Grouped in one test per database (a capture each): the table's every row, each failure named."""
    names = {_at(11).isoformat(): "cold", _at(12).isoformat(): "warm", _at(13).isoformat(): "plain"}
    wrong = []
    for params, expected in MEASURED_FILTERS:
        response = measured.admin("GET", "/events", params=params)
        assert response.status_code == 200, (params, response.text)
        found = {names[datetime.fromisoformat(e["eventTime"]).isoformat()] for e in event_list(response)}
        if found != expected:
            wrong.append((params, found, expected))
    assert wrong == []


def test_master_data_is_kept_per_participant_with_its_attributes(
    measured: Api, parties: dict[str, dict[str, Any]]
) -> None:
    with measured.services.sessions() as session:
        rows = queries.master_data_of(session, parties["manufacturer"]["id"])
        assert {(r.vocabulary_type.rsplit(":", 1)[1], r.element_id) for r in rows} == {
            (vocabulary, location)
            for vocabulary in ("ReadPoint", "BusinessLocation")
            for location in (WAREHOUSE, HALL)
        }
        warehouse = next(r for r in rows if r.element_id == WAREHOUSE)
        assert warehouse.children == [HALL]
        assert warehouse.attributes == [{"id": MDA_NAME, "attribute": "Main"}]
        assert queries.master_data_of(session, parties["carrier"]["id"]) == []


def test_another_participants_master_data_does_not_put_its_sites_under_mine(
    measured: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """The carrier declares ELSEWHERE a child of the maker's WAREHOUSE: the maker's event at
    ELSEWHERE stays outside WAREHOUSE, and the carrier's own event there is within it."""
    document = measured_document()
    document["epcisHeader"]["epcisMasterData"]["vocabularyList"] = [
        {
            "type": f"{VTYPE}ReadPoint",
            "vocabularyElementList": [{"id": WAREHOUSE, "children": [ELSEWHERE]}],
        }
    ]
    carriers = object_event(["urn:epc:id:sgtin:6901234.067890.4004"], biz_step="inspecting", at=_at(15))
    carriers["readPoint"] = {"id": ELSEWHERE}
    document["epcisBody"]["eventList"] = [carriers]
    response = measured.client.post(
        "/capture", json=document, headers=measured.as_participant(parties["carrier"])
    )
    assert response.status_code == 202, response.text
    measured.settle()
    urns = {"GS1-EPC-Format": "Always_EPC_URN"}
    found = event_list(measured.admin("GET", "/events", params={"WD_readPoint": WAREHOUSE}, headers=urns))
    assert sorted(e["epcList"][0] for e in found) == [
        COLD_ITEM,
        WARM_ITEM,
        "urn:epc:id:sgtin:6901234.067890.4004",
    ]
