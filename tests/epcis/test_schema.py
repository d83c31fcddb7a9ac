from __future__ import annotations

import copy
import hashlib
from importlib import resources
from pathlib import Path

import pytest

from tracechain.epcis.schema import DocumentProblem, validate_document

from .examples import EPCIS_CONTEXT, capture_documents, document_of, event, example, example_files, load, name

SGTIN = "urn:epc:id:sgtin:0614141.107346.2017"


def _problems_at(problems: list[DocumentProblem], location: str) -> list[DocumentProblem]:
    return [problem for problem in problems if problem.location == location]


def _shipping() -> dict[str, object]:
    return event(epcList=[SGTIN], bizStep="shipping")


@pytest.mark.parametrize("path", capture_documents(), ids=name)
def test_every_example_capture_document_validates(path: Path) -> None:
    assert validate_document(load(path)) == []


def test_only_the_query_result_example_is_not_a_capture_document() -> None:
    others = {name(path) for path in example_files()} - {name(path) for path in capture_documents()}
    assert others == {"EPCISQueryDocument.jsonld"}
    assert len(capture_documents()) == 15


def test_a_built_document_validates() -> None:
    assert validate_document(document_of(_shipping())) == []


def test_missing_event_time_is_named_at_the_field() -> None:
    shipping = _shipping()
    del shipping["eventTime"]
    problems = validate_document(document_of(shipping))
    assert problems == [DocumentProblem("epcisBody.eventList[0].eventTime", "is required but missing")]


def test_bad_action_is_named_once_with_the_allowed_values() -> None:
    problems = validate_document(document_of(event(epcList=[SGTIN], action="MOVE")))
    assert problems == [
        DocumentProblem("epcisBody.eventList[0].action", "must be one of OBSERVE, ADD, DELETE (got 'MOVE')")
    ]


def test_wrong_json_type_is_named_at_the_field() -> None:
    problems = validate_document(document_of(event(epcList=SGTIN)))
    assert _problems_at(problems, "epcisBody.eventList[0].epcList") == [
        DocumentProblem("epcisBody.eventList[0].epcList", "must be a list, not a string")
    ]


def test_event_time_that_is_not_a_date_time_is_a_problem() -> None:
    problems = validate_document(document_of(event(epcList=[SGTIN], eventTime="yesterday")))
    assert problems == [
        DocumentProblem("epcisBody.eventList[0].eventTime", "'yesterday' is not a valid date-time")
    ]


def test_time_zone_offset_problem_shows_the_expected_form() -> None:
    problems = validate_document(document_of(event(epcList=[SGTIN], eventTimeZoneOffset="+8")))
    assert problems == [
        DocumentProblem(
            "epcisBody.eventList[0].eventTimeZoneOffset", "'+8' is not a UTC offset such as +02:00"
        )
    ]


def test_object_event_naming_nothing_lists_what_it_needs() -> None:
    problems = validate_document(document_of(event(bizStep="shipping")))
    assert problems == [
        DocumentProblem(
            "epcisBody.eventList[0]", "needs epcList, or quantityList, or sensorElementList and readPoint"
        )
    ]


def test_field_without_namespace_is_named() -> None:
    problems = validate_document(document_of(event(epcList=[SGTIN], myField="x")))
    assert problems == [
        DocumentProblem(
            "epcisBody.eventList[0].myField",
            "is not a field of ObjectEvent; extension fields need a namespace prefix (example:myField)",
        )
    ]


def test_every_problem_is_reported_in_document_order() -> None:
    first, second = _shipping(), _shipping()
    del first["eventTime"]
    second["action"] = "MOVE"
    document = document_of(first, second)
    del document["schemaVersion"]
    assert [problem.location for problem in validate_document(document)] == [
        "schemaVersion",
        "epcisBody.eventList[0].eventTime",
        "epcisBody.eventList[1].action",
    ]


def test_document_that_is_not_an_object_is_one_problem() -> None:
    assert validate_document([_shipping()]) == [
        DocumentProblem("document", "must be a JSON object, not a list")
    ]


