"""A product's full history, verified: its own events, those of the units it travelled in, and its
ingredients' histories, recursively. Read from the store; no chain calls.

Each event is checked against what was signed and recorded: its CBV hash id recomputed from the
stored content, the commitment to its fields (`disclosure`) recomputed from that content and its
stored seed and found in every chain record, every chain record's signature recovered to the
stored signer, the signer holding a role, each chain the trace holds whole (the facts of the
product, of the units it travelled in and of its ingredients, and each reporter's observations of
them) unbroken from zero, and a receipt accepted only by the party the shipment named. Other
subjects an event names (the other items packed in one case) are checked by their signatures, not
for histories this trace does not hold.
In merkle mode each record's stored inclusion proof must also lead from its leaf to the root the
indexer saw anchored.

What an event says is a *fact* when it carries a record of a kind only the party the chain allows
may record (origin, packing, custody, inspection, sale, recall, destruction, an excursion the
custodian reported, a withdrawal by the event's own signer or an auditor); an event with nothing
but observation records is an *observation by its reporter*, which anyone may make and which
changes nothing. The verdict: `tampered` if any check fails (with the reasons), else `pending` while
a fact awaits confirmation, else `verified`. An observation still being recorded is shown as such
and holds nobody's verdict back.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from tracechain.chain.eip712 import Domain, recover_signer
from tracechain.chain.merkle import leaf_of, verify_proof
from tracechain.chain.trace_event import (
    OBSERVATION_KINDS,
    ZERO_HASH,
    Kind,
    SignedEvent,
    chain_of,
    next_head,
    subject_id,
)
from tracechain.disclosure import HASH_ID_FIELD, EventFields
from tracechain.epcis.event_hash import declaration_digest, event_hash_id
from tracechain.epcis.mapping import bare_vocabulary
from tracechain.stamps import VerificationStamps
from tracechain.store import queries
from tracechain.store.models import RecordStatus
from tracechain.store.queries import EventRow, RecordRow

MAX_TRACE_DEPTH = 16  # levels of packing and ingredients followed


class Verdict(StrEnum):
    VERIFIED = "verified"
    PENDING = "pending"
    TAMPERED = "tampered"


class Statement(StrEnum):
    """What an event is on a product's record (see the module docstring)."""

    FACT = "fact"
    OBSERVATION = "observation"
    WITHDRAWAL = "withdrawal"


@dataclass
class EventCheck:
    """The verification of one event; `problems` empty means it holds."""

    content_hash_matches: bool = True
    signature_valid: bool = True
    signer_holds_role: bool = True
    head_matches: bool = True
    custody_continuous: bool = True
    anchor_proof_valid: bool = True
    """Merkle mode: each anchored record's proof leads from its leaf to its batch's root."""
    withdrawal_valid: bool = True
    """A declaration withdraws captures of its event by the signers it names, who are its own signer
    (or it is an auditor's)."""
    confirmed: bool = True
    problems: list[str] = field(default_factory=list)
    stamped: bool = False
    """Every record's verification stamp held (`tracechain.stamps`): the content, signature and head
    checks were done when it was signed, for exactly these bytes, and not again."""

    def fail(self, check: str, problem: str) -> None:
        setattr(self, check, False)
        self.problems.append(problem)

    @property
    def verdict(self) -> Verdict:
        if self.problems:
            return Verdict.TAMPERED
        return Verdict.VERIFIED if self.confirmed else Verdict.PENDING


@dataclass
class TraceEntry:
    event: EventRow
    via: str
    """The identifier that brought the event in: the product, a unit it was packed in, an ingredient."""
    relation: str  # "self", "packed in", "ingredient"
    check: EventCheck
    statement: Statement = Statement.FACT
    withdrawn_by: list[TraceEntry] = field(default_factory=list)
    """Declarations in this trace by which the event's signer (or an auditor) withdrew it as erroneous."""
    corrected_by: list[TraceEntry] = field(default_factory=list)
    """The corrective events in this trace that its withdrawing declarations name (by their declared
    eventID or hash id), each signed by the declaration's signer or the withdrawn event's."""
    corrective_ids_found: set[str] = field(default_factory=set)
    """Which of `corrective_ids` an event of `corrected_by` answered to (kept here: a reader's view
    of an event may leave out the eventID it was found by)."""
    view: str = "full"
    """How the reader sees the event (`visibility.View`): full, partner or public."""
    shown: frozenset[str] | None = None
    """The fields a reader is shown (`visibility.seen_trace`); None: the event whole."""
    withheld: list[str] = field(default_factory=list)
    """The event's fields the reader is not shown."""

    @property
    def shown_id(self) -> str | None:
        """The event's hash id, if the reader is shown it."""
        return self.event.event_id if self.shown is None or HASH_ID_FIELD in self.shown else None

    @property
    def corrective_ids(self) -> list[str]:
        """The eventIDs of the corrective events named by the declarations withdrawing this one
        (`errorDeclaration.correctiveEventIDs`), as the reader is shown those declarations."""
        named = (
            (declaration.event.body.get("errorDeclaration") or {}).get("correctiveEventIDs") or []
            for declaration in self.withdrawn_by
        )
        return list(
            dict.fromkeys(i for ids in named if isinstance(ids, list) for i in ids if isinstance(i, str))
        )

    def facts(self, kind: Kind) -> list[RecordRow]:
        """The event's records of `kind`."""
        return [record for record in self.event.records if record.kind == kind]


