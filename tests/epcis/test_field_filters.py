"""Units convert only within a quantity; compact extension names resolve through the event's own
context; a parameter of no family is left for the next reader, a malformed one is refused."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from tracechain.epcis.field_filters import (
    STANDARD_PREFIXES,
    Reading,
    UnknownParameter,
    context_prefixes,
    expanded,
    read_field_parameter,
    read_quantity_parameter,
    read_sensor_parameter,
)
from tracechain.epcis.query import parse_event_query
from tracechain.epcis.units import converted
from tracechain.epcis.xml import document_from_xml

from .examples import EXAMPLES

GS1 = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
LOT = "urn:epc:class:lgtin:4012345.012345.998877"
T1 = "2024-03-01T10:00:00+00:00"
T2 = "2024-03-01T11:00:00+00:00"


def _sensor(**report: object) -> dict[str, Any]:
    """An event body with one temperature report; `startTime`/`endTime` go in its metadata."""
    metadata = {key: report.pop(key) for key in ("startTime", "endTime") if key in report}
    return {
        "sensorElementList": [
            {"sensorMetadata": metadata, "sensorReport": [{"type": "Temperature", **report}]}
        ]
    }


@pytest.mark.parametrize(
    ("value", "unit", "wanted", "expected"),
    [
        (4.5, "CEL", "KEL", 277.65),
        (100, "CEL", "FAH", 212.0),
        (32, "FAH", "CEL", 0.0),
        (2.5, "KGM", "GRM", 2500.0),
        (1, "LBR", "KGM", 0.45359237),
        (12.1, "A93", "A93", 12.1),  # a unit not in the table still compares with itself
    ],
)
def test_a_value_converts_within_its_quantity(value: float, unit: str, wanted: str, expected: float) -> None:
    result = converted(value, unit, wanted)
    assert result is not None and math.isclose(result, expected, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize(("unit", "wanted"), [("KGM", "MTR"), ("CEL", "A93"), (None, "CEL"), ("XYZ", "KGM")])
def test_a_value_does_not_convert_across_quantities_or_from_an_unknown_unit(
    unit: str | None, wanted: str
) -> None:
    assert converted(1.0, unit, wanted) is None


def test_an_events_context_defines_its_prefixes_over_gs1s() -> None:
    prefixes = context_prefixes(
        [GS1, {"example": "http://ns.example.com/epcis/", "acme:grade": {"@type": "xsd:integer"}}]
    )
    assert expanded("example:myField", prefixes) == "http://ns.example.com/epcis/myField"
    assert expanded("rdfs:comment", prefixes) == "http://www.w3.org/2000/01/rdf-schema#comment"
    assert expanded("acme:grade", prefixes) == "acme:grade"  # a term, not a prefix: left as written
    assert expanded("http://ns.example.com/epcis/x", prefixes) == "http://ns.example.com/epcis/x"
    # Another document may bind the same prefix elsewhere: each event resolves by its own context.
    other = context_prefixes([GS1, {"example": "https://other.example/"}])
    assert expanded("example:myField", other) == "https://other.example/myField"


def test_a_field_is_found_by_its_iri_in_either_bindings_spelling() -> None:
    prefixes = context_prefixes([GS1, {"example": "http://ns.example.com/epcis/"}])
    body = {"example:myField": "x", "ilmd": {"example:batch": "B1"}}
    for name in ("EQ_http://ns.example.com/epcis/myField", "EQ_http://ns.example.com/epcis#myField"):
        assert read_field_parameter(name, ["x"], "x")(body, prefixes)
    assert not read_field_parameter("EQ_http://ns.example.com/other/myField", ["x"], "x")(body, prefixes)
    assert read_field_parameter("EQ_ILMD_http://ns.example.com/epcis/batch", ["B1"], "B1")(body, prefixes)
    assert not read_field_parameter("EQ_http://ns.example.com/epcis/batch", ["B1"], "B1")(body, prefixes)


@pytest.mark.parametrize(
    "name", ["EQ_bizStep", "EQ_colour", "MATCH_epc", "EQ_SENSORREPORT_http://ns.example.com/x"]
)
def test_a_name_of_no_field_family_is_left_to_the_other_readers(name: str) -> None:
    with pytest.raises(UnknownParameter):
        read_field_parameter(name, ["x"], "x")


@pytest.mark.parametrize(
    ("read", "reason"),
    [
        (lambda: read_quantity_parameter("GT_quantity", ["lots"]), "a number"),
        (lambda: read_sensor_parameter("GE_value_CEL", ["warm"], "warm"), "a number"),
        (lambda: read_sensor_parameter("GE_time", ["soon"], "soon"), "date-time"),
        (lambda: read_field_parameter("GT_http://ns.example.com/x", ["hi"], "hi"), "numbers or date-times"),
        (lambda: read_field_parameter("EXISTS_ilmd", ["maybe"], "maybe"), "true or false"),
    ],
)
def test_a_malformed_value_is_refused_saying_what_it_should_be(
    read: Callable[[], object], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        read()


def test_an_xml_extension_field_is_found_by_its_iri_when_its_namespace_has_no_closing_slash() -> None:
    # GS1's example binds `example` to http://ns.example.com/epcis, no closing `/` or `#`.
    document = document_from_xml((EXAMPLES / "xml" / "ObjectEvent.xml").read_bytes())
    prefixes = context_prefixes(document["@context"])
    event = document["epcisBody"]["eventList"][0]
    for name, found in (
        ("EXISTS_http://ns.example.com/epcis#userElement", True),
        ("EXISTS_http://ns.example.com/epcis/userElement", True),
        ("EXISTS_http://ns.example.com/epcisuserElement", False),
        ("EXISTS_http://ns.example.com/epcis#otherElement", False),
    ):
        assert read_field_parameter(name, [""], "")(event, prefixes) is found, name


def test_an_element_nested_in_an_extension_without_a_namespace_is_named_as_written() -> None:
    # GS1's ObjectEvent.xml: <example:userElement><anotherElement>elementData</anotherElement>.
    # An unqualified element has no IRI; nested (INNER_) or in the ILMD, a query names it bare.
    document = document_from_xml((EXAMPLES / "xml" / "ObjectEvent.xml").read_bytes())
    prefixes = context_prefixes(document["@context"])
    event = document["epcisBody"]["eventList"][0]
    assert read_field_parameter("EQ_INNER_anotherElement", ["elementData"], "elementData")(event, prefixes)
    assert read_field_parameter("EXISTS_INNER_anotherElement", [""], "")(event, prefixes)
    assert not read_field_parameter("EQ_INNER_anotherElement", ["other"], "other")(event, prefixes)
    assert not read_field_parameter("EXISTS_INNER_userElement", [""], "")(event, prefixes)  # not bare
    body = {"ilmd": {"batch": "B1"}}
    assert read_field_parameter("EQ_ILMD_batch", ["B1"], "B1")(body, prefixes)


@pytest.mark.parametrize("name", ["EQ_anotherElement", "EQ_SENSORREPORT_:value", "EQ_INNER_a b"])
def test_an_unqualified_name_outside_the_ilmd_and_nested_fields_is_no_extension_field(name: str) -> None:
    """Bare at the top an unknown name is a standard field's (refused); `:value` has no namespace."""
    with pytest.raises(UnknownParameter):
        read_field_parameter(name, ["x"], "x")
    with pytest.raises(UnknownParameter):
        read_sensor_parameter(name, ["x"], "x")


