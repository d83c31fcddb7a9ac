"""Who sees what of the events tracechain holds.

Every read of events decides here (the trace, its page and bundles, `/events`, `/epcs`) and the
store filters listings with the same rules (`queries.visible_events`), so no endpoint can forget
them. For one viewer each event is shown in one of three views, or not listed at all:

- **full**, the event as captured: to its own signer, to whoever its signer granted it to (all its
  events, those naming one identifier, or those of one business step), and to the admin;
- **partner**, all but the business transactions and private extensions: to a party the event names,
  in its sourceList or destinationList or as the receiver its shipment proposes custody to;
- **public**, who, when, where and what happened (type, action, time, business step, disposition,
  read point and location, the unit it travelled in, sensor readings, certifications): to anyone for
  an event in a product's trace, and in listings to a participant that took part in the journey of
  something the event names (signed an event naming it, was named by one, or was shipped it).
  A signer may make more of its events public, per product class (`PublicFields`).

A participant that never touched a product lists none of its events; its trace shows it the
public view, as it shows a consumer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tracechain.chain.trace_event import Kind
from tracechain.disclosure import CONTEXT_FIELD, HASH_ID_FIELD
from tracechain.epcis.identifiers import InvalidIdentifier, gs1_key

if TYPE_CHECKING:
    from tracechain.trace import Trace, TraceEntry


class View(StrEnum):
    FULL = "full"
    PARTNER = "partner"
    PUBLIC = "public"


CONSUMER_FIELDS = frozenset(
    {
        "type",
        "action",
        "eventTime",
        "eventTimeZoneOffset",
        "bizStep",
        "disposition",
        "persistentDisposition",
        "readPoint",
        "bizLocation",
        "parentID",
        "sensorElementList",
        "certificationInfo",
        "errorDeclaration",
    }
)
"""What a consumer is shown of any event: enough to trust the product, nothing commercial. Not the
identifiers of other goods (epcList, childEPCs, inputs and outputs), quantities, business
transactions, trading partners or extensions."""

PARTNER_WITHHELD = frozenset({"bizTransactionList"})
"""What a partner is not shown of another party's event, besides its extensions."""


def is_extension(name: str) -> bool:
    """A private extension field: EPCIS JSON names them by a prefixed term (`acme:grade`)."""
    return ":" in name


@dataclass(frozen=True)
class Viewer:
    """Who is reading: a participant (by its id, address and GLN), the admin, or nobody."""

    participant_id: str | None = None
    address: str | None = None
    party_id: str | None = None
    admin: bool = False

    @property
    def anonymous(self) -> bool:
        return self.participant_id is None and not self.admin


ANONYMOUS = Viewer()
ADMIN = Viewer(admin=True)


@dataclass(frozen=True)
class GrantRule:
    """An active grant to the viewer: its grantor's events, all or those of a subject or bizStep."""

    grantor: str
    """The grantor's address: the signer of the events it covers."""
    scope: str
    value: str | None

    def covers(self, signer: str, biz_step: str | None, epcs: Collection[str]) -> bool:
        if signer != self.grantor:
            return False
        if self.scope == "all":
            return True
        if self.scope == "bizStep":
            return biz_step == self.value
        return self.value in epcs


@dataclass(frozen=True)
class EventFacts:
    """What the rules read of an event."""

    signer: str
    biz_step: str | None
    epcs: Collection[str]
    parties: Collection[str]
    """The parties its sourceList and destinationList name."""
    receivers: Collection[str]
    """The addresses its shipment records propose custody to."""

    @classmethod
    def of(
        cls,
        signer: str,
        biz_step: str | None,
        epcs: Collection[str],
        parties: Collection[str],
        records: Iterable[Any],
    ) -> EventFacts:
        """From a stored event of either shape (ORM row or trace row): its chain records give the
        receivers, those of its Ship records."""
        receivers = [record.counterpart for record in records if record.kind == Kind.SHIP]
        return cls(signer, biz_step, epcs, parties, receivers)