@dataclass
class Trace:
    epc: str
    entries: list[TraceEntry]
    units: list[str]
    ingredients: list[str]
    origin: TraceEntry | None
    """The event that commissioned the product itself: its COMMISSION record says who made it."""

    @property
    def origin_verified(self) -> bool:
        return self.origin is not None

    @property
    def verdict(self) -> Verdict:
        if any(entry.check.verdict is Verdict.TAMPERED for entry in self.entries):
            return Verdict.TAMPERED
        waiting = any(
            entry.check.verdict is Verdict.PENDING and entry.statement is not Statement.OBSERVATION
            for entry in self.entries
        )
        return Verdict.PENDING if waiting or not self.entries else Verdict.VERIFIED

    @property
    def reasons(self) -> list[str]:
        return [
            f"{e.shown_id or e.event.event_time.isoformat()}: {p}"
            for e in self.entries
            for p in e.check.problems
        ]


def build_trace(
    session: Session, epc: str, domain: Domain, stamps: VerificationStamps | None = None
) -> Trace:
    """The verified history of `epc` (canonical form) from the read model. With `stamps`, a record
    whose verification stamp holds is not checked again for what the stamp covers."""
    related, loaded = _related_identifiers(session, epc)
    # Events of one capture can share a time: then the order they were captured in decides.
    events = sorted(loaded, key=lambda e: (e.event_time, min((r.id for r in e.records), default=e.row_id)))
    roles = queries.roles_by_address(session, {event.signer for event in events})  # all a trace reads
    chains = _HeadChains(events, {subject_id(identifier) for identifier in related})
    entries = []
    for event in events:
        via, relation = _why_included(event, related, epc)
        check = _check(event, domain, roles, chains, stamps)
        entries.append(TraceEntry(event, via, relation, check, _statement(event)))
    _link_withdrawals(entries, roles)
    _link_corrections(entries)
    product = subject_id(epc)
    return Trace(
        epc=epc,
        entries=entries,
        units=sorted(i for i, rel in related.items() if rel == "packed in"),
        ingredients=sorted(i for i, rel in related.items() if rel == "ingredient"),
        origin=next(
            (e for e in entries if any(r.subject == product for r in e.facts(Kind.COMMISSION))), None
        ),
    )


def _statement(event: EventRow) -> Statement:
    if event.declaration:
        return Statement.WITHDRAWAL
    if event.records and all(record.kind in OBSERVATION_KINDS for record in event.records):
        return Statement.OBSERVATION
    return Statement.FACT


def _link_withdrawals(entries: list[TraceEntry], roles: dict[str, set[str]]) -> None:
    """Each declaration withdraws the captures of its event whose signers its records name, and
    whose commitments its records carry as `ref`, if those records are by the named signer or by
    an auditor (as the chain allows); a record naming a capture this trace does not hold withdraws
    nothing and fails its check."""
    captures = {
        (entry.event.event_id, entry.event.signer): entry
        for entry in entries
        if entry.statement is not Statement.WITHDRAWAL
    }
    for declaration in (entry for entry in entries if entry.statement is Statement.WITHDRAWAL):
        for author, ref in {(record.counterpart, record.ref) for record in declaration.event.records}:
            withdrawn = captures.get((declaration.event.event_id, author))
            if withdrawn is not None and ref not in {record.event_hash for record in withdrawn.event.records}:
                withdrawn = None  # the event's id, but not what that capture committed to
            allowed = author == declaration.event.signer or "auditor" in roles.get(
                declaration.event.signer, ()
            )
            if withdrawn is None or not allowed:
                declaration.check.fail(
                    "withdrawal_valid",
                    f"withdraws a capture of {declaration.event.event_id} by {author}, which "
                    + (
                        "this trace does not hold"
                        if withdrawn is None
                        else "only it or an auditor may withdraw"
                    ),
                )
            elif declaration not in withdrawn.withdrawn_by:
                withdrawn.withdrawn_by.append(declaration)


