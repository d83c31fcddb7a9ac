"""EPCIS 2.0 XML <-> JSON (tracechain.epcis.xml): GS1's XML examples read into JSON give the event
ids GS1's reference gives the XML itself, pass the JSON schema every capture is held to, and
survive the way back; JSON documents written as XML are valid by GS1's XSD and read back into
events with the same ids; unsafe or invalid XML is refused, naming the line."""

from __future__ import annotations

import copy
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tracechain.demo.big_document import CONTEXT as BIG_CONTEXT
from tracechain.demo.big_document import factory_events
from tracechain.epcis.event_hash import EPCIS_CONTEXT, event_hash_ids
from tracechain.epcis.schema import (
    TRACECHAIN_NS,
    TRACECHAIN_PREFIX,
    reserved_term_problems,
    validate_document,
)
from tracechain.epcis.xml import (
    CAPTURE_XSD,
    MAX_DEPTH,
    QUERY_XSD,
    VALIDATED_TOGETHER,
    InvalidXml,
    _streamed_elements,
    capture_document_xml,
    document_from_xml,
    query_document_from_xml,
    query_document_xml,
    read_xml_outline,
    schema_problems,
    xml_event_chunks,
)

from .examples import EXAMPLES, capture_documents, example, load, name
from .reference import reference_hash_ids_of, reference_hash_ids_of_xml

XML_EXAMPLES = sorted((EXAMPLES / "xml").glob("*.xml"))

REFERENCE_READS_XML_OTHERWISE = {
    # `type="gs1:EffectiveDoseRate"`: GS1's reference expands `gs1:` in XML values, not in JSON
    # ones; the JSON schema knows no bare EffectiveDoseRate and refuses https://gs1.org/voc/
    # URIs, so `gs1:EffectiveDoseRate` is the one form JSON has, and it hashes as written.
    "TransactionEvent.xml",
}


def _document(path: Path) -> dict[str, Any]:
    return document_from_xml(path.read_bytes())


