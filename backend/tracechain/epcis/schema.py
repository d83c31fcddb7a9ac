"""Validation of EPCIS 2.0 JSON / JSON-LD documents against GS1's JSON schema, with readable problems.

The schema (draft-07) ships in `data/` with the package and is compiled once, twice in fact: by
jsonschema-rs, which decides quickly whether a document is valid, and by jsonschema, which explains
the problems of one that is not. Its errors are turned into `DocumentProblem`s a capturing client
can act on: where (`epcisBody.eventList[0].eventTime`) and what, in a sentence. The schema states
most alternatives as `anyOf`/`oneOf`, whose raw errors list every branch that did not match; only
the most specific error of each is kept (`jsonschema.exceptions.best_match`), and none at all where
a plainer error already names the field.

Beyond the schema, a document may only name the EPCIS 2.0 context URLs the hash generator bundles:
JSON-LD would otherwise fetch a named context from the network, and tracechain never fetches
anything at run time. Inline context objects are fine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Final

import jsonschema_rs
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match

from tracechain.epcis.event_hash import BUNDLED_CONTEXTS, EPCIS_CONTEXT

_SCHEMA_FILE: Final = "EPCIS-JSON-Schema.json"
_COMBINATORS: Final = frozenset({"anyOf", "oneOf", "allOf"})
_JSON_TYPES: Final = {
    "string": "a string",
    "object": "an object",
    "array": "a list",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "null",
}
_ENUM_SHOWN: Final = 8
# Fields whose pattern deserves an example rather than "has the wrong form".
_FORMS: Final = {
    "eventTimeZoneOffset": "a UTC offset such as +02:00",
    "schemaVersion": "a version such as 2.0",
}


@dataclass(frozen=True, slots=True)
class DocumentProblem:
    """One thing wrong with a document: where it is and, in a sentence, what."""

    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


def _load_schema() -> dict[str, Any]:
    text = resources.files("tracechain.epcis").joinpath("data", _SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = _persistent_disposition_in_every_event(json.loads(text))
    Draft7Validator.check_schema(schema)
    return schema


_EVENTS_GS1_JSON_LEAVES_IT_OUT_OF: Final = ("AggregationEvent", "TransactionEvent", "AssociationEvent")


def _persistent_disposition_in_every_event(schema: dict[str, Any]) -> dict[str, Any]:
    """GS1's JSON schema (as shipped, unedited, in data/) allows persistentDisposition only in
    ObjectEvent and TransformationEvent; GS1's XSD allows it in all five event types, and GS1's own
    XML example puts it in an AggregationEvent. The XSD is followed, so no event is refused in JSON
    whose XML form GS1 accepts."""
    for event_type in _EVENTS_GS1_JSON_LEAVES_IT_OUT_OF:
        own = schema["definitions"][event_type]["allOf"][1]
        own["properties"]["persistentDisposition"] = {"$ref": "#/definitions/persistentDisposition"}
        own["propertyNames"]["anyOf"][1]["enum"].append("persistentDisposition")
    return schema


_SCHEMA: Final = _load_schema()
# date-time and uri formats are checked with rfc3339-validator and rfc3986-validator.
_VALIDATOR: Final = Draft7Validator(_SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER)
# The same schema compiled by jsonschema-rs (Rust), formats included: it answers "valid?" for a
# 100-event document in under a millisecond where jsonschema takes ~80 ms. Only documents it
# refuses go through jsonschema, whose errors say where and why.
_FAST_VALIDATOR: Final = jsonschema_rs.Draft7Validator(_SCHEMA, validate_formats=True)


def validate_document(document: Any) -> list[DocumentProblem]:
    """Every problem with an EPCIS document, in document order; an empty list means it is valid."""
    if not isinstance(document, dict):
        return [DocumentProblem("document", f"must be a JSON object, not {_json_type(document)}")]
    problems = list(_context_problems(document))
    if _FAST_VALIDATOR.is_valid(document):
        # Rules across fields read a document of the schema's shape; one that is not is refused anyway.
        return problems + list(_sensor_problems(document))
    plain: list[DocumentProblem] = []
    combined: list[DocumentProblem] = []
    for error in _VALIDATOR.iter_errors(document):
        if "propertyNames" in error.schema_path:
            plain.append(_unknown_field(error, document))
        elif error.validator in _COMBINATORS:
            combined.append(_combinator_problem(error))
        else:
            plain += _problems(error)
    located = {problem.location for problem in plain}
    # A field a plain error already names needs no second account of the branches it failed.
    problems += plain + [p for p in combined if p.location not in located]
    return sorted(dict.fromkeys(problems), key=_document_order(document))


# ---------------------------------------------------------------- @context


TRACECHAIN_NS: Final = "https://tracechain.dev/epcis#"
"""The namespace of the terms tracechain adds to what it serves (JSON prefix `tracechain`, XML namespace)."""
TRACECHAIN_PREFIX: Final = "tracechain"


def reserved_term_problems(document: Any) -> list[DocumentProblem]:
    """Where a document to capture speaks in tracechain's name: a field named with its prefix or
    namespace (a capturer's own `tracechain:hashId` or `tracechain:withheld` would be served as if
    tracechain had said it), or a context defining its prefix or mapping a term into its namespace
    (the served events carry their context, and tracechain's terms would expand to the capturer's)."""
    found = []
    for path, value in _walk(document, ()):
        name = path[-1] if path else None
        if isinstance(name, str) and _in_our_namespace(name):
            found.append(
                DocumentProblem(
                    _location(path), "is a term of tracechain's own (it adds these to the events it serves)"
                )
            )
        if name != "@context":
            continue
        entries = value if isinstance(value, list) else [value]
        for index, entry in enumerate(entries):
            where = path + ((index,) if isinstance(value, list) else ())
            for term, meaning in entry.items() if isinstance(entry, dict) else ():
                iri = meaning.get("@id") if isinstance(meaning, dict) else meaning
                if term == TRACECHAIN_PREFIX or (isinstance(iri, str) and _reaches_our_namespace(iri)):
                    found.append(
                        DocumentProblem(
                            _location((*where, term)),
                            f"defines a term in tracechain's namespace ({TRACECHAIN_PREFIX}: "
                            f"{TRACECHAIN_NS}), which names the terms tracechain adds to the events "
                            "it serves; name your extension namespace otherwise",
                        )
                    )
    return found


def _in_our_namespace(name: str) -> bool:
    return name.startswith((f"{TRACECHAIN_PREFIX}:", TRACECHAIN_NS))


def _reaches_our_namespace(iri: str) -> bool:
    """Whether a term for `iri` can name a term of ours: it is in our namespace, or a stem of it
    (`{"tc": "https://tracechain.dev/"}` makes `tc:epcis#hashId` ours)."""
    return bool(iri) and (iri.startswith(TRACECHAIN_NS) or TRACECHAIN_NS.startswith(iri))


def _context_problems(document: dict[str, Any]) -> Iterator[DocumentProblem]:
    for path, value in _walk(document, ()):
        if path and path[-1] in ("@context", "@import"):
            entries = value if isinstance(value, list) else [value]
            for index, entry in enumerate(entries):
                if isinstance(entry, str) and entry not in BUNDLED_CONTEXTS:
                    where = path + ((index,) if isinstance(value, list) else ())
                    yield DocumentProblem(
                        _location(where),
                        f"names the remote JSON-LD context {entry!r}; remote contexts are never "
                        f"fetched, so use {EPCIS_CONTEXT} and put your own terms in an inline "
                        "context object (inline contexts are fine)",
                    )


def _walk(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, (*path, index))


# ---------------------------------------------------------------- sensor rules the schema cannot state

# EPCIS 2.0 §7.3.5.5: these may describe a whole sensorElement (in its sensorMetadata) or one
# reading (in a sensorReport), never both in one element: which would a query match? (TCR-53, step 29)
_SENSOR_INLINE_ATTRIBUTES: Final = ("dataProcessingMethod", "deviceID", "deviceMetadata", "rawData", "time")


def _sensor_problems(document: dict[str, Any]) -> Iterator[DocumentProblem]:
    """A sensor time after its event's time (EPCIS 2.0 §7.3.5.5.1, M122); an inline attribute
    given in both an element's sensorMetadata and one of its sensorReports."""
    events = document.get("epcisBody", {}).get("eventList", [])
    for event_index, event in enumerate(events if isinstance(events, list) else []):
        if not isinstance(event, dict):
            continue
        event_time = _instant(event.get("eventTime"))
        for element_index, element in enumerate(event.get("sensorElementList") or []):
            at = ("epcisBody", "eventList", event_index, "sensorElementList", element_index)
            metadata = element.get("sensorMetadata") or {}
            reports = list(enumerate(element.get("sensorReport") or []))
            for where, part in [(("sensorMetadata",), metadata)] + [
                (("sensorReport", i), r) for i, r in reports
            ]:
                if "time" in part:
                    yield from _sensor_time_problems(
                        _location((*at, *where, "time")), part["time"], event_time
                    )
            for name in _SENSOR_INLINE_ATTRIBUTES:
                if name in metadata:
                    for index, report in reports:
                        if name in report:
                            yield DocumentProblem(
                                _location((*at, "sensorReport", index, name)),
                                f"is also given in the element's sensorMetadata; give {name} in one of them",
                            )


