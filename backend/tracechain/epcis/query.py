"""EPCIS 2.0 SimpleEventQuery parameters (REST binding, `GET /events`) read into a typed `EventQuery`.

A pure parser: no I/O. Every parameter the service does not implement, and every value it cannot
read, is refused with the parameter named (`InvalidQuery`, the standard's QueryParameterException):
a client that filters must never get an unfiltered answer it takes for a filtered one.

Semantics follow EPCIS 2.0 §8.2.7.1: an `EQ_`/`MATCH_` parameter lists alternatives separated by
`|` (any of them matches), different parameters must all match. Identifiers may be EPC URNs or GS1
Digital Links and are compared canonical (`canonical_epc`); vocabulary values (bizStep,
disposition, error reason, source/destination and business transaction types) may be bare CBV
words, CBV URNs or GS1 web URIs and are compared bare (`bare_vocabulary`).

`WD_readPoint` / `WD_bizLocation` ("with descendants") match the named location and every location
below it in the master data hierarchy (`EventQuery.within`, resolved by the store against the
master data of each event's own signer); `HASATTR_<field>` and `EQATTR_<field>_<attribute>` read the
attributes that master data gives the element an event's readPoint, bizLocation, bizStep or
disposition names. The parameters whose names carry a field, unit or
operator (quantities, sensor readings, extension and ILMD fields, `EXISTS_`) are read in
`field_filters`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from tracechain.epcis.field_filters import (
    STANDARD_PREFIXES,
    Predicate,
    Prefixes,
    SensorCondition,
    UnknownParameter,
    read_declaration_time_parameter,
    read_field_parameter,
    read_quantity_parameter,
    read_sensor_parameter,
    sensor_predicate,
)
from tracechain.epcis.identifiers import InvalidIdentifier, canonical_epc, canonical_identifier
from tracechain.epcis.mapping import bare_vocabulary
from tracechain.errors import TracechainError

DEFAULT_PER_PAGE: Final = 100
MAX_PER_PAGE: Final = 1000

EVENT_TYPES: Final = frozenset(
    {"ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent"}
)
ACTIONS: Final = frozenset({"ADD", "OBSERVE", "DELETE"})


class InvalidQuery(TracechainError, ValueError):
    """Query parameters the service cannot answer faithfully: EPCIS QueryParameterException."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in problems))


class QueryTooLarge(TracechainError):
    """More events match than the query's `maxEventCount` allows: EPCIS QueryTooLargeException."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        super().__init__(f"more than maxEventCount={allowed} events match the query")


class OrderKey(StrEnum):
    EVENT_TIME = "eventTime"
    RECORD_TIME = "recordTime"


class EpcRole(StrEnum):
    """The roles `event_epcs` stores (`mapping.identifiers_of`)."""

    EPC = "epc"
    QUANTITY = "quantity"
    PARENT = "parent"
    CHILD = "child"
    INPUT = "input"
    OUTPUT = "output"


@dataclass(frozen=True)
class EpcMatch:
    """One MATCH_ parameter: events naming, in one of `roles`, an identifier equal to one of
    `exact` or starting with one of `prefixes` (an EPC pattern); `classes` says whether the
    parameter matches classes (quantity lists) or instances (EPC lists, parentID)."""

    parameter: str
    roles: frozenset[EpcRole]
    classes: bool
    exact: frozenset[str]
    prefixes: frozenset[str]


class Hierarchy(StrEnum):
    """The location fields `WD_` parameters name, by the vocabulary their master data is in."""

    READ_POINT = "readPoint"
    BIZ_LOCATION = "bizLocation"


VOCABULARY_FIELDS: Final = {
    "readPoint": "ReadPoint",
    "bizLocation": "BusinessLocation",
    "bizStep": "BusinessStep",
    "disposition": "Disposition",
}
"""The event fields whose values master data describes (HASATTR_/EQATTR_), by vocabulary."""


@dataclass(frozen=True)
class AttributeFilter:
    """HASATTR_<field> (`attribute` None: the element has one of `values` as an attribute) or
    EQATTR_<field>_<attribute> (its `attribute` has one of `values`): on the master data of the
    vocabulary element the event's `field` names."""

    parameter: str
    field: str
    attribute: str | None
    values: frozenset[str]