def _events(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document["epcisBody"]
    events: list[dict[str, Any]] = body.get("eventList") or body["queryResults"]["resultsBody"]["eventList"]
    return events


@pytest.mark.parametrize("path", XML_EXAMPLES, ids=[p.name for p in XML_EXAMPLES])
def test_an_xml_example_read_into_json_has_the_ids_the_reference_gives_the_xml(path: Path) -> None:
    converted = _document(path)

    ids = event_hash_ids(converted)

    assert len(ids) == path.read_text(encoding="utf-8-sig").count("Event>") // 2
    if path.name in REFERENCE_READS_XML_OTHERWISE:
        assert ids != reference_hash_ids_of_xml(path.read_text(encoding="utf-8"))
        assert ids == reference_hash_ids_of(converted)  # the reference's ids of the JSON form
    else:
        assert ids == reference_hash_ids_of_xml(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", XML_EXAMPLES, ids=[p.name for p in XML_EXAMPLES])
def test_an_xml_example_read_into_json_passes_the_json_schema(path: Path) -> None:
    problems = validate_document(_document(path))

    assert problems == []


def test_the_xml_and_json_examples_of_the_same_events_have_the_same_ids() -> None:
    xml = (EXAMPLES / "xml" / "Example-TransactionEvent-2020_07_03y.xml").read_bytes()
    json_twin = example("Example-TransactionEvents-2020_07_03y.jsonld")

    # The first event is the same in both; the second differs in two details, aligned here: the
    # XML has an empty rail:vehicleMasterGIAI the JSON leaves out, and the JSON types one
    # rail:vehicleUniquelyIdentified as a boolean (XML has only text).
    assert event_hash_ids(document_from_xml(xml))[0] == event_hash_ids(json_twin)[0]
    aligned_xml = xml.replace(b"<rail:vehicleMasterGIAI/>", b"")
    aligned_json = copy.deepcopy(json_twin)
    aligned_json["epcisBody"]["eventList"][1]["rail:vehicle"][2]["rail:vehicleUniquelyIdentified"] = "true"
    assert event_hash_ids(document_from_xml(aligned_xml)) == event_hash_ids(aligned_json)


@pytest.mark.parametrize("path", XML_EXAMPLES, ids=[p.name for p in XML_EXAMPLES])
def test_an_xml_example_written_back_as_xml_is_valid_and_reads_into_the_same_json(path: Path) -> None:
    converted = _document(path)

    written = capture_document_xml(converted)

    assert schema_problems(written, CAPTURE_XSD) == []
    assert document_from_xml(written) == converted


JSON_DOCUMENTS = capture_documents()
HASHES_A_BOOLEAN = {
    # JSON's `true` hashes as Python writes it ("True"); XML has only the text "true".
    "Example-TransactionEvents-2020_07_03y.jsonld",
}


@pytest.mark.parametrize("path", JSON_DOCUMENTS, ids=[name(p) for p in JSON_DOCUMENTS])
def test_a_json_example_written_as_xml_is_valid_and_reads_back_into_events_with_its_ids(path: Path) -> None:
    document = load(path)

    written = capture_document_xml(document)
    read_back = document_from_xml(written)

    assert schema_problems(written, CAPTURE_XSD) == []
    assert len(_events(read_back)) == len(_events(document))
    if name(path) in HASHES_A_BOOLEAN:
        assert event_hash_ids(read_back)[0] == event_hash_ids(document)[0]
    else:
        assert event_hash_ids(read_back) == event_hash_ids(document)


def test_a_query_document_written_as_xml_is_valid_by_the_query_xsd_and_reads_back() -> None:
    document = example("EPCISQueryDocument.jsonld")

    written = query_document_xml(document)
    read_back = query_document_from_xml(written)

    assert schema_problems(written, QUERY_XSD) == []
    assert read_back["type"] == "EPCISQueryDocument"
    assert read_back["epcisBody"]["queryResults"]["queryName"] == "SimpleEventQuery"
    capture_form = {**document, "type": "EPCISDocument", "epcisBody": {"eventList": _events(document)}}
    assert event_hash_ids({**read_back, "epcisBody": {"eventList": _events(read_back)}}) == event_hash_ids(
        capture_form
    )


def test_served_extensions_are_written_in_the_namespace_their_capture_bound_them_to() -> None:
    served = {
        "@context": [EPCIS_CONTEXT, {"tracechain": "https://tracechain.dev/epcis#"}],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T10:00:00Z",
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {
                    "eventList": [
                        {
                            "type": "ObjectEvent",
                            "eventTime": "2024-05-01T10:00:00Z",
                            "eventTimeZoneOffset": "+00:00",
                            "epcList": ["urn:epc:id:sgtin:6901234.067890.1"],
                            "action": "OBSERVE",
                            "acme:grade": "A",
                            "tracechain:hashId": "ni:///sha-256;00?ver=CBV2.0",
                            "tracechain:withheld": ["bizTransactionList", "acme:price"],
                        }
                    ]
                },
            }
        },
    }
    captured_with = [[EPCIS_CONTEXT, {"acme": "https://acme.example/epcis/"}]]

    written = query_document_xml(served, captured_with)

    assert schema_problems(written, QUERY_XSD) == []
    text = written.decode()
    assert 'xmlns:acme="https://acme.example/epcis/"' in text
    assert "<acme:grade>A</acme:grade>" in text
    assert text.count("<tracechain:withheld>") == 2
    (event,) = _events(query_document_from_xml(written))
    assert event["acme:grade"] == "A"
    assert event["tracechain:withheld"] == ["bizTransactionList", "acme:price"]


# ---------------------------------------------------------------- the mapping, element by element


def _one_event(inner: str, namespaces: str = "", kind: str = "ObjectEvent") -> bytes:
    return (
        '<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'{namespaces} schemaVersion="2.0" creationDate="2024-05-01T10:00:00Z">'
        f"<EPCISBody><EventList><{kind}><eventTime>2024-05-01T10:00:00Z</eventTime>"
        f"<eventTimeZoneOffset>+00:00</eventTimeZoneOffset>{inner}</{kind}>"
        "</EventList></EPCISBody></epcis:EPCISDocument>"
    ).encode()


