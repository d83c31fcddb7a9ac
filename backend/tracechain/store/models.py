"""Tables. Every EPCIS event the service accepted, the signed chain records it became, the
transactions that carry them (the outbox), where the indexer stands on the chain, and the escrow
orders placed through the service."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tracechain.chain.trace_event import Kind, SignedEvent, TraceEvent


class UtcDateTime(TypeDecorator[datetime]):
    """A moment, read back in UTC from either database. PostgreSQL keeps the offset; SQLite keeps
    none and would hand back a naive datetime (served without an offset, which EPCIS refuses):
    every moment is written in UTC (a naive one, such as a query's bound without an offset, taken
    as UTC), so one read back naive is UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: UtcDateTime(),
    }


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]]
    party_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    """The participant's GLN as an EPC URN (pgln or sgln): how EPCIS source/destination lists name it."""
    country: Mapped[str] = mapped_column(String(2))
    address: Mapped[str] = mapped_column(String(42), unique=True)
    encrypted_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Set when the service holds the key (AES-GCM under the master secret); None for own-wallet signers."""
    created_at: Mapped[datetime]


class KeyScope(StrEnum):
    CAPTURE = "capture"  # everything the participant may do: capture, orders, keys, grants, reads
    READ = "read"  # reads only: queries, traces, its orders and capture jobs


class ApiKey(Base):
    """One of a participant's API keys, stored as its hash. A participant holds several (a capture key
    for its ERP, read keys for dashboards), rotates and revokes them without being recreated."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_api_keys_participant_id", "participant_id"),)


class GrantScope(StrEnum):
    ALL = "all"  # every event of the grantor
    SUBJECT = "subject"  # the grantor's events naming one identifier
    BIZ_STEP = "bizStep"  # the grantor's events of one business step