def _reading(**report: object) -> Reading:
    return Reading({}, {}, {"type": "Temperature", **report})


@pytest.mark.parametrize(
    ("name", "bound", "passes"),
    [
        ("LE_sDev_KEL", "3", True),
        ("GE_sDev_KEL", "270", False),
        ("EQ_sDev_KEL", "2", True),
        ("EQ_sDev_FAH", "3.6", True),
        ("GE_value_KEL", "275", True),  # a value, not a difference, still takes the offset
    ],
)
def test_a_standard_deviation_converts_by_the_units_factor_only(name: str, bound: str, passes: bool) -> None:
    reading = _reading(value=2, sDev=2, uom="CEL")
    assert read_sensor_parameter(name, [bound], bound)(reading, STANDARD_PREFIXES) is passes


@pytest.mark.parametrize(
    ("name", "values", "stored"),
    [
        ("EQ_quantity_KGM", ["7", "5"], {"quantityList": [{"epcClass": LOT, "quantity": 5, "uom": "KGM"}]}),
        ("EQ_quantity_KGM", ["5|7"], {"quantityList": [{"epcClass": LOT, "quantity": 7, "uom": "KGM"}]}),
        ("EQ_quantity", ["7", "5"], {"quantityList": [{"epcClass": LOT, "quantity": 5}]}),
        ("EQ_time", [T1, T2], _sensor(time=T2)),
        ("EQ_startTime", [f"{T1}|{T2}"], _sensor(startTime=T2)),
        ("EQ_endTime", [T2, T1], _sensor(endTime=T1)),
        ("EQ_value", ["1", "2"], _sensor(value=2)),
    ],
)
def test_a_repeated_eq_parameter_lists_alternatives_in_any_order(
    name: str, values: list[str], stored: dict[str, Any]
) -> None:
    for ordered in (values, list(reversed(values))):
        query = parse_event_query([(name, value) for value in ordered])
        assert query.body_matches(stored), ordered
        assert not parse_event_query([(name, ordered[0].split("|")[0])]).body_matches({}), ordered