def _link_corrections(entries: list[TraceEntry]) -> None:
    """A withdrawn event is corrected by the events its declarations name as corrective, found by
    declared eventID or hash id, whenever each was captured. Only those signed by a declaration's
    signer or by the withdrawn event's own: anyone may declare any eventID, and a rival's event
    must not pass for the correction."""
    by_id: dict[str, list[TraceEntry]] = {}
    for entry in entries:
        if entry.statement is Statement.WITHDRAWAL:
            continue
        for known_as in {entry.event.event_id, entry.event.body.get("eventID")}:
            if isinstance(known_as, str):
                by_id.setdefault(known_as, []).append(entry)
    for entry in entries:
        if not entry.withdrawn_by:
            continue
        trusted = {entry.event.signer, *(declaration.event.signer for declaration in entry.withdrawn_by)}
        for corrective_id in entry.corrective_ids:
            for corrective in by_id.get(corrective_id, []):
                if corrective.event.signer in trusted:
                    entry.corrective_ids_found.add(corrective_id)
                    if corrective not in entry.corrected_by:
                        entry.corrected_by.append(corrective)


def _related_identifiers(session: Session, epc: str) -> tuple[dict[str, str], list[EventRow]]:
    """epc -> how it relates: the product itself, units it was packed in, ingredients (recursively);
    and every event naming any of them, followed level by level through the events' records."""
    reader = _EventReader(session, queries.trace_closure(session, epc, MAX_TRACE_DEPTH))
    related = {epc: "self"}
    loaded: dict[int, EventRow] = {}
    frontier = [epc]
    for _ in range(MAX_TRACE_DEPTH):
        found: list[str] = []
        frontier_subjects = {subject_id(f) for f in frontier}
        for event in reader.naming(frontier):
            loaded[event.row_id] = event
            for record in event.records:
                if record.subject_epc in frontier and record.kind == Kind.AGGREGATE:
                    parent = _epc_of(event, record.ref)
                    if parent and parent not in related:
                        related[parent] = "packed in"
                        found.append(parent)
                consumed_into_frontier = record.kind == Kind.CONSUME and record.ref in frontier_subjects
                if consumed_into_frontier and record.subject_epc not in related:
                    related[record.subject_epc] = "ingredient"
                    found.append(record.subject_epc)
        if not found:
            break
        frontier = found
    else:  # the depth limit: the last level found is included, not followed further
        loaded.update((event.row_id, event) for event in reader.naming(frontier))
    return related, list(loaded.values())


class _EventReader:
    """The events naming each identifier, read for the whole closure in one go.

    The closure query finds units and ingredients by the roles identifiers play in events; the walk
    above follows the signed records instead. They agree unless stored rows were edited, and then
    whatever the walk reaches beyond the closure is read on demand, so the trace is the same either way.
    """

    def __init__(self, session: Session, identifiers: Collection[str]) -> None:
        self._session = session
        self._read: set[str] = set()
        self._events: dict[int, EventRow] = {}
        self._naming: dict[str, list[EventRow]] = {}
        self._read_events_naming(identifiers)

    def naming(self, identifiers: Collection[str]) -> list[EventRow]:
        """Events naming any of `identifiers`, in event-time order."""
        self._read_events_naming([i for i in identifiers if i not in self._read])
        found = {e.row_id: e for i in identifiers for e in self._naming.get(i, ())}
        return sorted(found.values(), key=lambda e: (e.event_time, e.row_id))

    def _read_events_naming(self, identifiers: Collection[str]) -> None:
        if not identifiers:
            return
        for event in queries.event_rows_naming(self._session, identifiers):
            if event.row_id not in self._events:
                self._events[event.row_id] = event
                for identifier in event.epcs:
                    self._naming.setdefault(identifier, []).append(event)
        self._read.update(identifiers)


def _epc_of(event: EventRow, subject: bytes) -> str | None:
    """The identifier of a subject hash among those the event names."""
    return next((epc for epc in event.epcs if subject_id(epc) == subject), None)


def _why_included(event: EventRow, related: dict[str, str], epc: str) -> tuple[str, str]:
    named = set(event.epcs)
    if epc in named:
        return epc, "self"
    via = next(identifier for identifier in related if identifier in named)
    return via, related[via]


