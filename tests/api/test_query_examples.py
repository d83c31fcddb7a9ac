"""Every query parameter finds each event of each of GS1's example capture documents by the event's
own values, and a value built to match nothing, or a bound just past the event's, does not find it;
GS1's XML examples the same, captured as XML.

The expectations are read off each event, not worked out by a second query engine: for every value
an event has (its type, action, bizStep, locations, identifiers, quantities, sensor readings, ILMD,
extensions, business transactions, parties, declared ids, error declaration), the query naming that
value must return that event; a query naming a value no event has must return nothing; a range
bounded just past the event's value must leave that event out. One test per example and database:
the example is captured once and all its queries run against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracechain.epcis.xml import document_from_xml

from .conftest import Api

EXAMPLES = Path(__file__).parents[1] / "data" / "epcis"
CAPTURE_DOCUMENTS = sorted(
    path for path in EXAMPLES.rglob("*.jsonld") if json.loads(path.read_text())["type"] == "EPCISDocument"
)
XML_DOCUMENTS = sorted((EXAMPLES / "xml").glob("*.xml"))
XML = {"Content-Type": "application/xml"}
GS1_CONTEXT = Path(__file__).parents[2] / "backend" / "tracechain" / "epcis" / "data" / "epcis-context.jsonld"

NOTHING_URI = "urn:example:tracechain:matches-nothing"
NOTHING_EPC = "urn:epc:id:sgtin:0000000.000000.0"
NOTHING_CLASS = "urn:epc:class:lgtin:0000000.000000.none"
NOTHING_LOCATION = "urn:epc:id:sgln:0000000.00000.0"
CLASS_MATCHES = ("MATCH_epcClass", "MATCH_inputEPCClass", "MATCH_outputEPCClass", "MATCH_anyEPCClass")
PARTY_OR_PLACE = ("EQ_readPoint", "EQ_bizLocation", "WD_", "EQ_source_", "EQ_destination_")

EVENT_TYPES = {
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
}

Query = dict[str, str]


def identity(event: dict[str, Any]) -> str:
    """An event as captured, whatever ids and record time the service serves it with."""
    served_only = {"eventID", "recordTime", "@context", "tracechain:hashId", "tracechain:withheld"}
    served_only |= {"tracechain:capturedContext"}
    return json.dumps({k: v for k, v in event.items() if k not in served_only}, sort_keys=True)


def prefixes_of(document: dict[str, Any]) -> dict[str, str]:
    """The prefixes GS1's context and the document's inline context define (string terms only)."""
    contexts = [json.loads(GS1_CONTEXT.read_text())["@context"], *document["@context"][1:]]
    return {
        term: iri
        for context in contexts
        if isinstance(context, dict)
        for term, iri in context.items()
        if isinstance(iri, str) and ":" not in term and ":" in iri and not iri.startswith("@")
    }


def full_iri(name: str, prefixes: dict[str, str]) -> str:
    """A compact name as the IRI a query names it by. An XML namespace need not end in `/`, `#` or
    `:` (`http://ns.example.com/epcis`): its fields are then `namespace#name`, as XML names them."""
    prefix, _, local = name.partition(":")
    if prefix not in prefixes:
        return name
    namespace = prefixes[prefix]
    return namespace + local if namespace.endswith(("/", "#", ":")) else f"{namespace}#{local}"


def scalars(value: Any) -> Iterator[str]:
    """A field's values a query can name: an empty one (an empty XML element) is found by
    EXISTS_, and EQ_ refuses an empty alternative."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str | int | float) and not isinstance(item, bool) and str(item) != "":
            yield str(item)


def inner_fields(value: Any) -> Iterator[tuple[str, Any]]:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            for key, inner in item.items():
                yield key, inner
                yield from inner_fields(inner)


