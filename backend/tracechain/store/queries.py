"""Every query the service makes, by purpose. Callers pass a session and get models or values."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    bindparam,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from tracechain.chain.identity import ChainIdentity
from tracechain.chain.registry import RecordedEvent
from tracechain.chain.trace_event import Kind, SignedEvent
from tracechain.epcis.field_filters import STANDARD_PREFIXES, context_prefixes, field_key
from tracechain.epcis.mapping import bare_vocabulary, identifiers_of
from tracechain.epcis.query import (
    VOCABULARY_FIELDS,
    AttributeFilter,
    EpcMatch,
    EventQuery,
    Hierarchy,
    OrderKey,
)
from tracechain.store.db import SharedLock, hold
from tracechain.store.models import (
    ApiKey,
    Batch,
    BatchStatus,
    CaptureJob,
    CaptureStatus,
    ChainIdentityRow,
    ChainRecord,
    Delivery,
    DeliveryStatus,
    Event,
    EventConfirmation,
    EventEpc,
    EventParty,
    Grant,
    IndexedBlock,
    KeyCheck,
    MasterData,
    NamedQuery,
    Order,
    Participant,
    PublicFields,
    RecordStatus,
    StaleChain,
    SubjectState,
    Subscription,
    WorkerHeartbeat,
    signed_event_of,
)
from tracechain.visibility import Access, EventFacts, GrantRule, View, Viewer, redact

# ---------------------------------------------------------------- participants


def participant_by_api_key_hash(session: Session, key_hash: str) -> tuple[Participant, ApiKey] | None:
    """The participant holding this unrevoked key, and the key."""
    row = session.execute(
        select(Participant, ApiKey)
        .join(ApiKey, ApiKey.participant_id == Participant.id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    ).first()
    return None if row is None else (row[0], row[1])


def participant(session: Session, participant_id: str) -> Participant | None:
    return session.get(Participant, participant_id)


def participants_by_id(session: Session, participant_ids: Collection[str]) -> dict[str, Participant]:
    rows = session.scalars(select(Participant).where(Participant.id.in_(participant_ids)))
    return {p.id: p for p in rows}


def participants_by_enrolment(session: Session) -> list[Participant]:
    """Every participant, the first enrolled first."""
    return list(session.scalars(select(Participant).order_by(Participant.created_at)))


def participant_with_address(session: Session, address: str) -> Participant | None:
    return session.scalars(select(Participant).where(Participant.address == address)).first()


def participant_with_party_id(session: Session, party_id: str) -> Participant | None:
    return session.scalars(select(Participant).where(Participant.party_id == party_id)).first()


def api_key(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def api_keys_of(session: Session, participant_id: str) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.participant_id == participant_id).order_by(ApiKey.created_at)
    return list(session.scalars(query))


def participant_addresses_by_party(session: Session) -> dict[str, str]:
    rows = session.execute(
        select(Participant.party_id, Participant.address).where(Participant.party_id.is_not(None))
    )
    return {party: address for party, address in rows if party is not None}


def roles_by_address(session: Session, addresses: set[str] | None = None) -> dict[str, set[str]]:
    """Each participant's roles by its address: of those `addresses`, or of every participant."""
    query = select(Participant.address, Participant.roles)
    if addresses is not None:
        query = query.where(Participant.address.in_(addresses))
    return {address: set(roles) for address, roles in session.execute(query)}


def participants_by_address(session: Session, addresses: set[str]) -> dict[str, Participant]:
    rows = session.scalars(select(Participant).where(Participant.address.in_(addresses)))
    return {p.address: p for p in rows}


def participant_names(session: Session, addresses: set[str]) -> dict[str, str]:
    query = select(Participant.address, Participant.name).where(Participant.address.in_(addresses))
    rows = session.execute(query)
    return {address: name for address, name in rows}


# ---------------------------------------------------------------- visibility (visibility.py)


def grant(session: Session, grant_id: str) -> Grant | None:
    return session.get(Grant, grant_id)


def grants_involving(session: Session, participant_id: str | None = None) -> list[Grant]:
    """Grants the participant gave or received, revoked ones too, oldest first; every grant for None."""
    query = select(Grant).order_by(Grant.created_at)
    if participant_id is not None:
        query = query.where((Grant.grantor_id == participant_id) | (Grant.grantee_id == participant_id))
    return list(session.scalars(query))


def _active_grants(participant_id: str) -> Select[str, str, str | None]:
    return (
        select(Participant.address, Grant.scope, Grant.value)
        .join(Participant, Participant.id == Grant.grantor_id)
        .where(Grant.grantee_id == participant_id, Grant.revoked_at.is_(None))
    )


def _involved_epcs(viewer: Viewer) -> Any:
    """The identifiers whose journey the viewer took part in: named by its own events, by events
    naming it as a party, or shipped to it."""
    own = (
        select(EventEpc.epc)
        .join(Event, Event.id == EventEpc.event_row_id)
        .where(Event.signer == viewer.address)
    )
    shipped_to = select(ChainRecord.subject_epc).where(ChainRecord.counterpart == viewer.address)
    parts = [own, shipped_to]
    if viewer.party_id is not None:
        parts.append(
            select(EventEpc.epc)
            .join(EventParty, EventParty.event_row_id == EventEpc.event_row_id)
            .where(EventParty.party == viewer.party_id)
        )
    return union(*parts)


def visible_events(viewer: Viewer) -> ColumnElement[bool]:
    """A condition on Event: the events the viewer may list (`visibility.Access.view_of` not None).
    Every query that lists events for a reader adds it."""
    if viewer.admin:
        return true()
    if viewer.anonymous or viewer.address is None or viewer.participant_id is None:
        return false()
    grants = _active_grants(viewer.participant_id).subquery()
    granted = (
        select(grants.c.address)
        .where(
            grants.c.address == Event.signer,
            (grants.c.scope == "all")
            | ((grants.c.scope == "bizStep") & (grants.c.value == Event.biz_step))
            | (
                (grants.c.scope == "subject")
                & grants.c.value.in_(select(EventEpc.epc).where(EventEpc.event_row_id == Event.id))
            ),
        )
        .exists()
    )
    involved = select(EventEpc.event_row_id).where(EventEpc.epc.in_(_involved_epcs(viewer)))
    return or_(Event.signer == viewer.address, granted, Event.id.in_(involved))


_public, _participant = PublicFields.__table__.c, Participant.__table__.c
# Built once: a trace runs it on every request, and building a statement costs more than running it.
_PUBLIC_FIELDS_OF = (
    select(_participant.address, _public.fields)
    .select_from(
        PublicFields.__table__.join(Participant.__table__, _participant.id == _public.participant_id)
    )
    .where(_public.gtin == bindparam("gtin"), _participant.address.in_(bindparam("signers", expanding=True)))
)


def access_of(
    session: Session,
    viewer: Viewer,
    epcs: Collection[str],
    signers: Collection[str] = (),
    gtin: str | None = None,
) -> Access:
    """The viewer's rights over events naming `epcs`: its grants, which of `epcs` it took part in
    the journey of, and the fields `signers` made public for product class `gtin` (a trace's)."""
    public: dict[tuple[str, str], frozenset[str]] = {}
    if gtin is not None and signers and not viewer.admin:
        rows = session.connection().execute(_PUBLIC_FIELDS_OF, {"gtin": gtin, "signers": list(signers)})
        public = {(address, gtin): frozenset(names) for address, names in rows}
    if viewer.anonymous or viewer.admin or viewer.participant_id is None:
        return Access(viewer, public_fields=public)
    grants = [
        GrantRule(grantor, scope, value)
        for grantor, scope, value in session.execute(_active_grants(viewer.participant_id))
    ]
    involved = _involved_epcs(viewer).subquery()
    asked = select(involved.c.epc).where(involved.c.epc.in_(list(epcs))).distinct()
    return Access(viewer, grants, frozenset(session.scalars(asked)), public)