def test_quantities_are_numbers_and_a_nil_quantity_is_none() -> None:
    body = _one_event(
        "<action>OBSERVE</action><quantityList>"
        "<quantityElement><epcClass>urn:epc:class:lgtin:4012345.012345.998877</epcClass>"
        "<quantity>200.5</quantity><uom>KGM</uom></quantityElement>"
        "<quantityElement><epcClass>urn:epc:idpat:sgtin:4012345.098765.*</epcClass>"
        "<quantity>10</quantity></quantityElement>"
        "<quantityElement><epcClass>urn:epc:idpat:sgtin:4012345.098765.*</epcClass>"
        '<quantity xsi:nil="true"/></quantityElement>'
        "</quantityList>"
    )

    (event,) = _events(document_from_xml(body))

    assert event["quantityList"] == [
        {"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 200.5, "uom": "KGM"},
        {"epcClass": "urn:epc:idpat:sgtin:4012345.098765.*", "quantity": 10},
        {"epcClass": "urn:epc:idpat:sgtin:4012345.098765.*"},
    ]


def test_cbv_urns_become_the_bare_words_json_names_and_go_back_as_urns() -> None:
    body = _one_event(
        "<action>OBSERVE</action><bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep>"
        "<disposition>https://ref.gs1.org/cbv/Disp-in_transit</disposition>"
        '<bizTransactionList><bizTransaction type="urn:epcglobal:cbv:btt:po">urn:epcglobal:cbv:bt:'
        "0614141000005:PO-1</bizTransaction></bizTransactionList>"
        '<sourceList><source type="urn:epcglobal:cbv:sdt:owning_party">urn:epc:id:pgln:0614141.00000'
        "</source></sourceList>"
        "<sensorElementList><sensorElement>"
        '<sensorReport type="gs1:Temperature" value="-18.5" uom="CEL" booleanValue="false"/>'
        "</sensorElement></sensorElementList>"
    )

    document = document_from_xml(body)
    (event,) = _events(document)
    written = capture_document_xml(document).decode()

    assert event["bizStep"] == "shipping"
    assert event["disposition"] == "in_transit"
    assert event["bizTransactionList"] == [
        {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0614141000005:PO-1"}
    ]
    assert event["sourceList"] == [{"type": "owning_party", "source": "urn:epc:id:pgln:0614141.00000"}]
    assert event["sensorElementList"] == [
        {"sensorReport": [{"type": "Temperature", "value": -18.5, "uom": "CEL", "booleanValue": False}]}
    ]
    assert "<bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep>" in written
    assert "<disposition>urn:epcglobal:cbv:disp:in_transit</disposition>" in written
    assert 'type="gs1:Temperature"' in written
    assert 'booleanValue="false"' in written


def test_extension_namespaces_are_bound_in_the_context_under_prefixes_that_change_no_value() -> None:
    converted = _document(EXAMPLES / "xml" / "TransformationEvent.xml")
    (context,) = converted["@context"][1:]
    (event,) = _events(converted)

    # `example` also starts a value (type="example:someSensorProperty"), a URI as written in XML
    # that the prefix would expand in JSON-LD; `cbvmda` is the EPCIS context's own term, for
    # urn:epcglobal:cbv:mda: with a colon, which this document's namespace lacks.
    assert "example" not in context
    assert "cbvmda" not in context
    renamed = {uri: prefix for prefix, uri in context.items()}
    example, mda = renamed["http://ns.example.com/epcis"], renamed["urn:epcglobal:cbv:mda"]
    assert event["ilmd"][f"{mda}:lotNumber"] == "LOTABC"
    assert event["readPoint"][f"{example}:gs1ES"] == "(414)4023333000000"
    assert {"type": "example:someSensorProperty", "stringValue": "someSensorOutput"} in event[
        "sensorElementList"
    ][0]["sensorReport"]
    assert context["example2"] == "http://ns.example.com/epcis-2"
    assert event["example2:furtherData"] == {"example2:assemblyLine": "2", "example2:workingShift": "1"}


def test_repeated_extension_elements_become_an_array_and_the_extension_wrapper_vanishes() -> None:
    body = _one_event(
        "<action>OBSERVE</action><extension><acme:lot>1</acme:lot></extension>"
        '<acme:reading unit="C">4</acme:reading><acme:reading unit="C">5</acme:reading>',
        'xmlns:acme="https://acme.example/epcis/"',
    )

    converted = document_from_xml(body)
    (event,) = _events(converted)

    assert converted["@context"] == [EPCIS_CONTEXT, {"acme": "https://acme.example/epcis/"}]
    assert event["acme:lot"] == "1"
    assert event["acme:reading"] == [{"unit": "C", "#text": "4"}, {"unit": "C", "#text": "5"}]


# ---------------------------------------------------------------- refusals


REFUSALS = [
    pytest.param(b"<epcis:EPCISDocument", "line 1: not well-formed XML", id="cut-off"),
    pytest.param(
        _one_event("<action>MOVE</action>"),
        "Element 'action': [facet 'enumeration'] The value 'MOVE'",
        id="action-not-in-xsd",
    ),
    pytest.param(
        _one_event("<epcList><epc>urn:epc:id:sgtin:1.2.3</epc></epcList>"),
        "Missing child element(s). Expected is ( action )",
        id="missing-action",
    ),
    pytest.param(
        _one_event("<action>OBSERVE</action><color>red</color>"),
        "Element 'color': This element is not expected",
        id="unqualified-element",
    ),
    pytest.param(
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n'
        b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2">&lol2;</epcis:EPCISDocument>',
        "line 2: a DOCTYPE is not allowed",
        id="entity-expansion",
    ),
    pytest.param(
        b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'
        b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2">&x;</epcis:EPCISDocument>',
        "line 2: a DOCTYPE is not allowed",
        id="external-entity",
    ),
    pytest.param(
        _one_event(
            "<action>OBSERVE</action>" + "<acme:a>" * (MAX_DEPTH + 1) + "</acme:a>" * (MAX_DEPTH + 1),
            'xmlns:acme="https://acme.example/epcis/"',
        ),
        f"extensions nest deeper than {MAX_DEPTH} levels",
        id="too-deep",
    ),
    pytest.param(
        _one_event(
            "<action>OBSERVE</action><sensorElementList><sensorElement>"
            '<sensorMetadata time="2024-05-01T10:00:00Z"/></sensorElement></sensorElementList>'
        ),
        "Element 'sensorElement': Missing child element(s). Expected is ( sensorReport )",
        id="sensor-element-without-report",
    ),
    pytest.param(
        _one_event(
            '<action>OBSERVE</action><sensorElementList><sensorElement><sensorReport value="INF"/>'
            "</sensorElement></sensorElementList>"
        ),
        "'INF' has no JSON form",
        id="infinite-number",
    ),
    pytest.param(
        _one_event(
            "<action>OBSERVE</action><quantityList><quantityElement>"
            "<epcClass>urn:epc:class:lgtin:4012345.012345.998877</epcClass>"
            f"<quantity>{'9' * 5000}</quantity></quantityElement></quantityList>"
        ),
        "line 1: a number of 5000 digits is longer than",
        id="over-long-quantity",
    ),
    pytest.param(
        _one_event(
            "<action>OBSERVE</action><sensorElementList><sensorElement>"
            f'<sensorReport value="{"1" * 5000}.5"/></sensorElement></sensorElementList>'
        ),
        "line 1: a number of 5001 digits is longer than",
        id="over-long-sensor-value",
    ),
]


@pytest.mark.parametrize(("body", "named"), REFUSALS)
def test_invalid_or_unsafe_xml_is_refused_naming_where_and_what(body: bytes, named: str) -> None:
    with pytest.raises(InvalidXml) as refused:
        document_from_xml(body)

    assert named in str(refused.value)
    assert all(problem.location.startswith("line ") for problem in refused.value.problems)


def test_a_query_document_is_not_taken_for_a_capture_document() -> None:
    written = query_document_xml(example("EPCISQueryDocument.jsonld"))

    with pytest.raises(InvalidXml) as refused:
        document_from_xml(written)

    assert "line 2: Element 'EPCISQueryDocument': No matching global declaration" in str(refused.value)


def test_extension_content_no_xml_can_carry_is_written_valid_and_never_breaks_the_document() -> None:
    hostile = {
        "type": "ObjectEvent",
        "eventTime": "2024-05-01T10:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:6901234.067890.1"],
        "action": "OBSERVE",
        "acme:notes": {"1st": "left out", "ok": "bell\x07 and nul\x00"},
        "evil:claim": "in EPCIS's namespace",
        "ghost:undeclared": "no prefix bound",
        "https://acme.example/ns#full": "a full IRI key",
    }
    context = [EPCIS_CONTEXT, {"acme": "https://acme.example/epcis/", "evil": "urn:epcglobal:epcis:xsd:2"}]
    served = {
        "@context": context,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T10:00:00Z",
        "epcisBody": {
            "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": [hostile]}}
        },
    }

    written = query_document_xml(served)

    assert schema_problems(written, QUERY_XSD) == []
    (event,) = _events(query_document_from_xml(written))
    assert event["acme:notes"] == {"ok": "bell\ufffd and nul\ufffd"}
    extensions = {key.split(":", 1)[1]: value for key, value in event.items() if ":" in key}
    assert extensions["claim"] == "in EPCIS's namespace"
    assert extensions["undeclared"] == "no prefix bound"
    assert extensions["full"] == "a full IRI key"


