"""EPCIS 2.0 SimpleEventQuery parameters (REST binding, `GET /events`) read into a typed `EventQuery`.

A pure parser: no I/O. Every parameter the service does not implement, and every value it cannot
read, is refused with the parameter named (`InvalidQuery`, the standard's QueryParameterException):
a client that filters must never get an unfiltered answer it takes for a filtered one.

Semantics follow EPCIS 2.0 §8.2.7.1: an `EQ_`/`MATCH_` parameter lists alternatives separated by
`|` (any of them matches), different parameters must all match. Identifiers may be EPC URNs or GS1
Digital Links and are compared canonical (`canonical_epc`); vocabulary values (bizStep,
disposition, error reason, source/destination and business transaction types) may be bare CBV
words, CBV URNs or GS1 web URIs and are compared bare (`bare_vocabulary`).

There is no master data hierarchy in tracechain, so `WD_readPoint` / `WD_bizLocation` ("with
descendants") match the named location itself only, as `EQ_` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

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
    # Shape of the answer.
    order_by: OrderKey | None = None
    descending: bool = True
    event_count_limit: int | None = None
    max_event_count: int | None = None
    per_page: int = DEFAULT_PER_PAGE
    next_page_token: str | None = None
    body_filters: tuple[Callable[[dict[str, Any]], bool], ...] = field(default=(), compare=False)

    def body_matches(self, body: dict[str, Any]) -> bool:
        """Whether the event's captured body passes the predicates on fields without a column."""
        return all(accepts(body) for accepts in self.body_filters)

    @property
    def reads_fields(self) -> bool:
        """Whether it filters on fields a reader may be shown only some of (identifiers, the body)."""
        return bool(self.body_filters or self.epc_matches)

    def shown_matches(self, shown: dict[str, Any], named: Iterable[tuple[str, str]]) -> bool:
        """Whether the part of an event a reader is shown (`shown`, naming `named` as (identifier,
        role)) passes the filters on fields and identifiers: what a reader may not see of an event
        cannot be found out by filtering on it."""
        named = list(named)
        return self.body_matches(shown) and all(
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
    if "order_direction" in reader.values and "order_by" not in reader.values:
        reader.values.pop("order_direction")  # the standard: orderDirection only applies with orderBy
    if reader.problems:
        raise InvalidQuery(reader.problems)
    read = reader.values
    descending = read.pop("order_direction", "DESC") == "DESC"
    return EventQuery(**read, descending=descending, body_filters=tuple(_body_filters(read)))


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
    "MATCH_anyEPCClass": ({EpcRole.QUANTITY, EpcRole.CHILD, EpcRole.INPUT, EpcRole.OUTPUT}, True),
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
    "WD_readPoint": "read_points",
    "EQ_bizLocation": "biz_locations",
    "WD_bizLocation": "biz_locations",
}
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
    *_PLAIN_LISTS,
}


class _Reader:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.problems: list[tuple[str, str]] = []

    def problem(self, name: str, reason: str) -> None:
        self.problems.append((name, reason))

    def read(self, name: str, values: list[str]) -> None:
        typed = next((prefix for prefix in _TYPED_LISTS if name.startswith(prefix)), None)
        if len(values) > 1 and name not in _LIST_PARAMETERS and typed is None:
            self.problem(name, "given more than once")
            return
        if typed is not None:
            self._typed_list(name, typed, values)
            return
        words = [word for value in values for word in value.split("|")]
        if name in _LIST_PARAMETERS and not all(word.strip() for word in words):
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
        elif name in _PLAIN_LISTS:
            self.values[_PLAIN_LISTS[name]] = frozenset(word.strip() for word in words)
        elif name in _MATCHES:
            self.values["epc_matches"] = (*self.values.get("epc_matches", ()), _epc_match(name, words))
        elif name == "EXISTS_errorDeclaration":
            self.values["declarations_only"] = _boolean(value)
        elif name == "orderBy":
            if value not in {key.value for key in OrderKey}:
                raise ValueError("orderBy is eventTime or recordTime here")
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
            raise ValueError("not a query parameter this service supports")

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


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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


def _epc_match(name: str, words: list[str]) -> EpcMatch:
    """Canonical identifiers and, for EPC patterns, the prefix of what they match.

    An instance pattern `urn:epc:idpat:sgtin:P.I.*` matches the serials of that GTIN
    (`urn:epc:id:sgtin:P.I.…`); as a class it matches the GTIN itself (stored as that very
    pattern) and its lots (`urn:epc:class:lgtin:P.I.…`).
    """
    roles, classes = _MATCHES[name]
    exact: set[str] = set()
    prefixes: set[str] = set()
    for word in words:
        canonical = canonical_identifier(word)  # GS1 identifiers canonical, private URIs as written
        if canonical.startswith("urn:epc:idpat:sgtin:"):
            stem = canonical.removeprefix("urn:epc:idpat:sgtin:").removesuffix("*")
            if classes:
                exact.add(canonical)
                prefixes.add("urn:epc:class:lgtin:" + stem)
            else:
                prefixes.add("urn:epc:id:sgtin:" + stem)
        else:
            exact.add(canonical)
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


def _body_filters(values: Mapping[str, Any]) -> Iterable[Callable[[dict[str, Any]], bool]]:
    """Predicates over the captured body for the fields that have no column of their own."""
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