def parties_of_events(session: Session, row_ids: Collection[int]) -> dict[int, list[str]]:
    """The parties each event names in its sourceList and destinationList."""
    found: dict[int, list[str]] = {}
    if row_ids:
        query = select(EventParty.event_row_id, EventParty.party).where(EventParty.event_row_id.in_(row_ids))
        for row_id, party in session.execute(query):
            found.setdefault(row_id, []).append(party)
    return found


def event_facts(event: Event) -> EventFacts:
    """What the visibility rules read of a stored event (its parties and records are loaded with it)."""
    return EventFacts.of(
        event.signer,
        event.biz_step,
        [named.epc for named in event.epcs],
        [named.party for named in event.parties],
        event.records,
    )


def public_fields_of(session: Session, participant_id: str) -> list[PublicFields]:
    query = select(PublicFields).where(PublicFields.participant_id == participant_id)
    return list(session.scalars(query.order_by(PublicFields.gtin)))


def public_fields(session: Session, participant_id: str, gtin: str) -> PublicFields | None:
    """The fields the participant makes public of its events about one product class."""
    return session.get(PublicFields, (participant_id, gtin))


# ---------------------------------------------------------------- events


def events_captured_by(session: Session, event_ids: Collection[str], signer: str) -> set[tuple[str, bool]]:
    """Which of these events `signer` captured already, as (hash id, is a declaration): one query
    for a whole document."""
    if not event_ids:
        return set()
    query = select(Event.event_id, Event.declaration).where(
        Event.event_id.in_(event_ids), Event.signer == signer
    )
    return {(event_id, declaration) for event_id, declaration in session.execute(query)}


def capture_jobs_page(
    session: Session, participant_id: str | None, after: tuple[datetime, str] | None, limit: int
) -> list[CaptureJob]:
    """At most `limit` capture jobs in the order they were created, after `after` (the creation
    time and id of the previous page's last): a participant's own, or everyone's (None: the admin)."""
    query = select(CaptureJob)
    if participant_id is not None:
        query = query.where(CaptureJob.participant_id == participant_id)
    if after is not None:
        created_at, job_id = after
        query = query.where(
            (CaptureJob.created_at > created_at)
            | ((CaptureJob.created_at == created_at) & (CaptureJob.id > job_id))
        )
    return list(session.scalars(query.order_by(CaptureJob.created_at, CaptureJob.id).limit(limit)))


def events_declared_as(session: Session, ids: Collection[str]) -> dict[str, set[str]]:
    """For each of `ids`, the hash ids of the stored events their capturers declared it for.

    Hash ids are not looked at: a capturer told "already the hash id of an event" would learn that
    an event it may not see exists. A declared id equal to another event's hash id cannot pass for
    it either: `named_as` prefers the event whose hash id it is."""
    named: dict[str, set[str]] = {}
    if ids:
        rows = session.execute(
            select(Event.declared_id, Event.event_id).where(Event.declared_id.in_(list(ids)))
        )
        for declared_id, hash_id in rows:
            if declared_id is not None:
                named.setdefault(declared_id, set()).add(hash_id)
    return named


def named_as(ids: Collection[str]) -> ColumnElement[bool]:
    """Events with one of these ids: as their hash id, or as the eventID their capturer declared
    where that is no event's hash id (a declared id never shadows another event's own)."""
    other = aliased(Event)
    hash_id_of_another = exists().where(other.event_id == Event.declared_id)
    return Event.event_id.in_(list(ids)) | (Event.declared_id.in_(list(ids)) & ~hash_id_of_another)


def capture_jobs_of(session: Session, keys: Collection[tuple[str, bool]], signer: str) -> list[CaptureJob]:
    """The jobs in which `signer` captured these events, given as (hash id, is a declaration)."""
    if not keys:
        return []
    query = select(Event.capture_id, Event.event_id, Event.declaration).where(
        Event.event_id.in_({event_id for event_id, _ in keys}), Event.signer == signer
    )
    wanted = set(keys)
    jobs = {capture_id for capture_id, *key in session.execute(query) if tuple(key) in wanted}
    return list(session.scalars(select(CaptureJob).where(CaptureJob.id.in_(jobs))))


def captures_of_events(session: Session, event_ids: Collection[str]) -> dict[str, list[Event]]:
    """Who captured each of these events (not declarations of them), in the order they did."""
    query = (
        select(Event).where(Event.event_id.in_(event_ids), Event.declaration.is_(False)).order_by(Event.id)
    )
    found: dict[str, list[Event]] = {}
    for event in session.scalars(query):
        found.setdefault(event.event_id, []).append(event)
    return found


def events_by_id(session: Session, event_id: str, viewer: Viewer) -> list[Event]:
    """Every capture the viewer may see of the event with this hash id or declared eventID (by each
    signer, and declarations of it)."""
    query = select(Event).where(named_as([event_id]), visible_events(viewer))
    return list(session.scalars(query.order_by(Event.id)))


# Predicates on fields with a column (type, times, bizStep, disposition, eventID, identifiers by
# role, declarations) run in SQL. The others (action, readPoint, bizLocation, transformationID,
# error reason, business transactions, sources, destinations…) live only in the JSON body, and
# JSON paths differ between SQLite and PostgreSQL and need per-field indexes to be fast anyway; so
# they are applied in Python to candidates read in key order, batch after batch, until a page is
# full (`EventQuery.body_matches`). The page position is the last *returned* event's key, so the
# next page resumes exactly after it whatever the filter skipped. The cost: a selective body-only
# filter reads every visible candidate; a field that turns out to be queried often should get a
# column (or a table like event_epcs) and move into SQL.
_BODY_FILTER_BATCH = 200


def _sort_column(query: EventQuery) -> Any:
    return Event.event_time if query.order_by == OrderKey.EVENT_TIME else Event.record_time


def sort_key_of(event: Event, query: EventQuery) -> datetime:
    """The value `query` orders `event` by: what a page position records."""
    return event.event_time if query.order_by == OrderKey.EVENT_TIME else event.record_time


def _descending(query: EventQuery) -> bool:
    return query.order_by is not None and query.descending  # unordered queries: in recording order


def _epc_condition(match: EpcMatch) -> ColumnElement[bool]:
    named = [EventEpc.epc.in_(match.exact)] + [
        EventEpc.epc.startswith(prefix, autoescape=True) for prefix in match.prefixes
    ]
    is_class = EventEpc.epc.startswith("urn:epc:idpat:") | EventEpc.epc.startswith("urn:epc:class:")
    naming = select(EventEpc.event_row_id).where(
        EventEpc.role.in_([role.value for role in match.roles]),
        or_(*named),
        is_class if match.classes else ~is_class,
    )
    return Event.id.in_(naming)


