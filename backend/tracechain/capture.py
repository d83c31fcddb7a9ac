"""Capture: an EPCIS document becomes stored events and signed chain records.

The whole document is checked before anything is written: the schema, identifiers, parties, and
every event's effect against the custody projection (the contract's rules in `custody.py`, applied
to the state the chain will have once the queued records land). Under the EPCIS error behaviour
`rollback` (the default) one bad event rejects the document with every reason found; under
`proceed` the bad events are left out, each reason kept in the capture job's errors, and the rest
is captured as if the document had held only them. Accepted events are signed over their subjects'
projected heads and queued for the submitter in the same database transaction, so a crash loses or
duplicates nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy.orm import Session

from tracechain.chain.eip712 import Domain, EventSigner, recover_signer
from tracechain.chain.trace_event import (
    ZERO_ADDRESS,
    ZERO_HASH,
    Kind,
    SignedEvent,
    Status,
    TraceEvent,
    chain_of,
    subject_id,
)
from tracechain.custody import CustodyState, Unit
from tracechain.disclosure import SEED_BYTES, EventFields
from tracechain.epcis.event_hash import EventHashError, declaration_digest, event_hash_id, event_hash_ids
from tracechain.epcis.identifiers import InvalidIdentifier
from tracechain.epcis.mapping import (
    Effect,
    InvalidEvent,
    bare_vocabulary,
    effects_of,
    identifiers_of,
    parties_of,
)
from tracechain.epcis.query import canonical_location
from tracechain.epcis.schema import DocumentProblem, reserved_term_problems, validate_document
from tracechain.errors import ContractRevert, TracechainError
from tracechain.keys import KeyVault
from tracechain.recovery import SubjectsBeingRepaired
from tracechain.stamps import VerificationStamps, stored_json
from tracechain.store import queries
from tracechain.store.bulk import allocate_ids, insert_rows
from tracechain.store.models import (
    CaptureJob,
    CaptureStatus,
    ChainRecord,
    Event,
    EventEpc,
    EventParty,
    Participant,
    RecordStatus,
    SubjectState,
)

# Kinds that need the subject to exist on chain; on a subject never commissioned they are recorded
# as observations, and the trace shows the subject's origin as unverified (DOMAIN.md). So is a
# shipment to a party that is not a participant: EPCIS documents name parties outside tracechain.
_NEEDS_KNOWN_SUBJECT = {
    Kind.AGGREGATE,
    Kind.DISAGGREGATE,
    Kind.SHIP,
    Kind.RECEIVE,
    Kind.INSPECT,
    Kind.SELL,
    Kind.RECALL,
    Kind.CONSUME,
    Kind.EXCURSION,
}


class ErrorBehaviour(StrEnum):
    """What capture does with a document holding invalid events (the REST binding's
    `GS1-Capture-Error-Behaviour` header; `all` only announces that a server supports both)."""

    ROLLBACK = "rollback"
    """All or nothing: one invalid event rejects the document."""
    PROCEED = "proceed"
    """Greedy: the valid events are captured, the invalid ones reported in the job's errors."""


