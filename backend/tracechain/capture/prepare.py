"""Capture, stage 1: what can be worked out from a document alone, before the capture lock.

Its limits (`CaptureLimits`), the schema, each event's CBV hash id, disclosure seed and field
commitment, and each event read into its custody effects and the identifiers it names. Concurrent
captures do this side by side; only what follows needs the lock. Also the locations problems are
reported at (`epcisBody.eventList[3]`), in the document as sent.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from tracechain.disclosure import SEED_BYTES, EventFields
from tracechain.epcis.event_hash import EventHashError, event_hash_id, event_hash_ids
from tracechain.epcis.identifiers import InvalidIdentifier
from tracechain.epcis.mapping import Effect, InvalidEvent, effects_of, identifiers_of
from tracechain.epcis.schema import DocumentProblem, reserved_term_problems, validate_document
from tracechain.errors import TracechainError


class ErrorBehaviour(StrEnum):
    """What capture does with a document holding invalid events (the REST binding's
    `GS1-Capture-Error-Behaviour` header; `all` only announces that a server supports both)."""

    ROLLBACK = "rollback"
    """All or nothing: one invalid event rejects the document."""
    PROCEED = "proceed"
    """Greedy: the valid events are captured, the invalid ones reported in the job's errors."""


MAX_JSON_DEPTH: Final = 64
"""EPCIS documents nest about ten levels deep (document, body, event list, event, sensor element,
report, extension ...); extensions may add a few."""


class InvalidJson(TracechainError):
    """A body that is not JSON."""


