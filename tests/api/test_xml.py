"""EPCIS 2.0 XML through the API: every XML example GS1 publishes is captured with
`Content-Type: application/xml`, each event is found by its hash id, and query results are served
in XML, valid by GS1's XSD, that read back into the events they were, when the client asks for it.
(Every query parameter over the XML examples: test_query_examples.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tracechain.epcis.event_hash import EPCIS_CONTEXT, event_hash_ids
from tracechain.epcis.xml import QUERY_XSD, document_from_xml, query_document_from_xml, schema_problems

from .conftest import ADMIN_TOKEN, Api, document

XML_EXAMPLES = sorted((Path(__file__).parents[1] / "data" / "epcis" / "xml").glob("*.xml"))
XML = {"Content-Type": "application/xml"}
ACCEPT_XML = {"Accept": "application/xml"}


def _as_admin(api: Api, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return api.client.get(path, headers={**admin, **(headers or {})}, **kwargs)


def _xml_events(served: bytes) -> list[dict[str, Any]]:
    """The events of a query document served in XML, read back into JSON."""
    events: list[dict[str, Any]] = query_document_from_xml(served)["epcisBody"]["queryResults"][
        "resultsBody"
    ]["eventList"]
    return events


def _events_listed(response: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return listed


def _ids(events: list[dict[str, Any]]) -> set[str]:
    return {event.get("tracechain:hashId", event.get("eventID")) for event in events}


def _capture_xml(api: Api, maker: dict[str, str], path: Path) -> Any:
    body = path.read_bytes()
    converted = document_from_xml(body)
    withdrawn = [
        {key: value for key, value in event.items() if key != "errorDeclaration"}
        for event in converted["epcisBody"]["eventList"]
        if "errorDeclaration" in event
    ]
    if withdrawn:  # an error declaration withdraws an event its author captured before
        earlier = {**converted, "epcisBody": {"eventList": withdrawn}}
        assert api.client.post("/capture", json=earlier, headers=maker).status_code == 202
    return api.client.post("/capture", content=body, headers={**maker, **XML})


@pytest.mark.parametrize("path", XML_EXAMPLES, ids=[p.name for p in XML_EXAMPLES])
def test_an_xml_example_is_captured_and_each_event_found_by_its_id(
    api: Api, parties: dict[str, dict[str, Any]], path: Path
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    response = _capture_xml(api, maker, path)
    assert response.status_code == 202, response.text
    api.settle()
    job = api.client.get(response.headers["Location"], headers=maker).json()
    assert job["success"], job

    converted = document_from_xml(path.read_bytes())
    for event, event_id in zip(converted["epcisBody"]["eventList"], event_hash_ids(converted), strict=True):
        found = api.admin("GET", "/events/" + quote(event_id, safe=""))
        assert found.status_code == 200, event_id
        assert event_id in _ids(_events_listed(found))
        if "eventID" not in event:  # a declared eventID is what EQ_eventID matches
            by_parameter = api.admin("GET", "/events", params={"EQ_eventID": event_id})
            assert event_id in _ids(_events_listed(by_parameter))

    # The same events served in XML: valid by GS1's query XSD, and read back they hash to their ids.
    served = _as_admin(api, "/events", headers=ACCEPT_XML)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/xml")
    assert schema_problems(served.content, QUERY_XSD) == []
    read_back = query_document_from_xml(served.content)
    events = _xml_events(served.content)
    as_captured = [{k: v for k, v in e.items() if not k.startswith("tracechain:")} for e in events]
    recomputed = event_hash_ids({**read_back, "epcisBody": {"eventList": as_captured}})
    assert recomputed == [event.get("tracechain:hashId", event.get("eventID")) for event in events]
    assert set(event_hash_ids(converted)) <= set(recomputed)


def test_an_event_by_id_is_served_in_xml_with_its_hash_id_and_extensions(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    path = next(p for p in XML_EXAMPLES if p.name == "ObjectEvent.xml")
    assert _capture_xml(api, maker, path).status_code == 202
    api.settle()
    first_id = event_hash_ids(document_from_xml(path.read_bytes()))[0]

    served = _as_admin(api, "/events/" + quote(first_id, safe=""), headers=ACCEPT_XML)

    assert served.status_code == 200
    assert schema_problems(served.content, QUERY_XSD) == []
    text = served.text
    assert 'xmlns:example="http://ns.example.com/epcis"' in text  # the extension's own namespace
    assert "<example:userElement>" in text
    (event,) = _xml_events(served.content)
    assert event["eventID"] == first_id
    assert event["example:userElement"] == {"anotherElement": "elementData"}


def test_a_declared_event_id_and_the_hash_id_beside_it_are_served_in_xml(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    path = next(p for p in XML_EXAMPLES if p.name == "ErrorDeclarationAndCorrectiveEvent.xml")
    assert _capture_xml(api, maker, path).status_code == 202
    api.settle()
    declared = "urn:uuid:404d95fc-9457-4a51-bd6a-0bba133845a8"
    hash_id = event_hash_ids(document_from_xml(path.read_bytes()))[1]

    served = _as_admin(api, "/events/" + quote(declared, safe=""), headers=ACCEPT_XML)

    assert served.status_code == 200
    assert schema_problems(served.content, QUERY_XSD) == []
    assert f"<eventID>{declared}</eventID>" in served.text
    assert f">{hash_id}</tracechain:hashId>" in served.text
    assert 'xmlns:tracechain="https://tracechain.dev/epcis#"' in served.text


def test_a_partner_is_served_its_view_in_xml_the_withheld_fields_named(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    carrier = api.as_participant(parties["carrier"])
    product = "urn:epc:id:sgtin:6901234.067890.1001"
    made = {
        "type": "ObjectEvent",
        "eventTime": "2024-05-01T10:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [product],
        "action": "ADD",
        "bizStep": "commissioning",
    }
    shipped = {
        **made,
        "eventTime": "2024-05-02T10:00:00.000+08:00",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:6901234000003:PO-7"}],
        "destinationList": [{"type": "owning_party", "destination": parties["carrier"]["partyId"]}],
    }
    for event in (made, shipped):
        assert api.client.post("/capture", json=document([event]), headers=maker).status_code == 202
    api.settle()

    as_json = api.client.get("/events", params={"EQ_bizStep": "shipping"}, headers=carrier).json()
    served = api.client.get("/events", params={"EQ_bizStep": "shipping"}, headers={**carrier, **ACCEPT_XML})

    assert served.status_code == 200
    assert schema_problems(served.content, QUERY_XSD) == []
    events = _xml_events(served.content)
    (shown,) = as_json["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert shown["tracechain:withheld"] == ["bizTransactionList"]  # the partner view
    (event,) = events
    assert "bizTransactionList" not in event
    assert event["tracechain:withheld"] == "bizTransactionList"  # one element: one value
    assert "PO-7" not in served.text


def test_a_reader_is_not_told_in_xml_of_events_it_may_not_see(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    path = next(p for p in XML_EXAMPLES if p.name == "ObjectEvent.xml")
    assert _capture_xml(api, maker, path).status_code == 202
    api.settle()
    first_id = event_hash_ids(document_from_xml(path.read_bytes()))[0]
    stranger = api.as_participant(parties["retailer"])

    listed = api.client.get("/events", headers={**stranger, **ACCEPT_XML})
    by_id = api.client.get("/events/" + quote(first_id, safe=""), headers={**stranger, **ACCEPT_XML})

    assert listed.status_code == 200
    assert schema_problems(listed.content, QUERY_XSD) == []
    assert _xml_events(listed.content) == []
    assert "0614141" not in listed.text
    assert by_id.status_code == 404


# ---------------------------------------------------------------- refusals


def _stored_event_count(api: Api) -> int:
    return len(_events_listed(api.admin("GET", "/events")))


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(
            b'<?xml version="1.0"?>\n<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"\n'
            b' schemaVersion="2.0" creationDate="2024-05-01T10:00:00Z">\n<EPCISBody><EventList>\n'
            b"<ObjectEvent></EventList>",
            ["line 5", "not well-formed XML", "ObjectEvent"],
            id="not-well-formed",
        ),
        pytest.param(
            b'<?xml version="1.0"?>\n<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"\n'
            b' schemaVersion="2.0" creationDate="2024-05-01T10:00:00Z">\n<EPCISBody><EventList>\n'
            b"<ObjectEvent>\n<eventTime>2024-05-01T10:00:00Z</eventTime>\n"
            b"<eventTimeZoneOffset>+00:00</eventTimeZoneOffset>\n"
            b"<epcList><epc>urn:epc:id:sgtin:6901234.067890.1</epc></epcList>\n"
            b"<action>MOVE</action>\n</ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>",
            ["line 9", "action", "MOVE"],
            id="xsd-violation",
        ),
        pytest.param(
            b'<?xml version="1.0"?>\n<!DOCTYPE epcis:EPCISDocument [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
            b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"'
            b' creationDate="2024-05-01T10:00:00Z"><EPCISBody><EventList/></EPCISBody>&secret;'
            b"</epcis:EPCISDocument>",
            ["DOCTYPE"],
            id="external-entity",
        ),
        pytest.param(
            b'<epcisq:EPCISQueryDocument xmlns:epcisq="urn:epcglobal:epcis-query:xsd:2"'
            b' schemaVersion="2.0" creationDate="2024-05-01T10:00:00Z"/>',
            ["line 1"],
            id="not-a-capture-document",
        ),
    ],
)
def test_bad_xml_is_refused_naming_the_line_and_what_is_wrong_and_nothing_is_stored(
    api: Api, parties: dict[str, dict[str, Any]], body: bytes, named: list[str]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    before = _stored_event_count(api)

    response = api.client.post("/capture", content=body, headers={**maker, "Content-Type": "text/xml"})

    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["title"] == "Invalid EPCIS XML"
    for part in named:
        assert part in problem["detail"]
    assert "root:" not in response.text  # the entity was never read
    api.settle()
    assert _stored_event_count(api) == before


# ---------------------------------------------------------------- content negotiation


@pytest.mark.parametrize(
    ("accept", "served"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/ld+json", "application/json"),
        ("application/xml", "application/xml"),
        ("text/xml", "application/xml"),
        ("application/xml;q=0.5, application/json", "application/json"),
        ("application/json;q=0.5, application/xml", "application/xml"),
        ("application/xml, */*;q=0.8", "application/xml"),
        ("text/html, application/*;q=0.1", "application/json"),
        ("text/html", 406),
        ("application/xml;q=0, application/json;q=0", 406),
    ],
)
def test_events_are_served_in_the_media_type_the_client_accepts(
    api: Api, accept: str | None, served: str | int
) -> None:
    headers = {"Accept": accept} if accept is not None else {}

    response = _as_admin(api, "/events", headers=headers)

    if served == 406:
        assert response.status_code == 406
        assert response.json()["acceptable"] == [
            "application/json",
            "application/ld+json",
            "application/xml",
            "text/xml",
        ]
    else:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(str(served))


def test_an_xml_page_keeps_the_link_to_the_next_page(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    maker = api.as_participant(parties["manufacturer"])
    path = next(p for p in XML_EXAMPLES if p.name == "ObjectEvent.xml")
    assert _capture_xml(api, maker, path).status_code == 202
    api.settle()

    first = _as_admin(api, "/events", params={"perPage": "1"}, headers=ACCEPT_XML)

    assert first.status_code == 200
    assert 'rel="next"' in first.headers["link"]
    following = first.headers["link"].split(">")[0].lstrip("<")
    second = _as_admin(api, following, headers=ACCEPT_XML)
    assert second.status_code == 200
    assert schema_problems(second.content, QUERY_XSD) == []
    ids = [_ids(_xml_events(page.content)) for page in (first, second)]
    assert ids[0] and ids[1] and not ids[0] & ids[1]


def test_an_extension_no_xml_name_can_carry_does_not_break_anyones_xml_answer(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    hostile = {
        "type": "ObjectEvent",
        "eventTime": "2024-05-01T10:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": ["urn:epc:id:sgtin:6901234.067890.77"],
        "action": "ADD",
        "bizStep": "commissioning",
        "acme:notes": {"1st shift": "tab\x0bbed", "<b>": "x"},
    }
    captured = {**document([hostile]), "@context": [EPCIS_CONTEXT, {"acme": "https://acme.example/epcis/"}]}
    assert api.client.post("/capture", json=captured, headers=maker).status_code == 202
    api.settle()

    served = _as_admin(api, "/events", headers=ACCEPT_XML)

    assert served.status_code == 200
    assert schema_problems(served.content, QUERY_XSD) == []
    (event,) = _xml_events(served.content)
    assert event["acme:notes"] == ""  # both its keys are no XML names: the element stays, empty


def test_an_xml_capture_is_held_to_the_depth_a_json_capture_is(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    levels = 62  # within what the XML reader follows, deeper than JSON may nest inside an event
    body = (
        '<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" xmlns:acme="https://acme.example/e/"'
        ' schemaVersion="2.0" creationDate="2024-05-01T10:00:00Z"><EPCISBody><EventList><ObjectEvent>'
        "<eventTime>2024-05-01T10:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>"
        "<epcList><epc>urn:epc:id:sgtin:6901234.067890.5</epc></epcList><action>ADD</action>"
        "<bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>"
        + "<acme:n><acme:x>1</acme:x>" * levels
        + "</acme:n>" * levels
        + "</ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"
    ).encode()

    response = api.client.post("/capture", content=body, headers={**maker, **XML})

    assert response.status_code == 413, response.text
    assert "how deep a document nests is at most 64" in response.json()["detail"]


def test_the_events_of_an_epc_are_served_in_xml(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    maker = api.as_participant(parties["manufacturer"])
    path = next(p for p in XML_EXAMPLES if p.name == "ObjectEvent.xml")
    assert _capture_xml(api, maker, path).status_code == 202
    api.settle()
    epc = "urn:epc:id:sgtin:0614141.107346.2018"  # named by the first of its two events only

    as_urns = {**ACCEPT_XML, "GS1-EPC-Format": "Always_EPC_URN"}
    served = _as_admin(api, "/epcs/" + quote(epc, safe="") + "/events", headers=as_urns)

    assert served.status_code == 200
    assert schema_problems(served.content, QUERY_XSD) == []
    (event,) = _xml_events(served.content)
    assert epc in event["epcList"]
