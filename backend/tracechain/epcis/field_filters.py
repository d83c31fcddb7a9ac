"""The SimpleEventQuery parameters whose names carry a field, a unit or an operator (EPCIS 2.0
§8.2.7.1): quantities, sensor readings, error declaration times, `EXISTS_` on any field, and
`EQ_`/`GT_`/`GE_`/`LT_`/`LE_`/`EXISTS_` on extension fields at the top level, in the ILMD, nested
in them (`INNER_`) and in sensor elements, metadata and reports.

Each is read into a predicate over an event's captured body and the prefixes of the JSON-LD
context it was captured under (`context_prefixes`): a query names an extension field by its full
IRI (`EQ_http://ns.example.com/epcis/myField`, or `…/epcis#myField` as the XML binding spells
namespace and local name), while a JSON-LD event names it compactly (`example:myField`).

Sensor conditions are not predicates on their own: all the sensor parameters of a query must hold
on one and the same sensor report (with its element's metadata), as the standard reads them, so a
report over 30 °C of one element and a humidity report of another do not together match
`EQ_type=Temperature&EQ_type=…`. `read_sensor_parameter` gives a condition on one such reading,
`sensor_predicate` joins them.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, TypeVar

from tracechain.epcis.units import converted

_B = TypeVar("_B")

Prefixes = Mapping[str, str]
Predicate = Callable[[dict[str, Any], Prefixes], bool]
"""Whether an event (its body, and the prefixes of its context) passes a filter."""

STANDARD_PREFIXES: Final[dict[str, str]] = {
    # The prefixes GS1's EPCIS 2.0 context defines (epcis/data/epcis-context.jsonld).
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": "https://ref.gs1.org/cbv/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": "https://gs1.org/voc/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}

_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "EQ": operator.eq,
    "GT": operator.gt,
    "GE": operator.ge,
    "LT": operator.lt,
    "LE": operator.le,
}

EVENT_FIELDS: Final = frozenset(
    {
        "type",
        "eventID",
        "eventTime",
        "eventTimeZoneOffset",
        "certificationInfo",
        "errorDeclaration",
        "epcList",
        "quantityList",
        "action",
        "bizStep",
        "disposition",
        "persistentDisposition",
        "readPoint",
        "bizLocation",
        "bizTransactionList",
        "sourceList",
        "destinationList",
        "sensorElementList",
        "ilmd",
        "parentID",
        "childEPCs",
        "childQuantityList",
        "inputEPCList",
        "inputQuantityList",
        "outputEPCList",
        "outputQuantityList",
        "transformationID",
    }
)
"""The standard's event fields `EXISTS_<field>` may name (others are extensions, named by IRI)."""


class UnknownParameter(ValueError):
    """Not a parameter of this family: the caller tries the next, or refuses it."""


# ---------------------------------------------------------------- JSON-LD names


def context_prefixes(context: Any) -> Prefixes:
    """The prefixes an event's captured @context defines, over GS1's own. The one place compact
    names are resolved: whatever keeps an event's context hands it here."""
    return _prefixes_of(json.dumps(context, sort_keys=True, default=str))


@lru_cache(maxsize=256)
def _prefixes_of(serialised: str) -> Prefixes:
    prefixes = dict(STANDARD_PREFIXES)
    pending = [json.loads(serialised)]
    while pending:
        part = pending.pop()
        if isinstance(part, list):
            pending.extend(reversed(part))
        elif isinstance(part, dict):
            for term, definition in part.items():
                iri = definition.get("@id") if isinstance(definition, dict) else definition
                if isinstance(iri, str) and not term.startswith("@") and ":" not in term and ":" in iri:
                    prefixes[term] = iri
    return prefixes


def expanded(name: str, prefixes: Prefixes) -> str:
    """A field name as a full IRI: `example:myField` under its context's `example` prefix."""
    prefix, colon, local = name.partition(":")
    if colon and prefix in prefixes and not local.startswith("//"):
        return prefixes[prefix] + local
    return name