def _filtered(viewer: Viewer, query: EventQuery) -> Select[Event]:
    statement = select(Event).where(visible_events(viewer))
    if query.event_types:
        statement = statement.where(Event.event_type.in_(query.event_types))
    if query.biz_steps:
        statement = statement.where(Event.biz_step.in_(query.biz_steps))
    if query.dispositions:
        statement = statement.where(Event.disposition.in_(query.dispositions))
    if query.event_ids:  # its hash id, or the id its capturer declared
        statement = statement.where(named_as(query.event_ids))
    if query.declarations_only:
        statement = statement.where(Event.declaration.is_(True))
    for column, low, high in (
        (Event.event_time, query.event_time_from, query.event_time_before),
        (Event.record_time, query.record_time_from, query.record_time_before),
    ):
        if low is not None:
            statement = statement.where(column >= low)
        if high is not None:
            statement = statement.where(column < high)
    for match in query.epc_matches:
        statement = statement.where(_epc_condition(match))
    return statement


def matching_events(
    session: Session,
    viewer: Viewer,
    query: EventQuery,
    after: tuple[datetime, int] | None = None,
    among: Collection[int] | None = None,
) -> Iterator[Event]:
    """The events the viewer may see that match `query`, in its order (then by row), lazily.

    `after` is the (sort key, row id) of the last event of the previous page; `among` limits the
    answer to these event rows (a subscription's newly confirmed events).
    """
    statement = _filtered(viewer, query)
    if among is not None:
        statement = statement.where(Event.id.in_(list(among)))
    sort, descending = _sort_column(query), _descending(query)
    order = (sort.desc(), Event.id.desc()) if descending else (sort.asc(), Event.id.asc())
    batch = _BODY_FILTER_BATCH if query.reads_fields else query.per_page + 1
    said = master_data_said(session, query)
    while True:
        page = statement
        if after is not None:
            key, row_id = after
            if descending:
                page = page.where((sort < key) | ((sort == key) & (Event.id < row_id)))
            else:
                page = page.where((sort > key) | ((sort == key) & (Event.id > row_id)))
        rows = list(session.scalars(page.order_by(*order).limit(batch)))
        shown = _shown_bodies(session, viewer, query, rows)
        for row in rows:
            prefixes = context_prefixes(row.context) if query.body_filters else STANDARD_PREFIXES
            described = said.get(row.signer)
            # A row the viewer sees in part matches on that part alone: also where the full body
            # would not (EXISTS_…=false on a withheld field), or the answer tells what is withheld.
            if (
                query.shown_matches(shown[row.id], identifiers_of(shown[row.id]), prefixes, described)
                if row.id in shown
                else query.body_matches(row.body, prefixes, described)
            ):
                yield row
        if len(rows) < batch:
            return
        after = (sort_key_of(rows[-1], query), rows[-1].id)
        batch = _BODY_FILTER_BATCH


def _shown_bodies(
    session: Session, viewer: Viewer, query: EventQuery, rows: list[Event]
) -> dict[int, dict[str, Any]]:
    """What the viewer is shown of each row it sees only in part, when the query filters on what it
    may be shown only in part: those rows must match on that alone (a carrier filtering on a
    purchase order number it may not see must not learn which shipment carries it)."""
    if viewer.admin or not query.reads_fields or not rows:
        return {}
    access = access_of(session, viewer, {named.epc for row in rows for named in row.epcs})
    shown = {}
    for row in rows:
        view = access.view_of(event_facts(row))
        if view is not View.FULL:
            fields = access.shown_fields(view or View.PUBLIC, row.body, row.signer, None)
            shown[row.id] = redact(row.body, fields)[0]
    return shown


# ---------------------------------------------------------------- master data

_VOCABULARY_OF: dict[Hierarchy, str] = {
    Hierarchy.READ_POINT: "ReadPoint",
    Hierarchy.BIZ_LOCATION: "BusinessLocation",
}


def vocabulary_name(vocabulary_type: str) -> str:
    """`urn:epcglobal:epcis:vtype:BusinessLocation` and its web URI form -> `BusinessLocation`."""
    return vocabulary_type.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def upsert_master_data(
    session: Session, participant_id: str, elements: Sequence[tuple[str, str, list[Any], list[str]]]
) -> None:
    """The participant's description of these vocabulary elements, as (vocabulary type, element
    id, attributes, children), replacing any it gave before."""
    now = datetime.now(UTC)
    for vocabulary_type, element_id, attributes, children in elements:
        row = session.get(MasterData, (participant_id, vocabulary_type, element_id))
        if row is None:
            session.add(
                MasterData(
                    participant_id=participant_id,
                    vocabulary_type=vocabulary_type,
                    element_id=element_id,
                    attributes=attributes,
                    children=children,
                    updated_at=now,
                )
            )
        else:
            row.attributes, row.children, row.updated_at = attributes, children, now
    session.flush()


def master_data_of(session: Session, participant_id: str) -> list[MasterData]:
    query = select(MasterData).where(MasterData.participant_id == participant_id)
    return list(session.scalars(query.order_by(MasterData.vocabulary_type, MasterData.element_id)))


def master_data_described(
    session: Session, addresses: Collection[str], vocabularies: Collection[str], element_ids: Collection[str]
) -> dict[str, list[MasterData]]:
    """Each participant's (by address) own description of these elements (canonical ids) in these
    vocabularies (by name: `EPCClass`, `BusinessLocation`…): what it says of its products and
    sites, never what others say of them."""
    if not addresses or not element_ids:
        return {}
    rows = session.execute(
        select(Participant.address, MasterData)
        .join(Participant, Participant.id == MasterData.participant_id)
        .where(Participant.address.in_(list(addresses)))
        .where(MasterData.element_id.in_(list(element_ids)))
        .where(or_(*(MasterData.vocabulary_type.endswith(v) for v in vocabularies)))
        .order_by(MasterData.element_id)
    )
    found: dict[str, list[MasterData]] = {}
    for address, element in rows:
        found.setdefault(address, []).append(element)
    return found


def master_data_said(session: Session, query: EventQuery) -> dict[str, dict[str, frozenset[str]]]:
    """What each signer's master data says for the query's WD_, HASATTR_ and EQATTR_ parameters,
    by parameter (`EventQuery.body_matches`)."""
    said: dict[str, dict[str, frozenset[str]]] = {}
    for address, below in locations_below(session, query.within).items():
        said.setdefault(address, {}).update({f"WD_{field.value}": ids for field, ids in below.items()})
    for address, described in attributes_described(session, query.attribute_filters).items():
        said.setdefault(address, {}).update(described)
    return said


def attributes_described(
    session: Session, filters: Sequence[AttributeFilter]
) -> dict[str, dict[str, frozenset[str]]]:
    """For each signer, and each HASATTR_/EQATTR_ parameter, the vocabulary elements (as the
    event's field names them) whose attributes, in that signer's own master data, pass it."""
    if not filters:
        return {}
    vocabularies = {VOCABULARY_FIELDS[f.field] for f in filters}
    rows = session.execute(
        select(Participant.address, MasterData.vocabulary_type, MasterData.element_id, MasterData.attributes)
        .join(Participant, Participant.id == MasterData.participant_id)
        .where(or_(*(MasterData.vocabulary_type.endswith(v) for v in vocabularies)))
    )
    found: dict[str, dict[str, set[str]]] = {}
    for address, vocabulary_type, element_id, attributes in rows:
        named = {
            field_key(a["id"]): a.get("attribute")
            for a in attributes or []
            if isinstance(a, dict) and isinstance(a.get("id"), str)
        }
        for wanted in filters:
            if VOCABULARY_FIELDS[wanted.field] != vocabulary_name(vocabulary_type):
                continue
            if wanted.attribute is None:
                passes = any(field_key(name) in named for name in wanted.values)
            else:
                value = named.get(field_key(wanted.attribute))
                passes = value is not None and str(value).strip() in wanted.values
            if passes:
                location = wanted.field in ("readPoint", "bizLocation")
                element = element_id if location else bare_vocabulary(element_id)
                found.setdefault(address, {}).setdefault(wanted.parameter, set()).add(element)
    return {address: {k: frozenset(v) for k, v in by.items()} for address, by in found.items()}