def test_a_transaction_event_with_its_business_transactions_withheld_lacks_only_what_the_xsd_requires() -> (
    None
):
    """A reader not shown a TransactionEvent's bizTransactionList (a partner's or the public view)
    is served the event without it, as in JSON, whose schema requires it as well: the one place a
    served XML document is not valid by the XSD, and the XSD says so of nothing else."""
    withheld = {
        "type": "TransactionEvent",
        "eventTime": "2024-05-01T10:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:6901234.067890.1"],
        "action": "ADD",
        "tracechain:withheld": ["bizTransactionList"],
    }
    served = {
        "@context": [EPCIS_CONTEXT, {"tracechain": "https://tracechain.dev/epcis#"}],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T10:00:00Z",
        "epcisBody": {
            "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": [withheld]}}
        },
    }

    (problem,) = schema_problems(query_document_xml(served), QUERY_XSD)

    assert problem.reason.startswith("Element 'epcList': This element is not expected")
    assert problem.reason.endswith("bizTransactionList ).")


def test_another_namespace_written_with_tracechains_prefix_is_given_another() -> None:
    document = document_from_xml(
        _one_event(
            "<action>OBSERVE</action><tracechain:grade>7</tracechain:grade>",
            'xmlns:tracechain="http://other/"',
        )
    )
    (event,) = document["epcisBody"]["eventList"]
    (key,) = (key for key in event if key.endswith(":grade"))
    prefix = key.split(":")[0]
    assert prefix != TRACECHAIN_PREFIX and document["@context"][1] == {prefix: "http://other/"}
    assert reserved_term_problems(document) == []