def _field_key(iri: str) -> tuple[str, str]:
    """Namespace (without its closing `#`, `/` or `:`) and local name: `…/epcis/myField` and the
    XML binding's `…/epcis#myField` name the same field."""
    cut = max(iri.rfind("#"), iri.rfind("/"), iri.rfind(":"))
    return iri[:cut].rstrip("#/:"), iri[cut + 1 :]


def _qualified(name: str) -> bool:
    """Whether a parameter's field name has a namespace (`:value` has none: it would name a
    standard, unprefixed field)."""
    return _field_key(name)[0] != "" if ":" in name else False


def field_key(name: str) -> tuple[str, str]:
    """A name (an IRI, or compact under GS1's prefixes) as namespace and local name."""
    return _field_key(expanded(name, STANDARD_PREFIXES))


def _named(key: str, wanted: tuple[str, str], prefixes: Prefixes) -> bool:
    """Whether a captured key names the field. A compact key is compared as its prefix's namespace
    and its local name, not expanded and cut again: the XML reader binds a prefix to a namespace as
    written, so `example` may stand for `http://ns.example.com/epcis`, with no closing `/`."""
    prefix, colon, local = key.partition(":")
    if not colon:
        return wanted == ("", key)
    if prefix in prefixes and not local.startswith("//"):
        return (prefixes[prefix].rstrip("#/:"), local) == wanted
    return _field_key(key) == wanted


# ---------------------------------------------------------------- values


_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A number as text: a plain decimal with an optional exponent, not what else float() reads
(`1_000`, `inf`, `nan`, digits of other scripts)."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float) and not (
        isinstance(value, str) and _DECIMAL.fullmatch(value.strip())
    ):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past float's range
        return None
    return number if math.isfinite(number) else None


def moment(value: Any) -> datetime | None:
    """An ISO 8601 date-time, in UTC if it names no offset; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip()
    return None


@dataclass(frozen=True)
class _Bound:
    """One side of a comparison a query gives: a number, a moment, or (EQ_ only) text."""

    number: float | None
    moment: datetime | None
    text: str


def _bound(word: str, equality: bool) -> _Bound:
    number, when = _number(word), moment(word)
    if number is None and when is None and not equality:
        raise ValueError(f"compares numbers or date-times, not {word!r}")
    return _Bound(number, when, word.strip())


def _compares(value: Any, compare: Callable[[Any, Any], bool], bound: _Bound) -> bool:
    """`value compare bound`. EQ_ compares as numbers only a value stored as a JSON number (a lot
    "007" is text, not 7), as moments a date-time, and as text anything else; the ordering
    operators compare numbers (written as text too) or moments. A value of another kind never
    matches."""
    if compare is operator.eq:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = _number(value)
            return number is not None and bound.number is not None and compare(number, bound.number)
        if bound.moment is not None and (when := moment(value)) is not None:
            return compare(when, bound.moment)
        return _text(value) == bound.text
    if bound.number is not None:
        number = _number(value)
        if number is not None:
            return compare(number, bound.number)
    if bound.moment is not None:
        when = moment(value)
        if when is not None:
            return compare(when, bound.moment)
    return False


def _scalars(value: Any) -> Iterator[Any]:
    """A field's values: itself, or each item of a list; nested objects are not values."""
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict | list) and item is not None:
            yield item


def _value_test(op: str, words: list[str]) -> Callable[[Any], bool]:
    """Whether a field's value passes `op` with the query's alternatives (EQ_) or bound."""
    compare = _OPERATORS[op]
    if op != "EQ" and len(words) != 1:
        raise ValueError(f"{op}_ takes one bound")
    bounds = [_bound(word, op == "EQ") for word in words]
    return lambda value: any(_compares(item, compare, b) for item in _scalars(value) for b in bounds)


# ---------------------------------------------------------------- where a named field is found