def locations_below(
    session: Session, within: Sequence[tuple[Hierarchy, frozenset[str]]]
) -> dict[str, dict[Hierarchy, frozenset[str]]]:
    """For each signer with master data, and each WD_ field, the locations below the named ones
    (children, transitively) in that signer's own read point or business location vocabulary:
    an event is within a site when its own author says where its location lies, so nobody can
    graft their locations under another's site and into their queries."""
    if not within:
        return {}
    rows = session.execute(
        select(Participant.address, MasterData.vocabulary_type, MasterData.element_id, MasterData.children)
        .join(Participant, Participant.id == MasterData.participant_id)
        .where(or_(*(MasterData.vocabulary_type.endswith(_VOCABULARY_OF[h]) for h, _ in within)))
    )
    trees: dict[tuple[str, str], dict[str, list[str]]] = {}
    for address, vocabulary_type, element_id, children in rows:
        tree = trees.setdefault((address, vocabulary_name(vocabulary_type)), {})
        tree[element_id] = list(children or [])
    found: dict[str, dict[Hierarchy, frozenset[str]]] = {}
    for (address, vocabulary), tree in trees.items():
        for hierarchy, roots in within:
            if _VOCABULARY_OF[hierarchy] != vocabulary:
                continue
            below = _descendants(tree, roots)
            if below:
                mine = found.setdefault(address, {})
                mine[hierarchy] = mine.get(hierarchy, frozenset()) | below
    return found