class DocumentRejected(TracechainError):
    """The document was refused whole; `problems` lists every reason, each with its location."""

    def __init__(self, problems: list[DocumentProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.location}: {p.reason}" for p in problems))


class CaptureInterrupted(TracechainError):
    """A streamed capture's job was marked failed while it ran: a service starting took it for one
    whose process had died (`queries.fail_interrupted_captures`). Its transaction must roll back."""

    def __init__(self, capture_id: str) -> None:
        super().__init__(f"capture job {capture_id} was marked failed while its document was captured")


class InvalidSignatures(TracechainError):
    """Submitted signatures that are malformed, for records not awaiting one, or by another key."""

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
                    f"the identifiers of {_location(index)}",
                    self.max_epcs_per_event,
                    named,
                    "TRACECHAIN_CAPTURE_MAX_EPCS_PER_EVENT",
                )
            size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
            if size > self.max_event_bytes:
                raise CaptureLimitExceeded(
                    f"{_location(index)}, in bytes",
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


@dataclass(frozen=True)
class Capture:
    job: CaptureJob
    new_events: int
    duplicates: int


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
        return _location(self.positions[index] if self.positions else index)

    @property
    def keys(self) -> list[StoredKey]:
        pairs = zip(self.hash_ids, self.events, strict=True)
        return [(hash_id, "errorDeclaration" in event) for hash_id, event in pairs]


@dataclass(frozen=True)
class _NewEvent:
    """An event of the document that its participant has not captured before."""

    index: int
    location: str
    """Where it is in the document as sent, for the problems found in it."""
    body: dict[str, Any]
    hash_id: str
    effects: list[Effect]
    named: list[tuple[str, str]]
    seed: bytes
    commitment: bytes | None

    @property
    def declaration(self) -> bool:
        return "errorDeclaration" in self.body

    @property
    def corrected_by(self) -> list[Any]:
        """The eventIDs of the events an error declaration names as its corrections."""
        corrective = (self.body.get("errorDeclaration") or {}).get("correctiveEventIDs") or []
        return corrective if isinstance(corrective, list) else []


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
    if any(_event_index(problem.location) is None for problem in problems):
        raise DocumentRejected(problems)  # the header, the context or the body itself: nothing to keep
    refused = {_event_index(problem.location) for problem in problems}
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
            rejected.append(DocumentProblem(_location(position), f"cannot be hashed: {exc}"))
            continue
        events.append(event)
        positions.append(position)
    if not events:
        raise DocumentRejected(rejected)
    prepared = _prepared(document, events, hash_ids)
    return replace(prepared, behaviour=ErrorBehaviour.PROCEED, positions=positions, rejected=rejected)


_EVENT_LOCATION: Final = re.compile(r"epcisBody\.eventList\[(\d+)\]")


def _event_index(location: str) -> int | None:
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


def capture_document(
    session: Session,
    participant: Participant,
    document: dict[str, Any] | PreparedDocument,
    vault: KeyVault,
    domain: Domain,
    stored: set[StoredKey] | None = None,
) -> Capture:
    """Check, sign and queue every new event of `document` for `participant`, in `session`.

    Raises DocumentRejected (and writes nothing) if any event is invalid, breaks custody, or
    withdraws what the participant may not withdraw; under `proceed` (`prepare_document`) only if
    no event is left: the others are captured, and the job's errors name those left out. A
    participant that keeps its own key gets its records back unsigned, the job awaiting its
    signatures (`sign_records`). `stored`: which of the document's events this participant had
    captured already (`PreparedDocument.keys`), if the caller read that before taking the capture
    lock (else it is read here); an event stored since then makes the insert fail with IntegrityError.
    """
    prepared = document if isinstance(document, PreparedDocument) else prepare_document(document)
    now = datetime.now(UTC)
    if stored is None:
        stored = queries.events_captured_by(session, set(prepared.hash_ids), participant.address)
    fresh, records, rejected = _accepted(session, participant, prepared, vault, domain, stored)
    if rejected and not fresh and not any(key in stored for key in prepared.keys):
        raise DocumentRejected(sorted(rejected, key=_document_order))  # nothing left to capture
    queries.upsert_master_data(session, participant.id, master_data_in(prepared.document))
    if not fresh:
        # Sent again, after a lost answer or by a retrying client: the job that captured it answers,
        # if it refused the same events (else this document is another, and its refusals are news).
        earlier = queries.capture_jobs_of(session, set(prepared.keys), participant.address)
        refused = _rejected_events(rejected) if rejected else None
        if len(earlier) == 1 and earlier[0].errors == refused:
            return Capture(earlier[0], 0, len(prepared.events))

    waits = bool(records)  # events with no effect on chain (naming no product nor place) wait for nothing
    job = CaptureJob(
        id=str(uuid.uuid4()),
        participant_id=participant.id,
        status=_captured_status(participant, waits),
        created_at=now,
        finished_at=None if waits else now,
        event_count=len(fresh),
        error_behaviour=prepared.behaviour.value,
        errors=_rejected_events(rejected) if rejected else None,
    )
    session.add(job)
    session.flush()
    stamps = VerificationStamps(vault.stamp_key, domain.separator)
    _store(session, job.id, participant, prepared.document.get("@context"), fresh, records, stamps, now)
    if not waits:  # final as captured: subscriptions have them now, not at a confirmation
        queries.feed_confirmed_events(session, {job.id}, now)
    return Capture(job, len(fresh), len(prepared.events) - len(fresh))


def _accepted(
    session: Session,
    participant: Participant,
    prepared: PreparedDocument,
    vault: KeyVault,
    domain: Domain,
    stored: set[StoredKey],
) -> tuple[list[_NewEvent], list[tuple[int, dict[str, Any]]], list[DocumentProblem]]:
    """The new events of `prepared` that capture keeps, their signed records, and (under
    `proceed`) why the others were left out; under `rollback`, DocumentRejected if any is refused."""
    left_out: set[int] = set()
    rejected = list(prepared.rejected)
    while True:
        # Under `proceed`, the events with problems are left out and the rest checked again: an
        # event may have needed one left out (a shipment of a product whose commissioning failed).
        problems = _Problems()
        fresh = _new_events(prepared, stored, problems, left_out)
        fresh = _with_ids_of_their_own(session, fresh, problems)
        withdrawn = _withdrawn_captures(session, participant, fresh, problems)
        proceeding = prepared.behaviour is ErrorBehaviour.PROCEED
        records = _sign(session, participant, fresh, withdrawn, vault, domain, problems, proceeding)
        if not problems.found:
            return fresh, records, rejected
        if prepared.behaviour is ErrorBehaviour.ROLLBACK:
            raise DocumentRejected(problems.found)
        rejected += problems.found
        left_out |= problems.events


CHUNK_EVENTS: Final = 500
"""Events of a streamed document read, checked and stored at a time: what it holds in memory."""


def capture_in_chunks(
    session: Session,
    participant: Participant,
    job_id: str,
    shell: dict[str, Any],
    chunks: Iterable[list[Any]],
    behaviour: ErrorBehaviour,
    vault: KeyVault,
    domain: Domain,
    limits: CaptureLimits,
    accepted: Callable[[int], None] = lambda _: None,
) -> Capture:
    """Capture a document given as its `shell` (everything but its events, `stream.read_outline`)
    and its events `chunks`, a chunk at a time, into the capture job `job_id` (CAPTURING, made
    beforehand so that its progress can be followed): as `capture_document` captures a document,
    with the same error behaviours, in the caller's one transaction.

    Each chunk is checked, signed and written before the next is read, so memory holds one chunk
    (and the custody projection rows it touches; what earlier chunks changed is in the transaction,
    read back as the next chunk needs it). Under `rollback` the first chunk holding a refused event
    raises DocumentRejected naming it (and every other problem of that chunk): the caller rolls the
    transaction back and nothing of the document is stored. Under `proceed` refused events are left
    out as `capture_document` leaves them out. `accepted` is told how many events were read and
    kept (or skipped as captured before) so far, after each chunk."""
    now = datetime.now(UTC)
    context = shell.get("@context")
    stamps = VerificationStamps(vault.stamp_key, domain.separator)
    rejected: list[DocumentProblem] = []
    new = duplicates = read = 0
    waits = False
    for events in chunks:
        prepared = _prepared_chunk(shell, events, read, behaviour, limits, rejected)
        read += len(events)
        if prepared is None:
            continue  # under `proceed`, every event of the chunk was refused by the schema or the hash
        stored = queries.events_captured_by(session, set(prepared.hash_ids), participant.address)
        fresh, records, refused = _accepted(session, participant, prepared, vault, domain, stored)
        rejected += refused
        _store(session, job_id, participant, context, fresh, records, stamps, now)
        session.flush()  # the projection rows changed: the next chunk reads them back, not this one's copies
        waits |= bool(records)
        new += len(fresh)
        duplicates += sum(key in stored for key in prepared.keys)
        accepted(read)
    if rejected and not new and not duplicates:
        raise DocumentRejected(sorted(rejected, key=_document_order))  # nothing left to capture
    queries.upsert_master_data(session, participant.id, master_data_in(shell))
    job = session.get(CaptureJob, job_id, with_for_update=True)
    if job is None or job.status != CaptureStatus.CAPTURING:
        raise CaptureInterrupted(job_id)
    job.status = _captured_status(participant, waits)
    job.finished_at = None if waits else now
    job.event_count = new
    job.errors = _rejected_events(rejected) if rejected else None
    if not waits:
        session.flush()
        queries.feed_confirmed_events(session, {job.id}, now)
    return Capture(job, new, duplicates)


def _captured_status(participant: Participant, waits: bool) -> CaptureStatus:
    """A job's status once its events are stored: waiting for the chain (or, for a participant that
    keeps its own key, for its signatures first) if any has a record; else done."""
    if not waits:
        return CaptureStatus.SUCCEEDED
    return CaptureStatus.PENDING if participant.encrypted_key else CaptureStatus.AWAITING_SIGNATURES


def open_streamed_job(session: Session, participant: Participant, behaviour: ErrorBehaviour) -> CaptureJob:
    """The job of a document to be captured in chunks (`capture_in_chunks`), `capturing` until then."""
    job = CaptureJob(
        id=str(uuid.uuid4()),
        participant_id=participant.id,
        status=CaptureStatus.CAPTURING,
        created_at=datetime.now(UTC),
        finished_at=None,
        event_count=0,
        error_behaviour=behaviour.value,
        errors=None,
    )
    session.add(job)
    return job


def fail_streamed_job(session: Session, job_id: str, errors: dict[str, Any]) -> None:
    """A streamed capture that stored nothing: its job failed, `errors` saying why."""
    job = session.get(CaptureJob, job_id, with_for_update=True)
    if job is not None and job.status == CaptureStatus.CAPTURING:
        job.status, job.finished_at, job.errors = CaptureStatus.FAILED, datetime.now(UTC), errors


def _prepared_chunk(
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
        if behaviour is ErrorBehaviour.PROCEED and all(
            _event_index(p.location) is not None for p in problems
        ):
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
    return DocumentProblem(_location(index) + problem.location[found.end() :], problem.reason)


@dataclass
class _Problems:
    """The problems found in a document's events, and which events (by prepared index) they are in."""

    found: list[DocumentProblem] = field(default_factory=list)
    events: set[int] = field(default_factory=set)

    def add(self, index: int, location: str, reason: str) -> None:
        self.found.append(DocumentProblem(location, reason))
        self.events.add(index)


def _rejected_events(rejected: list[DocumentProblem]) -> dict[str, Any]:
    """A capture job's error (RFC 9457 fields) for the events `proceed` left out, each named."""
    events = [{"location": p.location, "reason": p.reason} for p in sorted(rejected, key=_document_order)]
    return {
        "type": "epcisException:ValidationException",
        "title": "Events not captured",
        "status": 400,
        "reason": f"{len(events)} event(s) of the document were not captured; the others were",
        "events": events,
    }


def _document_order(problem: DocumentProblem) -> tuple[int, str]:
    index = _event_index(problem.location)
    return (-1 if index is None else index, problem.location)


def _new_events(
    prepared: PreparedDocument, stored: set[StoredKey], problems: _Problems, left_out: set[int]
) -> list[_NewEvent]:
    """The document's events the participant has not captured before (the same event sent twice,
    in one document or two, is captured once) and that are not `left_out`; an event that cannot be
    read is a problem."""
    fresh: list[_NewEvent] = []
    seen = set(stored)
    for index, (event, key, reading) in enumerate(
        zip(prepared.events, prepared.keys, prepared.readings, strict=True)
    ):
        if key in seen or index in left_out:
            continue
        seen.add(key)
        location = prepared.location(index)
        if isinstance(reading, str):
            problems.add(index, location, reading)
            continue
        effects, named = reading
        seed, commitment = prepared.seeds[index], prepared.commitments[index]
        fresh.append(_NewEvent(index, location, event, key[0], effects, named, seed, commitment))
    return fresh


def _with_ids_of_their_own(session: Session, fresh: list[_NewEvent], problems: _Problems) -> list[_NewEvent]:
    """The events whose declared eventID no other event was declared with, stored or earlier in the
    document; each other is a problem. An event ID is unique across all events (EPCIS 2.0 REST
    binding): one naming two would let a rival's event answer, and be linked as a correction, for
    another's. The same event declared twice, captured by two parties, or an error declaration
    repeating the id of the event it withdraws, is one event. (A declared id equal to another's
    hash id is not refused, which would tell the capturer that event exists; it never finds that
    event's namesake: `queries.named_as`.)"""
    declared = {event.index: _declared_id(event.body) for event in fresh}
    taken = queries.events_declared_as(session, {name for name in declared.values() if name})
    kept = []
    for event in fresh:
        name = declared[event.index]
        others = taken.get(name, set()) - {event.hash_id} if name else set()
        if others:
            problems.add(event.index, f"{event.location}.eventID", f"{name} already names another event")
            continue
        if name:
            taken.setdefault(name, set()).add(event.hash_id)
        kept.append(event)
    return kept


def _withdrawn_captures(
    session: Session, participant: Participant, fresh: list[_NewEvent], problems: _Problems
) -> dict[int, list[tuple[str, bytes]]]:
    """For each error declaration, which captures of the event it withdraws, as (signer, what the
    capture's records committed to): the participant's own, or, for an auditor, every participant's.
    A declaration of an event never captured, or of someone else's by a participant that is not an
    auditor, is a problem: otherwise anyone who knew an event's content could withdraw it, or take
    its id before its author captured it."""
    declared = [event for event in fresh if event.declaration]
    if not declared:
        return {}
    captures = queries.captures_of_events(session, {event.hash_id for event in declared})
    signers = {hash_id: [c.signer for c in found] for hash_id, found in captures.items()}
    names = queries.participant_names(session, {s for found in signers.values() for s in found})
    withdrawn: dict[int, list[tuple[str, bytes]]] = {}
    for event in declared:
        captured_by = signers.get(event.hash_id, [])
        committed = {
            capture.signer: EventFields.of(
                capture.body, capture.context, capture.event_id, capture.disclosure_seed
            ).commitment
            for capture in captures.get(event.hash_id, [])
        }
        if participant.address in captured_by:
            withdrawn[event.index] = [(participant.address, committed[participant.address])]
        elif captured_by and "auditor" in participant.roles:
            withdrawn[event.index] = list(committed.items())
        elif captured_by:
            who = ", ".join(names.get(signer, signer) for signer in captured_by)
            problems.add(
                event.index,
                f"{event.location}.errorDeclaration",
                f"event {event.hash_id} was captured by {who}: only its signer or an auditor may withdraw it",
            )
        else:
            problems.add(
                event.index,
                f"{event.location}.errorDeclaration",
                f"no event {event.hash_id} was captured: an error declaration withdraws an event "
                "captured before",
            )
    return withdrawn


def _sign(
    session: Session,
    participant: Participant,
    fresh: list[_NewEvent],
    withdrawn: dict[int, list[tuple[str, bytes]]],
    vault: KeyVault,
    domain: Domain,
    problems: _Problems,
    first_violation_only: bool = False,
) -> list[tuple[int, dict[str, Any]]]:
    """Each new event's records, with the event's index in the document: its effects checked against
    the custody projection (the contract's rules) and signed over the head of the chain each joins,
    in document order. A violation is a problem; then nothing is signed nor saved.

    `first_violation_only` (under `proceed`): the check stops at the first violation, since the
    events after it were checked against a state that the violating event had already partly
    changed; the caller leaves that event out and checks the rest again."""
    signer = (
        EventSigner(vault.decrypt(participant.encrypted_key, participant.address), domain)
        if participant.encrypted_key is not None
        else None
    )
    state = _ProjectedState(session)
    parties = queries.participant_addresses_by_party(session)
    corrective = {declared for event in fresh for declared in event.corrected_by if isinstance(declared, str)}
    # Every projection row the document touches, read up front in a query per level of packing: the
    # subjects, and the participant's own chains of those it observes.
    keys = {
        key
        for event in fresh
        for effect in event.effects
        for key in _projection_keys(effect, participant.address)
    }
    being_repaired = queries.stale_epcs(session, keys)
    if being_repaired:
        raise SubjectsBeingRepaired(being_repaired)
    state.preload(keys)
    records: list[tuple[int, dict[str, Any]]] = []
    to_sign: list[TraceEvent] = []
    for event in fresh:
        time = int(_event_time(event.body).timestamp())
        if time < 0:  # TraceEvent.time is uint64: such an event could never be signed
            problems.add(
                event.index,
                f"{event.location}.eventTime",
                f"{event.body['eventTime']} is before 1970: the chain keeps times as seconds since 1970",
            )
            continue
        for effect in event.effects:
            correcting = event.body.get("eventID") in corrective
            for trace_event in _trace_events(
                event, effect, state, parties, withdrawn, participant.address, time, correcting
            ):
                chain = chain_of(trace_event.subject, trace_event.kind, participant.address)
                try:
                    head = state.model.apply(trace_event, participant.address)
                except ContractRevert as violation:
                    problems.add(event.index, event.location, _plain(violation, effect))
                    if first_violation_only:
                        return []
                    continue
                state.touch(trace_event.subject, effect.subject)
                state.touch(chain, effect.subject)
                if effect.ref_subject:
                    state.touch(subject_id(effect.ref_subject), effect.ref_subject)
                to_sign.append(trace_event)
                records.append(
                    (
                        event.index,
                        {
                            "subject": trace_event.subject,
                            "subject_epc": effect.subject,
                            "chain": chain,
                            "kind": int(trace_event.kind),
                            "event_hash": trace_event.event_hash,
                            "counterpart": trace_event.counterpart,
                            "ref": trace_event.ref,
                            "time": trace_event.time,
                            "prev_head": trace_event.prev_head,
                            "head": head,
                            "signer": participant.address,
                            "r": None,
                            "vs": None,
                            "status": RecordStatus.UNSIGNED,
                        },
                    )
                )
    if problems.found:
        return []  # signed only once none is left: under `proceed` a document may be checked again
    state.save()
    if signer is not None:
        for (_, fields), trace_event in zip(records, to_sign, strict=True):
            signed = signer.sign(trace_event)
            fields.update(r=signed.r, vs=signed.vs, status=RecordStatus.QUEUED)
    return records


def _trace_events(
    event: _NewEvent,
    effect: Effect,
    state: _ProjectedState,
    parties: dict[str, str],
    withdrawn: dict[int, list[tuple[str, bytes]]],
    signer: str,
    time: int,
    correcting: bool,
) -> list[TraceEvent]:
    """What the participant signs for one effect of an event: one TraceEvent, or for an error
    declaration one per withdrawn capture of the event (each names its signer).

    A corrective event (named by an error declaration of the same document) cannot undo on chain
    what the event it corrects did: a product that event commissioned stays commissioned, so the
    corrective event's commissioning of it by the same manufacturer is recorded as an observation
    instead of being refused as a second commissioning."""
    subject = subject_id(effect.subject)
    state.load(subject)
    if effect.ref_subject:
        state.load(subject_id(effect.ref_subject))
    kind = effect.kind
    if kind in _NEEDS_KNOWN_SUBJECT and subject not in state.model.units:
        kind = Kind.OBSERVE
    made = state.model.units.get(subject)
    if correcting and kind is Kind.COMMISSION and made is not None and made.manufacturer == signer:
        kind = Kind.OBSERVE
    counterpart = parties.get(effect.counterpart_party or "", ZERO_ADDRESS)
    if kind is Kind.SHIP and counterpart == ZERO_ADDRESS:
        # Shipped to a party outside tracechain: recorded, but custody cannot be proposed to it.
        kind = Kind.OBSERVE
    chain = chain_of(subject, kind, signer)
    state.load(chain)
    if kind is Kind.WITHDRAW:
        digest = declaration_digest(event.body, event.hash_id)
        return [  # `ref`: what the withdrawn capture's records carry as their eventHash
            TraceEvent(subject, kind, digest, author, committed, time, state.model.head(chain))
            for author, committed in withdrawn.get(event.index, [])  # none: refused already
        ]
    assert event.commitment is not None, "only an error declaration has no field commitment"
    return [
        TraceEvent(
            subject=subject,
            kind=kind,
            event_hash=event.commitment,
            counterpart=counterpart if kind is Kind.SHIP else ZERO_ADDRESS,
            ref=_ref(effect, kind),
            time=time,
            prev_head=state.model.head(chain),
        )
    ]


def _store(
    session: Session,
    capture_id: str,
    participant: Participant,
    context: Any,
    fresh: list[_NewEvent],
    records: list[tuple[int, dict[str, Any]]],
    stamps: VerificationStamps,
    now: datetime,
) -> None:
    """The new events, the identifiers they name and their records, a bulk write per table (a
    stream per table, not an ORM object per row). Records keep their order, so their ids follow
    the order they were signed in, which the submitter keeps. Each signed record is stamped
    (`tracechain.stamps`): its event's hash id and commitment were derived here from this content,
    its signature made with its signer's key."""
    if not fresh:
        return
    stored_context = None if context is None else stored_json(context)
    contents = {
        event.index: stamps.event_content(
            event.hash_id, stored_json(event.body), stored_context, event.seed, event.declaration
        )
        for event in fresh
    }
    row_ids = dict(
        zip((event.index for event in fresh), allocate_ids(session, Event, len(fresh)), strict=True)
    )
    insert_rows(
        session,
        Event,
        [
            {
                "id": row_ids[event.index],
                "event_id": event.hash_id,
                "declared_id": _declared_id(event.body),
                "declaration": event.declaration,
                "capture_id": capture_id,
                "event_type": event.body["type"],
                "biz_step": _bare(event.body.get("bizStep")),
                "disposition": _bare(event.body.get("disposition")),
                "event_time": _event_time(event.body),
                "record_time": now,
                "body": event.body,
                "context": context,
                "signer": participant.address,
                "disclosure_seed": event.seed,
            }
            for event in fresh
        ],
    )
    insert_rows(
        session,
        EventEpc,
        [
            {"event_row_id": row_ids[event.index], "epc": epc, "role": role}
            for event in fresh
            for epc, role in event.named
        ],
    )
    insert_rows(
        session,
        EventParty,
        [
            {"event_row_id": row_ids[event.index], "party": party}
            for event in fresh
            for party in parties_of(event.body)
        ],
    )
    insert_rows(
        session,
        ChainRecord,
        [
            {
                **fields,
                "event_row_id": row_ids[index],
                "verification_stamp": None
                if fields["r"] is None
                else stamps.stamp(contents[index], _signed_event(fields), fields["head"]),
            }
            for index, fields in records
        ],
    )


def _signed_event(fields: dict[str, Any]) -> SignedEvent:
    """The signed event of a record's fields as `_sign` writes them (signed: r and vs set)."""
    event = TraceEvent(
        fields["subject"],
        Kind(fields["kind"]),
        fields["event_hash"],
        fields["counterpart"],
        fields["ref"],
        fields["time"],
        fields["prev_head"],
    )
    return SignedEvent(event, fields["signer"], fields["r"], fields["vs"])


def master_data_in(document: dict[str, Any]) -> list[tuple[str, str, list[Any], list[str]]]:
    """The vocabulary elements of the document's header (`epcisHeader.epcisMasterData`), as
    (vocabulary type, element id, attributes, children), ids canonical so that a location given
    as a Digital Link is the same element as its EPC URN; the last description of an element in
    the document wins."""
    header = document.get("epcisHeader")
    master = header.get("epcisMasterData") if isinstance(header, dict) else None
    vocabularies = master.get("vocabularyList") if isinstance(master, dict) else None
    found: dict[tuple[str, str], tuple[str, str, list[Any], list[str]]] = {}
    for vocabulary in vocabularies if isinstance(vocabularies, list) else ():
        vocabulary_type = vocabulary.get("type") if isinstance(vocabulary, dict) else None
        if not isinstance(vocabulary_type, str) or len(vocabulary_type) > 255:
            continue
        for element in vocabulary.get("vocabularyElementList") or []:
            element_id = element.get("id") if isinstance(element, dict) else None
            if not isinstance(element_id, str):
                continue
            attributes = element.get("attributes") or []
            children = [
                _vocabulary_id(child) for child in element.get("children") or [] if isinstance(child, str)
            ]
            key = (vocabulary_type, _vocabulary_id(element_id))
            if len(key[1]) <= 255:
                found[key] = (*key, attributes, children)
    return list(found.values())


def _vocabulary_id(value: str) -> str:
    try:
        return canonical_location(value)
    except InvalidIdentifier:
        return value.strip()


def _declared_id(event: dict[str, Any]) -> str | None:
    """The eventID the capturer gave the event, if it gave one (the schema makes it a URI)."""
    declared = event.get("eventID")
    return declared if isinstance(declared, str) and len(declared) <= 255 else None


def _projection_keys(effect: Effect, signer: str) -> list[bytes]:
    """The projection rows an effect reads: its subject, its parent or output, and for an observation
    the signer's own chain of the subject (others are read when an effect turns into one)."""
    subject = subject_id(effect.subject)
    keys = [subject, chain_of(subject, effect.kind, signer)]
    return [*keys, subject_id(effect.ref_subject)] if effect.ref_subject else keys


def _event_list(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document["epcisBody"]
    events: list[dict[str, Any]] = body["eventList"] if "eventList" in body else [body["event"]]
    return events


def _event_time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")).astimezone(UTC)


def _bare(value: str | None) -> str | None:
    """Stored as the bare CBV word, so queries match however the capture spelled it."""
    return bare_vocabulary(value) if value else None


def _location(index: int) -> str:
    return f"epcisBody.eventList[{index}]"


def _ref(effect: Effect, kind: Kind) -> bytes:
    if kind is Kind.INSPECT and effect.verdict:
        return effect.verdict
    if kind in (Kind.AGGREGATE, Kind.DISAGGREGATE, Kind.CONSUME) and effect.ref_subject:
        return subject_id(effect.ref_subject)
    return ZERO_HASH


def _plain(violation: ContractRevert, effect: Effect) -> str:
    """The contract's reason in words, naming the EPC rather than its hash."""
    arguments = {k: v for k, v in violation.arguments.items() if k != "subject"}
    facts = ", ".join(f"{k}={v.hex() if isinstance(v, bytes) else v}" for k, v in arguments.items())
    return f"{effect.kind.name.lower()} of {effect.subject} refused: {violation.error_name}({facts})"


class _ProjectedState:
    """The custody projection rows a document touches, loaded into a CustodyState and saved back."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.model = CustodyState(roles=queries.roles_by_address(session))
        self._epcs: dict[bytes, str] = {}
        self._rows: dict[bytes, SubjectState] = {}
        self._absent: set[bytes] = set()

    def preload(self, subjects: Iterable[bytes]) -> None:
        """Load these subjects and the units they are packed in, a query per level of packing."""
        wanted = set(subjects) - self._epcs.keys() - self._absent
        while wanted:
            rows = queries.subject_states(self.session, wanted)
            self._absent |= wanted - rows.keys()
            parents = {self._adopt(subject, row) for subject, row in rows.items()}
            wanted = parents - self._epcs.keys() - self._absent - {ZERO_HASH}

    def load(self, subject: bytes) -> None:
        """Load the subject and the units it is packed in (custody follows the outermost)."""
        while subject not in self._epcs and subject not in self._absent and subject != ZERO_HASH:
            row = queries.subject_state(self.session, subject)
            if row is None:
                self._absent.add(subject)
                return
            subject = self._adopt(subject, row)

    def _adopt(self, subject: bytes, row: SubjectState) -> bytes:
        """Take a stored row into the model; returns the unit's parent (ZERO_HASH if none)."""
        self._rows[subject] = row
        self._epcs[subject] = row.epc
        self.model.heads[subject] = row.head
        if row.unit is None:
            return ZERO_HASH
        unit = Unit(
            **{
                **row.unit,
                "status": Status(row.unit["status"]),
                "parent": bytes.fromhex(row.unit["parent"]),
            }
        )
        self.model.units[subject] = unit
        return unit.parent

    def touch(self, subject: bytes, epc: str) -> None:
        self._epcs[subject] = epc

    def save(self) -> None:
        """Write back what changed: new rows in one bulk insert, changed ones at the flush."""
        new_rows: list[dict[str, Any]] = []
        for subject, epc in self._epcs.items():
            unit = self.model.units.get(subject)
            head = self.model.head(subject)
            stored_unit = (
                None
                if unit is None
                else {**asdict(unit), "status": int(unit.status), "parent": unit.parent.hex()}
            )
            row = self._rows.get(subject)
            if row is None:
                new_rows.append({"subject": subject, "epc": epc, "head": head, "unit": stored_unit})
            elif row.head != head or row.unit != stored_unit:
                row.head, row.unit = head, stored_unit
        insert_rows(self.session, SubjectState, new_rows)


def unsigned_events(job_records: list[ChainRecord]) -> list[tuple[int, TraceEvent]]:
    """The records of a job still awaiting their participant's signature, as events to sign."""
    return [(r.id, r.trace_event()) for r in job_records if r.status == RecordStatus.UNSIGNED]


def sign_records(
    session: Session,
    job: CaptureJob,
    participant: Participant,
    signatures: dict[int, bytes],
    domain: Domain,
    vault: KeyVault,
) -> None:
    """Attach signatures (65 bytes r‖s‖v, as wallets return them) to a job's unsigned records.

    All or nothing: one bad signature rejects them all. When none is left unsigned, the job's
    records are queued for the submitter. Each signature is recovered here, so each record is
    stamped (`tracechain.stamps`) with its event's content, whose hash id and commitment capture
    derived from it.
    """
    stamps = VerificationStamps(vault.stamp_key, domain.separator)
    records = {r.id: r for r in queries.records_of_capture(session, job.id)}
    problems: list[DocumentProblem] = []
    for record_id, signature in signatures.items():
        record = records.get(record_id)
        location = f"signatures[{record_id}]"
        if record is None or record.status != RecordStatus.UNSIGNED:
            problems.append(
                DocumentProblem(location, "no record of this job awaits a signature under this id")
            )
            continue
        if len(signature) != 65:
            problems.append(
                DocumentProblem(location, f"a signature has 65 bytes (r, s, v), not {len(signature)}")
            )
            continue
        r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
        recovery_id = v - 27 if v >= 27 else v
        vs = (s | (recovery_id << 255)).to_bytes(32, "big")
        signed = SignedEvent(record.trace_event(), participant.address, r, vs)
        if recovery_id not in (0, 1) or recover_signer(domain.separator, signed) != participant.address:
            problems.append(
                DocumentProblem(location, f"the signature is not {participant.address}'s over this record")
            )
            continue
        record.r, record.vs = r, vs
        record.verification_stamp = stamps.stamp(stored_content(stamps, record.event), signed, record.head)
    if problems:
        raise InvalidSignatures(problems)
    if all(record.r is not None for record in records.values()):
        for record in records.values():
            record.status = RecordStatus.QUEUED
        job.status = CaptureStatus.PENDING


def stored_content(stamps: VerificationStamps, event: Event) -> bytes:
    """The stamps' digest of a stored event's content, as capture stored it."""
    return stamps.event_content(
        event.event_id,
        stored_json(event.body),
        None if event.context is None else stored_json(event.context),
        event.disclosure_seed,
        event.declaration,
    )