@dataclass(frozen=True)
class EventQuery:
    """A SimpleEventQuery, read. Empty sets and None mean "not constrained"."""

    event_types: frozenset[str] = frozenset()
    event_time_from: datetime | None = None
    event_time_before: datetime | None = None
    record_time_from: datetime | None = None
    record_time_before: datetime | None = None
    biz_steps: frozenset[str] = frozenset()
    dispositions: frozenset[str] = frozenset()
    event_ids: frozenset[str] = frozenset()
    epc_matches: tuple[EpcMatch, ...] = ()
    declarations_only: bool = False
    # Fields that live only in the event's body: see `body_matches`.
    actions: frozenset[str] = frozenset()
    read_points: frozenset[str] = frozenset()
    biz_locations: frozenset[str] = frozenset()
    transformation_ids: frozenset[str] = frozenset()
    error_reasons: frozenset[str] = frozenset()
    corrective_event_ids: frozenset[str] = frozenset()
    persistent_disposition_set: frozenset[str] = frozenset()
    persistent_disposition_unset: frozenset[str] = frozenset()
    biz_transactions: tuple[tuple[str, frozenset[str]], ...] = ()
    sources: tuple[tuple[str, frozenset[str]], ...] = ()
    destinations: tuple[tuple[str, frozenset[str]], ...] = ()
    within: tuple[tuple[Hierarchy, frozenset[str]], ...] = ()
    """WD_ parameters: the field, and the locations whose descendants (master data) match too."""
    attribute_filters: tuple[AttributeFilter, ...] = ()
    # Shape of the answer.
    order_by: OrderKey | None = None
    descending: bool = True
    event_count_limit: int | None = None
    max_event_count: int | None = None
    per_page: int = DEFAULT_PER_PAGE
    next_page_token: str | None = None
    body_filters: tuple[Predicate, ...] = field(default=(), compare=False)

    def body_matches(
        self,
        body: dict[str, Any],
        prefixes: Prefixes = STANDARD_PREFIXES,
        master_data: Mapping[str, frozenset[str]] | None = None,
    ) -> bool:
        """Whether the event's captured body passes the predicates on fields without a column.

        `prefixes`: those of the event's captured context (`field_filters.context_prefixes`), to
        resolve its compact extension names. `master_data`: what the master data of the event's
        signer says, by parameter: for WD_<field> the locations below the named ones, for
        HASATTR_/EQATTR_ the vocabulary elements whose attributes pass (none given: nothing)."""
        master = master_data or {}
        return (
            all(accepts(body, prefixes) for accepts in self.body_filters)
            and all(
                _location_of(body.get(hierarchy.value))
                in roots | master.get(f"WD_{hierarchy.value}", frozenset())
                for hierarchy, roots in self.within
            )
            and all(
                vocabulary_value(body, attributes.field) in master.get(attributes.parameter, frozenset())
                for attributes in self.attribute_filters
            )
        )

    @property
    def reads_fields(self) -> bool:
        """Whether it filters on fields a reader may be shown only some of (identifiers, the body)."""
        return bool(self.body_filters or self.epc_matches or self.within or self.attribute_filters)

    def shown_matches(
        self,
        shown: dict[str, Any],
        named: Iterable[tuple[str, str]],
        prefixes: Prefixes = STANDARD_PREFIXES,
        master_data: Mapping[str, frozenset[str]] | None = None,
    ) -> bool:
        """Whether the part of an event a reader is shown (`shown`, naming `named` as (identifier,
        role)) passes the filters on fields and identifiers: what a reader may not see of an event
        cannot be found out by filtering on it."""
        named = list(named)
        return self.body_matches(shown, prefixes, master_data) and all(
            any(role in match.roles and _matches(match, epc) for epc, role in named)
            for match in self.epc_matches
        )