def test_empty_object_names_every_missing_document_field() -> None:
    problems = validate_document({"type": "EPCISDocument"})
    assert {problem.location for problem in problems} == {
        "@context",
        "schemaVersion",
        "creationDate",
        "epcisBody",
    }


def test_reasons_are_sentences_not_schema_dumps() -> None:
    broken = example("Example_9.6.4-TransformationEvent.jsonld")
    transformation = broken["epcisBody"]["eventList"][0]
    transformation["inputQuantityList"][0]["quantity"] = "ten"
    transformation["bizStep"] = 7
    for problem in validate_document(broken):
        assert "{" not in problem.reason and "$ref" not in problem.reason, problem
        assert len(problem.reason) < 200, problem


# ---------------------------------------------------------------- @context


def test_remote_unknown_context_is_refused() -> None:
    document = document_of(_shipping(), context=[EPCIS_CONTEXT, "https://example.com/my-context.jsonld"])
    [problem] = validate_document(document)
    assert problem.location == "@context[1]"
    assert "https://example.com/my-context.jsonld" in problem.reason
    assert "never fetched" in problem.reason and "inline" in problem.reason


def test_remote_context_given_alone_is_refused() -> None:
    document = document_of(_shipping(), context="https://example.com/my-context.jsonld")
    assert [problem.location for problem in validate_document(document)] == ["@context"]


def test_remote_context_inside_an_event_or_an_inline_context_is_refused() -> None:
    nested = {"ex": {"@id": "https://ns.example.com/ex", "@context": "https://example.com/scoped.jsonld"}}
    shipping = _shipping()
    shipping["@context"] = ["https://example.com/event.jsonld"]
    document = document_of(
        shipping, context=[EPCIS_CONTEXT, nested, {"@import": "https://example.com/i.jsonld"}]
    )
    assert [problem.location for problem in validate_document(document)] == [
        "@context[1].ex.@context",
        "@context[2].@import",
        "epcisBody.eventList[0].@context[0]",
    ]


@pytest.mark.parametrize(
    "context",
    [
        EPCIS_CONTEXT,
        ["https://gs1.github.io/EPCIS/epcis-context.jsonld"],
        [EPCIS_CONTEXT, {"example": "http://ns.example.com/epcis/"}],
    ],
)
def test_bundled_contexts_and_inline_objects_are_accepted(context: object) -> None:
    assert validate_document(document_of(_shipping(), context=context)) == []


def test_validation_does_not_change_the_document() -> None:
    document = example("Example_9.6.1-ObjectEvent.jsonld")
    before = copy.deepcopy(document)
    validate_document(document)
    assert document == before


def test_package_ships_the_standards_schema_and_the_hash_generators_context() -> None:
    data = resources.files("tracechain.epcis").joinpath("data")
    assert '"$schema": "http://json-schema.org/draft-07/schema#"' in data.joinpath(
        "EPCIS-JSON-Schema.json"
    ).read_text("utf-8")
    shipped = hashlib.sha256(data.joinpath("epcis-context.jsonld").read_bytes()).hexdigest()
    bundled = {
        path.name.removesuffix(".jsonld")
        for path in resources.files("epcis_event_hash_generator").iterdir()
        if path.name.endswith(".jsonld")
    }
    # The reference names its bundled contexts by their sha-256.
    assert shipped in bundled


# ---------------------------------------------------------------- sensor rules beyond the schema


def _sensor_event(metadata: dict[str, object], report: dict[str, object]) -> dict[str, object]:
    reading = {"type": "gs1:Temperature", "value": 4.5, "uom": "CEL", **report}
    return event(
        epcList=[SGTIN],
        eventTime="2024-05-01T10:00:00.000+08:00",
        sensorElementList=[{"sensorMetadata": metadata, "sensorReport": [reading]}],
    )


