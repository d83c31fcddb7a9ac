"""Follows TraceRegistry's logs into the read model: EventRecorded per recorded event, and in merkle
mode BatchAnchored per anchored batch, which confirms every record under its root.

A record is confirmed once its log is `confirmations` blocks deep. The indexer keeps the hash of
every block it read up to, so after a restart it resumes where it stopped, and when the chain's hash
at that height has changed (a reorganisation) it walks back to the last block both agree on, undoes
what it confirmed above it, and hands those transactions back to the submitter to broadcast again
-- after checking that the node still serves the same chain (another chain is WrongChain, never a
reorganisation). On a managed node, which mines only when a transaction arrives, it mines an empty
block when records wait for confirmations and no block came for a while.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from hexbytes import HexBytes
from sqlalchemy.orm import Session, sessionmaker

from tracechain.chain.identity import IdentityGuard
from tracechain.chain.registry import TraceRegistry
from tracechain.chain.transactions import mine_a_block
from tracechain.store import queries
from tracechain.store.db import transaction
from tracechain.store.models import IndexedBlock

log = logging.getLogger(__name__)

IDLE_MINE_S = 1.0  # managed nodes: how long records may wait for a block before one is mined
MAX_BLOCK_RANGE = 2_000  # blocks per eth_getLogs request, within what public nodes allow
KEPT_BLOCKS = 1_000  # block hashes kept to find where a reorganisation forked: far deeper than any


class Indexer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: TraceRegistry,
        confirmations: int = 0,
        start_block: int = 0,
        guard: IdentityGuard | None = None,
        mine_when_idle: bool = False,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.chain = registry.chain
        self.confirmations = confirmations
        self.start_block = start_block
        self.guard = guard
        self.mine_when_idle = mine_when_idle
        self._tip_seen: tuple[int, float] = (-1, 0.0)

    def run_once(self) -> int:
        """Index up to the confirmed tip. Returns how many records were confirmed."""
        if self.guard is not None:
            self.guard.verify()  # now and then: a node swapped while running
        with transaction(self.sessions) as session:
            next_block = self._resume_point(session)
            tip = self.chain.tip()
            safe = tip - self.confirmations
            if safe < next_block:
                self._mine_if_idle(session, tip)
                return 0
            to_block = min(safe, next_block + MAX_BLOCK_RANGE - 1)
            confirmed = 0
            capture_ids: set[str] = set()
            logs = self.registry.recorded_events(from_block=next_block, to_block=to_block)
            ours = queries.records_for_logs(session, logs)
            confirmations = []
            for position, logged in enumerate(logs):
                found = ours.get(position)
                if found is None:
                    continue  # recorded by someone else's service: its content is not ours to show
                record_id, capture_id = found
                confirmations.append(
                    {
                        "id": record_id,
                        "block_number": logged.block_number,
                        "log_index": logged.log_index,
                        "tx_hash": HexBytes(logged.transaction_hash).to_0x_hex(),
                    }
                )
                capture_ids.add(capture_id)
            queries.confirm_records(session, confirmations)
            confirmed += len(confirmations)
            confirmed += self._confirm_anchored(session, next_block, to_block, capture_ids)
            block = self.chain.block(to_block)
            session.add(IndexedBlock(number=to_block, hash=block.hash))
            queries.forget_blocks_before(session, to_block - KEPT_BLOCKS)
            queries.complete_jobs(session, capture_ids, datetime.now(UTC))
            queries.feed_confirmed_events(session, capture_ids, datetime.now(UTC))  # subscriptions'
        return confirmed

    def _confirm_anchored(
        self, session: Session, from_block: int, to_block: int, capture_ids: set[str]
    ) -> int:
        """Merkle mode: every record under an anchored root is confirmed with the anchor's log."""
        anchored = self.registry.anchored_batches(from_block=from_block, to_block=to_block)
        ours = queries.records_for_roots(session, {batch.root for batch in anchored})
        confirmations = []
        for batch in anchored:
            for record_id, capture_id in ours.get(batch.root, []):
                confirmations.append(
                    {
                        "id": record_id,
                        "block_number": batch.block_number,
                        "log_index": batch.log_index,
                        "tx_hash": HexBytes(batch.transaction_hash).to_0x_hex(),
                    }
                )
                capture_ids.add(capture_id)
        queries.confirm_records(session, confirmations)
        return len(confirmations)

    def _mine_if_idle(self, session: Session, tip: int) -> None:
        """A managed node mines only when a transaction arrives: with records waiting to be buried
        and no block for IDLE_MINE_S, one empty block lets them reach their confirmations."""
        if not self.mine_when_idle or self.confirmations == 0:
            return
        seen_tip, since = self._tip_seen
        if tip != seen_tip:
            self._tip_seen = (tip, time.monotonic())
        elif time.monotonic() - since > IDLE_MINE_S and queries.records_awaiting_confirmation(session):
            mine_a_block(self.chain)

    def _resume_point(self, session: Session) -> int:
        """The first block not yet indexed, after undoing anything a reorganisation replaced."""
        last = queries.last_indexed_block(session)
        while last is not None:
            on_chain = self.chain.block(last.number) if last.number <= self.chain.tip() else None
            if on_chain is not None and on_chain.hash == last.hash:
                return last.number + 1
            if self.guard is not None:
                self.guard.verify(force=True)  # WrongChain: undo nothing on another chain
            log.warning("block %d was replaced by a reorganisation; re-indexing from below it", last.number)
            session.delete(last)
            session.flush()
            last = queries.last_indexed_block(session)
            queries.forget_blocks_after(session, last.number if last else self.start_block - 1)
        return self.start_block
