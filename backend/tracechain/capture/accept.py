"""Capture, stage 2, under the capture lock: which of a document's events are new, and may be.

An event the participant captured before is a duplicate (captured once); an eventID another event
was declared with is refused; an error declaration may withdraw only its signer's capture (or, by an
auditor, anyone's). Problems are collected per event, so that `proceed` can leave those events out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from tracechain.capture.prepare import PreparedDocument, StoredKey, declared_id, document_order
from tracechain.disclosure import EventFields
from tracechain.epcis.mapping import Effect
from tracechain.epcis.schema import DocumentProblem
from tracechain.store import queries
from tracechain.store.models import Participant


@dataclass(frozen=True)
class NewEvent:
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


@dataclass
class Problems:
    """The problems found in a document's events, and which events (by prepared index) they are in."""

    found: list[DocumentProblem] = field(default_factory=list)
    events: set[int] = field(default_factory=set)

    def add(self, index: int, location: str, reason: str) -> None:
        self.found.append(DocumentProblem(location, reason))
        self.events.add(index)


def rejected_events(rejected: list[DocumentProblem]) -> dict[str, Any]:
    """A capture job's error (RFC 9457 fields) for the events `proceed` left out, each named."""
    events = [{"location": p.location, "reason": p.reason} for p in sorted(rejected, key=document_order)]
    return {
        "type": "epcisException:ValidationException",
        "title": "Events not captured",
        "status": 400,
        "reason": f"{len(events)} event(s) of the document were not captured; the others were",
        "events": events,
    }


def new_events(
    prepared: PreparedDocument, stored: set[StoredKey], problems: Problems, left_out: set[int]
) -> list[NewEvent]:
    """The document's events the participant has not captured before (the same event sent twice,
    in one document or two, is captured once) and that are not `left_out`; an event that cannot be
    read is a problem."""
    fresh: list[NewEvent] = []
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
        fresh.append(NewEvent(index, location, event, key[0], effects, named, seed, commitment))
    return fresh


def with_ids_of_their_own(session: Session, fresh: list[NewEvent], problems: Problems) -> list[NewEvent]:
    """The events whose declared eventID no other event was declared with, stored or earlier in the
    document; each other is a problem. An event ID is unique across all events (EPCIS 2.0 REST
    binding): one naming two would let a rival's event answer, and be linked as a correction, for
    another's. The same event declared twice, captured by two parties, or an error declaration
    repeating the id of the event it withdraws, is one event. (A declared id equal to another's
    hash id is not refused, which would tell the capturer that event exists; it never finds that
    event's namesake: `queries.named_as`.)"""
    declared = {event.index: declared_id(event.body) for event in fresh}
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


def withdrawn_captures(
    session: Session, participant: Participant, fresh: list[NewEvent], problems: Problems
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