def parse_event_query(params: Iterable[tuple[str, str]]) -> EventQuery:
    """Read `GET /events` query parameters (as (name, value) pairs, names possibly repeated).

    Raises InvalidQuery naming every unknown parameter and every malformed value. A list
    parameter given twice takes the alternatives of both; any other parameter given twice is refused.
    """
    reader = _Reader()
    given: dict[str, list[str]] = {}
    for name, value in params:
        given.setdefault(name, []).append(value)
    for name, repeated in given.items():
        reader.read(name, repeated)
    if {"event_count_limit", "max_event_count"} <= reader.values.keys():
        reader.problem("maxEventCount", "eventCountLimit and maxEventCount are mutually exclusive")
    if "event_count_limit" in reader.values and "order_by" not in reader.values:
        # the standard: "first N" means nothing without an order, so eventCountLimit needs orderBy
        reader.problem("eventCountLimit", "needs orderBy, which says which events come first")
    if "order_direction" in reader.values and "order_by" not in reader.values:
        reader.values.pop("order_direction")  # the standard: orderDirection only applies with orderBy
    if reader.problems:
        raise InvalidQuery(reader.problems)
    read = reader.values
    descending = read.pop("order_direction", "DESC") == "DESC"
    predicates: list[Predicate] = read.pop("predicates", [])
    sensor: list[SensorCondition] = read.pop("sensor_conditions", [])
    if sensor:
        predicates.append(sensor_predicate(sensor))
    filters = (*_body_filters(read), *predicates)
    return EventQuery(**read, descending=descending, body_filters=filters)


# ---------------------------------------------------------------- reading parameters

_TIMES: Final = {
    "GE_eventTime": "event_time_from",
    "LT_eventTime": "event_time_before",
    "GE_recordTime": "record_time_from",
    "LT_recordTime": "record_time_before",
}
_MATCHES: Final = {
    "MATCH_epc": ({EpcRole.EPC, EpcRole.CHILD}, False),
    "MATCH_parentID": ({EpcRole.PARENT}, False),
    "MATCH_inputEPC": ({EpcRole.INPUT}, False),
    "MATCH_outputEPC": ({EpcRole.OUTPUT}, False),
    "MATCH_anyEPC": ({EpcRole.EPC, EpcRole.CHILD, EpcRole.PARENT, EpcRole.INPUT, EpcRole.OUTPUT}, False),
    "MATCH_epcClass": ({EpcRole.QUANTITY, EpcRole.CHILD}, True),
    "MATCH_inputEPCClass": ({EpcRole.INPUT}, True),
    "MATCH_outputEPCClass": ({EpcRole.OUTPUT}, True),
    # Any role: a lot may be named in an epcList too (the plain API's recall names it there).
    "MATCH_anyEPCClass": (
        {EpcRole.EPC, EpcRole.QUANTITY, EpcRole.CHILD, EpcRole.INPUT, EpcRole.OUTPUT},
        True,
    ),
}
_VOCABULARIES: Final = {
    "EQ_bizStep": "biz_steps",
    "EQ_disposition": "dispositions",
    "EQ_errorReason": "error_reasons",
    "EQ_persistentDisposition_set": "persistent_disposition_set",
    "EQ_persistentDisposition_unset": "persistent_disposition_unset",
}
_LOCATIONS: Final = {
    "EQ_readPoint": "read_points",
    "EQ_bizLocation": "biz_locations",
}
_WITHIN: Final = {"WD_readPoint": Hierarchy.READ_POINT, "WD_bizLocation": Hierarchy.BIZ_LOCATION}
_PLAIN_LISTS: Final = {
    "EQ_eventID": "event_ids",
    "EQ_transformationID": "transformation_ids",
    "EQ_correctiveEventID": "corrective_event_ids",
}
_TYPED_LISTS: Final = {
    "EQ_bizTransaction_": "biz_transactions",
    "EQ_source_": "sources",
    "EQ_destination_": "destinations",
}
_LIST_PARAMETERS: Final = {
    "eventType",
    "EQ_action",
    *_MATCHES,
    *_VOCABULARIES,
    *_LOCATIONS,
    *_WITHIN,
    *_PLAIN_LISTS,
}
_LIST_FAMILIES: Final = ("EQ_", "HASATTR_", "EQATTR_")
_SINGLE_VALUED: Final = frozenset({"EQ_booleanValue"})


def _is_list(name: str) -> bool:
    """Whether the parameter lists alternatives (repeating it adds more): the fixed lists, and the
    EQ_ parameters on fields, sensor attributes and extensions."""
    return name in _LIST_PARAMETERS or (name.startswith(_LIST_FAMILIES) and name not in _SINGLE_VALUED)