@dataclass
class Access:
    """One viewer's rights over a set of events, loaded once per request (`queries.access_of`)."""

    viewer: Viewer
    grants: list[GrantRule] = field(default_factory=list)
    involved: frozenset[str] = frozenset()
    """Identifiers whose journey the viewer took part in, among those the request reads."""
    public_fields: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    """(signer address, GTIN) -> fields the signer made public for that product class."""

    def view_of(self, event: EventFacts) -> View | None:
        """How the viewer sees the event when listing events; None: not at all."""
        viewer = self.viewer
        if viewer.admin or (viewer.address is not None and event.signer == viewer.address):
            return View.FULL
        if viewer.anonymous:
            return None
        if any(grant.covers(event.signer, event.biz_step, event.epcs) for grant in self.grants):
            return View.FULL
        if (viewer.party_id is not None and viewer.party_id in event.parties) or (
            viewer.address in event.receivers
        ):
            return View.PARTNER
        if not self.involved.isdisjoint(event.epcs):
            return View.PUBLIC
        return None

    def trace_view_of(self, event: EventFacts) -> View:
        """How the viewer sees an event of a product's trace: everyone sees at least the public view."""
        return self.view_of(event) or View.PUBLIC

    def shown_fields(
        self, view: View, body: Mapping[str, Any], signer: str, gtin: str | None
    ) -> frozenset[str]:
        """The fields of `body` (and the synthetic ones) shown in `view`, in the trace of a product
        of class `gtin` (None: outside any product's trace)."""
        names = set(body)
        if view is View.FULL:
            return frozenset(names | {HASH_ID_FIELD, CONTEXT_FIELD})
        if view is View.PARTNER:
            kept = {n for n in names if n not in PARTNER_WITHHELD and not is_extension(n)}
            return frozenset(kept | {HASH_ID_FIELD, CONTEXT_FIELD})
        made_public = self.public_fields.get((signer, gtin or ""), frozenset())
        return frozenset(names & (CONSUMER_FIELDS | made_public))


@lru_cache(maxsize=4096)
def product_class(identifier: str) -> str | None:
    """The GTIN-14 of a product or lot identifier: the class a signer makes fields public for."""
    if not identifier.startswith(("urn:epc:id:sgtin:", "urn:epc:class:lgtin:", "urn:epc:idpat:sgtin:")):
        return None
    try:
        return gs1_key(identifier)
    except InvalidIdentifier:
        return None


def redact(body: Mapping[str, Any], shown: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """The body with only the shown fields, and the names of those withheld, sorted."""
    shown = set(shown)
    return (
        {name: value for name, value in body.items() if name in shown},
        sorted(name for name in body if name not in shown),
    )


def seen_trace(trace: Trace, access: Access, parties: Mapping[int, Collection[str]]) -> Trace:
    """The trace as `access`'s viewer sees it: each event in its view, the fields withheld named,
    and in the public view only the records of what the trace follows (the product, its units and
    ingredients), not of the other goods an event names. The checks are those of the whole trace.

    An event withdrawn as erroneous shows its hash id, which the declaration withdrawing it names."""
    followed = {trace.epc, *trace.units, *trace.ingredients}
    gtin = product_class(trace.epc)
    seen: dict[int, TraceEntry] = {}
    for entry in trace.entries:
        event = entry.event
        view = access.trace_view_of(
            EventFacts.of(
                event.signer, event.biz_step, event.epcs, parties.get(event.row_id, ()), event.records
            )
        )
        shown = access.shown_fields(view, event.body, event.signer, gtin)
        if entry.withdrawn_by or event.declaration:
            shown |= {HASH_ID_FIELD}
        body, withheld = redact(event.body, shown)
        records = event.records
        if view is View.PUBLIC:
            records = tuple(record for record in records if record.subject_epc in followed)
        seen[id(entry)] = replace(
            entry,
            event=replace(event, body=body, records=records),
            view=view.value,
            shown=None if view is View.FULL else shown,
            withheld=withheld,
        )
    for entry in seen.values():
        entry.withdrawn_by = [seen[id(declaration)] for declaration in entry.withdrawn_by]
        entry.corrected_by = [seen[id(corrective)] for corrective in entry.corrected_by]
    origin = None if trace.origin is None else seen[id(trace.origin)]
    return replace(trace, entries=list(seen.values()), origin=origin)