def _sensor_time_problems(
    location: str, value: Any, event_time: datetime | None
) -> Iterator[DocumentProblem]:
    # A time without a UTC offset fails the schema's date-time format, which names it itself.
    time = _instant(value)
    if time is not None and event_time is not None and time > event_time:
        yield DocumentProblem(
            location,
            f"is after the event's eventTime {event_time.isoformat()}: a reading cannot follow its event",
        )


def _instant(value: Any) -> datetime | None:
    """The instant a date-time with a UTC offset names; None for anything else."""
    try:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return instant if instant is not None and instant.utcoffset() is not None else None


# ---------------------------------------------------------------- schema errors


def _combinator_problem(error: ValidationError) -> DocumentProblem:
    branches = list(error.context or ())
    if branches and all(b.validator == "required" and not b.relative_path for b in branches):
        # "epcList, or quantityList, or sensorElementList and readPoint"
        needs: dict[Any, list[str]] = {}
        for branch in branches:
            needs.setdefault(branch.relative_schema_path[0], []).extend(_missing(branch))
        alternatives = [" and ".join(names) for names in needs.values() if names]
        return DocumentProblem(_location(error.absolute_path), "needs " + ", or ".join(alternatives))
    deepest = best_match(branches) if branches else None
    return _problems(deepest)[0] if deepest is not None else _problems(error)[0]


