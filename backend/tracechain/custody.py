"""TraceRegistry's custody rules as plain Python over an in-memory state.

The service checks a whole document against these rules before it signs anything, so a document
with one custody-violating event is rejected whole and nothing is written; the property tests run
random call sequences against the contract and this model side by side, so the two cannot drift.
A violation is reported as the same error the contract would revert with, by name and arguments.

The model also keeps the contract's trade facts (`SubjectFacts`: first receipts and handovers per
party, first clearance, first reporters of excursions and recalls), for the same parity. No rule
depends on them, so capture's projection does not store them: the chain is their record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tracechain.chain.reverts import error_class
from tracechain.chain.trace_event import (
    VERDICT_CLEARED,
    VERDICT_REJECTED,
    ZERO_ADDRESS,
    ZERO_HASH,
    Kind,
    Status,
    TraceEvent,
    chain_of,
    next_head,
)
from tracechain.errors import ContractRevert

MAX_PACKING_DEPTH = 8
MAX_REPORTERS = 3
MAX_EXCURSIONS = 0xFFFF  # the contract's uint16 count saturates there
PARTICIPANT_ROLES = ("manufacturer", "carrier", "customs", "retailer", "auditor")


def violation(error: str, **arguments: Any) -> ContractRevert:
    """The revert the contract would raise for an event, found before the event is sent: the same
    type (`chain.reverts` builds one per custom error) with the same arguments."""
    return error_class(error)(arguments)


@dataclass
class Unit:
    """A product, lot or logistic unit as the contract stores it."""

    manufacturer: str
    status: Status = Status.ACTIVE
    recalled: bool = False
    cleared: bool = False
    excursions: int = 0
    height: int = 0  # levels of packing below it, at the most it has held
    packed_unit: bool = False  # came into being by packing: only an auditor may recall it
    custodian: str | None = None  # None while the manufacturer holds it, as on chain
    pending_receiver: str = ZERO_ADDRESS
    parent: bytes = ZERO_HASH


@dataclass
class PartyFacts:
    """TraceRegistry.PartyFacts of one party and one subject; None: not yet (the chain's zero)."""

    received_at: int | None = None
    handed_over_at: int | None = None
    excursions_before_receipt: int = 0


@dataclass(frozen=True)
class Report:
    """A party's first excursion or recall report of a subject (ordinal: zero for a recall)."""

    reporter: str
    at: int
    ordinal: int


@dataclass
class SubjectFacts:
    """The facts the contract keeps for good about one subject (see TraceRegistry's notice)."""

    parties: dict[str, PartyFacts] = field(default_factory=dict)
    cleared_at: int | None = None
    excursion_reports: list[Report] = field(default_factory=list)
    recall_reports: list[Report] = field(default_factory=list)

    def party(self, address: str) -> PartyFacts:
        return self.parties.setdefault(address, PartyFacts())


def _report(reports: list[Report], reporter: str, at: int, ordinal: int) -> None:
    if len(reports) < MAX_REPORTERS and all(r.reporter != reporter for r in reports):
        reports.append(Report(reporter, at, ordinal))


class _CopyOnRead(dict[bytes, Unit]):
    """The units of `base`, each copied from it the first time it is read or replaced here."""

    def __init__(self, base: dict[bytes, Unit]) -> None:
        super().__init__()
        self._base = base

    def __missing__(self, subject: bytes) -> Unit:
        unit = replace(self._base[subject])  # KeyError for a unit that exists in neither
        self[subject] = unit
        return unit

    def get(self, subject: bytes, default: Unit | None = None) -> Unit | None:  # type: ignore[override]
        try:
            return self[subject]
        except KeyError:
            return default

    def __contains__(self, subject: object) -> bool:
        return dict.__contains__(self, subject) or subject in self._base

    def changed(self) -> dict[bytes, Unit]:
        return dict(dict.items(self))


@dataclass
class CustodyState:
    """The registry's state: units, heads and who holds which role. Addresses are checksummed."""

    units: dict[bytes, Unit] = field(default_factory=dict)
    heads: dict[bytes, bytes] = field(default_factory=dict)
    roles: dict[str, set[str]] = field(default_factory=dict)
    facts: dict[bytes, SubjectFacts] = field(default_factory=dict)

    def head(self, chain: bytes) -> bytes:
        """The head of a chain: a subject's facts, or one reporter's observations of it (`chain_of`)."""
        return self.heads.get(chain, ZERO_HASH)

    def has_role(self, account: str, role: str) -> bool:
        return role in self.roles.get(account, set())

    def root(self, subject: bytes) -> bytes:
        while (unit := self.units.get(subject)) is not None and unit.parent != ZERO_HASH:
            subject = unit.parent
        return subject

    def custodian(self, subject: bytes) -> str:
        unit = self.units.get(self.root(subject))
        if unit is None or unit.status is not Status.ACTIVE:
            return ZERO_ADDRESS
        return unit.custodian or unit.manufacturer

    def pending_receiver(self, subject: bytes) -> str:
        unit = self.units.get(self.root(subject))
        return unit.pending_receiver if unit else ZERO_ADDRESS

    def recalled(self, subject: bytes) -> bool:
        while (unit := self.units.get(subject)) is not None:
            if unit.recalled:
                return True
            subject = unit.parent
        return False

    def copy(self) -> CustodyState:
        return CustodyState(
            {key: replace(unit) for key, unit in self.units.items()},
            dict(self.heads),
            {key: set(roles) for key, roles in self.roles.items()},
            {
                key: SubjectFacts(
                    {party: replace(f) for party, f in facts.parties.items()},
                    facts.cleared_at,
                    list(facts.excursion_reports),
                    list(facts.recall_reports),
                )
                for key, facts in self.facts.items()
            },
        )

    def facts_of(self, subject: bytes) -> SubjectFacts:
        """The subject's trade facts (empty for one that has none)."""
        return self.facts.get(subject) or SubjectFacts()

    def apply(self, event: TraceEvent, signer: str, at: int = 0) -> bytes:
        """Apply one event signed by `signer` (signature assumed valid) and return the new head.

        `at` is the block timestamp the event is recorded at, which only the trade facts keep (0 when
        not known yet, as at capture). Where the contract would revert, raises the same ContractRevert
        and leaves the state untouched.
        """
        subject = event.subject
        chain = chain_of(subject, event.kind, signer)
        head = self.head(chain)
        if event.prev_head != head:
            raise violation("TraceRegistryStaleHead", subject=subject, head=head, signedHead=event.prev_head)
        effect = _EFFECTS[event.kind]
        # Effects change units in place; they work on copies of the units they touch, kept only
        # when the event holds. (Copying every unit per event made a document's check quadratic.)
        staged_units = _CopyOnRead(self.units)
        sender = self.custodian(subject) if event.kind is Kind.RECEIVE else ZERO_ADDRESS
        effect(CustodyState(staged_units, self.heads, self.roles), event, signer)
        self.units.update(staged_units.changed())
        self._record_facts(event, signer, at, sender)
        self.heads[chain] = next_head(head, event.event_hash)
        return self.heads[chain]

    def _record_facts(self, event: TraceEvent, signer: str, at: int, sender: str) -> None:
        """The facts the contract writes once an event's effect holds (see TraceRegistry's notice)."""
        kind, subject = event.kind, event.subject
        if kind is Kind.RECEIVE:
            facts = self.facts.setdefault(subject, SubjectFacts())
            sent = facts.party(sender)
            if sent.handed_over_at is None:
                sent.handed_over_at = at
            received = facts.party(signer)
            if received.received_at is None:
                received.received_at = at
                received.excursions_before_receipt = self.units[subject].excursions
        elif kind is Kind.INSPECT and event.ref == VERDICT_CLEARED:
            facts = self.facts.setdefault(subject, SubjectFacts())
            if facts.cleared_at is None:
                facts.cleared_at = at
        elif kind is Kind.EXCURSION:
            reports = self.facts.setdefault(subject, SubjectFacts()).excursion_reports
            _report(reports, signer, at, self.units[subject].excursions)
        elif kind is Kind.RECALL:
            _report(self.facts.setdefault(subject, SubjectFacts()).recall_reports, signer, at, 0)

    # ---------------------------------------------------------------- checks

    def _require_role(self, role: str, signer: str) -> None:
        if not self.has_role(signer, role):
            raise violation("TraceRegistryMissingRole", signer=signer, role=role)

    def _require_participant(self, signer: str) -> None:
        if not any(self.has_role(signer, role) for role in PARTICIPANT_ROLES):
            raise violation("TraceRegistryNotParticipant", signer=signer)

    def _active(self, subject: bytes) -> Unit:
        unit = self.units.get(subject)
        if unit is None:
            raise violation("TraceRegistryUnknownSubject", subject=subject)
        if unit.status is not Status.ACTIVE:
            raise violation("TraceRegistryNotActive", subject=subject, status=unit.status)
        return unit

    def _require_free_custodian(self, subject: bytes, signer: str) -> Unit:
        unit = self._active(subject)
        custodian = self.custodian(subject)
        if signer != custodian:
            raise violation("TraceRegistryNotCustodian", subject=subject, caller=signer, custodian=custodian)
        proposed = self.pending_receiver(subject)
        if proposed != ZERO_ADDRESS:
            raise violation("TraceRegistryInTransit", subject=subject, proposedReceiver=proposed)
        return unit

    def _require_unpacked(self, subject: bytes, unit: Unit) -> None:
        if unit.parent != ZERO_HASH:
            raise violation("TraceRegistryPacked", subject=subject, parent=unit.parent)

    # ---------------------------------------------------------------- effects, one per Kind

    def _observe(self, event: TraceEvent, signer: str) -> None:
        self._require_participant(signer)

    def _commission(self, event: TraceEvent, signer: str) -> None:
        self._require_role("manufacturer", signer)
        if event.subject in self.units:
            raise violation("TraceRegistryAlreadyCommissioned", subject=event.subject)
        self.units[event.subject] = Unit(manufacturer=signer)

    def _aggregate(self, event: TraceEvent, signer: str) -> None:
        self._require_participant(signer)
        child, parent = event.subject, event.ref
        if parent == ZERO_HASH:
            raise violation("TraceRegistryInvalidParent", subject=child, parent=parent)
        unit = self._require_free_custodian(child, signer)
        self._require_unpacked(child, unit)
        if parent in self.units:
            self._require_free_custodian(parent, signer)
        else:
            self.units[parent] = Unit(manufacturer=signer, packed_unit=True)
        ancestor, ancestors = parent, 0
        while ancestor != ZERO_HASH:
            if ancestor == child:
                raise violation("TraceRegistryPackingCycle", subject=child, parent=parent)
            ancestors += 1
            if ancestors + unit.height > MAX_PACKING_DEPTH:
                raise violation("TraceRegistryPackingTooDeep", subject=child, maxDepth=MAX_PACKING_DEPTH)
            ancestor = self.units[ancestor].parent
        unit.parent = parent
        # Heights only grow, as on chain: see TraceRegistry._aggregate.
        height, above = unit.height + 1, parent
        while above != ZERO_HASH and self.units[above].height < height:
            self.units[above].height = height
            height, above = height + 1, self.units[above].parent

    def _disaggregate(self, event: TraceEvent, signer: str) -> None:
        self._require_participant(signer)
        child, parent = event.subject, event.ref
        unit = self._require_free_custodian(child, signer)
        if unit.parent == ZERO_HASH or unit.parent != parent:
            raise violation(
                "TraceRegistryNotPackedIn", subject=child, expectedParent=parent, actualParent=unit.parent
            )
        unit.recalled = self.recalled(child)
        unit.parent = ZERO_HASH
        unit.custodian = signer

    def _ship(self, event: TraceEvent, signer: str) -> None:
        self._require_participant(signer)
        unit = self._active(event.subject)
        self._require_unpacked(event.subject, unit)
        custodian = self.custodian(event.subject)
        if signer != custodian:
            raise violation(
                "TraceRegistryNotCustodian", subject=event.subject, caller=signer, custodian=custodian
            )
        if event.counterpart in (ZERO_ADDRESS, signer):
            raise violation("TraceRegistryInvalidReceiver", subject=event.subject, receiver=event.counterpart)
        unit.pending_receiver = event.counterpart

    def _receive(self, event: TraceEvent, signer: str) -> None:
        self._require_participant(signer)
        unit = self._active(event.subject)
        self._require_unpacked(event.subject, unit)
        if signer != unit.pending_receiver:
            raise violation(
                "TraceRegistryNotProposedReceiver",
                subject=event.subject,
                caller=signer,
                proposedReceiver=unit.pending_receiver,
            )
        unit.pending_receiver = ZERO_ADDRESS
        unit.custodian = signer

    def _inspect(self, event: TraceEvent, signer: str) -> None:
        self._require_role("customs", signer)
        unit = self._active(event.subject)
        if event.ref not in (VERDICT_CLEARED, VERDICT_REJECTED):
            raise violation("TraceRegistryInvalidVerdict", subject=event.subject, verdict=event.ref)
        unit.cleared = event.ref == VERDICT_CLEARED

    def _sell(self, event: TraceEvent, signer: str) -> None:
        self._require_participant(signer)
        self._require_role("retailer", signer)
        unit = self._require_free_custodian(event.subject, signer)
        if unit.parent != ZERO_HASH:
            unit.recalled = self.recalled(event.subject)
            unit.parent = ZERO_HASH
        unit.status = Status.SOLD

    def _recall(self, event: TraceEvent, signer: str) -> None:
        unit = self.units.get(event.subject)
        if unit is None:
            raise violation("TraceRegistryUnknownSubject", subject=event.subject)
        manufacturer = ZERO_ADDRESS if unit.packed_unit else unit.manufacturer
        if signer != manufacturer and not self.has_role(signer, "auditor"):
            raise violation(
                "TraceRegistryNotManufacturerOrAuditor",
                subject=event.subject,
                signer=signer,
                manufacturer=manufacturer,
            )
        unit.recalled = True

    def _consume(self, event: TraceEvent, signer: str) -> None:
        self._require_participant(signer)
        unit = self._require_free_custodian(event.subject, signer)
        self._require_unpacked(event.subject, unit)
        unit.status = Status.CONSUMED

    def _excursion(self, event: TraceEvent, signer: str) -> None:
        self._require_participant(signer)
        unit = self._active(event.subject)
        custodian = self.custodian(event.subject)
        if signer != custodian:
            raise violation(
                "TraceRegistryNotCustodian", subject=event.subject, caller=signer, custodian=custodian
            )
        unit.excursions = min(unit.excursions + 1, MAX_EXCURSIONS)

    def _withdraw(self, event: TraceEvent, signer: str) -> None:
        """See TraceRegistry._withdraw: only the withdrawn event's signer, or an auditor."""
        self._require_participant(signer)
        if event.ref == ZERO_HASH:
            raise violation(
                "TraceRegistryInvalidWithdrawal", subject=event.subject, withdrawnEventHash=event.ref
            )
        if event.counterpart != signer and not self.has_role(signer, "auditor"):
            raise violation(
                "TraceRegistryNotSignerOrAuditor",
                subject=event.subject,
                signer=signer,
                withdrawnSigner=event.counterpart,
            )


_EFFECTS = {
    Kind.OBSERVE: CustodyState._observe,
    Kind.COMMISSION: CustodyState._commission,
    Kind.AGGREGATE: CustodyState._aggregate,
    Kind.DISAGGREGATE: CustodyState._disaggregate,
    Kind.SHIP: CustodyState._ship,
    Kind.RECEIVE: CustodyState._receive,
    Kind.INSPECT: CustodyState._inspect,
    Kind.SELL: CustodyState._sell,
    Kind.RECALL: CustodyState._recall,
    Kind.CONSUME: CustodyState._consume,
    Kind.EXCURSION: CustodyState._excursion,
    Kind.WITHDRAW: CustodyState._withdraw,
}