def _descendants(tree: dict[str, list[str]], roots: frozenset[str]) -> frozenset[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        for child in tree.get(pending.pop(), []):
            if child not in seen and child not in roots:
                seen.add(child)
                pending.append(child)
    return frozenset(seen)


def events_page(
    session: Session, viewer: Viewer, query: EventQuery, after: tuple[datetime, int] | None, limit: int
) -> list[Event]:
    """At most `limit` matching events after `after` (see `matching_events`)."""
    return list(islice(matching_events(session, viewer, query, after), limit))


def more_matching_than(session: Session, viewer: Viewer, query: EventQuery, allowed: int) -> bool:
    """Whether more than `allowed` events match (maxEventCount), reading no more than it takes to tell."""
    return sum(1 for _ in islice(matching_events(session, viewer, query), allowed + 1)) > allowed


_SHOWN_BATCH = 500


def values_shown(
    session: Session, viewer: Viewer, read: Callable[[dict[str, Any]], Iterable[str]]
) -> set[str]:
    """Every value `read` finds in what the viewer is shown of the events it may see (each in its
    view, the fields it may not read left out): what the EPCIS discovery resources (`/epcs`,
    `/bizLocations` …) list, so that none names a thing or place the viewer could not read in an
    event. Reads every visible event, batch after batch; a listing that is asked for often on a
    large store should get a table of its own, kept per viewer."""
    found: set[str] = set()
    statement = select(Event).where(visible_events(viewer)).order_by(Event.id).limit(_SHOWN_BATCH)
    after = 0
    while True:
        rows = list(session.scalars(statement.where(Event.id > after)))
        if not rows:
            return found
        access = access_of(session, viewer, {named.epc for row in rows for named in row.epcs})
        for row in rows:
            view = access.view_of(event_facts(row)) or View.PUBLIC
            shown = redact(row.body, access.shown_fields(view, row.body, row.signer, None))[0]
            found.update(read(shown))
        after = rows[-1].id


# ---------------------------------------------------------------- traces


@dataclass(frozen=True, slots=True)
class RecordRow:
    """A chain record as a trace reads it: plain values, not an ORM object (a trace reads dozens)."""

    id: int
    event_row_id: int
    subject: bytes
    subject_epc: str
    chain: bytes
    kind: int
    event_hash: bytes
    counterpart: str
    ref: bytes
    time: int
    prev_head: bytes
    head: bytes
    signer: str
    r: bytes | None
    vs: bytes | None
    status: str
    block_number: int | None
    log_index: int | None
    tx_hash: str | None
    anchor_root: bytes | None
    merkle_proof: list[str] | None
    verification_stamp: bytes | None

    def signed_event(self) -> SignedEvent:
        """What the signer signed and record() carries; only for a record that has its signature."""
        return signed_event_of(self)


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event as a trace reads it, with the identifiers it names and its chain records."""

    row_id: int
    event_id: str
    declaration: bool
    event_type: str
    biz_step: str | None
    event_time: datetime
    signer: str
    stored_body: str
    stored_context: str | None
    """The body and context exactly as stored: what the content checks are memoised by."""
    disclosure_seed: bytes
    """What the event's fields are salted from (`tracechain.disclosure`)."""
    body: dict[str, Any]
    context: Any
    epcs: tuple[str, ...]
    records: tuple[RecordRow, ...]


# Plain columns: these statements run on every trace, so they skip the ORM's per-row work.
_event, _named, _record = Event.__table__.c, EventEpc.__table__.c, ChainRecord.__table__.c


def _trace_closure_query() -> Select[str]:
    """Identifiers reached from :epc within :depth levels (see `trace_closure`)."""
    named, parent = EventEpc.__table__.alias("named"), EventEpc.__table__.alias("parent")
    start = select(bindparam("epc", type_=_named.epc.type).label("epc"), literal(0).label("depth"))
    related = start.cte("related", recursive=True)
    step = (
        select(
            case((_record.kind == Kind.AGGREGATE, parent.c.epc), else_=_record.subject_epc),
            related.c.depth + 1,
        )
        .select_from(related)
        .join(named, named.c.epc == related.c.epc)
        .join(
            ChainRecord.__table__,
            (_record.event_row_id == named.c.event_row_id)
            & (
                ((_record.kind == Kind.AGGREGATE) & (_record.subject_epc == related.c.epc))
                | ((_record.kind == Kind.CONSUME) & (named.c.role == "output"))
            ),
        )
        .outerjoin(parent, (parent.c.event_row_id == _record.event_row_id) & (parent.c.role == "parent"))
        .where(related.c.depth < bindparam("depth"))
    )
    related = related.union(step)
    return select(related.c.epc).where(related.c.epc.is_not(None)).distinct()


# Built once: building a statement costs more than running it.
_TRACE_CLOSURE = _trace_closure_query()
_NAMING = select(_named.event_row_id).where(_named.epc.in_(bindparam("epcs", expanding=True)))
_IDENTIFIERS_OF_NAMING = select(_named.event_row_id, _named.epc).where(_named.event_row_id.in_(_NAMING))
_RECORDS_OF_NAMING = (
    select(*(_record[field.name] for field in fields(RecordRow)))
    .where(_record.event_row_id.in_(_NAMING))
    .order_by(_record.id)
)
_EVENTS_NAMING = (
    select(
        _event.id,
        _event.event_id,
        _event.declaration,
        _event.event_type,
        _event.biz_step,
        _event.event_time,
        _event.signer,
        cast(_event.body, Text),  # as stored, for the content checks' memo
        cast(_event.context, Text),
        _event.disclosure_seed,
    )
    .where(_event.id.in_(_NAMING))
    .order_by(_event.event_time, _event.id)
)


def trace_closure(session: Session, epc: str, depth: int) -> list[str]:
    """`epc` and every identifier its trace reaches within `depth` levels, in one recursive query:
    the units it was packed in (the parent of an aggregation recorded for it), its ingredients (the
    inputs consumed by a transformation naming it as an output), and theirs in turn."""
    rows = session.connection().execute(_TRACE_CLOSURE, {"epc": epc, "depth": depth})
    return list(rows.scalars())


def event_rows_naming(session: Session, epcs: Collection[str]) -> list[EventRow]:
    """Every event naming any of `epcs`, with its identifiers and records, ordered by event time
    (then id): three plain queries, whatever the number of events."""
    if not epcs:
        return []
    connection, naming = session.connection(), {"epcs": list(epcs)}
    identifiers: dict[int, list[str]] = {}
    for row_id, identifier in connection.execute(_IDENTIFIERS_OF_NAMING, naming):
        identifiers.setdefault(row_id, []).append(identifier)
    records: dict[int, list[RecordRow]] = {}
    for row in connection.execute(_RECORDS_OF_NAMING, naming):
        records.setdefault(row.event_row_id, []).append(RecordRow(*row))
    return [
        EventRow(
            row_id,
            event_id,
            declaration,
            event_type,
            biz_step,
            event_time,
            signer,
            body,
            context,
            bytes(seed),
            json.loads(body),
            None if context is None else json.loads(context),
            tuple(identifiers.get(row_id, ())),
            tuple(records.get(row_id, ())),
        )
        for row_id, event_id, declaration, event_type, biz_step, event_time, signer, body, context, seed in (
            connection.execute(_EVENTS_NAMING, naming)
        )
    ]


# ---------------------------------------------------------------- custody projection


def subject_state(session: Session, subject: bytes) -> SubjectState | None:
    return session.get(SubjectState, subject)


def subject_states(session: Session, subjects: Collection[bytes]) -> dict[bytes, SubjectState]:
    """The projection rows of these subjects that exist, in one query."""
    if not subjects:
        return {}
    rows = session.scalars(select(SubjectState).where(SubjectState.subject.in_(subjects)))
    return {row.subject: row for row in rows}


# ---------------------------------------------------------------- submission


def queued_records(session: Session, limit: int) -> list[ChainRecord]:
    """Queued records in capture order that nothing unsigned holds back, up to `limit`.

    A record waits behind an earlier one still awaiting its participant's signature only if it
    touches what that one touches (the same chain, or the unit it packs into or consumes into),
    directly or through records that wait themselves: it may be signed over the head that one
    leads to, or need the state it leaves. Everyone else's records go on."""
    unsigned = session.execute(
        select(ChainRecord.id, ChainRecord.chain, ChainRecord.kind, ChainRecord.ref)
        .where(ChainRecord.status == RecordStatus.UNSIGNED)
        .order_by(ChainRecord.id)
    ).all()
    queued = select(ChainRecord).where(ChainRecord.status == RecordStatus.QUEUED).order_by(ChainRecord.id)
    if not unsigned:
        return list(session.scalars(queued.limit(limit)))
    held = {key for row in unsigned[:1] for key in touched_by(row)}
    holds = iter(unsigned[1:])
    next_hold = next(holds, None)
    first_unsigned = unsigned[0].id
    sendable: list[ChainRecord] = []
    for record in session.scalars(queued):
        while next_hold is not None and next_hold.id < record.id:
            held |= touched_by(next_hold)
            next_hold = next(holds, None)
        touched = touched_by(record)
        if record.id > first_unsigned and touched & held:
            held |= touched  # waits, and so does whatever follows it on what it touches
            continue
        sendable.append(record)
        if len(sendable) == limit:
            break
    return sendable


def mark_sent(session: Session, record_ids: Sequence[int], batch_id: int) -> None:
    """The records travel in this batch: one statement, not one per record."""
    session.execute(
        update(ChainRecord)
        .where(ChainRecord.id.in_(record_ids))
        .values(batch_id=batch_id, status=RecordStatus.SENT)
        .execution_options(synchronize_session=False)
    )


def records_of_capture(session: Session, capture_id: str) -> list[ChainRecord]:
    query = (
        select(ChainRecord)
        .join(Event, Event.id == ChainRecord.event_row_id)
        .where(Event.capture_id == capture_id)
        .order_by(ChainRecord.id)
    )
    return list(session.scalars(query))


def unfinished_batches(session: Session) -> list[Batch]:
    """Transactions not yet final: unmined (PREPARED), or mined but not yet buried (MINED)."""
    query = (
        select(Batch).where(Batch.status.in_((BatchStatus.PREPARED, BatchStatus.MINED))).order_by(Batch.nonce)
    )
    return list(session.scalars(query))


def batch_status(session: Session, batch_id: int) -> str | None:
    batch = session.get(Batch, batch_id)
    return None if batch is None else batch.status


def lowest_unmined_nonce(session: Session, sender: str) -> int | None:
    query = select(func.min(Batch.nonce)).where(Batch.sender == sender, Batch.status == BatchStatus.PREPARED)
    nonce: int | None = session.scalar(query)
    return nonce


def batch_with_nonce(session: Session, sender: str, nonce: int) -> Batch | None:
    return session.scalars(select(Batch).where(Batch.sender == sender, Batch.nonce == nonce)).first()


def move_to_batch(session: Session, old: int, new: int) -> None:
    """What travelled in batch `old` (records, an order's settling call) now travels in `new`."""
    session.execute(update(ChainRecord).where(ChainRecord.batch_id == old).values(batch_id=new))
    session.execute(update(Order).where(Order.settling_batch_id == old).values(settling_batch_id=new))


def highest_nonce(session: Session, sender: str) -> int | None:
    nonce: int | None = session.scalar(select(func.max(Batch.nonce)).where(Batch.sender == sender))
    return nonce


def records_of_batch(session: Session, batch_id: int) -> list[ChainRecord]:
    return list(
        session.scalars(select(ChainRecord).where(ChainRecord.batch_id == batch_id).order_by(ChainRecord.id))
    )


def fail_jobs(session: Session, reasons: dict[int, str], now: datetime) -> None:
    """The capture jobs of these events (row id -> why it failed) failed, each naming its events."""
    if not reasons:
        return
    rows = session.execute(select(Event.id, Event.event_id, Event.capture_id).where(Event.id.in_(reasons)))
    failed: dict[str, list[dict[str, str]]] = {}
    for row_id, event_id, capture_id in rows:
        failed.setdefault(capture_id, []).append({"eventID": event_id, "reason": reasons[row_id]})
    for job in session.scalars(select(CaptureJob).where(CaptureJob.id.in_(failed))):
        earlier = (job.errors or {}).get("events", [])
        events = [*earlier, *failed[job.id]]
        job.status, job.finished_at = CaptureStatus.FAILED, now
        job.errors = {"reason": events[0]["reason"], "events": events}


# ---------------------------------------------------------------- recovery (recovery.py)

_ON_THE_WAY = (RecordStatus.QUEUED, RecordStatus.UNSIGNED, RecordStatus.SENT)
_INTO_UNITS = (Kind.AGGREGATE, Kind.DISAGGREGATE, Kind.CONSUME)


def touched_by(record: Any) -> set[bytes]:
    """The projection rows a record's effect reads or changes: its chain, and the unit it packs
    into, is unpacked from or is consumed into."""
    touched = {bytes(record.chain)}
    if record.kind in _INTO_UNITS:
        touched.add(bytes(record.ref))
    return touched


def unrecorded_record_leading_to(session: Session, chain: bytes, head: bytes, before: int) -> bool:
    """Whether an earlier record, not yet on chain, leads chain `chain` to `head`."""
    query = select(ChainRecord.id).where(
        ChainRecord.chain == chain,
        ChainRecord.head == head,
        ChainRecord.id < before,
        ChainRecord.status.in_(_ON_THE_WAY),
    )
    return session.scalar(query.limit(1)) is not None


def records_depending_on(session: Session, records: Sequence[ChainRecord]) -> list[ChainRecord]:
    """`records`, the other records of their events still on their way, and every later record on
    its way that touches what any of these touches, transitively, in capture order."""
    if not records:
        return []
    start = min(record.id for record in records)
    later = list(
        session.scalars(
            select(ChainRecord)
            .where(ChainRecord.id >= start, ChainRecord.status.in_(_ON_THE_WAY))
            .order_by(ChainRecord.id)
        )
    )
    chosen = {record.id: record for record in records}
    while True:
        events = {record.event_row_id for record in chosen.values()}
        touched = set().union(*(touched_by(record) for record in chosen.values()))
        grown = False
        for record in later:
            if record.id in chosen:
                continue
            if record.event_row_id in events or touched_by(record) & touched:
                chosen[record.id] = record
                touched |= touched_by(record)
                grown = True
        if not grown:
            return sorted(chosen.values(), key=lambda record: record.id)


def mark_stale(session: Session, records: Sequence[ChainRecord]) -> None:
    """What these records touched is to be re-read from the chain before it is touched again."""
    now = datetime.now(UTC)
    wanted: dict[bytes, tuple[bytes, str | None, str]] = {}
    for record in records:
        observed = record.kind in (Kind.OBSERVE, Kind.WITHDRAW)
        wanted[record.chain] = (record.subject, record.signer if observed else None, record.subject_epc)
        if record.kind in _INTO_UNITS:
            wanted.setdefault(record.ref, (record.ref, None, ""))
    known = set(session.scalars(select(StaleChain.key).where(StaleChain.key.in_(wanted))))
    epcs = dict(
        session.execute(
            select(SubjectState.subject, SubjectState.epc).where(SubjectState.subject.in_(wanted))
        ).all()
    )
    for key, (subject, reporter, epc) in wanted.items():
        if key not in known:
            session.add(
                StaleChain(
                    key=key, subject=subject, reporter=reporter, epc=epc or epcs.get(key, ""), since=now
                )
            )
    session.flush()


def stale_epcs(session: Session, keys: Collection[bytes]) -> list[str]:
    """Of these projection rows, the EPCs of those being re-read from the chain."""
    if not keys:
        return []
    return sorted(set(session.scalars(select(StaleChain.epc).where(StaleChain.key.in_(set(keys))))))


def settled_stale_chains(session: Session) -> list[StaleChain]:
    """Stale rows no record on its way touches any more: the chain's state of them is final."""
    stale = list(session.scalars(select(StaleChain)))
    if not stale:
        return []
    keys = {row.key for row in stale}
    busy: set[bytes] = set()
    rows = session.execute(
        select(ChainRecord.chain, ChainRecord.kind, ChainRecord.ref).where(
            ChainRecord.status.in_(_ON_THE_WAY), (ChainRecord.chain.in_(keys)) | (ChainRecord.ref.in_(keys))
        )
    )
    for row in rows:
        busy |= touched_by(row) & keys
    return [row for row in stale if row.key not in busy]


def confirmed_head(session: Session, chain: bytes) -> bytes:
    """The head the chain's last confirmed record left (zero: none), for a chain only anchors hold."""
    head = session.scalar(
        select(ChainRecord.head)
        .where(ChainRecord.chain == chain, ChainRecord.status == RecordStatus.CONFIRMED)
        .order_by(ChainRecord.id.desc())
        .limit(1)
    )
    return head if head is not None else bytes(32)


def set_projection(session: Session, key: bytes, epc: str, head: bytes, unit: dict[str, Any] | None) -> None:
    row = session.get(SubjectState, key)
    if row is None:
        session.add(SubjectState(subject=key, epc=epc, head=head, unit=unit))
    else:
        row.head, row.unit = head, unit


def remove_unrecorded_events(session: Session, row_ids: Collection[int]) -> None:
    """Events none of whose records is on chain or on its way go, so that they can be captured
    again (their jobs keep why they failed)."""
    if not row_ids:
        return
    alive = set(
        session.scalars(
            select(ChainRecord.event_row_id).where(
                ChainRecord.event_row_id.in_(row_ids), ChainRecord.status != RecordStatus.FAILED
            )
        )
    )
    gone = set(row_ids) - alive
    if gone:
        session.execute(delete(ChainRecord).where(ChainRecord.event_row_id.in_(gone)))
        session.execute(delete(EventEpc).where(EventEpc.event_row_id.in_(gone)))
        session.execute(delete(EventParty).where(EventParty.event_row_id.in_(gone)))
        session.execute(delete(Event).where(Event.id.in_(gone)))


def jobs_awaiting_signatures_since(
    session: Session, cutoff: datetime, limit: int | None = None
) -> list[CaptureJob]:
    query = select(CaptureJob).where(
        CaptureJob.status == CaptureStatus.AWAITING_SIGNATURES, CaptureJob.created_at < cutoff
    )
    return list(session.scalars(query.limit(limit)))


def any_stale(session: Session) -> bool:
    return session.scalar(select(StaleChain.key).limit(1)) is not None


# ---------------------------------------------------------------- health


def beat(
    session: Session, name: str, process: str, at: datetime, error: str | None, indexed_block: int | None
) -> None:
    row = session.get(WorkerHeartbeat, name)
    if row is None:
        session.add(
            WorkerHeartbeat(name=name, process=process, beat_at=at, error=error, indexed_block=indexed_block)
        )
    else:
        row.process, row.beat_at, row.error = process, at, error
        if indexed_block is not None:
            row.indexed_block = indexed_block


def heartbeats(session: Session) -> list[WorkerHeartbeat]:
    return list(session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.name)))


