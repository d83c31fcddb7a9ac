"""EPCIS discovery: the top-level resources, what each lists to whom, the events of one value, the
GS1 headers (versions, OPTIONS, GS1-EPC-Format), on SQLite and on PostgreSQL.

The journey: the maker commissions an item at its site, packs it onto a pallet and ships the pallet
to the carrier, who receives it at its depot; a rival commissions an item of its own at its own
site. Neither the rival nor the carrier may learn from a listing what it could not read in an event.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest

from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.epcis.event_hash import EPCIS_CONTEXT, event_hash_id
from tracechain.epcis.identifiers import canonical_epc, digital_link
from tracechain.epcis.mapping import identifiers_of

from .conftest import ADMIN_TOKEN, Api
from .test_capture import ITEM, PALLET, T0, commissioning

CARRIER_PARTY = "urn:epc:id:pgln:5790001.00000"
MAKER_SITE = "urn:epc:id:sgln:6901234.00001.0"
DEPOT = "urn:epc:id:sgln:5790001.00002.0"
RIVAL_ITEM = "urn:epc:id:sgtin:6901235.067890.7"
RIVAL_SITE = "urn:epc:id:sgln:6901235.00003.0"
DAY = timedelta(days=1)


@pytest.fixture
def cast(api: Api, parties: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    everyone = {
        **parties,
        "rival": api.create_participant(
            "Rival Electronics", ["manufacturer"], "urn:epc:id:pgln:6901235.00000", "CN"
        ),
    }
    api.settle()
    made = {**commissioning(), "readPoint": {"id": MAKER_SITE}, "bizLocation": {"id": MAKER_SITE}}
    steps = [
        ("manufacturer", [made, aggregation_event(PALLET, [ITEM], at=T0 + DAY / 4)]),
        (
            "manufacturer",
            [object_event([PALLET], biz_step="shipping", at=T0 + DAY, destination=CARRIER_PARTY)],
        ),
        ("carrier", [object_event([PALLET], biz_step="receiving", at=T0 + 2 * DAY, location=DEPOT)]),
        (
            "rival",
            [object_event([RIVAL_ITEM], biz_step="commissioning", action="ADD", at=T0, location=RIVAL_SITE)],
        ),
    ]
    for party, events in steps:
        response = api.capture(everyone[party], events)
        assert response.status_code == 202, response.text
    api.settle()
    return everyone


def _key(participant: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {participant['apiKey']}"}


def listed(api: Api, who: dict[str, Any], path: str, **headers: str) -> list[str]:
    response = api.client.get(path, params={"perPage": "1000"}, headers={**_key(who), **headers})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "Collection" and "Link" not in response.headers
    members: list[str] = body["member"]
    return members


def served_events(
    api: Api, who: dict[str, Any], path: str = "/events", **headers: str
) -> list[dict[str, Any]]:
    paged = f"{path}{'&' if '?' in path else '?'}perPage=1000"
    response = api.client.get(paged, headers={**_key(who), **headers})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return found


def test_the_top_level_lists_the_bindings_resources(api: Api) -> None:
    response = api.client.get("/")
    assert response.status_code == 200
    assert set(response.json()["member"]) == {
        "events",
        "eventTypes",
        "epcs",
        "bizSteps",
        "bizLocations",
        "readPoints",
        "dispositions",
        "capture",
        "queries",
    }


def test_a_rival_lists_only_its_own_goods_and_sites(api: Api, cast: dict[str, dict[str, Any]]) -> None:
    rival = cast["rival"]
    urn = {"GS1-EPC-Format": "Always_EPC_URN"}
    assert listed(api, rival, "/epcs", **urn) == [RIVAL_ITEM]
    assert listed(api, rival, "/bizLocations", **urn) == [RIVAL_SITE]
    assert listed(api, rival, "/readPoints", **urn) == [RIVAL_SITE]
    assert listed(api, rival, "/bizSteps") == ["commissioning"]
    # By default (the binding's) identifiers are listed as GS1 Digital Links.
    assert listed(api, rival, "/epcs") == [digital_link(RIVAL_ITEM)]
    for path in (ITEM, quote(digital_link(ITEM), safe=""), PALLET):
        for resource in (f"/epcs/{path}", f"/epcs/{path}/events"):
            response = api.client.get(resource, headers=_key(rival))
            assert response.status_code == 404, resource
            assert response.json()["type"] == "epcisException:NoSuchResourceException"
    for resource in (
        f"/bizLocations/{MAKER_SITE}/events",
        f"/readPoints/{DEPOT}",
        "/bizSteps/shipping/events",
    ):
        assert api.client.get(resource, headers=_key(rival)).status_code == 404, resource
    # The maker, for its part, does not learn of the rival's item or site.
    maker = cast["manufacturer"]
    assert RIVAL_ITEM not in listed(api, maker, "/epcs", **urn)
    assert RIVAL_SITE not in listed(api, maker, "/bizLocations", **urn)
    assert api.client.get(f"/epcs/{RIVAL_ITEM}/events", headers=_key(maker)).status_code == 404


def test_each_listing_is_what_the_callers_events_show_it(api: Api, cast: dict[str, dict[str, Any]]) -> None:
    """A listing names exactly the values of the events `/events` serves the caller, as it is shown
    them: the carrier sees the packing only as a custody fact (parentID, no childEPCs), so the item
    on the pallet is not among its EPCs."""
    urn = {"GS1-EPC-Format": "Always_EPC_URN"}
    for who in ("manufacturer", "carrier", "rival"):
        caller = cast[who]
        events = served_events(api, caller, **urn)
        assert set(listed(api, caller, "/epcs", **urn)) == {i for e in events for i, _ in identifiers_of(e)}
        for resource, field in (("/bizLocations", "bizLocation"), ("/readPoints", "readPoint")):
            assert set(listed(api, caller, resource, **urn)) == {e[field]["id"] for e in events if field in e}
        assert set(listed(api, caller, "/bizSteps")) == {e["bizStep"] for e in events if "bizStep" in e}
        dispositions = {e["disposition"] for e in events if "disposition" in e}
        assert set(listed(api, caller, "/dispositions")) == dispositions
    carrier_epcs = listed(api, cast["carrier"], "/epcs", **urn)
    assert PALLET in carrier_epcs and ITEM not in carrier_epcs
    assert api.client.get(f"/epcs/{ITEM}/events", headers=_key(cast["carrier"])).status_code == 404
    maker_sites = listed(api, cast["manufacturer"], "/bizLocations", **urn)
    assert set(maker_sites) == {
        MAKER_SITE,
        canonical_epc(DEPOT),
    }  # the depot: where the pallet it shipped arrived


def test_the_events_of_a_value_are_found_by_any_spelling_of_it(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    maker = cast["manufacturer"]
    never = {"GS1-EPC-Format": "Never_Translates"}
    for spelling in (ITEM, quote(digital_link(ITEM), safe="")):
        found = served_events(api, maker, f"/epcs/{spelling}/events", **never)
        assert [e.get("bizStep", e["type"]) for e in found] == ["commissioning", "packing"]
        assert api.client.get(f"/epcs/{spelling}", headers=_key(maker)).json()["member"] == ["events"]
    for spelling in (
        "shipping",
        "urn:epcglobal:cbv:bizstep:shipping",
        "https://ref.gs1.org/cbv/BizStep-shipping",
    ):
        found = served_events(api, maker, f"/bizSteps/{quote(spelling, safe='')}/events", **never)
        assert [(e["bizStep"], e["epcList"]) for e in found] == [("shipping", [PALLET])]
    at_depot = served_events(api, maker, f"/bizLocations/{quote(digital_link(DEPOT), safe='')}/events")
    assert [e["bizStep"] for e in at_depot] == ["receiving"]
    assert served_events(api, maker, "/dispositions/active/events", **never)[0]["epcList"] == [ITEM]
    # Paged like /events; the next link does not repeat the path's filter as a parameter.
    first = api.client.get(f"/epcs/{ITEM}/events?perPage=1", headers={**_key(maker), **never})
    link = first.headers["Link"]
    assert "MATCH_anyEPC" not in link and link.startswith(f"<{urlparse(str(first.url)).path}?")
    second = api.client.get(link[1 : link.index(">")], headers={**_key(maker), **never})
    assert second.status_code == 200, second.text
    pages = [r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"] for r in (first, second)]
    assert [e["bizStep"] for page in pages for e in page] == ["commissioning", "packing"]
    assert "Link" not in second.headers
    # The request's own parameters narrow the path's filter ...
    narrowed = served_events(api, maker, f"/epcs/{ITEM}/events?eventType=AggregationEvent")
    assert [e["type"] for e in narrowed] == ["AggregationEvent"]
    # ... and may not add alternatives to it, which would widen it.
    response = api.client.get("/bizSteps/shipping/events?EQ_bizStep=receiving", headers=_key(maker))
    assert response.status_code == 400
    assert response.json()["parameters"] == ["EQ_bizStep"]


def test_event_types_are_the_five_and_each_has_its_events(api: Api, cast: dict[str, dict[str, Any]]) -> None:
    maker = cast["manufacturer"]
    assert listed(api, maker, "/eventTypes") == [
        "AggregationEvent",
        "AssociationEvent",
        "ObjectEvent",
        "TransactionEvent",
        "TransformationEvent",
    ]
    assert api.client.get("/eventTypes/ObjectEvent", headers=_key(maker)).json()["member"] == ["events"]
    assert api.client.get("/eventTypes/SecretEvent", headers=_key(maker)).status_code == 404
    found = served_events(api, maker, "/eventTypes/AggregationEvent/events")
    assert [e["parentID"] for e in found] == [digital_link(PALLET)]
    assert api.client.get("/eventTypes", headers={}).status_code == 401


def test_listings_page_with_next_page_tokens(api: Api, cast: dict[str, dict[str, Any]]) -> None:
    seen: list[str] = []
    url: str | None = "/epcs?perPage=1"
    while url is not None:
        response = api.admin("GET", url)
        assert response.status_code == 200, response.text
        page = response.json()["member"]
        assert len(page) == 1
        seen += page
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        if url:
            assert parse_qs(urlparse(url).query)["perPage"] == ["1"]
    expected = sorted(canonical_epc(e) for e in (ITEM, PALLET, RIVAL_ITEM))
    assert [canonical_epc(e) for e in seen] == expected
    for bad in ("/epcs?nextPageToken=nonsense", "/epcs?perPage=0", "/epcs?EQ_bizStep=x"):
        response = api.admin("GET", bad)
        assert response.status_code == 400, bad
        assert response.json()["type"] == "epcisException:QueryParameterException"
    # A token of one listing does not page another.
    token = parse_qs(urlparse(api.admin("GET", "/epcs?perPage=1").headers["Link"][1:-13]).query)[
        "nextPageToken"
    ]
    assert api.admin("GET", f"/readPoints?nextPageToken={token[0]}").status_code == 400


# ---------------------------------------------------------------- GS1 headers


def test_options_advertise_versions_formats_and_methods(api: Api) -> None:
    for path, allow in (
        ("/", "OPTIONS, GET"),
        ("/events", "OPTIONS, GET, POST"),
        ("/events/" + quote("ni:///sha-256;00?ver=CBV2.0", safe=""), "OPTIONS, GET"),
        ("/epcs", "OPTIONS, GET"),
        (f"/epcs/{ITEM}/events", "OPTIONS, GET"),
        ("/bizSteps/shipping", "OPTIONS, GET"),
        ("/eventTypes/ObjectEvent/events", "OPTIONS, GET"),
        ("/capture", "OPTIONS, POST, GET"),
        ("/capture/some-job", "OPTIONS, GET"),
        ("/queries", "OPTIONS, GET, POST"),
        ("/queries/mine", "OPTIONS, GET, DELETE"),
        ("/queries/mine/events", "OPTIONS, GET"),
        ("/queries/mine/subscriptions", "OPTIONS, GET, POST"),
        ("/queries/mine/subscriptions/s1", "OPTIONS, GET, DELETE"),
    ):
        response = api.client.options(path)
        assert response.status_code == 204, path
        headers = response.headers
        assert headers["Allow"] == allow, path
        assert headers["GS1-EPCIS-Version"] == headers["GS1-EPCIS-Min"] == headers["GS1-EPCIS-Max"] == "2.0.0"
        assert headers["GS1-CBV-Version"] == headers["GS1-CBV-Min"] == headers["GS1-CBV-Max"] == "2.0.0"
        assert headers["GS1-EPC-Format"] == "No_Preference"
        assert headers["GS1-Extensions"] == "tracechain=https://tracechain.dev/epcis#"
        assert headers["GS1-Vendor-Version"].startswith("tracechain-")
    capture = api.client.options("/capture").headers
    settings = api.services.settings
    assert capture["GS1-EPCIS-Capture-Limit"] == str(settings.capture_max_events)
    assert capture["GS1-EPCIS-Capture-File-Size-Limit"] == str(settings.capture_max_bytes)
    assert capture["GS1-Capture-Error-Behaviour"] == "all"  # rollback and proceed


def test_a_request_accepting_no_version_spoken_here_is_refused(api: Api) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answered = api.client.get("/epcs", headers=admin)
    assert answered.headers["GS1-EPCIS-Version"] == "2.0.0" and answered.headers["GS1-CBV-Version"] == "2.0.0"
    for name, value in (
        ("GS1-EPCIS-Max", "1.2"),
        ("GS1-EPCIS-Min", "2.1"),
        ("GS1-EPCIS-Version", "1.2.0"),
        ("GS1-CBV-Max", "1.2"),
    ):
        for path in ("/events", "/queries"):
            response = api.client.get(path, headers={**admin, name: value})
            assert response.status_code == 406, (path, name, value)
        assert response.json()["type"] == "epcisException:NotAcceptableException"
        assert response.json()["parameters"] == [name]
    accepted = {"GS1-EPCIS-Min": "1.2", "GS1-EPCIS-Max": "2.0", "GS1-CBV-Version": "2.0"}
    assert api.client.get("/events", headers={**admin, **accepted}).status_code == 200
    for malformed in ("two", "9" * 5000):  # int() of 5,000 digits raises: still a 400
        response = api.client.get("/events", headers={**admin, "GS1-EPCIS-Min": malformed})
        assert response.status_code == 400 and response.json()["parameters"] == ["GS1-EPCIS-Min"]


def test_epc_format_serves_identifiers_in_the_asked_form_and_ids_still_hash(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """An event captured with Digital Links is served as URNs and back; its hash id is the same,
    since the CBV hash reads both spellings as one key."""
    maker = parties["manufacturer"]
    as_link = commissioning(digital_link(ITEM))
    as_link["readPoint"] = {"id": digital_link(MAKER_SITE)}
    assert api.capture(maker, [as_link]).status_code == 202
    api.settle()
    for asked, answered, epc, site in (
        ("Always_EPC_URN", "Always_EPC_URN", ITEM, MAKER_SITE),
        ("Always_GS1_Digital_Link", "Always_GS1_Digital_Link", digital_link(ITEM), digital_link(MAKER_SITE)),
        (None, "Always_GS1_Digital_Link", digital_link(ITEM), digital_link(MAKER_SITE)),
        ("Never_Translates", "Never_Translates", digital_link(ITEM), digital_link(MAKER_SITE)),
        ("No_Preference", "Never_Translates", digital_link(ITEM), digital_link(MAKER_SITE)),
    ):
        headers = {**_key(maker), **({"GS1-EPC-Format": asked} if asked else {})}
        response = api.client.get("/events", headers=headers)
        assert response.status_code == 200 and response.headers["GS1-EPC-Format"] == answered, asked
        (served,) = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert served["epcList"] == [epc] and served["readPoint"] == {"id": site}, asked
        hashed = {k: v for k, v in served.items() if k not in ("eventID", "recordTime")}
        assert event_hash_id(hashed, [EPCIS_CONTEXT]) == served["eventID"], asked
        by_id = api.client.get("/events/" + quote(served["eventID"], safe=""), headers=headers)
        assert by_id.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["epcList"] == [epc]
    response = api.client.get("/events", headers={**_key(maker), "GS1-EPC-Format": "Always_Barcodes"})
    assert response.status_code == 400 and response.json()["parameters"] == ["GS1-EPC-Format"]
    assert "GS1-EPC-Format" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/epcs", "/bizSteps", "/capture", "/queries", "/events"])
def test_every_listing_refuses_a_token_it_did_not_issue_and_a_size_out_of_range(api: Api, path: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for params, named in (
        ({"nextPageToken": "bm90IGpzb24"}, "nextPageToken"),  # base64 of "not json"
        ({"nextPageToken": "WyIvZWxzZXdoZXJlIiwgImEiXQ"}, "nextPageToken"),  # ["/elsewhere", "a"]
        ({"perPage": "0"}, "perPage"),
        ({"perPage": "1001"}, "perPage"),
    ):
        response = api.client.get(path, params=params, headers=admin)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["type"] == "epcisException:QueryParameterException"
        assert [error["location"] for error in response.json()["errors"]] == [f"query.{named}"], (
            path,
            params,
        )
