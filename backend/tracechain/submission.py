"""The relayer's transactions while the service runs: an outbox in the database.

What the relayer sends as the service starts (contract deployments, the anchorer's role) goes out
directly through `chain.transactions`, before the outbox runs; participants' own transactions
(settlement.py) are signed with their keys and sent at once, never through here.

A transaction is signed and stored (with its nonce and hash) in the same database transaction that
marks its records as sent, and only then broadcast. Nonces are allocated here, from the outbox
itself (or from the node's count of mined transactions, when transactions sent outside the outbox
used more), never from the node's pending count, which other senders could race.

Invariant: every transaction in the outbox is followed until it is final, whatever it carries
(records, a role grant, a settlement payment, gas money):

- not mined: broadcast again, byte for byte (the same nonce and hash, so the chain takes it at most
  once), after a crash, a node restart, or REBROADCAST_AFTER_S without a receipt;
- mined: its receipt is read again as blocks arrive until its block is `finality_depth` deep
  (FINAL). If the block left the chain (a reorganisation, a node that crashed before saving it),
  the transaction is unmined again and broadcast again; if it was mined again elsewhere, its new
  block is kept;
- its nonce taken by another transaction (one sent outside the outbox): the same call is signed
  again with a new nonce (REPLACED, and what it carried moves to the new transaction);
- a nonce nobody will ever fill (a transaction lost with its record) holds back every later one:
  the gap is filled with an empty transfer, so the rest can be mined.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Literal

from hexbytes import HexBytes
from sqlalchemy.orm import Session, sessionmaker
from web3.contract.contract import ContractFunction
from web3.types import Nonce, TxParams, TxReceipt, Wei

from tracechain.chain.identity import IdentityGuard
from tracechain.chain.merkle import MerkleTree, leaf_of
from tracechain.chain.registry import TraceRegistry
from tracechain.chain.trace_event import OBSERVATION_KINDS
from tracechain.chain.transactions import broadcast, current_fees, mined, next_nonce, wait_for_receipt
from tracechain.errors import ChainError
from tracechain.recovery import Recovery
from tracechain.store import queries
from tracechain.store.db import SharedLock, hold, transaction
from tracechain.store.models import Batch, BatchStatus, ChainRecord, RecordStatus

log = logging.getLogger(__name__)

# Gas limits are computed, not estimated: an estimate runs against the latest block, which does not
# yet hold the batches sent before this one, so it would fail exactly when pipelining.
GAS_PER_RECORD = 150_000
GAS_BASE = 60_000
GAS_ANCHOR = 100_000  # anchor() takes about 48,600 whatever the batch's size
# A transaction this process broadcast is sent again only when it is still unmined after this long,
# or at once when the node's pending nonce shows it no longer holds it (it restarted and lost its
# pool): a fresh one is usually a block away from being mined.
REBROADCAST_AFTER_S = 10.0
DROPPED_REBROADCAST_AFTER_S = 1.0
# Blocks under which a mined transaction is final, at the least: deeper than the reorganisations
# a development node or a proof-of-stake chain shows (the confirmation depth counts on top).
REORG_DEPTH = 12
# How often mined transactions are read again when no block arrives.
RECHECK_IDLE_S = 2.0
# How long an unmined transaction's nonce must stay used by another before it is signed again.
REPLACE_AFTER_S = 10.0


class Submitter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: TraceRegistry,
        batch_size: int = 200,
        recording_mode: Literal["batched", "merkle", "hybrid"] = "batched",
        confirmations: int = 0,
        guard: IdentityGuard | None = None,
        capturing: Callable[[], AbstractContextManager[Session]] | None = None,
        signature_timeout: timedelta = timedelta(hours=24),
    ) -> None:
        self.sessions = sessions
        self.guard = guard
        """Asked before a vanished transaction is taken for a reorganised one: on another chain
        (a swapped node, a wiped state) nothing may be sent again."""
        self.recovery = Recovery(registry, observations_anchored=recording_mode in ("merkle", "hybrid"))
        self.capturing = capturing or (lambda: transaction(self.sessions))
        """A transaction no capture runs beside (Services.capturing): what refused records leave
        stale must not be signed over meanwhile."""
        self.signature_timeout = signature_timeout
        self.registry = registry
        self.chain = registry.chain
        self.batch_size = batch_size
        self.recording_mode = recording_mode
        self.finality_depth = confirmations + REORG_DEPTH
        self._nonce_lock = threading.Lock()
        self._gas_cap: int | None = None
        self._in_flight: dict[str, float] = {}
        """Transactions broadcast by this process and not yet seen mined: hash -> when."""
        self._rechecked: tuple[int, float] = (-1, 0.0)
        self._nonce_taken: dict[str, float] = {}
        """Unmined transactions whose nonce the chain counts as used: hash -> since when."""
        """The tip and the time mined transactions were last read again."""

    # ---------------------------------------------------------------- preparing

    @contextmanager
    def outbox(self) -> Iterator[Session]:
        """A database transaction that may add to the outbox.

        Nonces come from the outbox itself, so whoever adds to it holds the lock until its
        transaction commits: no two writers take the same nonce, whether threads of this process
        or processes sharing the database (`tracechain serve` and `tracechain work`).
        """
        with self._nonce_lock, transaction(self.sessions) as session:
            hold(session, SharedLock.OUTBOX)
            yield session

    def prepare_call(self, session: Session, fn: ContractFunction, gas: int = 200_000) -> Batch:
        """Sign `fn` as the relayer's next transaction and add it to the outbox (a session from
        `outbox()`). Broadcasting is the worker's job, after the caller commits."""
        return self._prepare(session, lambda params: fn.build_transaction({**params, "gas": gas}))

    def prepare_transfer(self, session: Session, to: str, value: Wei) -> Batch:
        """A plain value transfer from the relayer (gas money for a participant on a local chain)."""
        return self._prepare(session, lambda params: {**params, "to": to, "value": value, "gas": 21_000})

    def send_and_wait(self, prepare: Callable[[Session], Batch], timeout: float = 120) -> TxReceipt:
        """Add one transaction to the outbox, broadcast it now and wait until it is mined.

        For the few relayer transactions a request must see mined before it goes on; the worker
        settles the batch's status as for any other.
        """
        with self.outbox() as session:
            batch = prepare(session)
            tx_hash, raw_tx = batch.tx_hash, batch.raw_tx
        self._broadcast(tx_hash, raw_tx)
        receipt = wait_for_receipt(self.chain, tx_hash, timeout)
        if receipt["status"] != 1:
            raise ChainError(f"relayer transaction {tx_hash} failed")
        return receipt

    def _prepare(self, session: Session, build: Callable[[TxParams], TxParams]) -> Batch:
        assert self._nonce_lock.locked(), "prepare transactions inside Submitter.outbox()"
        nonce = self._next_nonce(session)
        params = self._params(nonce)
        return self._store_signed(session, build(params), nonce)

    def _store_signed(self, session: Session, tx: TxParams, nonce: int) -> Batch:
        signed = self.chain.relayer.sign_transaction(tx)  # type: ignore[arg-type]
        batch = Batch(
            nonce=nonce,
            sender=self.chain.relayer.address,
            tx_hash=HexBytes(signed.hash).to_0x_hex(),
            raw_tx=bytes(signed.raw_transaction),
            call={
                "to": tx.get("to"),
                "data": HexBytes(tx.get("data", b"")).to_0x_hex(),
                "value": int(tx.get("value", 0)),
                "gas": int(tx["gas"]),
            },
            status=BatchStatus.PREPARED,
            created_at=datetime.now(UTC),
        )
        session.add(batch)
        session.flush()
        return batch

    def _params(self, nonce: int) -> TxParams:
        fees = current_fees(self.chain)
        return {
            "from": self.chain.relayer.address,
            "chainId": self.chain.chain_id,
            "nonce": Nonce(nonce),
            "maxFeePerGas": fees.max_fee,
            "maxPriorityFeePerGas": fees.priority_fee,
        }

    def _next_nonce(self, session: Session) -> int:
        sender = self.chain.relayer.address
        stored = queries.highest_nonce(session, sender)
        # The chain's count wins when transactions were sent outside the outbox (the deployment).
        on_chain = next_nonce(self.chain, sender)
        return max(-1 if stored is None else stored, on_chain - 1) + 1

    def prepare_records(self, session: Session, records: Sequence[ChainRecord]) -> list[Batch]:
        """The transactions for `records`: record() in batched mode; in merkle mode anchor() of the
        root of a tree over them, each record keeping its root and inclusion proof; in hybrid mode
        both, record() for the facts and anchor() for the observations. Observations join their
        reporter's own chain of a subject, which no fact joins, so neither transaction waits for
        the other and a reporter's chain lives wholly in anchors."""
        if self.recording_mode == "merkle":
            return [self._prepare_anchor(session, records)]
        if self.recording_mode == "batched":
            return [self._prepare_record(session, records)]
        facts = [record for record in records if record.kind not in OBSERVATION_KINDS]
        observations = [record for record in records if record.kind in OBSERVATION_KINDS]
        batches = [self._prepare_record(session, facts)] if facts else []
        return batches + ([self._prepare_anchor(session, observations)] if observations else [])

    def _prepare_record(self, session: Session, records: Sequence[ChainRecord]) -> Batch:
        data = self.registry.record_calldata([record.signed_event() for record in records])
        gas = min(GAS_BASE + GAS_PER_RECORD * len(records), self._block_gas_limit())
        batch = self._prepare(
            session, lambda params: {**params, "to": self.registry.address, "data": data, "gas": gas}
        )
        queries.mark_sent(session, [record.id for record in records], batch.id)
        return batch

    def _block_gas_limit(self) -> int:
        """A transaction asking for more gas than a block holds is refused outright (200 records x
        GAS_PER_RECORD exceed anvil's 30M), so the bound is capped there: real batches use far less."""
        if self._gas_cap is None:
            self._gas_cap = self.chain.block("latest").gas_limit
        return self._gas_cap

    def _prepare_anchor(self, session: Session, records: Sequence[ChainRecord]) -> Batch:
        separator = self.registry.domain.separator
        tree = MerkleTree.build([leaf_of(separator, record.signed_event()) for record in records])
        data = self.registry.anchor_calldata(tree.root, len(records))
        batch = self._prepare(
            session, lambda params: {**params, "to": self.registry.address, "data": data, "gas": GAS_ANCHOR}
        )
        for index, record in enumerate(records):
            record.batch_id, record.status = batch.id, RecordStatus.SENT
            record.anchor_root = tree.root
            record.merkle_proof = ["0x" + sibling.hex() for sibling in tree.proof(index)]
        return batch

    # ---------------------------------------------------------------- the worker's round

    def run_once(self) -> int:
        """Settle what was sent, sort out what the chain refused, re-read what that left stale,
        expire unsigned captures, then batch and send what is queued. Returns records sent."""
        for batch_id, block in self._settle_sent():
            with self.capturing() as session:
                refused = session.get(Batch, batch_id)
                assert refused is not None
                self._fail(session, refused, block)
        with self.sessions() as session:
            due = self.recovery.due(session, self.signature_timeout)
        if due:  # the capture lock only when there is something to repair or expire
            with self.capturing() as session:
                self.recovery.repair_stale(session)
                self.recovery.expire_unsigned(session, self.signature_timeout)
        with self.outbox() as session:
            records = queries.queued_records(session, self.batch_size)
            if not records:
                return 0
            signed = [(batch.tx_hash, batch.raw_tx) for batch in self.prepare_records(session, records)]
        for tx_hash, raw_tx in signed:
            self._broadcast(tx_hash, raw_tx)
        return len(records)

    def _settle_sent(self) -> list[tuple[int, int]]:
        """Follow every unfinished transaction one step (see the module's invariant); returns the
        batches the chain refused, with their blocks, for `_fail`."""
        refused: list[tuple[int, int]] = []
        with transaction(self.sessions) as session:
            unfinished = queries.unfinished_batches(session)
            if not unfinished:
                return refused  # an idle outbox asks the node nothing
            tip = self.chain.tip()
            recheck_mined = self._recheck_due(tip)
            relayer = self.chain.relayer.address
            used_nonces = next_nonce(self.chain, relayer)
            held_nonces = next_nonce(self.chain, relayer, pending=True)
            for batch in unfinished:
                if batch.status == BatchStatus.MINED and not recheck_mined:
                    continue
                found = mined(self.chain, batch.tx_hash)
                if found is None:
                    self._not_on_chain(session, batch, used_nonces, held_nonces)
                    continue
                self._in_flight.pop(batch.tx_hash, None)
                if not found.succeeded:
                    if batch.status == BatchStatus.PREPARED:
                        refused.append((batch.id, found.block_number))
                    continue
                batch.block_number, batch.block_hash = found.block_number, found.block_hash
                deep = tip - found.block_number >= self.finality_depth
                batch.status = BatchStatus.FINAL if deep else BatchStatus.MINED
            self._fill_nonce_gap(session)
        return refused

    def _recheck_due(self, tip: int) -> bool:
        """Mined transactions are read again when a block arrived, or every RECHECK_IDLE_S (a node
        that lost blocks can come back at a lower tip, or at the same height on another branch)."""
        last_tip, last_time = self._rechecked
        if tip != last_tip or time.monotonic() - last_time > RECHECK_IDLE_S:
            self._rechecked = (tip, time.monotonic())
            return True
        return False

    def _not_on_chain(self, session: Session, batch: Batch, used_nonces: int, held_nonces: int) -> None:
        if batch.status == BatchStatus.MINED:
            if self.guard is not None:
                self.guard.verify(force=True)  # WrongChain: stop here, resend nothing
            # Its block left the chain: the same bytes go out again, now, with their nonce.
            log.warning(
                "transaction %s (nonce %d) left the chain with block %s; sending it again",
                batch.tx_hash,
                batch.nonce,
                batch.block_number,
            )
            batch.status, batch.block_number, batch.block_hash = BatchStatus.PREPARED, None, None
            self._in_flight.pop(batch.tx_hash, None)
        if batch.nonce < used_nonces:
            # Its nonce is used, and not by it. Not the moment a reorganisation is under way (the
            # count can be read before the chain went back): only once it stays so for a while.
            since = self._nonce_taken.setdefault(batch.tx_hash, time.monotonic())
            if time.monotonic() - since > REPLACE_AFTER_S and mined(self.chain, batch.tx_hash) is None:
                self._nonce_taken.pop(batch.tx_hash, None)
                self._replace(session, batch)
            return
        self._nonce_taken.pop(batch.tx_hash, None)
        # Not every round: resending a 200-event transaction the node already holds costs it as
        # much as the first time.
        sent_at = self._in_flight.get(batch.tx_hash)
        since_sent = float("inf") if sent_at is None else time.monotonic() - sent_at
        # Neither mined nor pending: the node lost it (or holds it behind a nonce gap, so at most
        # once a second).
        dropped = batch.nonce >= held_nonces
        wait = min(DROPPED_REBROADCAST_AFTER_S, REBROADCAST_AFTER_S) if dropped else REBROADCAST_AFTER_S
        if since_sent > wait:
            self._broadcast(batch.tx_hash, batch.raw_tx)

    def _replace(self, session: Session, batch: Batch) -> None:
        """The batch's nonce went to a transaction the outbox did not send, so it can never be
        mined: the same call is signed again with a free nonce, and what the batch carried (its
        records, an order's settling call) moves to the new transaction."""
        with self._nonce_lock:
            hold(session, SharedLock.OUTBOX)
            nonce = self._next_nonce(session)
            call = batch.call
            tx: TxParams = {
                **self._params(nonce),
                "to": call["to"],
                "data": HexBytes(call["data"]),
                "value": Wei(call["value"]),
                "gas": call["gas"],
            }
            replacement = self._store_signed(session, tx, nonce)
        queries.move_to_batch(session, batch.id, replacement.id)
        batch.status = BatchStatus.REPLACED
        batch.error = f"nonce {batch.nonce} went to a transaction sent outside the outbox"
        log.warning("transaction %s: %s; sent again as %s", batch.tx_hash, batch.error, replacement.tx_hash)

    def _fill_nonce_gap(self, session: Session) -> None:
        """A nonce below the outbox's waiting transactions that nobody will send (its transaction
        was lost with its record) holds all of them back: an empty transfer takes it."""
        sender = self.chain.relayer.address
        waiting = queries.lowest_unmined_nonce(session, sender)
        if waiting is None:
            return
        awaited = next_nonce(self.chain, sender)
        if waiting <= awaited:
            return
        holder = queries.batch_with_nonce(session, sender, awaited)
        if holder is not None and holder.status in (BatchStatus.FAILED, BatchStatus.REPLACED):
            # Its nonce was used when it was settled, and is free again: the block that held the
            # transaction left the chain. The same bytes take it back (a refused call is refused
            # again; what it carried travels elsewhere already), followed like any other.
            log.warning(
                "nonce %d is free again (transaction %s left the chain) and held back %d later ones;"
                " sending it again",
                awaited,
                holder.tx_hash,
                waiting - awaited,
            )
            holder.status = BatchStatus.PREPARED
            self._broadcast(holder.tx_hash, holder.raw_tx)
            return
        if holder is not None:
            return
        with self._nonce_lock:
            hold(session, SharedLock.OUTBOX)
            gap = {**self._params(awaited), "to": sender, "value": Wei(0), "gas": 21_000}
            filler = self._store_signed(session, gap, awaited)  # type: ignore[arg-type]
        log.warning(
            "nonce %d had no transaction and held back %d later ones; filled by %s",
            awaited,
            waiting - awaited,
            filler.tx_hash,
        )

    def _broadcast(self, tx_hash: str, raw_tx: bytes) -> None:
        try:
            broadcast(self.chain, raw_tx)
        except Exception as exc:  # already known, nonce already used, node away: settled next round
            log.debug("broadcast deferred: %s", exc)
        else:
            self._in_flight[tx_hash] = time.monotonic()

    def _fail(self, session: Session, batch: Batch, block_number: int) -> None:
        """The chain refused the batch. Only the record it refused, and what depends on it, fail
        (recovery.py); the rest of the batch goes again. An anchor refuses no record: its records
        are anchored again."""
        records = queries.records_of_batch(session, batch.id)
        # An anchor's records carry its root (hybrid mode sends anchors and record() calls).
        if self.recording_mode == "merkle" or any(record.anchor_root is not None for record in records):
            for record in records:
                if record.status != RecordStatus.CONFIRMED:
                    record.status, record.batch_id = RecordStatus.QUEUED, None
                    record.anchor_root, record.merkle_proof = None, None
            reason = "the anchor transaction failed; its records are anchored again"
        else:
            reason = self.recovery.isolate(session, records, block_number)
        batch.status, batch.error = BatchStatus.FAILED, reason
        log.warning("transaction %s was refused: %s", batch.tx_hash, reason)
