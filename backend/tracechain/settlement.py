"""Escrow orders placed through the service, acted on with the participants' own keys, and the
settler that releases milestones and applies penalties as soon as the registry shows them.

Who sends what:

- A party's own acts (the buyer creating, funding, reclaiming; the seller accepting; a party
  disputing; the arbiter resolving; anyone triggering a release by hand) are signed with that
  participant's key, which the service holds encrypted, so the chain sees the party itself as the
  sender. One lock per participant keeps two requests from taking the same account nonce.
- The settler's releases, penalties and ends of lapsed disputes are open to anyone on chain, so
  the relayer sends them, and only through the Submitter's outbox, which owns the relayer's nonces.
- On a development chain a participant's gas money comes from the relayer, through the outbox too.

The chain is the truth about an order; each row keeps a snapshot of it (`Order.settlement`) so that
lists and traces answer without a chain call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker
from web3.contract.contract import ContractFunction

from tracechain.chain.clock import chain_time
from tracechain.chain.connect import Chain
from tracechain.chain.escrow import (
    BPS,
    EscrowResult,
    Milestone,
    OrderState,
    OrderTerms,
    Penalty,
    Token,
    TradeEscrow,
)
from tracechain.chain.escrow import Order as ChainOrder
from tracechain.chain.transactions import GAS_ALLOWANCE, needs_gas
from tracechain.errors import TracechainError
from tracechain.keys import KeyVault
from tracechain.store import queries
from tracechain.store.models import BatchStatus, Order, Participant
from tracechain.submission import Submitter

log = logging.getLogger(__name__)

MILESTONE_NAMES: Final = {
    Milestone.SHIPPED: "shipped",
    Milestone.CUSTOMS_CLEARED: "customsCleared",
    Milestone.RECEIVED: "received",
}
PENALTY_NAMES: Final = {Penalty.EXCURSION: "excursion", Penalty.RECALL: "recall"}
OPEN_STATES: Final = tuple(
    state.name.lower()
    for state in (OrderState.CREATED, OrderState.ACCEPTED, OrderState.FUNDED, OrderState.DISPUTED)
)
"""Orders the settler keeps reading: their state can still change."""
SETTLER_GAS = 300_000
"""Ample for release (117k; 167k measured when it applies both penalties first), applyPenalty
(101k) and endDispute (31k): the outbox computes gas, never estimates."""
PERMIT_VALIDITY_S = 3600
"""How long a funding permit the service signs for a buyer stays valid, from the chain's time."""


class OwnWalletParticipant(TracechainError):
    """The participant signs with its own wallet, so the service cannot act for it."""

    def __init__(self, participant: Participant, escrow: str) -> None:
        super().__init__(
            f"{participant.name} signs with its own wallet ({participant.address}); the service holds "
            f"no key to act for it: send this call to TradeEscrow at {escrow} from that wallet"
        )


