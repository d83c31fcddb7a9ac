"""When the chain refuses a record: only that record, and what depends on it, fails.

A batch of records is one transaction, reverted whole by its first bad record. Failing the whole
batch failed every record in it, an unrelated participant's too; and the custody projection kept
the failed records' effects, so every later event on those products was refused, and re-sending
the document did nothing (a duplicate). Now:

1. `isolate` finds the record the chain refuses now (the shortest failing prefix of the batch's
   records, replayed on the chain's latest state, which holds whatever got in before the batch). A
   record whose very signed event someone relayed first is on chain, and the indexer confirms it.
   One waiting for an earlier record of ours on its chain, not on chain yet, simply goes again.
   Otherwise it is quarantined, and the rest of the batch goes again in another transaction.
2. `quarantine` fails it with what depends on it: the other records of its event, and every later
   record touching what it touches (signed over the head it would have led to, or needing the state
   it would have left), whoever captured them. Their capture jobs fail naming each event and why;
   events with nothing recorded are removed, so the corrected document can be captured again. What
   they touched is marked stale.
3. `repair_stale` re-reads a stale subject's projection (its unit and heads) from the chain once no
   record touching it is still on its way; until then captures touching it are asked to come back
   in a moment (SubjectsBeingRepaired).

`expire_unsigned` quarantines the records of captures whose own-key participant never signed them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tracechain.chain.registry import TraceRegistry
from tracechain.chain.trace_event import OBSERVATION_KINDS, ZERO_ADDRESS, Kind, Status
from tracechain.custody import Unit
from tracechain.errors import ContractRevert, TracechainError
from tracechain.store import queries
from tracechain.store.models import ChainRecord, RecordStatus

log = logging.getLogger(__name__)

LOOK_BACK_BLOCKS = 10_000
"""How far back a copy of a refused record is looked for: it was mined shortly before the batch."""


class SubjectsBeingRepaired(TracechainError):
    """A capture touches subjects whose projection is being re-read from the chain."""

    retry_after_s = 2

    def __init__(self, epcs: Sequence[str]) -> None:
        self.epcs = list(epcs)
        super().__init__(
            f"{', '.join(self.epcs)}: a transaction touching it was refused and its state is being "
            f"re-read from the chain; send the document again in {self.retry_after_s} s"
        )


class Recovery:
    def __init__(self, registry: TraceRegistry, observations_anchored: bool = False) -> None:
        self.registry = registry
        self.observations_anchored = observations_anchored
        """Observations are anchored, not recorded (merkle and hybrid modes): a reporter's chain of a
        subject lives wholly in anchors, so its head is re-read from its confirmed records, never
        from the registry (which never saw it and would answer zero)."""

    # ---------------------------------------------------------------- a refused batch

    def isolate(self, session: Session, records: Sequence[ChainRecord], block: int) -> str:
        """Sort out the records of a batch the chain refused in `block`; returns why it was refused."""
        pending = [record for record in records if record.status != RecordStatus.CONFIRMED]
        if not pending:
            return "every record was recorded by another transaction"
        culprit, refusal = self._first_refused(pending)
        reason = str(refusal) if refusal is not None else "reverted without a reason"
        if culprit is None:
            self._again(pending)  # it passes now: out of gas, or the state changed since
            return reason
        if self._recorded_elsewhere(culprit, block):
            culprit.status, culprit.batch_id = RecordStatus.SENT, None  # the indexer confirms it
        elif self._waits_for_our_own(session, culprit):
            self._again([culprit])
        else:
            self.quarantine(session, [culprit], f"the chain refused it: {reason}")
        self._again([r for r in pending if r is not culprit and r.status != RecordStatus.FAILED])
        return reason

    def _first_refused(
        self, records: Sequence[ChainRecord]
    ) -> tuple[ChainRecord | None, ContractRevert | None]:
        """The record at which the batch's records fail when replayed on the latest state: the end
        of their shortest failing prefix (binary search: a dozen calls for a batch of 200). On the
        latest state, not the one before the batch: a copy of one of its records mined just before
        it is on chain now, and the records after that copy pass."""
        signed = [record.signed_event() for record in records]
        refusal = self.registry.simulate_record(signed)
        if refusal is None:
            return None, None
        low, high = 1, len(records)  # the prefix of `high` records fails; of `low - 1` passes
        while low < high:
            middle = (low + high) // 2
            failed = self.registry.simulate_record(signed[:middle])
            if failed is None:
                low = middle + 1
            else:
                high, refusal = middle, failed
        return records[high - 1], refusal

    def _recorded_elsewhere(self, record: ChainRecord, block: int) -> bool:
        """Someone relayed this very signed event first: a log before `block` repeats every field
        it signed, and its signer (a log merely sharing its subject and head is another event)."""
        if self._chain_head(record) != record.head:
            return False
        signed = (
            record.head,
            record.signer,
            record.kind,
            record.event_hash,
            record.counterpart,
            record.ref,
            record.time,
        )
        logs = self.registry.recorded_events(
            from_block=max(block - LOOK_BACK_BLOCKS, self.registry.deployed_at),
            to_block=block,
            subject=record.subject,
        )
        return any(
            (log.head, log.signer, int(log.kind), log.event_hash, log.counterpart, log.ref, log.time)
            == signed
            for log in logs
        )

    def _waits_for_our_own(self, session: Session, record: ChainRecord) -> bool:
        """It is signed over the head an earlier record of ours on its chain leads to, and that one
        is not on chain yet (it went again, or is in a later transaction)."""
        return queries.unrecorded_record_leading_to(session, record.chain, record.prev_head, record.id)

    def _chain_head(self, record: ChainRecord) -> bytes:
        if Kind(record.kind) in OBSERVATION_KINDS:
            return self.registry.observation_head_of(record.subject, record.signer)
        return self.registry.head_of(record.subject)

    @staticmethod
    def _again(records: Sequence[ChainRecord]) -> None:
        for record in records:
            record.status, record.batch_id = RecordStatus.QUEUED, None

    # ---------------------------------------------------------------- quarantine

    def quarantine(self, session: Session, records: Sequence[ChainRecord], reason: str) -> None:
        """Fail `records`, everything depending on them, and their jobs; mark what they touched stale."""
        failed = queries.records_depending_on(session, records)
        culprits = {record.id for record in records}
        for record in failed:
            record.status, record.batch_id = RecordStatus.FAILED, None
        errors: dict[int, str] = {}
        for record in failed:
            if record.id in culprits:
                errors[record.event_row_id] = f"{record.subject_epc}: {reason}"
            else:
                errors.setdefault(
                    record.event_row_id,
                    f"{record.subject_epc}: depends on an event the chain did not record ({reason})",
                )
        queries.fail_jobs(session, errors, datetime.now(UTC))
        queries.mark_stale(session, failed)
        queries.remove_unrecorded_events(session, set(errors))
        log.warning("%d record(s) of %d event(s) failed: %s", len(failed), len(errors), reason)

    # ---------------------------------------------------------------- repair

    @staticmethod
    def due(session: Session, signature_timeout: timedelta) -> bool:
        """Whether anything is stale or an unsigned capture has expired (one cheap query each)."""
        cutoff = datetime.now(UTC) - signature_timeout
        return queries.any_stale(session) or bool(queries.jobs_awaiting_signatures_since(session, cutoff, 1))

    def repair_stale(self, session: Session) -> int:
        """Re-read from the chain the projection rows of stale subjects that nothing pending touches
        any more. Returns how many were repaired."""
        repaired = 0
        for stale in queries.settled_stale_chains(session):
            if stale.reporter is None:
                state = self.registry.unit_of(stale.subject)
                unit = None
                if state.status is not Status.UNKNOWN:
                    unit = Unit(
                        manufacturer=state.manufacturer,
                        status=state.status,
                        recalled=state.recalled,
                        cleared=state.cleared,
                        excursions=state.excursions,
                        height=state.height,
                        packed_unit=state.packed_unit,
                        custodian=None if state.custodian == ZERO_ADDRESS else state.custodian,
                        pending_receiver=state.pending_receiver,
                        parent=state.parent,
                    )
                queries.set_projection(session, stale.key, stale.epc, state.head, _stored(unit))
            elif self.observations_anchored:
                queries.set_projection(
                    session, stale.key, stale.epc, queries.confirmed_head(session, stale.key), None
                )
            else:
                head = self.registry.observation_head_of(stale.subject, stale.reporter)
                queries.set_projection(session, stale.key, stale.epc, head, None)
            session.delete(stale)
            repaired += 1
        if repaired:
            log.warning("re-read %d subject chain(s) from the chain after a refused transaction", repaired)
        return repaired

    # ---------------------------------------------------------------- unsigned captures

    def expire_unsigned(self, session: Session, timeout: timedelta) -> int:
        """Quarantine the records of captures still unsigned after `timeout`. Returns how many jobs."""
        expired = queries.jobs_awaiting_signatures_since(session, datetime.now(UTC) - timeout)
        for job in expired:
            records = [
                r for r in queries.records_of_capture(session, job.id) if r.status == RecordStatus.UNSIGNED
            ]
            hours = timeout.total_seconds() / 3600
            self.quarantine(
                session,
                records,
                f"its participant did not sign it within {hours:g} h (TRACECHAIN_SIGNATURE_TIMEOUT_HOURS)",
            )
        return len(expired)


def _stored(unit: Unit | None) -> dict[str, object] | None:
    """A unit as the projection stores it (capture's _ProjectedState writes the same)."""
    if unit is None:
        return None
    return {**asdict(unit), "status": int(unit.status), "parent": bytes(unit.parent).hex()}
