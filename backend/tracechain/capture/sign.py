"""Capture, stage 3: each new event checked against the custody projection and signed.

The projection is the state the chain will have once the queued records land; `custody.py` applies
the contract's rules to it, so a document the contract would refuse is refused here, naming the
event and the rule. Each record is signed (EIP-712) over the head of the chain it joins, with the
participant's key held by the service; for a participant that keeps its own key, the records wait
unsigned (`signatures`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from tracechain.capture.accept import NewEvent, Problems
from tracechain.capture.prepare import event_time
from tracechain.chain.eip712 import Domain, EventSigner
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
from tracechain.epcis.event_hash import declaration_digest
from tracechain.epcis.mapping import Effect
from tracechain.errors import ContractRevert
from tracechain.keys import KeyVault
from tracechain.recovery import SubjectsBeingRepaired
from tracechain.store import queries
from tracechain.store.bulk import insert_rows
from tracechain.store.models import Participant, RecordStatus, SubjectState

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


@dataclass(frozen=True)
class NewRecord:
    """A chain record of a new event, as `sign_new_events` makes it."""

    index: int
    """Its event's index in the prepared document."""
    row: dict[str, Any]
    """Its row, as stored."""
    signed: SignedEvent | None
    """What the service signed; None while the record awaits its participant's own signature."""


def sign_new_events(
    session: Session,
    participant: Participant,
    fresh: list[NewEvent],
    withdrawn: dict[int, list[tuple[str, bytes]]],
    vault: KeyVault,
    domain: Domain,
    problems: Problems,
    first_violation_only: bool = False,
) -> list[NewRecord]:
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
    records: list[NewRecord] = []
    to_sign: list[TraceEvent] = []
    for event in fresh:
        time = int(event_time(event.body).timestamp())
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
                    NewRecord(
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
                        None,
                    )
                )
    if problems.found:
        return []  # signed only once none is left: under `proceed` a document may be checked again
    state.save()
    if signer is None:
        return records  # the participant signs them itself (`signatures`)
    signed_records = []
    for record, trace_event in zip(records, to_sign, strict=True):
        signed = signer.sign(trace_event)
        row = {**record.row, "r": signed.r, "vs": signed.vs, "status": RecordStatus.QUEUED}
        signed_records.append(NewRecord(record.index, row, signed))
    return signed_records


def _trace_events(
    event: NewEvent,
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


def _projection_keys(effect: Effect, signer: str) -> list[bytes]:
    """The projection rows an effect reads: its subject, its parent or output, and for an observation
    the signer's own chain of the subject (others are read when an effect turns into one)."""
    subject = subject_id(effect.subject)
    keys = [subject, chain_of(subject, effect.kind, signer)]
    return [*keys, subject_id(effect.ref_subject)] if effect.ref_subject else keys


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
