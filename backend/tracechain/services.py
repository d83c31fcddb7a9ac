"""What the app runs on: chain, registry, escrow, database, key vault and the background workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tracechain.capture import CaptureLimits
from tracechain.chain.connect import Chain
from tracechain.chain.deployments import (
    ensure_anchorer,
    load_or_deploy_escrow,
    load_or_deploy_registry,
    settlement_token,
)
from tracechain.chain.identity import ChainIdentity, IdentityGuard
from tracechain.chain.registry import TraceRegistry
from tracechain.config import ChainMode, Settings
from tracechain.errors import ConfigurationError, NotDeployedYet, TracechainError
from tracechain.group_commit import GroupCommit
from tracechain.indexer import Indexer
from tracechain.keys import KeyDecryptionFailed, KeyVault, WrongMasterSecret, check_value, require_same_secret
from tracechain.query_documents import query_document
from tracechain.settlement import Settlement
from tracechain.stamps import VerificationStamps
from tracechain.store import queries
from tracechain.store.db import (
    SharedLock,
    begin_writing,
    hold,
    make_engine,
    migrate,
    session_factory,
    transaction,
)
from tracechain.submission import Submitter
from tracechain.subscriptions import Deliverer
from tracechain.supervision import Supervisor

log = logging.getLogger(__name__)


PREPARING_AT_ONCE = 2
GROUP_EVENTS = 2_000
"""Most events of the captures one transaction commits together (`group_commit`): enough to share
a commit among many small documents, few enough that the first of them is answered soon."""


class CaptureQueueFull(TracechainError):
    """The capture queue is full, by its places or by the bytes waiting: the client should retry
    shortly."""

    retry_after_s = 1

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}; retry in {self.retry_after_s} s")


# Demo mode only: fixed throwaway secrets so `tracechain demo` and `serve` agree without set-up.
DEMO_MASTER_SECRET = "tracechain-demo-master-secret-not-for-production"
DEMO_ADMIN_TOKEN = "tracechain-demo-admin-token-not-for-production"


@dataclass
class Services:
    settings: Settings
    chain: Chain
    registry: TraceRegistry
    engine: Engine
    sessions: sessionmaker[Session]
    vault: KeyVault
    admin_token: str
    submitter: Submitter
    indexer: Indexer
    deliverer: Deliverer
    """Sends webhook subscriptions' deliveries (`tracechain.subscriptions`)."""
    settlement: Settlement | None
    """None when this chain has no settlement token configured; `settlement_unavailable` says why."""
    settlement_unavailable: str | None = None
    chain_guard: IdentityGuard | None = None
    """Checks that the node still serves the chain the database's records are on."""
    capture_lock: threading.Lock = field(default_factory=threading.Lock)
    capture_slots: threading.BoundedSemaphore = field(init=False)
    """Captures admitted to wait for the capture lock (Settings.capture_queue); see capture_admission."""
    _queued_bytes: int = 0
    _queue_guard: threading.Lock = field(default_factory=threading.Lock)
    captures: GroupCommit = field(init=False)
    """Where captures wait for the capture lock, and run, several in one transaction."""
    _supervisor: Supervisor | None = None
    capture_threads: ThreadPoolExecutor = field(init=False)
    """The threads captures run on, and wait their turn on: one for each place in the capture queue,
    apart from the server's own, so that reads never wait for a thread behind captures waiting for
    the capture lock (with the server's 40 threads all held by waiting captures, a GET waited for
    the lock too)."""
    capture_progress: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Streamed captures running in this process: job id -> (events read and kept so far, events
    in the document). Memory, not the database: the capture's rows are one transaction, and on
    SQLite a second writer would wait for it."""

    @classmethod
    def start(cls, settings: Settings, chain: Chain, *, deploys: bool = True) -> Services:
        """Everything the service runs on. `deploys`: migrate the database and deploy what the
        chain lacks (`serve`); a worker process (`tracechain work`) raises NotDeployedYet instead,
        until `serve` has done so."""
        settings.require_secrets()
        master = settings.master_secret.get_secret_value() if settings.master_secret else DEMO_MASTER_SECRET
        admin = settings.admin_token.get_secret_value() if settings.admin_token else DEMO_ADMIN_TOKEN
        engine = make_engine(settings.effective_database_url)
        if deploys:
            migrate(engine)  # a worker finds it done: serve migrates before it deploys
        sessions = session_factory(engine)
        vault = KeyVault(master)
        _require_the_databases_master_secret(sessions, vault, deploys)
        if deploys:
            _fail_interrupted_captures(sessions)
        registry, guard = _registry_on_the_remembered_chain(settings, chain, sessions, deploys)
        if settings.recording_mode in ("merkle", "hybrid"):
            ensure_anchorer(registry, may_grant=deploys)
        submitter = Submitter(
            sessions,
            registry,
            settings.batch_size,
            settings.recording_mode,
            settings.confirmations,
            guard,
            signature_timeout=timedelta(hours=settings.signature_timeout_hours),
        )
        settlement, unavailable = _settlement(settings, chain, registry, sessions, vault, submitter, deploys)
        return cls(
            settings=settings,
            chain=chain,
            registry=registry,
            engine=engine,
            sessions=sessions,
            vault=vault,
            admin_token=admin,
            submitter=submitter,
            # A database's records are all sent from now on, so a new one need not read older logs;
            # one that has indexed before resumes where it stopped.
            indexer=Indexer(
                sessions,
                registry,
                settings.confirmations,
                start_block=chain.tip(),
                guard=guard,
                mine_when_idle=chain.mode is ChainMode.ANVIL,
            ),
            chain_guard=guard,
            deliverer=Deliverer(
                sessions,
                query_document,
                allow_private=settings.webhook_allow_private,
                timeout_s=settings.webhook_timeout_s,
                retry_base_s=settings.webhook_retry_base_s,
                retry_max_s=settings.webhook_retry_max_s,
            ),
            settlement=settlement,
            settlement_unavailable=unavailable,
        )

    def __post_init__(self) -> None:
        self.capture_slots = threading.BoundedSemaphore(self.settings.capture_queue)
        # Captures waiting in the queue prepare their documents (schema, hashes, effects: pure
        # Python) outside the capture lock, but two at a time at most. Sixteen doing it at once
        # starved the lock's holder: each time it came back from the database it waited for the
        # GIL behind them, and 16 clients captured less than 4 did.
        self.preparing = threading.BoundedSemaphore(PREPARING_AT_ONCE)
        self.captures = GroupCommit(lambda: self.capturing(), GROUP_EVENTS)
        self.capture_threads = ThreadPoolExecutor(self.settings.capture_queue, thread_name_prefix="capture")
        self.submitter.capturing = self.capturing  # recovery runs while no capture signs

    @property
    def stamps(self) -> VerificationStamps:
        """The verification stamps capture writes and traces check (`tracechain.stamps`)."""
        return VerificationStamps(self.vault.stamp_key, self.registry.domain.separator)

    @property
    def capture_limits(self) -> CaptureLimits:
        settings = self.settings
        return CaptureLimits(
            settings.capture_max_events, settings.capture_max_epcs_per_event, settings.capture_max_event_bytes
        )

    @contextmanager
    def capture_admission(self, body_bytes: int | None = 0) -> Iterator[None]:
        """A place in the queue of captures waiting for the capture lock, or CaptureQueueFull at once.

        Captures run one at a time (each signs over the heads the one before left). Letting every
        client wait for its turn held a thread, its body and, before, two database connections
        each; at 50 clients the pool ran dry and clients got 500s after 30 s. A bounded queue
        answers the overflow with 503 and Retry-After instead, which clients retry. Waiting holds
        no connection now (`group_commit`), so the queue is long enough for every client of a busy
        hour (Settings.capture_queue); what bounds the memory it holds is the bytes of its bodies
        (Settings.capture_queue_bytes), each counted by its Content-Length before it is read, or
        as the largest allowed when it has none (`body_bytes` None)."""
        settings = self.settings
        size = (
            settings.capture_max_bytes if body_bytes is None else min(body_bytes, settings.capture_max_bytes)
        )
        if not self.capture_slots.acquire(blocking=False):
            raise CaptureQueueFull(
                f"{settings.capture_queue} captures are already waiting (TRACECHAIN_CAPTURE_QUEUE)"
            )
        try:
            with self._queue_guard:
                # One body alone is always let in (it is within capture_max_bytes).
                if self._queued_bytes and self._queued_bytes + size > settings.capture_queue_bytes:
                    raise CaptureQueueFull(
                        f"{self._queued_bytes:,} bytes of captures are already waiting "
                        "(TRACECHAIN_CAPTURE_QUEUE_BYTES)"
                    )
                self._queued_bytes += size
            try:
                yield
            finally:
                with self._queue_guard:
                    self._queued_bytes -= size
        finally:
            self.capture_slots.release()

    @contextmanager
    def capturing(self) -> Iterator[Session]:
        """The transaction a capture runs in: one at a time, as each signs over the heads the one
        before it left (threads of this process, and processes sharing a PostgreSQL database)."""
        with self.capture_lock, transaction(self.sessions) as session:
            begin_writing(session)  # SQLite: one transaction, its savepoints inside (group_commit)
            hold(session, SharedLock.CAPTURE)
            yield session

    def settle(self) -> None:
        """One round of every worker, in order: for tests and for callers that run no threads."""
        for _, step in self._workers():
            step()

    def _workers(self) -> list[tuple[str, Callable[[], int]]]:
        workers = [("submitter", self.submitter.run_once), ("indexer", self.indexer.run_once)]
        if self.settlement is not None:
            workers.append(("settler", self.settlement.settle_round))
        workers.append(("deliverer", self.deliverer.run_once))
        return workers

    def start_workers(self) -> None:
        """The workers in threads of this process (`supervision.Supervisor`). On PostgreSQL, one
        process per database runs them (two would send, index and settle the same things): raises
        ConfigurationError if another holds that role."""
        self._supervisor = Supervisor(
            self.engine,
            self.sessions,
            self._workers(),
            self.settings.poll_interval,
            indexed_block=self._indexed_block,
        )
        if not self._supervisor.start():
            self._supervisor = None
            raise ConfigurationError(
                "another process runs the workers for this database (`tracechain work`, or "
                "`tracechain serve` with TRACECHAIN_RUN_WORKERS=true): set "
                "TRACECHAIN_RUN_WORKERS=false for this serve, or stop the other"
            )

    def _indexed_block(self) -> int | None:
        with self.sessions() as session:
            last = queries.last_indexed_block(session)
            return last.number if last else None

    def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop()
        self.deliverer.close()
        self.capture_threads.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


def _require_the_databases_master_secret(
    sessions: sessionmaker[Session], vault: KeyVault, deploys: bool
) -> None:
    """Refuses to start (WrongMasterSecret) under another master secret than the database's keys
    are encrypted under; the first start writes the check. A database from before the check is
    checked on a stored key instead, if it has one."""
    try:
        with sessions() as session:
            stored = queries.key_check(session)
    except DBAPIError:
        if deploys:
            raise
        return  # a worker before serve migrated: the chain check says so next
    if stored is not None:
        require_same_secret(vault, stored)
        return
    if not deploys:
        return  # serve writes it
    with transaction(sessions) as session:
        held = queries.a_held_key(session)
        if held is not None:
            address, encrypted_key = held
            try:
                vault.decrypt(encrypted_key, address)
            except KeyDecryptionFailed as exc:
                raise WrongMasterSecret() from exc
        queries.remember_key_check(session, check_value(vault))


def _fail_interrupted_captures(sessions: sessionmaker[Session]) -> None:
    """Streamed captures whose process stopped mid-document: their transaction went with it, so
    nothing of them is stored, and their jobs say so rather than stay `capturing` for ever."""
    reason = {
        "type": "epcisException:ImplementationException",
        "title": "Capture interrupted",
        "status": 500,
        "reason": "the service stopped while capturing this document; nothing of it was stored: "
        "send it again",
    }
    with transaction(sessions) as session:
        failed = queries.fail_interrupted_captures(session, reason, datetime.now(UTC))
    if failed:
        log.warning("%d capture(s) interrupted by a restart marked failed", failed)


def _registry_on_the_remembered_chain(
    settings: Settings, chain: Chain, sessions: sessionmaker[Session], deploys: bool
) -> tuple[TraceRegistry, IdentityGuard]:
    """The registry of the chain the database remembers, after checking the node serves that chain
    (WrongChain otherwise); for a database never served, the data folder's registry or a new one,
    which the database then remembers."""
    url = chain.endpoint or "the in-process chain"
    try:
        with sessions() as session:
            remembered = queries.chain_identity(session)
    except DBAPIError as exc:
        if deploys:
            raise
        raise NotDeployedYet("the database is not set up yet: `tracechain serve` migrates it") from exc
    if remembered is None:
        if not deploys:
            raise NotDeployedYet("`tracechain serve` has not served this database yet")
        registry = load_or_deploy_registry(chain, settings, may_deploy=True)
        remembered = ChainIdentity.of(chain, registry.address)
        with transaction(sessions) as session:
            queries.remember_chain_identity(session, remembered)
    else:
        registry = TraceRegistry(chain, remembered.registry)
    guard = IdentityGuard(chain, remembered, url)
    guard.verify(force=True)
    return registry, guard


def _settlement(
    settings: Settings,
    chain: Chain,
    registry: TraceRegistry,
    sessions: sessionmaker[Session],
    vault: KeyVault,
    submitter: Submitter,
    deploys: bool,
) -> tuple[Settlement | None, str | None]:
    """The escrow side of the service, or None and why not: tracing works without it."""
    if settings.recording_mode == "merkle":
        # TradeEscrow pays by the custody TraceRegistry holds, and anchored events change none.
        reason = "recording mode merkle keeps custody off chain: escrow needs batched"
    else:
        try:
            escrow = load_or_deploy_escrow(chain, settings, registry, may_deploy=deploys)
            token = settlement_token(chain, settings, may_deploy=deploys)
            return Settlement(chain, escrow, token, sessions, vault, submitter), None
        except NotDeployedYet:
            raise
        except ConfigurationError as exc:
            reason = str(exc)
    log.warning("settlement is off: %s", reason)
    return None, reason