def _unknown_field(error: ValidationError, document: dict[str, Any]) -> DocumentProblem:
    element: Any = document
    for part in error.absolute_path:
        element = element[part]
    kind = element.get("type") if isinstance(element, dict) else None
    where = f"a field of {kind}" if isinstance(kind, str) else "a field here"
    return DocumentProblem(
        _location((*error.absolute_path, error.instance)),
        f"is not {where}; extension fields need a namespace prefix (example:myField)",
    )


def _missing(error: ValidationError) -> list[str]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [str(name) for name in error.validator_value if name not in instance]


def _problems(error: ValidationError) -> list[DocumentProblem]:
    path = tuple(error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "required":
        return [
            DocumentProblem(_location((*path, name)), "is required but missing") for name in _missing(error)
        ]
    location = _location(path)
    if kind == "enum":
        allowed = ", ".join(str(v) for v in expected) if len(expected) <= _ENUM_SHOWN else None
        reason = (
            f"must be one of {allowed} (got {value!r})" if allowed else f"{value!r} is not an allowed value"
        )
    elif kind == "const":
        reason = f"must be {expected!r} (got {value!r})"
    elif kind == "type":
        wanted = " or ".join(
            _JSON_TYPES.get(t, t) for t in ([expected] if isinstance(expected, str) else expected)
        )
        reason = f"must be {wanted}, not {_json_type(value)}"
    elif kind == "format":
        reason = f"{value!r} is not a valid {expected}"
    elif kind == "pattern":
        field = next((p for p in reversed(path) if isinstance(p, str)), "")
        form = _FORMS.get(field)
        reason = f"{value!r} is not {form}" if form else f"{value!r} does not have the expected form"
    elif kind in ("minItems", "minLength", "minProperties"):
        reason = "must not be empty"
    elif kind == "uniqueItems":
        reason = "lists the same value more than once"
    elif kind == "additionalProperties":
        reason = "has fields this element does not allow"
    elif kind in ("maxItems", "maxLength", "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
        reason = f"is out of range ({kind} {expected})"
    elif kind == "not":
        reason = "is not allowed here"
    else:
        reason = f"does not satisfy the EPCIS schema ({kind})"
    return [DocumentProblem(location, reason)]


# ---------------------------------------------------------------- helpers


def _location(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "document"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    for kind, python in (("object", dict), ("array", list), ("string", str), ("number", (int, float))):
        if isinstance(value, python):
            return _JSON_TYPES[kind]
    return "null" if value is None else type(value).__name__


def _document_order(document: dict[str, Any]) -> Callable[[DocumentProblem], int]:
    """Sort key: problems in the order their fields appear, a missing field with its parent."""
    order = {_location(path): index for index, (path, _) in enumerate(_walk(document, ()))}

    def position(problem: DocumentProblem) -> int:
        location = problem.location
        while location not in order and location:
            location = location[: max(location.rfind("."), location.rfind("["), 0)]
        return order.get(location, 0)

    return position