class Grant(Base):
    """A participant lets another (an auditor, customs, a partner) read its events in full."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grantor_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    grantee_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    scope: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(String(255))
    """The identifier (scope subject) or bare CBV business step (scope bizStep); None for all."""
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_grants_grantee_id", "grantee_id"),
        Index("ix_grants_grantor_id", "grantor_id"),
    )


class PublicFields(Base):
    """Fields a participant makes public, beyond the consumer view's own, in its events about one
    product class (a GTIN): a brand that wants its ILMD or an extension on the consumer page."""

    __tablename__ = "public_fields"

    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    fields: Mapped[list[str]]


class CaptureStatus(StrEnum):
    CAPTURING = "capturing"  # a big document being read, checked and stored; nothing visible yet
    AWAITING_SIGNATURES = "awaiting_signatures"  # accepted; its participant signs client-side
    PENDING = "pending"  # accepted; its chain records wait to be confirmed
    SUCCEEDED = "succeeded"  # every record confirmed on chain
    FAILED = "failed"  # the chain refused a record; `errors` says why


class CaptureJob(Base):
    __tablename__ = "capture_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    status: Mapped[str] = mapped_column(String(32), default=CaptureStatus.PENDING)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    event_count: Mapped[int] = mapped_column(Integer)
    error_behaviour: Mapped[str] = mapped_column(String(16), default="rollback", server_default="rollback")
    """The EPCIS `GS1-Capture-Error-Behaviour` it was captured under: `rollback` or `proceed`."""
    errors: Mapped[dict[str, Any] | None]

    # GET /capture: a participant's jobs, in the order they were created, page after page.
    __table_args__ = (Index("ix_capture_jobs_participant_created", "participant_id", "created_at", "id"),)


class Event(Base):
    """An EPCIS event as one participant captured and signed it.

    Its CBV 2.0 hash id (`event_id`) is a function of its content, which anyone who has seen the
    event can send. So the same content captured by another participant is another row, with its own
    signed records: a duplicate is only the same event by the same signer, and nobody can take an
    event's id before its author does. An error declaration carries the id of the event it withdraws
    (the CBV hash leaves `errorDeclaration` out) and is a row of its own (`declaration`).
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(120))
    """The CBV 2.0 hash id: the event's id on chain, in traces and bundles."""
    declared_id: Mapped[str | None] = mapped_column(String(255))
    """The eventID its capturer gave it (`urn:uuid:…`, its own hash id), if any: it finds the event too."""
    declaration: Mapped[bool] = mapped_column(Boolean, default=False)
    """An error declaration: its signer withdraws its own event with this id (an auditor, anyone's)."""
    capture_id: Mapped[str] = mapped_column(ForeignKey("capture_jobs.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    biz_step: Mapped[str | None] = mapped_column(String(200))
    disposition: Mapped[str | None] = mapped_column(String(200))
    event_time: Mapped[datetime]
    record_time: Mapped[datetime]
    body: Mapped[dict[str, Any]]
    context: Mapped[Any] = mapped_column(JSON)
    """The capture document's @context, needed to recompute the hash id."""
    signer: Mapped[str] = mapped_column(String(42))
    disclosure_seed: Mapped[bytes] = mapped_column(LargeBinary(32))
    """Random, secret: the event's fields are salted from it (`tracechain.disclosure`), so that a
    proof bundle may withhold some and their values still cannot be guessed from their hashes."""

    epcs: Mapped[list[EventEpc]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    parties: Mapped[list[EventParty]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    records: Mapped[list[ChainRecord]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ChainRecord.id", back_populates="event"
    )

    __table_args__ = (
        UniqueConstraint("event_id", "signer", "declaration", name="uq_events_event_id_signer_declaration"),
        Index("ix_events_event_time", "event_time"),
        Index("ix_events_record_time_id", "record_time", "id"),
        Index("ix_events_biz_step", "biz_step"),
        Index("ix_events_event_type", "event_type"),
        # A capture job's events: its status (records_of_capture) and the indexer completing it.
        Index("ix_events_capture_id", "capture_id"),
        # Visibility: the subjects a participant took part in are those its own events name.
        Index("ix_events_signer", "signer"),
        Index("ix_events_declared_id", "declared_id"),
    )


class EventParty(Base):
    """Which parties an event names in its sourceList and destinationList (their EPC URNs): a party
    named there took part in the journey of what the event names, and may read it (`visibility`)."""

    __tablename__ = "event_parties"

    event_row_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    party: Mapped[str] = mapped_column(String(255), primary_key=True)

    __table_args__ = (Index("ix_event_parties_party", "party"),)


class EventEpc(Base):
    """Which identifiers an event names, and how (epc, parent, child, input, output, quantity)."""

    __tablename__ = "event_epcs"

    event_row_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    epc: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)

    __table_args__ = (Index("ix_event_epcs_epc", "epc"),)


class MasterData(Base):
    """An EPCIS master data vocabulary element (a location, a product class, a party…) as one
    participant described it in a capture document's header: its attributes as captured and the
    elements below it. Each participant's master data is its own (a rival cannot re-parent or
    rename another's sites); a later capture of the same element replaces its description."""

    __tablename__ = "master_data"

    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    vocabulary_type: Mapped[str] = mapped_column(String(255), primary_key=True)
    """As captured: `urn:epcglobal:epcis:vtype:BusinessLocation` or its web URI form."""
    element_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    """The element's id, canonical (a GS1 location or party as its EPC URN)."""
    attributes: Mapped[list[Any]] = mapped_column(JSON)
    """The element's attributes as captured: [{"id": uri, "attribute": value}, …]."""
    children: Mapped[list[str]]
    """The ids of the elements directly below it, canonical."""
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_master_data_element_id", "element_id"),)


class RecordStatus(StrEnum):
    UNSIGNED = "unsigned"  # awaiting its participant's own signature
    QUEUED = "queued"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class ChainRecord(Base):
    """One signed TraceEvent: an EPCIS event's effect on one subject, as recorded on chain."""

    __tablename__ = "chain_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_row_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    subject: Mapped[bytes] = mapped_column(LargeBinary(32))
    subject_epc: Mapped[str] = mapped_column(String(255))
    chain: Mapped[bytes] = mapped_column(LargeBinary(32))
    """The head chain the record joins (`trace_event.chain_of`): its subject's facts, or its signer's
    observations of the subject."""
    kind: Mapped[int] = mapped_column(Integer)
    event_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    counterpart: Mapped[str] = mapped_column(String(42))
    ref: Mapped[bytes] = mapped_column(LargeBinary(32))
    time: Mapped[int] = mapped_column(BigInteger)
    prev_head: Mapped[bytes] = mapped_column(LargeBinary(32))
    head: Mapped[bytes] = mapped_column(LargeBinary(32))
    signer: Mapped[str] = mapped_column(String(42))
    r: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    vs: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default=RecordStatus.QUEUED)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    log_index: Mapped[int | None] = mapped_column(Integer)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    anchor_root: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """Merkle mode: the root of the anchored batch this record is a leaf of (None: recorded by record())."""
    merkle_proof: Mapped[list[str] | None]
    """Merkle mode: the record's inclusion proof under `anchor_root`, sibling hashes as 0x-hex."""
    verification_stamp: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """The costly content checks, done when the record was signed and kept with it
    (`tracechain.stamps`); None: checked from scratch by every trace."""

    event: Mapped[Event] = relationship(back_populates="records")

    def trace_event(self) -> TraceEvent:
        """What the signer signed."""
        return trace_event_of(self)

    def signed_event(self) -> SignedEvent:
        """What record() carries; only for a record that has its signature."""
        return signed_event_of(self)

    __table_args__ = (
        UniqueConstraint("chain", "prev_head", name="uq_chain_records_chain_prev_head"),
        Index("ix_chain_records_status", "status"),
        Index("ix_chain_records_subject", "subject"),
        # An event's records, loaded with it by every trace: without it a trace scans every record.
        Index("ix_chain_records_event_row_id", "event_row_id"),
        Index("ix_chain_records_batch_id", "batch_id"),
        Index("ix_chain_records_anchor_root", "anchor_root"),
        # Visibility: the subjects shipped to a participant.
        Index("ix_chain_records_counterpart", "counterpart"),
    )


class RecordFields(Protocol):
    """A chain record's signed fields, as an ORM object or a plain row (a trace reads rows)."""

    @property
    def id(self) -> int: ...
    @property
    def subject(self) -> bytes: ...
    @property
    def kind(self) -> int: ...
    @property
    def event_hash(self) -> bytes: ...
    @property
    def counterpart(self) -> str: ...
    @property
    def ref(self) -> bytes: ...
    @property
    def time(self) -> int: ...
    @property
    def prev_head(self) -> bytes: ...
    @property
    def signer(self) -> str: ...
    @property
    def r(self) -> bytes | None: ...
    @property
    def vs(self) -> bytes | None: ...


def trace_event_of(record: RecordFields) -> TraceEvent:
    """What the record's signer signed."""
    return TraceEvent(
        record.subject,
        Kind(record.kind),
        record.event_hash,
        record.counterpart,
        record.ref,
        record.time,
        record.prev_head,
    )


def signed_event_of(record: RecordFields) -> SignedEvent:
    """What record() carries; only for a record that has its signature."""
    assert record.r is not None and record.vs is not None, f"record {record.id} is not signed yet"
    return SignedEvent(trace_event_of(record), record.signer, record.r, record.vs)


class BatchStatus(StrEnum):
    PREPARED = "prepared"  # signed and stored, maybe sent: resend after a crash
    MINED = "mined"  # in a block, not yet buried deep enough to be final: watched for reorgs
    FINAL = "final"  # buried under the finality depth
    FAILED = "failed"  # the chain refused it
    REPLACED = "replaced"  # its nonce went to another transaction: signed again with a new one


class Batch(Base):
    """One transaction of the outbox, stored signed before it is sent."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nonce: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary)
    call: Mapped[dict[str, Any]]
    """What it sends, unsigned (to, data, value, gas): signed again should its nonce be lost."""
    status: Mapped[str] = mapped_column(String(16), default=BatchStatus.PREPARED)
    created_at: Mapped[datetime]
    error: Mapped[str | None] = mapped_column(Text)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    """Where it was mined, while that may still change (MINED)."""

    __table_args__ = (
        UniqueConstraint("sender", "nonce", name="uq_batches_sender_nonce"),
        Index("ix_batches_status", "status"),
    )


class SubjectState(Base):
    """The custody projection: each subject as the contract will hold it once queued records land.

    Keyed by chain (`trace_event.chain_of`): a subject's row holds its unit and the head of its facts;
    each reporter's chain of observations of it has a row of its own, with a head and no unit."""

    __tablename__ = "subject_states"

    subject: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    epc: Mapped[str] = mapped_column(String(255))
    head: Mapped[bytes] = mapped_column(LargeBinary(32))
    unit: Mapped[dict[str, Any] | None]
    """custody.Unit as JSON, or None for a subject that was only observed."""


class StaleChain(Base):
    """A projection row to re-read from the chain: a record touching it was refused (`recovery`)."""

    __tablename__ = "stale_chains"

    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    """The projection row's key: a subject, or a reporter's chain of observations of it."""
    subject: Mapped[bytes] = mapped_column(LargeBinary(32))
    reporter: Mapped[str | None] = mapped_column(String(42))
    """Set for a reporter's chain of observations; None for the subject's own row."""
    epc: Mapped[str] = mapped_column(String(255))
    since: Mapped[datetime]


class ChainIdentityRow(Base):
    """The chain this database's records are on (`chain.identity`): one row, written when the
    database is first served."""

    __tablename__ = "chain_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    genesis_hash: Mapped[str] = mapped_column(String(66))
    registry_address: Mapped[str] = mapped_column("registry", String(42))
    registry_code_hash: Mapped[str] = mapped_column(String(66))


class KeyCheck(Base):
    """A known value encrypted under the master secret the database's keys are encrypted under
    (`KeyVault.check_value`): one row, written when the database is first served, so a changed
    TRACECHAIN_MASTER_SECRET is refused at start rather than found at a participant's first capture."""

    __tablename__ = "key_check"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class WorkerHeartbeat(Base):
    """The last sign of life of each background worker, whichever process runs it (`supervision`)."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    process: Mapped[str] = mapped_column(String(200))
    beat_at: Mapped[datetime]
    error: Mapped[str | None] = mapped_column(Text)
    """Why its rounds fail, while they do."""
    indexed_block: Mapped[int | None] = mapped_column(BigInteger)


class IndexedBlock(Base):
    """Blocks the indexer has read, with their hashes, to notice a reorganisation."""

    __tablename__ = "indexed_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))


class Order(Base):
    """A TradeEscrow order created through the service, with the settlement it last read from chain.

    The chain is the truth: `settlement` is a snapshot (state, paid, refunded, releases, penalties)
    refreshed after every action and by the settler's rounds, so traces and lists need no chain call.
    """

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    escrow: Mapped[str] = mapped_column(String(42))
    order_id: Mapped[int] = mapped_column(BigInteger)
    """The order's number in its escrow contract: what the API and the chain call it."""
    buyer_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    seller_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    arbiter_id: Mapped[str | None] = mapped_column(ForeignKey("participants.id"))
    shipment_epc: Mapped[str] = mapped_column(String(255))
    token: Mapped[str] = mapped_column(String(42))
    amount: Mapped[str] = mapped_column(String(80))
    """In the token's smallest unit, as a decimal string: ERC-20 amounts outgrow 64-bit integers."""
    state: Mapped[str] = mapped_column(String(16))
    settlement: Mapped[dict[str, Any]]
    settling_batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    """The settler's release or penalty transaction in flight for this order, if any."""
    created_tx: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("escrow", "order_id", name="uq_orders_escrow_order_id"),
        Index("ix_orders_shipment_epc", "shipment_epc"),
        Index("ix_orders_state", "state"),
    )


class NamedQuery(Base):
    """A SimpleEventQuery saved under a name by its owner (EPCIS REST `/queries`).

    Names are unique per owner, not across the service: `/queries/{name}` is read in the caller's
    own namespace, so a participant never learns from a 409 or a 404 what another has named its
    queries (nor, from their filters, what it looks for)."""

    __tablename__ = "named_queries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(36))
    """The participant id of who created it, or `admin`: whose view of the events it answers with."""
    name: Mapped[str] = mapped_column(String(200))
    params: Mapped[list[list[str]]] = mapped_column(JSON)
    """The query's SimpleEventQuery parameters as (name, value) pairs, as `GET /events` reads them."""
    query: Mapped[dict[str, Any]]
    """The query as its owner sent it, served back as its definition."""
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("owner", "name", name="uq_named_queries_owner_name"),)