def test_tracechains_own_namespace_is_read_under_its_prefix_however_the_xml_names_it() -> None:
    document = document_from_xml(
        _one_event(
            "<action>OBSERVE</action><tc:hashId>x</tc:hashId><tracechain:grade>7</tracechain:grade>",
            f'xmlns:tc="{TRACECHAIN_NS}" xmlns:tracechain="http://other/"',
        )
    )
    (event,) = document["epcisBody"]["eventList"]
    assert event[f"{TRACECHAIN_PREFIX}:hashId"] == "x"
    assert reserved_term_problems(document)  # capture refuses it, as it refuses any tracechain: term


# ---------------------------------------------------------------- big documents, streamed


def _streamed(body: bytes, size: int = 1) -> dict[str, Any]:
    """The document read as a big one is: its outline first, then its events `size` at a time."""
    file = io.BytesIO(body)
    outline = read_xml_outline(file)
    chunks = list(xml_event_chunks(file, outline, size))
    assert [len(chunk) for chunk in chunks[:-1]] == [size] * (len(chunks) - 1)
    events = [event for chunk in chunks for event in chunk]
    assert len(events) == outline.event_count
    return {**outline.shell, "epcisBody": {"eventList": events}}


def _big_document(count: int) -> bytes:
    """`count` events of the demo's big document, as XML."""
    events = list(factory_events(count, lot=1, start=datetime(2026, 1, 5, 8, tzinfo=UTC)))
    document = {
        "@context": BIG_CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-05T08:00:00Z",
        "epcisBody": {"eventList": events},
    }
    return capture_document_xml(document)


@pytest.mark.parametrize("path", XML_EXAMPLES, ids=[p.name for p in XML_EXAMPLES])
def test_an_xml_example_read_streamed_is_the_json_it_reads_into_whole(path: Path) -> None:
    body = path.read_bytes()

    assert _streamed(body) == document_from_xml(body)


def test_a_big_document_read_streamed_is_the_json_it_reads_into_whole() -> None:
    body = _big_document(3 * VALIDATED_TOGETHER + 7)  # the XSD's batches and the chunks both split it

    whole = document_from_xml(body)

    assert _streamed(body, 100) == whole
    assert len(_events(whole)) == 3 * VALIDATED_TOGETHER + 7
    assert len(whole["@context"]) == 2  # the maker's extension namespace, bound