@dataclass(frozen=True)
class Backlog:
    queued: int
    """Signed records waiting for a transaction (or, unsigned, for their participant)."""
    sent: int
    """Records in a transaction, waiting to be mined and buried."""
    oldest_pending_since: datetime | None
    """When the oldest record not yet confirmed was captured."""


def backlog(session: Session) -> Backlog:
    counts = dict(
        session.execute(
            select(ChainRecord.status, func.count())
            .where(ChainRecord.status.in_((RecordStatus.QUEUED, RecordStatus.UNSIGNED, RecordStatus.SENT)))
            .group_by(ChainRecord.status)
        ).all()
    )
    oldest = session.scalar(
        select(func.min(CaptureJob.created_at)).where(
            CaptureJob.status.in_((CaptureStatus.PENDING, CaptureStatus.AWAITING_SIGNATURES))
        )
    )
    return Backlog(
        counts.get(RecordStatus.QUEUED, 0) + counts.get(RecordStatus.UNSIGNED, 0),
        counts.get(RecordStatus.SENT, 0),
        oldest,
    )


# ---------------------------------------------------------------- chain identity


def chain_identity(session: Session) -> ChainIdentity | None:
    row = session.get(ChainIdentityRow, 1)
    if row is None:
        return None
    return ChainIdentity(row.chain_id, row.genesis_hash, row.registry_address, row.registry_code_hash)