def test_eq_on_an_extension_field_compares_text_unless_the_stored_value_is_a_number() -> None:
    body = {"example:lot": "007", "example:count": 7, "example:grade": "7"}
    prefixes = {**STANDARD_PREFIXES, "example": "http://ns.example.com/epcis/"}

    def eq(field: str, word: str) -> bool:
        return read_field_parameter(f"EQ_http://ns.example.com/epcis/{field}", [word], word)(body, prefixes)

    assert not eq("lot", "7")
    assert eq("lot", "007")
    assert eq("count", "7") and eq("count", "7.0")
    assert eq("grade", "7") and not eq("grade", "7.0")
    # ordering compares numbers however they are stored
    assert read_field_parameter("GT_http://ns.example.com/epcis/lot", ["6"], "6")(body, prefixes)


@pytest.mark.parametrize("word", ["1_000", "inf", "-Infinity", "nan", "0x10", "\uff11\uff12", "1e", ".", ""])
def test_a_bound_is_a_plain_decimal_number(word: str) -> None:
    with pytest.raises(ValueError, match="a number"):
        read_quantity_parameter("GT_quantity", [word])
    with pytest.raises(ValueError, match="a number"):
        read_sensor_parameter("GE_value_CEL", [word], word)


@pytest.mark.parametrize("word", ["1000", "-1.5", "+2", ".5", "5.", "1e3", "2.5E-2", " 7 "])
def test_a_plain_decimal_with_an_optional_exponent_is_a_bound(word: str) -> None:
    read_quantity_parameter("GT_quantity", [word])


def test_a_stored_python_only_number_format_is_no_number() -> None:
    body = {"example:count": "1_000"}
    prefixes = {**STANDARD_PREFIXES, "example": "http://ns.example.com/epcis/"}
    assert not read_field_parameter("GT_http://ns.example.com/epcis/count", ["1"], "1")(body, prefixes)


def test_a_difference_converts_by_the_factor_alone() -> None:
    assert converted(2, "CEL", "KEL", difference=True) == 2
    result = converted(9, "FAH", "CEL", difference=True)
    assert result is not None and math.isclose(result, 5.0)


def test_a_stored_integer_past_floats_range_is_no_number() -> None:
    body = {"example:count": 10**400}
    prefixes = {**STANDARD_PREFIXES, "example": "http://ns.example.com/epcis/"}
    for op in ("GT", "EQ"):
        assert not read_field_parameter(f"{op}_http://ns.example.com/epcis/count", ["1"], "1")(body, prefixes)