def test_a_value_late_in_a_streamed_document_moves_the_prefix_its_first_event_binds() -> None:
    """The prefixes are bound for the whole document: a value after the first batch that starts
    with `acme:` keeps the first event's acme namespace off that prefix, as reading it whole does;
    namespaces declared above the events (on the event list) are kept by events read streamed."""
    first = "<action>OBSERVE</action><acme:lot>1</acme:lot>"
    other = "<action>OBSERVE</action>"
    late = "<action>OBSERVE</action><bizStep>acme:inspecting</bizStep>"
    events = [first] + [other] * VALIDATED_TOGETHER + [late]
    body = _document_of_events(events, list_namespaces='xmlns:acme="https://acme.example/epcis/"')

    whole = document_from_xml(body)
    streamed = _streamed(body, 7)

    assert streamed == whole
    assert whole["@context"][1] == {"ns1": "https://acme.example/epcis/"}
    assert _events(whole)[0]["ns1:lot"] == "1"
    assert _events(whole)[-1]["bizStep"] == "acme:inspecting"


def _document_of_events(events: list[str], list_namespaces: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"\n'
        ' creationDate="2024-05-01T10:00:00Z">\n<EPCISBody>\n'
        f"<EventList {list_namespaces}>\n"
        + "".join(
            f"<ObjectEvent>\n<eventTime>2024-05-01T10:00:{index % 60:02d}Z</eventTime>\n"
            f"<eventTimeZoneOffset>+00:00</eventTimeZoneOffset>\n{inner}\n</ObjectEvent>\n"
            for index, inner in enumerate(events)
        )
        + "</EventList>\n</EPCISBody>\n</epcis:EPCISDocument>\n"
    ).encode()


@pytest.mark.parametrize(("body", "named"), REFUSALS)
def test_xml_read_streamed_is_refused_as_it_is_refused_whole(body: bytes, named: str) -> None:
    with pytest.raises(InvalidXml) as whole:
        document_from_xml(body)
    with pytest.raises(InvalidXml) as streamed:
        _streamed(body)

    assert named in str(streamed.value)
    assert streamed.value.problems == whole.value.problems


_OBSERVE = "<action>OBSERVE</action>"
_INFINITE = (
    f"{_OBSERVE}<sensorElementList><sensorElement>"
    '<sensorReport value="INF"/></sensorElement></sensorElementList>'
)
_MOVE = "<action>MOVE</action>"


@pytest.mark.parametrize(
    ("replaced", "named"),
    [
        pytest.param(
            {-1: "<action>MOVE</action>"}, "The value 'MOVE' is not an element", id="late-invalid-event"
        ),
        pytest.param(
            {3: "<action>MOVE</action>"}, "The value 'MOVE' is not an element", id="early-invalid-event"
        ),
        pytest.param({5: _INFINITE}, "'INF' has no JSON form", id="early-number-without-json-form"),
        pytest.param(
            {5: _INFINITE, -1: _MOVE},
            "The value 'MOVE' is not an element",  # the XSD's verdict comes first, as read whole
            id="unconvertible-early-invalid-late",
        ),
        pytest.param({-2: "<action>OBSERVE</actio>"}, "not well-formed XML", id="late-not-well-formed"),
        pytest.param({-1: f"{_OBSERVE}<nested><epc/></nested>"}, "Element 'nested'", id="late-unexpected"),
    ],
)
def test_a_big_document_refused_streamed_names_the_line_read_whole_names(
    replaced: dict[int, str], named: str
) -> None:
    events = [_OBSERVE] * (2 * VALIDATED_TOGETHER + 30)
    for index, inner in replaced.items():
        events[index] = inner
    body = _document_of_events(events)

    with pytest.raises(InvalidXml) as whole:
        document_from_xml(body)
    with pytest.raises(InvalidXml) as streamed:
        _streamed(body, 50)

    assert named in str(streamed.value)
    assert streamed.value.problems == whole.value.problems
    assert all(problem.location.startswith("line ") for problem in streamed.value.problems)
    assert int(streamed.value.problems[0].location.removeprefix("line ")) > 1


def test_a_document_read_streamed_holds_the_event_being_read_and_no_other() -> None:
    """Memory bounded whatever the document's size, as a structure: when an event is read, the
    events before it are gone from the document's tree but the one just read, cleared (the parser
    reads ahead a buffer of the file, not of events)."""
    body = _big_document(2 * VALIDATED_TOGETHER)
    before: list[int] = []
    emptied: list[bool] = []
    root = None

    for element in _streamed_elements(io.BytesIO(body)):
        if root is None:
            root = element
            continue
        earlier = list(element.itersiblings(preceding=True))
        before.append(len(earlier))
        emptied.extend(len(event) == 0 for event in earlier)

    assert len(before) == 2 * VALIDATED_TOGETHER
    assert max(before) == 1 and all(emptied)
    assert root is not None and len(list(root.iter())) <= 4  # the root, body, event list, last event