def key_check(session: Session) -> bytes | None:
    row = session.get(KeyCheck, 1)
    return None if row is None else row.ciphertext


def remember_key_check(session: Session, ciphertext: bytes) -> None:
    session.add(KeyCheck(id=1, ciphertext=ciphertext))


def a_held_key(session: Session) -> tuple[str, bytes] | None:
    """Some participant's key the service holds, as (address, ciphertext)."""
    row = session.execute(
        select(Participant.address, Participant.encrypted_key)
        .where(Participant.encrypted_key.is_not(None))
        .limit(1)
    ).first()
    return None if row is None or row[1] is None else (row[0], row[1])


def remember_chain_identity(session: Session, identity: ChainIdentity) -> None:
    session.add(
        ChainIdentityRow(
            id=1,
            chain_id=identity.chain_id,
            genesis_hash=identity.genesis_hash,
            registry_address=identity.registry,
            registry_code_hash=identity.registry_code_hash,
        )
    )


# ---------------------------------------------------------------- indexing


def records_for_logs(session: Session, logs: Sequence[RecordedEvent]) -> dict[int, tuple[int, str]]:
    """For each EventRecorded log (by position in `logs`) the record it records, with its capture
    job's id, in one query (plain rows: the indexer updates them in bulk, `confirm_records`).

    A log records a record when every field the signer signed matches (subject, kind, event hash,
    counterpart, ref, time, the head its previous head leads to) and the signer is the same: the
    chain accepted exactly that signature, whichever transaction carried it (anyone may relay a
    signed event). Matching fewer fields let another signer's log, or another kind's, sharing a
    subject and head pass for a record of ours."""
    if not logs:
        return {}
    query = (
        select(
            ChainRecord.id,
            ChainRecord.subject,
            ChainRecord.head,
            ChainRecord.signer,
            ChainRecord.kind,
            ChainRecord.event_hash,
            ChainRecord.counterpart,
            ChainRecord.ref,
            ChainRecord.time,
            Event.capture_id,
        )
        .join(Event, Event.id == ChainRecord.event_row_id)
        .where(ChainRecord.subject.in_({log.subject for log in logs}))
    )
    ours = {tuple(row[1:9]): (row[0], row[9]) for row in session.execute(query)}
    found = {}
    for position, log in enumerate(logs):
        signed = (
            log.subject,
            log.head,
            log.signer,
            int(log.kind),
            log.event_hash,
            log.counterpart,
            log.ref,
            log.time,
        )
        if signed in ours:
            found[position] = ours[signed]
    return found


def records_awaiting_confirmation(session: Session) -> bool:
    """Whether any record was sent and waits for its block to be buried."""
    waiting = select(ChainRecord.id).where(ChainRecord.status == RecordStatus.SENT).limit(1)
    return session.scalar(waiting) is not None


def confirm_records(session: Session, confirmations: Sequence[dict[str, Any]]) -> None:
    """Records confirmed where the chain holds them: dicts of id, block_number, log_index, tx_hash."""
    if confirmations:
        rows = [{**row, "status": RecordStatus.CONFIRMED} for row in confirmations]
        session.execute(update(ChainRecord), rows)


def records_for_roots(session: Session, roots: Collection[bytes]) -> dict[bytes, list[tuple[int, str]]]:
    """The ids of the records anchored under each of `roots` (merkle mode), with their capture
    job's id (plain rows, as `records_for_logs`)."""
    if not roots:
        return {}
    query = (
        select(ChainRecord.id, ChainRecord.anchor_root, Event.capture_id)
        .join(Event, Event.id == ChainRecord.event_row_id)
        .where(ChainRecord.anchor_root.in_(set(roots)))
    )
    found: dict[bytes, list[tuple[int, str]]] = {}
    for record_id, root, capture_id in session.execute(query):
        assert root is not None  # selected by its root
        found.setdefault(bytes(root), []).append((record_id, capture_id))
    return found


def last_indexed_block(session: Session) -> IndexedBlock | None:
    return session.scalars(select(IndexedBlock).order_by(IndexedBlock.number.desc()).limit(1)).first()


def indexed_block(session: Session, number: int) -> IndexedBlock | None:
    return session.get(IndexedBlock, number)


def forget_blocks_before(session: Session, number: int) -> None:
    session.execute(delete(IndexedBlock).where(IndexedBlock.number < number))


def forget_blocks_after(session: Session, number: int) -> list[ChainRecord]:
    """Undo indexing above block `number` (a reorganisation): those records are unconfirmed again."""
    session.execute(delete(IndexedBlock).where(IndexedBlock.number > number))
    records = list(session.scalars(select(ChainRecord).where(ChainRecord.block_number > number)))
    for record in records:
        record.status, record.block_number, record.log_index, record.tx_hash = (
            RecordStatus.SENT,
            None,
            None,
            None,
        )
    batch_ids = {record.batch_id for record in records}
    session.execute(update(Batch).where(Batch.id.in_(batch_ids)).values(status=BatchStatus.PREPARED))
    capture_ids = select(Event.capture_id).where(Event.id.in_({r.event_row_id for r in records}))
    session.execute(
        update(CaptureJob)
        .where(CaptureJob.id.in_(capture_ids))
        .values(status=CaptureStatus.PENDING, finished_at=None)
    )
    return records