class _HeadChains:
    """Each chain's records among the trace's events (a subject's facts, each reporter's observations
    of it), in recording order: the record before each one. Only the chains of `whole` subjects (the
    product, its units, its ingredients) are whole here: the trace reads every event naming them."""

    def __init__(self, events: list[EventRow], whole: set[bytes]) -> None:
        self._whole = whole
        chains: dict[bytes, list[RecordRow]] = {}
        for event in events:
            for record in event.records:
                chains.setdefault(_chain(record), []).append(record)
        self._chains = {subject: sorted(chain, key=lambda r: r.id) for subject, chain in chains.items()}
        self._positions = {
            record.id: position for chain in self._chains.values() for position, record in enumerate(chain)
        }

    def continuous(self, record: RecordRow) -> bool:
        """The record follows its predecessor in its head chain, which starts at zero; a receipt is by
        the party the last shipment named.

        Every record of a subject belongs to an event naming it, so the trace holds the whole chain
        of each subject it follows. Another subject an event names (an item packed in the same case)
        has a history of its own, which this trace neither holds nor needs: its records are checked
        by their signatures alone.
        """
        if record.subject not in self._whole:
            return True
        ordered, position = self._chains[_chain(record)], self._positions[record.id]
        expected_prev = ZERO_HASH if position == 0 else ordered[position - 1].head
        if record.prev_head != expected_prev:
            return False
        if record.kind == Kind.RECEIVE:
            ship = next((r for r in reversed(ordered[:position]) if r.kind == Kind.SHIP), None)
            return ship is not None and ship.counterpart == record.signer
        return True


def _chain(record: RecordRow) -> bytes:
    """The chain the record joined, from its signed fields (not from the stored column, which an
    edit could change)."""
    return chain_of(record.subject, Kind(record.kind), record.signer)


def _check(
    event: EventRow,
    domain: Domain,
    roles: dict[str, set[str]],
    chains: _HeadChains,
    stamps: VerificationStamps | None,
) -> EventCheck:
    check = EventCheck()
    stamped = _stamped_records(event, stamps)
    check.stamped = bool(event.records) and len(stamped) == len(event.records)
    # A record's stamp holding vouches for the event's content too: it was stamped over it.
    if not stamped and _hash_id_of(event.stored_body, event.stored_context) != event.event_id:
        check.fail("content_hash_matches", "stored content does not hash to the event's id")
    body_biz_step = event.body.get("bizStep")
    if event.event_type != event.body.get("type") or event.biz_step != (
        bare_vocabulary(body_biz_step) if body_biz_step else None
    ):
        check.fail("content_hash_matches", "indexed fields disagree with the stored content")
    if not roles.get(event.signer):
        check.fail("signer_holds_role", f"signer {event.signer} holds no participant role")
    signed_hash = (
        None
        if check.stamped
        else _declaration_digest(event)
        if event.declaration
        else _commitment_of(event.stored_body, event.stored_context, event.event_id, event.disclosure_seed)
    )
    for record in event.records:
        vouched = record.id in stamped
        if not vouched and record.event_hash != signed_hash:
            check.fail(
                "content_hash_matches", f"the recorded hash of {record.subject_epc} is not the event's"
            )
        if (record.kind == Kind.WITHDRAW) != event.declaration:
            check.fail(
                "content_hash_matches", f"the record of {record.subject_epc} is not of the event's kind"
            )
        if record.r is None:
            check.confirmed = False  # still awaiting its participant's own signature
        elif record.signer != event.signer or (
            not vouched and _recovered_signer(domain.separator, record.signed_event()) != record.signer
        ):
            check.fail("signature_valid", f"the signature on {record.subject_epc}'s record does not recover")
        if record.anchor_root is not None and not _included(record, domain):
            check.fail(
                "anchor_proof_valid", f"the record of {record.subject_epc} is not in its anchored batch"
            )
        if not vouched and record.head != _next_head(record.prev_head, record.event_hash):
            check.fail(
                "head_matches", f"the head of {record.subject_epc} is not keccak256(previous head, hash)"
            )
        if not chains.continuous(record):
            check.fail("custody_continuous", f"an event of {record.subject_epc} is missing before this one")
        if record.status != RecordStatus.CONFIRMED:
            check.confirmed = False
    return check


def _stamped_records(event: EventRow, stamps: VerificationStamps | None) -> set[int]:
    """The ids of the event's records whose verification stamps hold for the rows as read now."""
    if stamps is None or not any(record.verification_stamp for record in event.records):
        return set()
    content = stamps.event_content(
        event.event_id, event.stored_body, event.stored_context, event.disclosure_seed, event.declaration
    )
    return {
        record.id
        for record in event.records
        if record.r is not None
        and record.vs is not None
        and stamps.holds(content, record.signed_event(), record.head, record.verification_stamp)
    }


