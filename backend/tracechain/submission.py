"""The one component that sends transactions: an outbox in the database.

A transaction is signed and stored (with its nonce and hash) in the same database transaction that
marks its records as sent, and only then broadcast. After a crash or a node restart, every stored
transaction not yet mined is broadcast again, byte for byte: the same nonce and hash, so the chain
takes it at most once and nothing is lost or recorded twice. Nonces are allocated here, from the
outbox itself, never by asking the node for a pending count that other senders could race.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal

from hexbytes import HexBytes
from sqlalchemy.orm import Session, sessionmaker
from web3.contract.contract import ContractFunction
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, RPCEndpoint, TxParams, TxReceipt, Wei

from tracechain.chain.merkle import MerkleTree, leaf_of
from tracechain.chain.registry import TraceRegistry
from tracechain.chain.transactions import as_tracechain_error
from tracechain.errors import ChainError
from tracechain.store import queries
from tracechain.store.db import SharedLock, hold, transaction
from tracechain.store.models import Batch, BatchStatus, ChainRecord, RecordStatus

log = logging.getLogger(__name__)

# Gas limits are computed, not estimated: an estimate runs against the latest block, which does not
# yet hold the batches sent before this one, so it would fail exactly when pipelining.
GAS_PER_RECORD = 150_000
GAS_BASE = 60_000
GAS_ANCHOR = 100_000  # anchor() takes about 48,600 whatever the batch's size
# A transaction this process broadcast is sent again only when it is still unmined after this long
# (a node that restarted and lost its pool): a fresh one is usually a block away from being mined.
REBROADCAST_AFTER_S = 10.0


class Submitter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: TraceRegistry,
        batch_size: int = 200,
        recording_mode: Literal["batched", "merkle"] = "batched",
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.chain = registry.chain
        self.batch_size = batch_size
        self.recording_mode = recording_mode
        self._nonce_lock = threading.Lock()
        self._gas_cap: int | None = None
        self._in_flight: dict[str, float] = {}
        """Transactions broadcast by this process and not yet seen mined: hash -> when."""

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
        receipt = self.chain.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=timeout)
        if receipt["status"] != 1:
            raise ChainError(f"relayer transaction {tx_hash} failed")
        return receipt

    def _prepare(self, session: Session, build: Callable[[TxParams], TxParams]) -> Batch:
        assert self._nonce_lock.locked(), "prepare transactions inside Submitter.outbox()"
        sender = self.chain.relayer.address
        stored = queries.highest_nonce(session, sender)
        # The chain's count wins when transactions were sent outside the outbox (the deployment).
        nonce = max(-1 if stored is None else stored, self.chain.w3.eth.get_transaction_count(sender) - 1) + 1
        gas_price = self.chain.w3.eth.gas_price
        params: TxParams = {
            "from": sender,
            "chainId": self.chain.chain_id,
            "nonce": Nonce(nonce),
            "maxFeePerGas": Wei(gas_price * 2),
            "maxPriorityFeePerGas": Wei(min(gas_price, 10**9)),
        }
        signed = self.chain.relayer.sign_transaction(build(params))  # type: ignore[arg-type]
        batch = Batch(
            nonce=nonce,
            sender=sender,
            tx_hash=HexBytes(signed.hash).to_0x_hex(),
            raw_tx=bytes(signed.raw_transaction),
            status=BatchStatus.PREPARED,
            created_at=datetime.now(UTC),
        )
        session.add(batch)
        session.flush()
        return batch

    def prepare_records(self, session: Session, records: Sequence[ChainRecord]) -> Batch:
        """One transaction for `records`: record() in batched mode; in merkle mode anchor() of the
        root of a tree over them, each record keeping its root and inclusion proof."""
        if self.recording_mode == "merkle":
            return self._prepare_anchor(session, records)
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
            self._gas_cap = int(self.chain.w3.eth.get_block("latest")["gasLimit"])
        return self._gas_cap

    def _prepare_anchor(self, session: Session, records: Sequence[ChainRecord]) -> Batch:
        separator = self.registry.domain.separator
        tree = MerkleTree.build([leaf_of(separator, record.signed_event()) for record in records])
        fn = self.registry.contract.functions.anchor(tree.root, len(records))
        batch = self.prepare_call(session, fn, gas=GAS_ANCHOR)
        for index, record in enumerate(records):
            record.batch_id, record.status = batch.id, RecordStatus.SENT
            record.anchor_root = tree.root
            record.merkle_proof = ["0x" + sibling.hex() for sibling in tree.proof(index)]
        return batch

    # ---------------------------------------------------------------- the worker's round

    def run_once(self) -> int:
        """Settle what was sent, then batch and send what is queued. Returns records sent."""
        self._settle_sent()
        with self.outbox() as session:
            records = queries.queued_records(session, self.batch_size)
            if not records:
                return 0
            batch = self.prepare_records(session, records)
            tx_hash, raw_tx = batch.tx_hash, batch.raw_tx
        self._broadcast(tx_hash, raw_tx)
        return len(records)

    def _settle_sent(self) -> None:
        with transaction(self.sessions) as session:
            for batch in queries.unmined_batches(session):
                receipt = self._receipt(batch.tx_hash)
                if receipt is None:
                    # Sent again after a crash, a node restart or a reorganisation: the same bytes.
                    # Not every round: resending a 200-event transaction the node already holds
                    # cost it as much as the first time.
                    sent_at = self._in_flight.get(batch.tx_hash)
                    if sent_at is None or time.monotonic() - sent_at > REBROADCAST_AFTER_S:
                        self._broadcast(batch.tx_hash, batch.raw_tx)
                    continue
                self._in_flight.pop(batch.tx_hash, None)
                if receipt["status"] == 1:
                    batch.status = BatchStatus.MINED
                else:
                    self._fail(session, batch, receipt["blockNumber"])

    def _receipt(self, tx_hash: str) -> dict | None:  # type: ignore[type-arg]
        """The receipt's status and block, or None while the transaction is not mined."""
        if self.chain.speaks_raw_json_rpc:
            # The raw answer: web3 would format all of a batch's logs, which nobody reads here.
            response = self.chain.w3.provider.make_request(
                RPCEndpoint("eth_getTransactionReceipt"), [tx_hash]
            )
            if "error" in response:
                raise ChainError(f"eth_getTransactionReceipt failed: {response['error']}")
            raw = response.get("result")
            if raw is None:
                return None
            return {"status": int(raw["status"], 16), "blockNumber": int(raw["blockNumber"], 16)}
        try:
            return dict(self.chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
        except TransactionNotFound:
            return None

    def _broadcast(self, tx_hash: str, raw_tx: bytes) -> None:
        try:
            self.chain.w3.eth.send_raw_transaction(raw_tx)
        except Exception as exc:  # already known, nonce already used, node away: settled next round
            log.debug("broadcast deferred: %s", exc)
        else:
            self._in_flight[tx_hash] = time.monotonic()

    def _fail(self, session: Session, batch: Batch, block_number: int) -> None:
        """The chain refused the batch: its records and their capture jobs fail with the reason."""
        transaction_ = self.chain.w3.eth.get_transaction(HexBytes(batch.tx_hash))
        try:
            self.chain.w3.eth.call(
                {"from": batch.sender, "to": transaction_["to"], "data": transaction_["input"]},
                block_number - 1,
            )
            reason = "reverted without a reason"
        except Exception as exc:
            reason = str(as_tracechain_error(exc))
        batch.status, batch.error = BatchStatus.FAILED, reason
        # A record the indexer confirmed is on chain although its batch failed: someone relayed the
        # same signed event first (which is why the batch's copy of it failed).
        records = [
            r for r in queries.records_of_batch(session, batch.id) if r.status != RecordStatus.CONFIRMED
        ]
        for record in records:
            record.status = RecordStatus.FAILED
        queries.fail_jobs_of(session, records, reason, datetime.now(UTC))
        log.warning("transaction %s failed: %s", batch.tx_hash, reason)