def found_by(event: dict[str, Any], prefixes: dict[str, str]) -> Iterator[Query]:
    """Queries each naming one of the event's own values: each must find the event."""
    yield {"eventType": event["type"]}
    yield {"GE_eventTime": event["eventTime"]}
    for field in ("action", "bizStep", "disposition", "transformationID", "eventID"):
        if field in event:
            yield {f"EQ_{field}": event[field]}
    for field in ("readPoint", "bizLocation"):
        if field in event:
            yield {f"EQ_{field}": event[field]["id"]}
            yield {f"WD_{field}": event[field]["id"]}
    for field, parameter in (
        ("epcList", "MATCH_epc"),
        ("childEPCs", "MATCH_epc"),
        ("inputEPCList", "MATCH_inputEPC"),
        ("outputEPCList", "MATCH_outputEPC"),
    ):
        for epc in event.get(field, []):
            yield {parameter: epc}
            yield {"MATCH_anyEPC": epc}
    if "parentID" in event:
        yield {"MATCH_parentID": event["parentID"]}
        yield {"MATCH_anyEPC": event["parentID"]}
    for field, parameter in (
        ("quantityList", "MATCH_epcClass"),
        ("childQuantityList", "MATCH_epcClass"),
        ("inputQuantityList", "MATCH_inputEPCClass"),
        ("outputQuantityList", "MATCH_outputEPCClass"),
    ):
        for element in event.get(field, []):
            yield {parameter: element["epcClass"]}
            yield {"MATCH_anyEPCClass": element["epcClass"]}
            if "quantity" in element:
                quantity = str(element["quantity"])
                yield {"EQ_quantity": quantity}
                yield {"GE_quantity": quantity}
                yield {"LE_quantity": quantity}
                if "uom" in element:
                    yield {f"EQ_quantity_{element['uom']}": quantity}
    for field, key, prefix in (
        ("bizTransactionList", "bizTransaction", "EQ_bizTransaction_"),
        ("sourceList", "source", "EQ_source_"),
        ("destinationList", "destination", "EQ_destination_"),
    ):
        for entry in event.get(field, []):
            if "type" in entry:
                yield {prefix + entry["type"]: entry[key]}
    for part in ("set", "unset"):
        for disposition in event.get("persistentDisposition", {}).get(part, []):
            yield {f"EQ_persistentDisposition_{part}": disposition}
    if "errorDeclaration" in event:
        declaration = event["errorDeclaration"]
        yield {"EXISTS_errorDeclaration": "true"}
        yield {"GE_errorDeclarationTime": declaration["declarationTime"]}
        if "reason" in declaration:
            yield {"EQ_errorReason": declaration["reason"]}
        for corrective in declaration.get("correctiveEventIDs", []):
            yield {"EQ_correctiveEventID": corrective}
    for field in event:
        if ":" not in field:
            yield {f"EXISTS_{field}": "true"}
    for element in event.get("sensorElementList", []):
        metadata = element.get("sensorMetadata", {})
        for moment in ("startTime", "endTime", "time"):
            if moment in metadata:
                yield {f"GE_{moment}": metadata[moment]}
        for report in element["sensorReport"]:
            yield {"EQ_type": report["type"]}
            for attribute in ("deviceID", "dataProcessingMethod", "microorganism", "chemicalSubstance"):
                if attribute in report:
                    yield {f"EQ_{attribute}": report[attribute]}
            for number in ("value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"):
                if number in report:
                    unit = f"_{report['uom']}" if "uom" in report else ""
                    yield {"EQ_type": report["type"], f"GE_{number}{unit}": str(report[number])}
                    yield {f"LE_{number}{unit}": str(report[number])}
    for name, value in event.get("ilmd", {}).items():
        yield {f"EXISTS_ILMD_{full_iri(name, prefixes)}": "true"}
        for text in scalars(value):
            yield {f"EQ_ILMD_{full_iri(name, prefixes)}": text}
    for name, value in event.items():
        if ":" in name:
            yield {f"EXISTS_{full_iri(name, prefixes)}": "true"}
            for text in scalars(value):
                yield {f"EQ_{full_iri(name, prefixes)}": text}
            for inner, inner_value in inner_fields(value):
                for text in scalars(inner_value):
                    yield {f"EQ_INNER_{full_iri(inner, prefixes)}": text}


def past_it(event: dict[str, Any]) -> Iterator[Query]:
    """Ranges bounded just past the event's own values: none may find the event."""
    yield {"LT_eventTime": event["eventTime"]}
    yield {"eventType": "|".join(sorted(EVENT_TYPES - {event["type"]}))}
    quantities = [
        float(element["quantity"])
        for field in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
        for element in event.get(field, [])
        if "quantity" in element
    ]
    if quantities:
        yield {"GT_quantity": str(max(quantities))}
        yield {"LT_quantity": str(min(quantities))}
    if "errorDeclaration" in event:
        yield {"LT_errorDeclarationTime": event["errorDeclaration"]["declarationTime"]}
    reports = [report for element in event.get("sensorElementList", []) for report in element["sensorReport"]]
    for number in ("value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"):
        values = [float(report[number]) for report in reports if number in report]
        if values:
            yield {f"GT_{number}": str(max(values))}
            yield {f"LT_{number}": str(min(values))}
    for field in ("ilmd", "sensorElementList", "errorDeclaration", "persistentDisposition"):
        if field not in event:
            yield {f"EXISTS_{field}": "true"}