def _declaration_digest(event: EventRow) -> bytes | None:
    try:
        return declaration_digest(event.body, event.event_id)
    except (KeyError, ValueError, TypeError):  # a body edited into something without a declaration
        return None


def _included(record: RecordRow, domain: Domain) -> bool:
    """The stored proof leads from the record's leaf (its signed event) to its anchored root."""
    if record.r is None or record.vs is None or record.merkle_proof is None:
        return False
    try:
        proof = [bytes.fromhex(sibling.removeprefix("0x")) for sibling in record.merkle_proof]
    except (ValueError, AttributeError):
        return False
    return verify_proof(proof, record.anchor_root or b"", leaf_of(domain.separator, record.signed_event()))


# The costly checks are pure functions of a row's content, memoised by that content: a product
# traced again (a popular item's QR code) is checked again in full against its rows, without
# recomputing what the same bytes gave before. Any edit changes the key, so tampering is still seen
# at once. The hash id is keyed by the body and context exactly as stored (key order, spacing).
@lru_cache(maxsize=16_384)
def _hash_id_of(stored_body: str, stored_context: str | None) -> str:
    try:
        body = json.loads(stored_body)
        return event_hash_id(body, None if stored_context is None else json.loads(stored_context))
    except Exception:  # a body edited into something the hash algorithm cannot read
        return ""


@lru_cache(maxsize=16_384)
def _commitment_of(stored_body: str, stored_context: str | None, hash_id: str, seed: bytes) -> bytes | None:
    """What the event's chain records must carry: its fields committed under its seed."""
    try:
        body = json.loads(stored_body)
        context = None if stored_context is None else json.loads(stored_context)
        return EventFields.of(body, context, hash_id, seed).commitment
    except Exception:  # a body edited into something that is not an object of fields
        return None


@lru_cache(maxsize=65_536)
def _recovered_signer(separator: bytes, signed: SignedEvent) -> str | None:
    return recover_signer(separator, signed)


@lru_cache(maxsize=65_536)
def _next_head(prev_head: bytes, event_hash: bytes) -> bytes:
    return next_head(prev_head, event_hash)


def trace_document(trace: Trace) -> dict[str, Any]:
    """The JSON the API answers with."""
    return {
        "epc": trace.epc,
        "verdict": trace.verdict.value,
        "reasons": trace.reasons,
        "originVerified": trace.origin_verified,
        "origin": None if trace.origin is None else _origin(trace.origin, subject_id(trace.epc)),
        "units": trace.units,
        "ingredients": trace.ingredients,
        "events": [
            {
                "eventID": entry.shown_id,
                "via": entry.via,
                "relation": entry.relation,
                "statement": entry.statement.value,
                "event": {**entry.event.body, "eventID": entry.shown_id}
                if entry.shown_id
                else entry.event.body,
                "view": entry.view,
                "withheld": entry.withheld,
                "signer": entry.event.signer,
                "withdrawnBy": [declaration.event.signer for declaration in entry.withdrawn_by],
                "correctiveEventIDs": entry.corrective_ids,
                "correctedBy": [
                    {"eventID": corrective.shown_id, "eventTime": corrective.event.event_time.isoformat()}
                    for corrective in entry.corrected_by
                ],
                "verification": {
                    "status": entry.check.verdict.value,
                    "contentHashMatches": entry.check.content_hash_matches,
                    "signatureValid": entry.check.signature_valid,
                    "signerHoldsRole": entry.check.signer_holds_role,
                    "headMatches": entry.check.head_matches,
                    "custodyContinuous": entry.check.custody_continuous,
                    "anchorProofValid": entry.check.anchor_proof_valid,
                    "withdrawalValid": entry.check.withdrawal_valid,
                    "confirmed": entry.check.confirmed,
                    "problems": entry.check.problems,
                    "records": [
                        {
                            "subject": record.subject_epc,
                            "kind": Kind(record.kind).name.lower(),
                            "status": record.status,
                            "block": record.block_number,
                            "logIndex": record.log_index,
                            "transaction": record.tx_hash,
                            "anchorRoot": "0x" + record.anchor_root.hex() if record.anchor_root else None,
                        }
                        for record in entry.event.records
                    ],
                },
            }
            for entry in trace.entries
        ],
    }


def _origin(entry: TraceEntry, product: bytes) -> dict[str, Any]:
    """Who made the product and when: the COMMISSION record of the product itself."""
    record = next(r for r in entry.facts(Kind.COMMISSION) if r.subject == product)
    return {"eventID": entry.shown_id, "manufacturer": record.signer, "time": record.time}