class _Reader:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.problems: list[tuple[str, str]] = []

    def problem(self, name: str, reason: str) -> None:
        self.problems.append((name, reason))

    def read(self, name: str, values: list[str]) -> None:
        typed = next((prefix for prefix in _TYPED_LISTS if name.startswith(prefix)), None)
        if len(values) > 1 and not _is_list(name) and typed is None:
            self.problem(name, "given more than once")
            return
        if typed is not None:
            self._typed_list(name, typed, values)
            return
        words = [word for value in values for word in value.split("|")] if _is_list(name) else values
        if _is_list(name) and not all(word.strip() for word in words):
            self.problem(name, "an empty alternative")
            return
        try:
            self._read(name, words, values[0])
        except (ValueError, InvalidIdentifier) as exc:
            self.problem(name, str(exc))

    def _read(self, name: str, words: list[str], value: str) -> None:
        if name == "eventType":
            unknown = sorted(set(words) - EVENT_TYPES)
            if unknown:
                raise ValueError(f"not an EPCIS event type: {', '.join(unknown)}")
            self.values["event_types"] = frozenset(words)
        elif name in _TIMES:
            self.values[_TIMES[name]] = _time(value)
        elif name == "EQ_action":
            unknown = sorted(set(words) - ACTIONS)
            if unknown:
                raise ValueError(f"not an action (ADD, OBSERVE, DELETE): {', '.join(unknown)}")
            self.values["actions"] = frozenset(words)
        elif name in _VOCABULARIES:
            self._add(_VOCABULARIES[name], {bare_vocabulary(word) for word in words})
        elif name in _LOCATIONS:
            self._add(_LOCATIONS[name], {canonical_location(word) for word in words})
        elif name.startswith(("HASATTR_", "EQATTR_")):
            self.values["attribute_filters"] = (
                *self.values.get("attribute_filters", ()),
                _attribute_filter(name, words),
            )
        elif name in _WITHIN:
            roots = frozenset(canonical_location(word) for word in words)
            self.values["within"] = (*self.values.get("within", ()), (_WITHIN[name], roots))
        elif name in _PLAIN_LISTS:
            self.values[_PLAIN_LISTS[name]] = frozenset(word.strip() for word in words)
        elif name in _MATCHES:
            self.values["epc_matches"] = (*self.values.get("epc_matches", ()), _epc_match(name, words))
        elif name == "EXISTS_errorDeclaration":
            self.values["declarations_only"] = _boolean(value)
        elif name == "orderBy":
            if value not in {key.value for key in OrderKey}:
                raise ValueError(
                    "orderBy is eventTime or recordTime here: pages resume after the last event's "
                    "time, so ordering by an extension field is not supported"
                )
            self.values["order_by"] = OrderKey(value)
        elif name == "orderDirection":
            if value not in {"ASC", "DESC"}:
                raise ValueError("orderDirection is ASC or DESC")
            self.values["order_direction"] = value
        elif name in {"eventCountLimit", "maxEventCount"}:
            key = "event_count_limit" if name == "eventCountLimit" else "max_event_count"
            self.values[key] = _positive(value, "a positive integer")
        elif name == "perPage":
            per_page = _positive(value, f"an integer from 1 to {MAX_PER_PAGE}")
            if per_page > MAX_PER_PAGE:
                raise ValueError(f"an integer from 1 to {MAX_PER_PAGE}")
            self.values["per_page"] = per_page
        elif name == "nextPageToken":
            self.values["next_page_token"] = value
        else:
            self._flexible(name, words, value)

    def _flexible(self, name: str, words: list[str], value: str) -> None:
        """The parameters whose names carry a field, unit or operator (`field_filters`)."""
        for read_predicate in (
            lambda: read_quantity_parameter(name, words),
            lambda: read_declaration_time_parameter(name, value),
            lambda: read_field_parameter(name, words, value),
        ):
            try:
                self.values.setdefault("predicates", []).append(read_predicate())
                return
            except UnknownParameter:
                continue
        try:
            condition = read_sensor_parameter(name, words, value)
        except UnknownParameter:
            raise ValueError(_unsupported(name)) from None
        self.values.setdefault("sensor_conditions", []).append(condition)

    def _add(self, key: str, words: set[str]) -> None:
        self.values[key] = self.values.get(key, frozenset()) | words

    def _typed_list(self, name: str, prefix: str, values: list[str]) -> None:
        kind = name.removeprefix(prefix)
        words = [word.strip() for value in values for word in value.split("|")]
        if not kind or not all(words):
            self.problem(name, "needs a type after the prefix and no empty alternative")
            return
        key = _TYPED_LISTS[prefix]
        if prefix == "EQ_bizTransaction_":
            wanted = frozenset(words)  # business transaction ids are any URI, compared as written
        else:
            wanted = frozenset(canonical_location(word) for word in words)
        self.values[key] = (*self.values.get(key, ()), (bare_vocabulary(kind), wanted))