def _top(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield from body.items()


def _ilmd(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    ilmd = body.get("ilmd")
    if isinstance(ilmd, dict):
        yield from ilmd.items()


def _nested(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (name, value) below `value`, at any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                yield key, inner
                pending.append(inner)


def _inner(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Fields nested in top-level extension fields (standard fields are not extensions)."""
    for key, value in body.items():
        if ":" in key:
            yield from _nested(value)


def _inner_ilmd(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for _, value in _ilmd(body):
        yield from _nested(value)


_PLACES: Final[dict[str, Callable[[dict[str, Any]], Iterator[tuple[str, Any]]]]] = {
    "INNER_ILMD_": _inner_ilmd,
    "ILMD_": _ilmd,
    "INNER_": _inner,
    "": _top,
}


_UNQUALIFIED: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
"""A name with no namespace: an XML element nested in an extension (or in the ILMD) without one,
captured as a key without a prefix. It has no IRI, so a query names it as written."""


def _split_field(rest: str) -> tuple[str, tuple[str, str]]:
    """(place prefix, (namespace, local name)) of the part of a parameter name after its operator.
    Inside the ILMD and nested fields a name may be unqualified (namespace "")."""
    if rest.startswith(("SENSORELEMENT_", "SENSORMETADATA_", "SENSORREPORT_")):
        raise UnknownParameter(rest)  # a sensor condition (`read_sensor_parameter`)
    for place in _PLACES:
        name = rest.removeprefix(place)
        if rest.startswith(place) and _qualified(name):
            return place, _field_key(name)
        if rest.startswith(place) and place and _UNQUALIFIED.fullmatch(name):
            return place, ("", name)
    raise UnknownParameter(rest)


def read_field_parameter(name: str, words: list[str], value: str) -> Predicate:
    """`EQ_`/`GT_`/`GE_`/`LT_`/`LE_`/`EXISTS_` on an extension field (by IRI), in the ILMD or
    nested (`INNER_`), and `EXISTS_<event field>`. Raises UnknownParameter if `name` is none of these."""
    op, underscore, rest = name.partition("_")
    if not underscore or (op not in _OPERATORS and op != "EXISTS"):
        raise UnknownParameter(name)
    if op == "EXISTS" and rest == "recordTime":  # every event has one: the service records it
        wanted = _exists_flag(value)
        return lambda _body, _prefixes: wanted
    if op == "EXISTS" and rest in EVENT_FIELDS:
        wanted = _exists_flag(value)
        return lambda body, _prefixes: _present(body.get(rest)) == wanted
    if op == "EXISTS" and rest == "sensorElement":  # the XML binding's name for the list's items
        wanted = _exists_flag(value)
        return lambda body, _prefixes: _present(body.get("sensorElementList")) == wanted
    place, key = _split_field(rest)
    fields_of = _PLACES[place]
    if op == "EXISTS":
        wanted = _exists_flag(value)
        return lambda body, prefixes: (
            any(_named(k, key, prefixes) and _present(v) for k, v in fields_of(body)) == wanted
        )
    passes = _value_test(op, words)
    return lambda body, prefixes: any(_named(k, key, prefixes) and passes(v) for k, v in fields_of(body))


def _exists_flag(value: str) -> bool:
    if value.lower() in {"", "true"}:  # EXISTS_ parameters may be given without a value
        return True
    if value.lower() == "false":
        return False
    raise ValueError("true or false")


def _present(value: Any) -> bool:
    return value is not None and value != [] and value != {}


# ---------------------------------------------------------------- quantities, declaration times


def _quantity_elements(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for field in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        elements = body.get(field)
        for element in elements if isinstance(elements, list) else ():
            if isinstance(element, dict):
                yield element


def _measured(value: Any, unit: Any, wanted_unit: str | None, difference: bool = False) -> float | None:
    """A number, converted to `wanted_unit` if the query names one (None if it does not convert);
    a `difference` (sDev) by the unit's factor only."""
    number = _number(value)
    if number is None or wanted_unit is None:
        return number
    return converted(number, unit if isinstance(unit, str) else None, wanted_unit, difference=difference)


def _bounds(op: str, words: list[str], read: Callable[[str], _B | None], wrong: str) -> list[_B]:
    """The values an `op` parameter gives, each read by `read`: EQ_'s alternatives, or the one
    bound of GT_/GE_/LT_/LE_; ValueError (`wrong` naming the word) for one that does not read."""
    if op != "EQ" and len(words) != 1:
        raise ValueError(f"{op}_ takes one bound")
    bounds = []
    for word in words:
        bound = read(word)
        if bound is None:
            raise ValueError(wrong.format(word))
        bounds.append(bound)
    return bounds


def _number_test(op: str, words: list[str]) -> Callable[[float | None], bool]:
    """Whether a number passes `op`: equals any of EQ_'s alternatives, or passes the one bound."""
    bounds = _bounds(op, words, _number, "a number, not {!r}")
    if op == "EQ":
        return lambda number: (
            number is not None
            and any(math.isclose(number, bound, rel_tol=1e-9, abs_tol=1e-12) for bound in bounds)
        )
    compare = _OPERATORS[op]
    return lambda number: number is not None and compare(number, bounds[0])


def _moment_test(op: str, words: list[str]) -> Callable[[datetime | None], bool]:
    """Whether a moment passes `op`: equals any of EQ_'s alternatives, or passes the one bound."""
    bounds = _bounds(op, words, moment, "not an ISO 8601 date-time: {!r}")
    compare = _OPERATORS[op]
    return lambda when: when is not None and any(compare(when, bound) for bound in bounds)


def read_quantity_parameter(name: str, words: list[str]) -> Predicate:
    """`EQ_`/`GT_`/`GE_`/`LT_`/`LE_quantity`, and `…_quantity_<uom>` for a bound in a unit: events
    with a quantity element whose quantity passes (converted to the unit, when one is named).
    `words`: EQ_'s alternatives, or the one bound."""
    op, _, rest = name.partition("_")
    field, _, unit = rest.partition("_")
    if op not in _OPERATORS or field != "quantity":
        raise UnknownParameter(name)
    passes = _number_test(op, words)
    wanted_unit = unit or None
    return lambda body, _prefixes: any(
        passes(_measured(element.get("quantity"), element.get("uom"), wanted_unit))
        for element in _quantity_elements(body)
    )


def read_declaration_time_parameter(name: str, value: str) -> Predicate:
    """`GE_errorDeclarationTime` / `LT_errorDeclarationTime`."""
    op = {"GE_errorDeclarationTime": "GE", "LT_errorDeclarationTime": "LT"}.get(name)
    if op is None:
        raise UnknownParameter(name)
    bound = moment(value)
    if bound is None:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    compare = _OPERATORS[op]

    def accepts(body: dict[str, Any], _prefixes: Prefixes) -> bool:
        declaration = body.get("errorDeclaration")
        declared = moment(declaration.get("declarationTime")) if isinstance(declaration, dict) else None
        return declared is not None and compare(declared, bound)

    return accepts


# ---------------------------------------------------------------- sensor readings


@dataclass(frozen=True)
class Reading:
    """One sensor report, with the element and the metadata it belongs to."""

    element: dict[str, Any]
    metadata: dict[str, Any]
    report: dict[str, Any]


SensorCondition = Callable[[Reading, Prefixes], bool]

# Attributes a report may carry itself or inherit from its element's metadata.
_INLINE: Final = frozenset(
    {"deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "bizRules", "time"}
)
_REPORT_WORDS: Final = frozenset(
    {"type", "microorganism", "chemicalSubstance", "stringValue", "uriValue", "exception"}
)
_REPORT_NUMBERS: Final = frozenset(
    {"value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
)
_METADATA_TIMES: Final = frozenset({"startTime", "endTime"})
_SENSOR_PLACES: Final = {
    "SENSORELEMENT_": lambda reading: reading.element,
    "SENSORMETADATA_": lambda reading: reading.metadata,
    "SENSORREPORT_": lambda reading: reading.report,
}
_MEASUREMENT_PREFIXES: Final = ("https://gs1.org/voc/", "gs1:")


def readings(body: dict[str, Any]) -> Iterator[Reading]:
    elements = body.get("sensorElementList")
    for element in elements if isinstance(elements, list) else ():
        if not isinstance(element, dict):
            continue
        metadata = element.get("sensorMetadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        reports = element.get("sensorReport")
        for report in reports if isinstance(reports, list) else ():
            if isinstance(report, dict):
                yield Reading(element, metadata, report)


def _measurement_type(value: Any) -> str | None:
    """`Temperature`, `gs1:Temperature` and `https://gs1.org/voc/Temperature` are one type."""
    if not isinstance(value, str):
        return None
    for prefix in _MEASUREMENT_PREFIXES:
        value = value.removeprefix(prefix)
    return value.strip()


def _inline(reading: Reading, attribute: str) -> list[Any]:
    return [found for found in (reading.report.get(attribute), reading.metadata.get(attribute)) if found]


def read_sensor_parameter(name: str, words: list[str], value: str) -> SensorCondition:
    """A condition on one sensor reading. Raises UnknownParameter if `name` is no sensor parameter."""
    op, underscore, rest = name.partition("_")
    if not underscore or op not in _OPERATORS:
        raise UnknownParameter(name)
    for place, part_of in _SENSOR_PLACES.items():
        if rest.startswith(place) and _qualified(rest.removeprefix(place)):
            key = _field_key(rest.removeprefix(place))
            passes = _value_test(op, words)
            return lambda reading, prefixes: any(
                _named(k, key, prefixes) and passes(v) for k, v in part_of(reading).items()
            )
    field, _, unit = rest.partition("_")
    if op == "EQ" and field == "type" and not unit:
        types = {_measurement_type(word) for word in words}
        return lambda reading, _prefixes: _measurement_type(reading.report.get("type")) in types
    if op == "EQ" and field == "booleanValue" and not unit:
        wanted = _exists_flag(value) if value.lower() in {"true", "false"} else None
        if wanted is None:
            raise ValueError("true or false")
        return lambda reading, _prefixes: reading.report.get("booleanValue") in (wanted, str(wanted).lower())
    if op == "EQ" and field == "hexBinaryValue" and not unit:
        hexes = {word.strip().lower() for word in words}
        return lambda reading, _prefixes: str(reading.report.get("hexBinaryValue", "")).lower() in hexes
    if op == "EQ" and field in _REPORT_WORDS and not unit:
        texts = {word.strip() for word in words}
        return lambda reading, _prefixes: _text(reading.report.get(field)) in texts
    if op == "EQ" and field in _INLINE - {"time"} and not unit:
        texts = {word.strip() for word in words}
        return lambda reading, _prefixes: any(_text(found) in texts for found in _inline(reading, field))
    if field in _REPORT_NUMBERS:
        passes = _number_test(op, words)
        wanted_unit = unit or None
        difference = field == "sDev"  # a spread, not a temperature: no offset
        return lambda reading, _prefixes: passes(
            _measured(reading.report.get(field), reading.report.get("uom"), wanted_unit, difference)
        )
    if field in _METADATA_TIMES | {"time"} and not unit:
        at = _moment_test(op, words)
        if field == "time":
            return lambda reading, _prefixes: any(at(moment(found)) for found in _inline(reading, "time"))
        return lambda reading, _prefixes: at(moment(reading.metadata.get(field)))
    raise UnknownParameter(name)


def sensor_predicate(conditions: list[SensorCondition]) -> Predicate:
    """Events with one sensor reading that passes every condition."""
    return lambda body, prefixes: any(
        all(condition(reading, prefixes) for condition in conditions) for reading in readings(body)
    )