class DocumentRejected(TracechainError):
    """The document was refused whole; `problems` lists every reason, each with its location."""

    def __init__(self, problems: list[DocumentProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.location}: {p.reason}" for p in problems))


class CaptureLimitExceeded(TracechainError):
    """A capture over one of its limits; nothing of it was read further or written."""

    def __init__(self, limit: str, allowed: int, found: int | None, setting: str | None) -> None:
        self.limit, self.allowed, self.found, self.setting = limit, allowed, found, setting
        what = f"{limit} is at most {allowed:,}" + ("" if found is None else f"; this one has {found:,}")
        super().__init__(what + (f" ({setting})" if setting else ""))


@dataclass(frozen=True)
class CaptureLimits:
    """What one document may hold (Settings.capture_*): each event becomes stored rows and signed
    records, all written while the document holds the capture lock, so its size is everyone's wait."""

    max_events: int
    max_epcs_per_event: int
    max_event_bytes: int

    def check(self, document: Any, first: int = 0) -> None:
        """Raises CaptureLimitExceeded naming the first limit the document is over; the schema and
        everything after it see only documents within them. `first`: where the document's first
        event is in the document as sent (a chunk of a streamed one: its count is checked whole)."""
        body = document.get("epcisBody") if isinstance(document, dict) else None
        events = body.get("eventList") if isinstance(body, dict) else None
        if not isinstance(events, list):
            return  # the schema explains what is missing
        if not first and len(events) > self.max_events:
            raise CaptureLimitExceeded(
                "the events of a document", self.max_events, len(events), "TRACECHAIN_CAPTURE_MAX_EVENTS"
            )
        for index, event in enumerate(events, first):
            named = (
                sum(len(event.get(field) or []) for field in _NAMING_LISTS) if isinstance(event, dict) else 0
            )
            if named > self.max_epcs_per_event:
                raise CaptureLimitExceeded(
                    f"the identifiers of {event_location(index)}",
                    self.max_epcs_per_event,
                    named,
                    "TRACECHAIN_CAPTURE_MAX_EPCS_PER_EVENT",
                )
            size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
            if size > self.max_event_bytes:
                raise CaptureLimitExceeded(
                    f"{event_location(index)}, in bytes",
                    self.max_event_bytes,
                    size,
                    "TRACECHAIN_CAPTURE_MAX_EVENT_BYTES",
                )


_NAMING_LISTS: Final = (
    "epcList",
    "childEPCs",
    "inputEPCList",
    "outputEPCList",
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputQuantityList",
)


StoredKey = tuple[str, bool]
"""(hash id, is an error declaration): what makes a participant's capture of an event a duplicate."""


@dataclass(frozen=True)
class PreparedDocument:
    """What capture works out from a document alone: checked against the schema, hashed, each event
    given its disclosure seed and what its records will commit to, and read into its effects and
    identifiers (or the reason it cannot be). Done before taking the capture lock, so concurrent
    captures overlap this work with each other's database writes."""

    document: dict[str, Any]
    events: list[dict[str, Any]]
    hash_ids: list[str]
    readings: list[tuple[list[Effect], list[tuple[str, str]]] | str]
    seeds: list[bytes]
    commitments: list[bytes | None]
    """Each event's fields committed under its seed (`disclosure`): its records' eventHash. None for
    an error declaration, whose records carry its `declaration_digest`."""
    behaviour: ErrorBehaviour = ErrorBehaviour.ROLLBACK
    positions: list[int] = field(default_factory=list)
    """Where each of `events` is in the document as sent (under `proceed`, events the schema or the
    hash refused are left out of `events`)."""
    rejected: list[DocumentProblem] = field(default_factory=list)
    """Under `proceed`: why the events left out were refused."""

    def location(self, index: int) -> str:
        """Where the index-th prepared event is in the document as sent."""
        return event_location(self.positions[index] if self.positions else index)

    @property
    def keys(self) -> list[StoredKey]:
        pairs = zip(self.hash_ids, self.events, strict=True)
        return [(hash_id, "errorDeclaration" in event) for hash_id, event in pairs]


def prepare_document(
    document: dict[str, Any], behaviour: ErrorBehaviour = ErrorBehaviour.ROLLBACK
) -> PreparedDocument:
    """Raises DocumentRejected for a document that fails the schema or cannot be hashed; under
    `proceed`, only if what fails is outside its events or is every one of them."""
    problems = validate_document(document) + reserved_term_problems(document)
    if behaviour is ErrorBehaviour.PROCEED:
        return _prepare_greedily(document, problems)
    if problems:
        raise DocumentRejected(problems)
    events = _event_list(document)
    try:
        hash_ids = event_hash_ids(document)
    except EventHashError as exc:
        raise DocumentRejected([DocumentProblem("epcisBody", f"events cannot be hashed: {exc}")]) from exc
    return _prepared(document, events, hash_ids)


def _prepare_greedily(document: dict[str, Any], problems: list[DocumentProblem]) -> PreparedDocument:
    """The events of the document that pass the schema and can be hashed, each hashed alone (as
    every event always is, `event_hash_ids`), and the problems of those that do not."""
    if any(event_index(problem.location) is None for problem in problems):
        raise DocumentRejected(problems)  # the header, the context or the body itself: nothing to keep
    refused = {event_index(problem.location) for problem in problems}
    rejected = list(problems)
    events: list[dict[str, Any]] = []
    hash_ids: list[str] = []
    positions: list[int] = []
    for position, event in enumerate(_event_list(document)):
        if position in refused:
            continue
        try:
            hash_ids.append(event_hash_id(event, document.get("@context")))
        except EventHashError as exc:
            rejected.append(DocumentProblem(event_location(position), f"cannot be hashed: {exc}"))
            continue
        events.append(event)
        positions.append(position)
    if not events:
        raise DocumentRejected(rejected)
    prepared = _prepared(document, events, hash_ids)
    return replace(prepared, behaviour=ErrorBehaviour.PROCEED, positions=positions, rejected=rejected)


_EVENT_LOCATION: Final = re.compile(r"epcisBody\.eventList\[(\d+)\]")


def event_index(location: str) -> int | None:
    """The document position of the event a schema problem is in, None if it is in none."""
    found = _EVENT_LOCATION.match(location)
    return int(found.group(1)) if found else None


def _prepared(
    document: dict[str, Any], events: list[dict[str, Any]], hash_ids: list[str]
) -> PreparedDocument:
    readings: list[tuple[list[Effect], list[tuple[str, str]]] | str] = []
    for event in events:
        try:
            readings.append((effects_of(event), sorted(identifiers_of(event))))
        except (InvalidIdentifier, InvalidEvent) as exc:
            readings.append(str(exc))
    context = document.get("@context")
    seeds = [secrets.token_bytes(SEED_BYTES) for _ in events]
    commitments = [
        None if "errorDeclaration" in event else EventFields.of(event, context, hash_id, seed).commitment
        for event, hash_id, seed in zip(events, hash_ids, seeds, strict=True)
    ]
    return PreparedDocument(document, events, hash_ids, readings, seeds, commitments)


def prepared_chunk(
    shell: dict[str, Any],
    events: list[Any],
    first: int,
    behaviour: ErrorBehaviour,
    limits: CaptureLimits,
    rejected: list[DocumentProblem],
) -> PreparedDocument | None:
    """A chunk of a streamed document prepared as the document holding only its events, each
    located where it is in the whole; None under `proceed` if all its events were refused (their
    problems added to `rejected`)."""
    document = {**shell, "epcisBody": {**shell.get("epcisBody", {}), "eventList": events}}
    limits.check(document, first)
    try:
        prepared = prepare_document(document, behaviour)
    except DocumentRejected as exc:
        problems = [_shifted(problem, first) for problem in exc.problems]
        if behaviour is ErrorBehaviour.PROCEED and all(event_index(p.location) is not None for p in problems):
            rejected += problems
            return None
        raise DocumentRejected(problems) from None
    positions = [first + position for position in prepared.positions or range(len(prepared.events))]
    shifted = [_shifted(problem, first) for problem in prepared.rejected]
    return replace(prepared, positions=positions, rejected=shifted)


def _shifted(problem: DocumentProblem, first: int) -> DocumentProblem:
    """The problem of a chunk's event, located in the whole document."""
    found = _EVENT_LOCATION.match(problem.location)
    if found is None or not first:
        return problem
    index = int(found.group(1)) + first
    return DocumentProblem(event_location(index) + problem.location[found.end() :], problem.reason)


def document_order(problem: DocumentProblem) -> tuple[int, str]:
    index = event_index(problem.location)
    return (-1 if index is None else index, problem.location)


def declared_id(event: dict[str, Any]) -> str | None:
    """The eventID the capturer gave the event, if it gave one (the schema makes it a URI)."""
    declared = event.get("eventID")
    return declared if isinstance(declared, str) and len(declared) <= 255 else None


def _event_list(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document["epcisBody"]
    events: list[dict[str, Any]] = body["eventList"] if "eventList" in body else [body["event"]]
    return events


def event_time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")).astimezone(UTC)


def event_location(index: int) -> str:
    return f"epcisBody.eventList[{index}]"