def _attribute_filter(name: str, words: list[str]) -> AttributeFilter:
    kind, _, rest = name.partition("_")
    field, _, attribute = rest.partition("_")
    if field not in VOCABULARY_FIELDS:
        raise ValueError(f"master data describes {', '.join(VOCABULARY_FIELDS)}; not {field!r}")
    if kind == "HASATTR" and attribute:
        raise ValueError("HASATTR_<field> lists the attribute names as its value")
    if kind == "EQATTR" and not attribute:
        raise ValueError("EQATTR_<field>_<attribute name>")
    return AttributeFilter(name, field, attribute or None, frozenset(word.strip() for word in words))


def vocabulary_value(body: Mapping[str, Any], field_name: str) -> str | None:
    """The vocabulary element an event's field names: a location canonical, a CBV word bare."""
    if field_name in ("readPoint", "bizLocation"):
        return _location_of(body.get(field_name))
    return _bare(body.get(field_name))


def _unsupported(name: str) -> str:
    """Why a parameter is refused: those GS1 defines but tracechain cannot answer say so."""
    if name.startswith(("EQ_", "GT_", "GE_", "LT_", "LE_", "EXISTS_")):
        return (
            "not a query parameter this service supports (an extension field is named by its full "
            "IRI, e.g. EQ_https://ns.example.com/epcis/myField)"
        )
    return "not a query parameter this service supports"