class Subscription(Base):
    """A webhook subscription to a named query: matching events are POSTed to `dest` as EPCIS query
    documents, as they are confirmed (`stream`) or at the times of a cron-like `schedule`."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    query_id: Mapped[str] = mapped_column(ForeignKey("named_queries.id", ondelete="CASCADE"))
    dest: Mapped[str] = mapped_column(Text)
    signature_token: Mapped[str | None] = mapped_column(Text)
    """The subscriber's secret: the key of the HMAC in each delivery's GS1-Signature; never served."""
    stream: Mapped[bool] = mapped_column(Boolean)
    schedule: Mapped[dict[str, Any] | None]
    report_if_empty: Mapped[bool] = mapped_column(Boolean)
    initial_record_time: Mapped[datetime | None]
    """Events recorded before it are never delivered (None: those confirmed after subscribing)."""
    cursor: Mapped[int] = mapped_column(BigInteger)
    """The last `event_confirmations.seq` this subscription has put in its deliveries."""
    next_run_at: Mapped[datetime | None]
    """When a scheduled subscription runs next."""
    created_at: Mapped[datetime]
    last_notified_at: Mapped[datetime | None]
    """When `dest` last answered a delivery with a 2xx."""

    __table_args__ = (Index("ix_subscriptions_query_id", "query_id"),)


class EventConfirmation(Base):
    """The feed subscriptions read: an event joins it, once, in the transaction in which the indexer
    confirms its last record. Subscriptions keep a cursor into it (`Subscription.cursor`).

    `seq` grows in commit order, so that a cursor past a seq has seen every row below it: its
    writers (the indexer; a capture of events that have nothing to record on chain, final as
    captured) take the FEED lock before they append, and hold it until they commit."""

    __tablename__ = "event_confirmations"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_row_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), unique=True)
    confirmed_at: Mapped[datetime]


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to send, at next_attempt_at
    DELIVERED = "delivered"  # dest answered 2xx


class Delivery(Base):
    """The webhook outbox: one POST to a subscription's dest, its body fixed when it is built.

    Built in the transaction that advances the subscription's cursor past its events, so an event
    is in exactly one delivery of a subscription; sent again (same id, same bytes) until `dest`
    answers 2xx. A delivery whose POST was in flight when the process died is sent again after the
    restart: the receiver dedupes on its id (`Idempotency-Key`, and `tracechain:deliveryID` in the
    signed body)."""

    __tablename__ = "deliveries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    """A subscription's deliveries are sent in this order, one at a time."""
    id: Mapped[str] = mapped_column(String(36), unique=True)
    """The delivery id a receiver dedupes on."""
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    """The exact bytes POSTed and signed: every attempt sends the same."""
    event_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_deliveries_subscription_id", "subscription_id"),
    )