def fail_interrupted_captures(session: Session, reason: dict[str, Any], now: datetime) -> int:
    """Mark failed the capture jobs still reading their document (CAPTURING): called as a service
    starts, when the process that read them is gone with its transaction (nothing of them was
    stored). A capture still running elsewhere sees its job failed and rolls back. How many."""
    result = session.execute(
        update(CaptureJob)
        .where(CaptureJob.status == CaptureStatus.CAPTURING)
        .values(status=CaptureStatus.FAILED, finished_at=now, errors=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def complete_jobs(session: Session, capture_ids: set[str], now: datetime) -> None:
    """Jobs whose every record is confirmed succeeded."""
    for capture_id in capture_ids:
        open_records = session.scalar(
            select(func.count())
            .select_from(ChainRecord)
            .join(Event, Event.id == ChainRecord.event_row_id)
            .where(Event.capture_id == capture_id, ChainRecord.status != RecordStatus.CONFIRMED)
        )
        job = session.get(CaptureJob, capture_id)
        if job is not None and open_records == 0 and job.status == CaptureStatus.PENDING:
            job.status, job.finished_at = CaptureStatus.SUCCEEDED, now


# ---------------------------------------------------------------- orders (settlement.py)


def order_in_escrow(session: Session, escrow: str, order_id: int) -> Order | None:
    """The order the escrow numbers `order_id`."""
    query = select(Order).where(Order.escrow == escrow, Order.order_id == order_id)
    return session.scalars(query).first()


def orders_in_states(session: Session, escrow: str, states: Collection[str]) -> list[Order]:
    query = select(Order).where(Order.escrow == escrow, Order.state.in_(states))
    return list(session.scalars(query))


def orders_party_to(session: Session, participant_id: str) -> list[Order]:
    """The orders a participant is party to, as buyer, seller or arbiter, newest first."""
    return list(
        session.scalars(
            select(Order)
            .where(
                or_(
                    Order.buyer_id == participant_id,
                    Order.seller_id == participant_id,
                    Order.arbiter_id == participant_id,
                )
            )
            .order_by(Order.id.desc())
        )
    )


def orders_for_shipments(session: Session, epcs: set[str]) -> list[Order]:
    return list(session.scalars(select(Order).where(Order.shipment_epc.in_(epcs)).order_by(Order.id)))


# ---------------------------------------------------------------- named queries and subscriptions


def named_query(session: Session, owner: str, name: str) -> NamedQuery | None:
    query = select(NamedQuery).where(NamedQuery.owner == owner, NamedQuery.name == name)
    return session.scalars(query).first()


def named_query_by_id(session: Session, query_id: str) -> NamedQuery | None:
    return session.get(NamedQuery, query_id)


def add_named_query(session: Session, named: NamedQuery) -> bool:
    """Store a new named query; False, and nothing stored, if its owner has a query of that name,
    one stored by a transaction running at the same moment included (the unique constraint)."""
    try:
        with session.begin_nested():
            session.add(named)
    except IntegrityError:
        return False
    return True


def delete_named_query(session: Session, named: NamedQuery) -> None:
    session.delete(named)


def named_queries(session: Session, owner: str, after_name: str | None, limit: int) -> list[NamedQuery]:
    """The owner's named queries by name, from after `after_name` (paging)."""
    query = select(NamedQuery).where(NamedQuery.owner == owner)
    if after_name is not None:
        query = query.where(NamedQuery.name > after_name)
    return list(session.scalars(query.order_by(NamedQuery.name).limit(limit)))


def subscriptions_of(
    session: Session, query_id: str, after_id: str | None = None, limit: int | None = None
) -> list[Subscription]:
    query = select(Subscription).where(Subscription.query_id == query_id)
    if after_id is not None:
        query = query.where(Subscription.id > after_id)
    query = query.order_by(Subscription.id)
    return list(session.scalars(query if limit is None else query.limit(limit)))


def subscription_of(session: Session, query_id: str, subscription_id: str) -> Subscription | None:
    found = session.get(Subscription, subscription_id)
    return found if found is not None and found.query_id == query_id else None


def delete_subscriptions(session: Session, subscription_ids: Collection[str]) -> None:
    """Subscriptions and their outbox: nothing more is sent for them, pending or not."""
    if subscription_ids:
        ids = list(subscription_ids)
        session.execute(delete(Delivery).where(Delivery.subscription_id.in_(ids)))
        session.execute(delete(Subscription).where(Subscription.id.in_(ids)))


def feed_confirmed_events(session: Session, capture_ids: Collection[str], now: datetime) -> None:
    """The events of these capture jobs whose every record is now confirmed join the subscriptions'
    feed, each once: the indexer calls it in the transaction that confirms their records, so an
    event is confirmed and fed together or neither; a capture, for a job whose events have nothing
    to record on chain (they are final as captured). (An event confirmed again after a
    reorganisation is not fed again: its subscribers had it.)"""
    if not capture_ids:
        return
    open_records = (
        select(ChainRecord.id)
        .where(ChainRecord.event_row_id == Event.id, ChainRecord.status != RecordStatus.CONFIRMED)
        .exists()
    )
    fed = select(EventConfirmation.seq).where(EventConfirmation.event_row_id == Event.id).exists()
    ready = session.scalars(
        select(Event.id)
        .where(Event.capture_id.in_(list(capture_ids)), ~open_records, ~fed)
        .order_by(Event.record_time, Event.id)
    )
    rows = [{"event_row_id": row_id, "confirmed_at": now} for row_id in ready]
    if rows:
        hold(session, SharedLock.FEED)  # seq in commit order: a reader's cursor skips nothing
        session.execute(insert(EventConfirmation), rows)


def last_confirmation_seq(session: Session) -> int:
    return session.scalar(select(func.max(EventConfirmation.seq))) or 0


def confirmations_after(session: Session, cursor: int, limit: int) -> list[tuple[int, int]]:
    """(seq, event row) of the feed after `cursor`, in order."""
    query = (
        select(EventConfirmation.seq, EventConfirmation.event_row_id)
        .where(EventConfirmation.seq > cursor)
        .order_by(EventConfirmation.seq)
        .limit(limit)
    )
    return [(seq, row_id) for seq, row_id in session.execute(query)]


def _delivery_waiting() -> ColumnElement[bool]:
    """The subscription has a delivery in the outbox: one at a time per subscription, so a receiver
    that is down holds back no more than one, and what matches meanwhile goes out together once it
    is back (the cursor waits)."""
    return (
        select(Delivery.seq)
        .where(Delivery.subscription_id == Subscription.id, Delivery.status == DeliveryStatus.PENDING)
        .exists()
    )


def streaming_subscriptions_to_feed(session: Session, limit: int) -> list[Subscription]:
    """Streaming subscriptions behind the feed with no delivery waiting."""
    behind = Subscription.cursor < select(func.coalesce(func.max(EventConfirmation.seq), 0)).scalar_subquery()
    query = select(Subscription).where(Subscription.stream.is_(True), ~_delivery_waiting(), behind)
    return list(session.scalars(query.order_by(Subscription.id).limit(limit)))


def scheduled_subscriptions_due(session: Session, now: datetime, limit: int) -> list[Subscription]:
    """Scheduled subscriptions whose run is due and that have no delivery waiting: the runs missed
    while one waits make one run once it is through, not one stored delivery per tick."""
    query = select(Subscription).where(
        Subscription.stream.is_(False),
        Subscription.next_run_at.is_not(None),
        Subscription.next_run_at <= now,
        ~_delivery_waiting(),
    )
    return list(session.scalars(query.order_by(Subscription.next_run_at).limit(limit)))


def deliveries_due(session: Session, now: datetime, limit: int) -> list[Delivery]:
    """Pending deliveries whose time has come, each the oldest pending of its subscription (a
    subscription's deliveries reach its receiver in order)."""
    candidate = aliased(Delivery)
    older = (
        select(Delivery.seq)
        .where(
            Delivery.subscription_id == candidate.subscription_id,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.seq < candidate.seq,
        )
        .exists()
    )
    query = select(candidate).where(
        candidate.status == DeliveryStatus.PENDING, candidate.next_attempt_at <= now, ~older
    )
    return list(session.scalars(query.order_by(candidate.next_attempt_at, candidate.seq).limit(limit)))


def owners_of_deliveries(session: Session, seqs: list[int]) -> dict[int, str]:
    """Whose subscription each delivery is for (its query's owner)."""
    query = (
        select(Delivery.seq, NamedQuery.owner)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(NamedQuery, NamedQuery.id == Subscription.query_id)
        .where(Delivery.seq.in_(seqs))
    )
    return {seq: owner for seq, owner in session.execute(query)}


def deliveries_of(session: Session, subscription_id: str) -> list[Delivery]:
    query = select(Delivery).where(Delivery.subscription_id == subscription_id).order_by(Delivery.seq)
    return list(session.scalars(query))


def pending_deliveries(session: Session, subscription_id: str) -> list[Delivery]:
    """A subscription's deliveries its receiver has not taken yet, oldest first."""
    query = select(Delivery).where(
        Delivery.subscription_id == subscription_id, Delivery.status == DeliveryStatus.PENDING
    )
    return list(session.scalars(query.order_by(Delivery.seq)))