def _time(value: str) -> datetime:
    """A bound on eventTime or recordTime, in UTC as the store compares them: a moment whose UTC
    falls outside years 1 to 9999 is refused here, not left to overflow in the database layer."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}") from None
    try:
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is outside years 1 to 9999 in UTC") from None


def _boolean(value: str) -> bool:
    if value.lower() in {"", "true"}:  # EXISTS_ parameters may be given without a value
        return True
    if value.lower() == "false":
        return False
    raise ValueError("true or false")


def _positive(value: str, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(what) from None
    if number < 1:
        raise ValueError(what)
    return number


_PATTERNS: Final = {"sgtin": "urn:epc:class:lgtin:", "cpi": None}
"""The EPC schemes whose patterns `MATCH_` takes, and where the lots of a class are (if it has any)."""


def _epc_match(name: str, words: list[str]) -> EpcMatch:
    """Canonical identifiers and, for EPC patterns, the prefix of what they match.

    An instance pattern `urn:epc:idpat:sgtin:P.I.*` matches the serials of that GTIN
    (`urn:epc:id:sgtin:P.I.…`); as a class it matches the GTIN itself (stored as that very
    pattern) and its lots (`urn:epc:class:lgtin:P.I.…`). A CPI pattern
    `urn:epc:idpat:cpi:P.R.*` likewise matches the serials of that part (`urn:epc:id:cpi:P.R.…`),
    and as a class the part itself (CPI has no lots).
    """
    roles, classes = _MATCHES[name]
    exact: set[str] = set()
    prefixes: set[str] = set()
    for word in words:
        canonical = canonical_identifier(word)  # GS1 identifiers canonical, private URIs as written
        scheme = next(
            (scheme for scheme in _PATTERNS if canonical.startswith(f"urn:epc:idpat:{scheme}:")), None
        )
        if scheme is None:
            exact.add(canonical)
            continue
        stem = canonical.removeprefix(f"urn:epc:idpat:{scheme}:").removesuffix("*")
        if not classes:
            prefixes.add(f"urn:epc:id:{scheme}:{stem}")
            continue
        exact.add(canonical)
        if _PATTERNS[scheme] is not None:
            prefixes.add(f"{_PATTERNS[scheme]}{stem}")
    return EpcMatch(name, frozenset(roles), classes, frozenset(exact), frozenset(prefixes))


def canonical_location(value: str) -> str:
    """A GS1 location or party as its canonical EPC URN; any other URI as written."""
    text = value.strip()
    try:
        return canonical_epc(text)
    except InvalidIdentifier:
        if text.startswith("urn:epc:"):
            raise  # a malformed EPC URN is a mistake, not a private identifier scheme
        return text


def _id_of(value: Any) -> str | None:
    """readPoint/bizLocation are {"id": uri} in EPCIS 2.0 JSON."""
    found = value.get("id") if isinstance(value, Mapping) else value
    return found if isinstance(found, str) else None


def _location_of(value: Any) -> str | None:
    found = _id_of(value)
    if found is None:
        return None
    try:
        return canonical_location(found)
    except InvalidIdentifier:
        return found


def _body_filters(values: Mapping[str, Any]) -> Iterable[Predicate]:
    """Predicates over the captured body for the fields that have no column of their own."""
    for accepts in _fixed_field_filters(values):
        yield _ignoring_prefixes(accepts)


def _ignoring_prefixes(accepts: Callable[[dict[str, Any]], bool]) -> Predicate:
    return lambda body, _prefixes: accepts(body)


def _fixed_field_filters(values: Mapping[str, Any]) -> Iterable[Callable[[dict[str, Any]], bool]]:
    actions: frozenset[str] = values.get("actions", frozenset())
    if actions:
        yield lambda body: body.get("action") in actions
    read_points: frozenset[str] = values.get("read_points", frozenset())
    if read_points:
        yield lambda body: _location_of(body.get("readPoint")) in read_points
    biz_locations: frozenset[str] = values.get("biz_locations", frozenset())
    if biz_locations:
        yield lambda body: _location_of(body.get("bizLocation")) in biz_locations
    transformation_ids: frozenset[str] = values.get("transformation_ids", frozenset())
    if transformation_ids:
        yield lambda body: body.get("transformationID") in transformation_ids
    reasons: frozenset[str] = values.get("error_reasons", frozenset())
    if reasons:
        yield lambda body: _bare(_declaration(body).get("reason")) in reasons
    corrective: frozenset[str] = values.get("corrective_event_ids", frozenset())
    if corrective:
        yield lambda body: bool(corrective & set(_strings(_declaration(body).get("correctiveEventIDs"))))
    for key, part in (("persistent_disposition_set", "set"), ("persistent_disposition_unset", "unset")):
        wanted: frozenset[str] = values.get(key, frozenset())
        if wanted:
            yield _persistent(part, wanted)
    for kind, ids in values.get("biz_transactions", ()):
        yield _typed_entries("bizTransactionList", "bizTransaction", kind, ids, canonical=False)
    for kind, parties in values.get("sources", ()):
        yield _typed_entries("sourceList", "source", kind, parties, canonical=True)
    for kind, parties in values.get("destinations", ()):
        yield _typed_entries("destinationList", "destination", kind, parties, canonical=True)


def _persistent(part: str, wanted: frozenset[str]) -> Callable[[dict[str, Any]], bool]:
    def accepts(body: dict[str, Any]) -> bool:
        persistent = body.get("persistentDisposition")
        listed = persistent.get(part) if isinstance(persistent, Mapping) else None
        return bool(wanted & {bare_vocabulary(word) for word in _strings(listed)})

    return accepts


def _typed_entries(
    field_name: str, key: str, kind: str, wanted: frozenset[str], *, canonical: bool
) -> Callable[[dict[str, Any]], bool]:
    def accepts(body: dict[str, Any]) -> bool:
        entries = body.get(field_name)
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, Mapping) or _bare(entry.get("type")) != kind:
                continue
            value = entry.get(key)
            if isinstance(value, str) and (_location_of(value) if canonical else value.strip()) in wanted:
                return True
        return False

    return accepts


def _declaration(body: dict[str, Any]) -> Mapping[str, Any]:
    declaration = body.get("errorDeclaration")
    return declaration if isinstance(declaration, Mapping) else {}


def _bare(value: Any) -> str | None:
    return bare_vocabulary(value) if isinstance(value, str) else None


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _matches(match: EpcMatch, identifier: str) -> bool:
    return identifier in match.exact or any(identifier.startswith(prefix) for prefix in match.prefixes)