def matching_nothing(event: dict[str, Any], prefixes: dict[str, str]) -> Iterator[Query]:
    """For each parameter that finds the event by equality, a value no event has: each must find
    nothing."""
    for query in found_by(event, prefixes):
        for name in query:
            if name.startswith(CLASS_MATCHES):
                yield {name: NOTHING_CLASS}
            elif name.startswith("MATCH_"):
                yield {name: NOTHING_EPC}
            elif name.startswith(PARTY_OR_PLACE):
                yield {name: NOTHING_LOCATION}
            elif name.startswith("EQ_quantity"):
                yield {name: "-1"}
            elif name.startswith("EQ_") and name not in {"EQ_action", "EQ_type"}:
                yield {name: NOTHING_URI}
    yield {"EQ_type": "Radioactivity"}  # no example measures radioactivity


def capture_example(
    api: Api, maker: dict[str, str], document: dict[str, Any], body: bytes | None = None
) -> None:
    """Captures `document`, or `body` (its XML form) when given. An error declaration withdraws an
    event its author captured before: that goes first."""
    withdrawn = [
        {key: value for key, value in event.items() if key != "errorDeclaration"}
        for event in document["epcisBody"]["eventList"]
        if "errorDeclaration" in event
    ]
    if withdrawn:
        earlier = {**document, "epcisBody": {"eventList": withdrawn}}
        assert api.client.post("/capture", json=earlier, headers=maker).status_code == 202
    if body is None:
        response = api.client.post("/capture", json=document, headers=maker)
    else:
        response = api.client.post("/capture", content=body, headers={**maker, **XML})
    assert response.status_code == 202, response.text
    api.settle()


def assert_found_by_its_own_values(api: Api, document: dict[str, Any]) -> None:
    """Every query `found_by` derives from each event of the captured `document` finds it; none of
    `past_it` and `matching_nothing` does."""
    prefixes = prefixes_of(document)

    def found(query: Query) -> set[str]:
        as_captured = {"GS1-EPC-Format": "Never_Translates"}
        response = api.admin("GET", "/events", params={**query, "perPage": "1000"}, headers=as_captured)
        assert response.status_code == 200, (query, response.text)
        events = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        return {identity(event) for event in events}

    missed, wrongly_found, queries = [], [], 0
    for index, event in enumerate(document["epcisBody"]["eventList"]):
        for query in found_by(event, prefixes):
            queries += 1
            if identity(event) not in found(query):
                missed.append((index, query))
        for query in past_it(event):
            queries += 1
            if identity(event) in found(query):
                wrongly_found.append((index, query))
        for query in matching_nothing(event, prefixes):
            queries += 1
            if found(query):
                wrongly_found.append((index, query))
    assert missed == [] and wrongly_found == []
    assert queries > 20 * len(document["epcisBody"]["eventList"])  # the derivation read the events


@pytest.mark.parametrize("path", CAPTURE_DOCUMENTS, ids=[p.name for p in CAPTURE_DOCUMENTS])
def test_each_parameter_finds_each_example_event_by_its_own_values_and_nothing_else(
    api: Api, parties: dict[str, dict[str, Any]], path: Path
) -> None:
    document = json.loads(path.read_text())
    capture_example(api, api.as_participant(parties["manufacturer"]), document)
    assert_found_by_its_own_values(api, document)


@pytest.mark.parametrize("path", XML_DOCUMENTS, ids=[p.name for p in XML_DOCUMENTS])
def test_each_parameter_finds_each_xml_example_event_by_its_own_values_and_nothing_else(
    api: Api, parties: dict[str, dict[str, Any]], path: Path
) -> None:
    """The same table over GS1's XML examples, captured as XML: each event is expected to be found
    by the values of its JSON form (the binding's mapping of XML to JSON, `document_from_xml`)."""
    body = path.read_bytes()
    document = document_from_xml(body)
    capture_example(api, api.as_participant(parties["manufacturer"]), document, body)
    assert_found_by_its_own_values(api, document)