@dataclass
class Settlement:
    chain: Chain
    escrow: TradeEscrow
    token: Token
    sessions: sessionmaker[Session]
    vault: KeyVault
    submitter: Submitter
    symbol: str = ""
    decimals: int = 0
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    _last_block: int = -1

    def __post_init__(self) -> None:
        self.symbol = self.token.symbol()
        self.decimals = self.token.decimals()

    # ---------------------------------------------------------------- amounts

    def to_units(self, amount: Decimal) -> int:
        """A token amount as people write it ("1250.50") in the token's smallest unit."""
        units = amount.scaleb(self.decimals)
        if units != units.to_integral_value():
            raise ValueError(f"{amount} has more than the token's {self.decimals} decimals")
        return int(units)

    def from_units(self, units: int) -> str:
        return f"{Decimal(units).scaleb(-self.decimals):.{self.decimals}f}"

    # ---------------------------------------------------------------- a party's own acts

    @contextmanager
    def acting_as(self, participant: Participant) -> Iterator[LocalAccount]:
        """The participant's account, held alone for the call, with gas money on a development chain."""
        if participant.encrypted_key is None:
            raise OwnWalletParticipant(participant, self.escrow.address)
        with self._locks_guard:
            lock = self._locks.setdefault(participant.address, threading.Lock())
        with lock:
            account: LocalAccount = Account.from_key(
                self.vault.decrypt(participant.encrypted_key, participant.address)
            )
            if needs_gas(self.chain, account.address):  # before transact_as would send it off the outbox
                self.submitter.send_and_wait(
                    lambda session: self.submitter.prepare_transfer(session, account.address, GAS_ALLOWANCE)
                )
            yield account

    def create(
        self,
        session: Session,
        buyer: Participant,
        seller: Participant,
        arbiter: Participant | None,
        shipment_epc: str,
        terms: OrderTerms,
    ) -> Order:
        with self.acting_as(buyer) as account:
            result = self.escrow.create_order(account, terms)
        now = datetime.now(UTC)
        row = Order(
            escrow=self.escrow.address,
            order_id=result.order_id,
            buyer_id=buyer.id,
            seller_id=seller.id,
            arbiter_id=arbiter.id if arbiter else None,
            shipment_epc=shipment_epc,
            token=terms.token,
            amount=str(terms.amount),
            state="created",
            settlement={},
            created_tx=result.receipt["transactionHash"].to_0x_hex(),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        self.refresh(row)
        session.flush()
        return row

    def accept(self, row: Order, seller: Participant) -> EscrowResult:
        with self.acting_as(seller) as account:
            result = self.escrow.accept_order(account, row.order_id)
        self.refresh(row)
        return result

    def fund(self, row: Order, buyer: Participant, *, permit: bool) -> EscrowResult:
        with self.acting_as(buyer) as account:
            if permit:
                deadline = chain_time(self.chain) + PERMIT_VALIDITY_S
                signed = self.token.sign_permit(account, self.escrow.address, int(row.amount), deadline)
                result = self.escrow.fund_with_permit(account, row.order_id, signed)
            else:
                self.token.approve(account, self.escrow.address, int(row.amount))
                result = self.escrow.fund(account, row.order_id)
        self.refresh(row)
        return result

    def release(self, row: Order, caller: Participant, milestone: Milestone) -> EscrowResult:
        with self.acting_as(caller) as account:
            result = self.escrow.release(row.order_id, milestone, account)
        self.refresh(row)
        return result

    def apply_penalty(self, row: Order, caller: Participant, penalty: Penalty) -> EscrowResult:
        with self.acting_as(caller) as account:
            result = self.escrow.apply_penalty(row.order_id, penalty, account)
        self.refresh(row)
        return result

    def reclaim(self, row: Order, buyer: Participant) -> EscrowResult:
        with self.acting_as(buyer) as account:
            result = self.escrow.reclaim(account, row.order_id)
        self.refresh(row)
        return result

    def open_dispute(self, row: Order, party: Participant) -> EscrowResult:
        with self.acting_as(party) as account:
            result = self.escrow.open_dispute(account, row.order_id)
        self.refresh(row)
        return result

    def resolve(self, row: Order, arbiter: Participant, to_seller_bps: int) -> EscrowResult:
        with self.acting_as(arbiter) as account:
            result = self.escrow.resolve(account, row.order_id, to_seller_bps)
        self.refresh(row)
        return result

    def faucet(self, participant: Participant, units: int) -> None:
        """Demo stablecoin only: mint to the participant, sent by the relayer through the outbox."""
        fn = self.token.faucet_call(participant.address, units)
        self.submitter.send_and_wait(lambda session: self.submitter.prepare_call(session, fn, gas=100_000))

    def balance_of(self, participant: Participant) -> int:
        return self.token.balance_of(participant.address)

    # ---------------------------------------------------------------- reading

    def refresh(self, row: Order) -> ChainOrder:
        """Read the order from chain into the row's snapshot."""
        order = self.escrow.order_of(row.order_id)
        row.state = order.state.name.lower()
        row.settlement = snapshot(order)
        row.updated_at = datetime.now(UTC)
        return order

    # ---------------------------------------------------------------- the settler

    def settle_round(self) -> int:
        """Release what the registry shows and apply penalties it shows, for every funded order, and
        end the disputes whose window has passed.

        Penalties go first: a release pays a share of what is unreleased, so a penalty applied after
        the last release would find nothing left to refund (the escrow applies those due inside a
        release too). One transaction per order at a time; the next waits until the outbox has it
        mined. Runs only when a new block arrived (nothing an order depends on changes between
        blocks: a dispute's end too is read against the latest block's time) or a transaction of its
        own was still in flight last time. Returns the transactions it queued.
        """
        latest = self.chain.block("latest")
        block, now = latest.number, latest.timestamp
        if block == self._last_block:
            return 0
        queued, waiting = 0, False
        # Inside the outbox for the whole round: the transactions it queues and the rows that point
        # at them commit together, and no second transaction is opened on the same database.
        with self.submitter.outbox() as session:
            for row in queries.orders_in_states(session, self.escrow.address, OPEN_STATES):
                if row.settling_batch_id is not None:
                    if queries.batch_status(session, row.settling_batch_id) == BatchStatus.PREPARED:
                        waiting = True  # its last transaction is still in flight: look again next round
                        continue
                    row.settling_batch_id = None
                order = self.refresh(row)
                fn = self._next_step(row, order, now)
                if fn is not None:
                    row.settling_batch_id = self.submitter.prepare_call(session, fn, gas=SETTLER_GAS).id
                    queued += 1
        if not waiting:
            self._last_block = block
        return queued

    def _next_step(self, row: Order, order: ChainOrder, now: int) -> ContractFunction | None:
        """The next transaction the order is due, if any; `now` is the latest block's time (the next
        block is stamped no earlier)."""
        if order.state is OrderState.DISPUTED and now >= order.dispute_ends_at:
            return self.escrow.end_dispute_call(row.order_id)
        if order.state is not OrderState.FUNDED:
            return None
        penalty_bps = (order.terms.excursion_penalty_bps, order.terms.recall_penalty_bps)
        for penalty in Penalty:
            if (
                penalty_bps[penalty]
                and not order.penalties_applied[penalty]
                and self.escrow.penalty_triggered(row.order_id, penalty)
            ):
                return self.escrow.apply_penalty_call(row.order_id, penalty)
        for milestone in Milestone:
            if (
                order.terms.milestone_bps[milestone]
                and not order.released[milestone]
                and self.escrow.milestone_reached(row.order_id, milestone)
            ):
                return self.escrow.release_call(row.order_id, milestone)
        return None


def snapshot(order: ChainOrder) -> dict[str, Any]:
    """An order's settlement as stored and served: amounts in the token's smallest unit, as strings."""
    return {
        "state": order.state.name.lower(),
        "paid": str(order.paid),
        "refunded": str(order.refunded),
        "unreleased": str(order.unreleased),
        "released": {name: order.released[milestone] for milestone, name in MILESTONE_NAMES.items()},
        "penaltiesApplied": {
            name: order.penalties_applied[penalty] for penalty, name in PENALTY_NAMES.items()
        },
        "milestoneBps": {
            name: order.terms.milestone_bps[milestone] for milestone, name in MILESTONE_NAMES.items()
        },
        "penaltyBps": {
            "excursion": order.terms.excursion_penalty_bps,
            "recall": order.terms.recall_penalty_bps,
        },
        "deadline": order.terms.deadline,
        "disputeWindow": order.terms.dispute_window,
        "disputeEndsAt": order.dispute_ends_at,
    }


def percent(bps: int) -> float:
    """A share in basis points (as the escrow keeps it) in percent (as people read it)."""
    return bps * 100 / BPS


PUBLIC_PAYMENT_WORDS = {
    "created": "order placed",
    "accepted": "order placed",
    "funded": "payment secured in escrow",
    "disputed": "payment secured in escrow, in dispute",
    "closed": "settled",
}
"""All that a product's public trace says of an order for it: amounts, shares, penalties and the
parties stay between the parties and their arbiter (`GET /orders`)."""


def public_settlement(row: Order) -> dict[str, Any]:
    return {"shipment": row.shipment_epc, "payment": PUBLIC_PAYMENT_WORDS.get(row.state, "order placed")}