def test_a_sensor_reading_at_or_before_its_event_is_accepted() -> None:
    # 02:00Z is 10:00+08:00: the same instant, written in another offset
    for metadata, report in [
        ({"time": "2024-05-01T02:00:00Z"}, {}),
        ({}, {"time": "2024-05-01T09:59:00+08:00"}),
    ]:
        assert validate_document(document_of(_sensor_event(metadata, report))) == []


def test_a_sensor_time_after_its_event_is_named() -> None:
    for part, metadata, report in [
        ("sensorMetadata", {"time": "2024-05-01T10:00:01+08:00"}, {}),
        ("sensorReport[0]", {}, {"time": "2024-05-01T02:00:01Z"}),
    ]:
        problems = validate_document(document_of(_sensor_event(metadata, report)))
        assert [problem.location for problem in problems] == [
            f"epcisBody.eventList[0].sensorElementList[0].{part}.time"
        ]
        assert "after the event's eventTime 2024-05-01T10:00:00+08:00" in problems[0].reason


def test_a_sensor_time_without_offset_fails_the_schema() -> None:
    problems = validate_document(document_of(_sensor_event({"time": "2024-05-01T01:00:00"}, {})))
    assert [p.location for p in problems] == [
        "epcisBody.eventList[0].sensorElementList[0].sensorMetadata.time"
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("deviceID", "urn:epc:id:giai:4000001.111"),
        ("dataProcessingMethod", "https://example.com/method/1"),
        ("deviceMetadata", "https://example.com/device/1"),
        ("rawData", "https://example.com/raw/1"),
        ("time", "2024-05-01T01:00:00Z"),
    ],
)
def test_an_inline_attribute_in_both_metadata_and_a_report_is_refused(name: str, value: str) -> None:
    # TCR-53 step 29: said for the element and for one reading, it is ambiguous which one a query means
    assert validate_document(document_of(_sensor_event({name: value}, {}))) == []
    assert validate_document(document_of(_sensor_event({}, {name: value}))) == []
    problems = validate_document(document_of(_sensor_event({name: value}, {name: value})))
    assert problems == [
        DocumentProblem(
            f"epcisBody.eventList[0].sensorElementList[0].sensorReport[0].{name}",
            f"is also given in the element's sensorMetadata; give {name} in one of them",
        )
    ]


def test_a_sensor_element_without_a_report_is_refused() -> None:
    # EPCIS 2.0 §7.3.5.5 (M121): a sensorElement contains one or more sensorReports
    element = event(epcList=[SGTIN], sensorElementList=[{"sensorMetadata": {"time": "2024-05-01T01:00:00Z"}}])
    problems = validate_document(document_of(element))
    assert problems == [
        DocumentProblem("epcisBody.eventList[0].sensorElementList[0].sensorReport", "is required but missing")
    ]


@pytest.mark.parametrize(
    "kind", ["ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent"]
)
def test_persistent_disposition_is_accepted_in_every_event_type_as_the_xsd_has_it(kind: str) -> None:
    # GS1's JSON schema has it only in Object and Transformation events; its XSD in all five
    names = {
        "ObjectEvent": {"epcList": [SGTIN]},
        "AggregationEvent": {"parentID": "urn:epc:id:sscc:0614141.1234567890", "childEPCs": [SGTIN]},
        "TransactionEvent": {"epcList": [SGTIN], "bizTransactionList": [{"bizTransaction": "urn:x:po:1"}]},
        "TransformationEvent": {
            "inputEPCList": [SGTIN],
            "transformationID": "urn:uuid:5d8a1d34-8f2b-4c1e-9a11-0f0e3a1c2b3d",
        },
        "AssociationEvent": {"parentID": "urn:epc:id:grai:0614141.12345.1", "childEPCs": [SGTIN]},
    }[kind]
    built = event(kind, **names, persistentDisposition={"set": ["completeness_verified"]})
    assert validate_document(document_of(built)) == []
    built["persistentDisposition"] = {"set": "completeness_verified"}  # still held to its own shape
    assert [p.location for p in validate_document(document_of(built))] == [
        "epcisBody.eventList[0].persistentDisposition.set"
    ]
