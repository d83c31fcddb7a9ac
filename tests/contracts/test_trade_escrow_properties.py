"""Property tests: random sequences of escrow actions and custody events, against TradeEscrow's invariants.

Three state machines, each starting every example from one chain snapshot. Each invariant was seen
to fail on a contract with its rule taken out (an excursion after the receipt counted, reclaim
after a receipt allowed, a proposed shipment counted as shipped).

1. `EscrowMachine`, model-based, three orders on two pallets: each step is a participant moving a
   pallet on the registry (ship, receive, inspect, report an excursion, recall, sell, consume, pass
   it on), someone trying an escrow action (accept, fund, release, penalty, reclaim, dispute,
   resolve, end a dispute), or time passing a deadline or a dispute window. A Python model of the
   escrow predicts every action's outcome, the error it reverts with or exactly what it pays and
   logs, from the facts the registry shows. After every step:
   - the escrow's token balance equals the sum of the open orders' unreleased funds;
   - each order's paid + refunded + unreleased is its amount once funded, and paid + refunded equals
     the amount once closed (never more);
   - a released milestone stays released, an applied penalty stays applied;
   - nobody is paid twice: no milestone or penalty is logged twice, the seller holds exactly what
     was paid and the buyer exactly what was refunded;
   - the chain's view of every order equals the model's.
2. `BuyerMachine`, invariant 1 (delivered goods are paid for): the seller and a carrier deliver on
   time; the buyer does anything it can on its own, with its receiving address (which here may also
   recall, as an auditor) and with a participant it controls: receive or not, sell or consume, pass
   the goods on, report excursions and recalls, reclaim at any time, dispute, end disputes, release
   and apply penalties, let time pass. Once the receiver has received the goods, nothing is ever
   refunded, and the seller ends up paid the whole amount (the delivery had no mishap, so that is
   its due; penalties owed on other parties' reports are checked by the model above).
3. `SellerMachine`, invariant 2 (nothing is paid for goods not shipped): the seller does anything it
   can on its own (propose and redirect shipments, to itself too, consume the pallet, report
   excursions, try to recall or inspect, release, dispute) while honest counterparties take what is
   shipped to them and customs sometimes clears. The seller is never paid more than the shares of
   the milestones whose facts really happened, as the test itself saw them: a receipt of a shipment
   the seller made, a clearance, the receiver's receipt.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tracechain.chain.escrow import (
    BPS,
    EscrowLog,
    EscrowResult,
    Milestone,
    OrderState,
    OrderTerms,
    Penalty,
)
from tracechain.chain.registry import Role
from tracechain.chain.trace_event import VERDICT_CLEARED, VERDICT_REJECTED, ZERO_ADDRESS, Kind
from tracechain.errors import ContractRevert

from ..factories import (
    Actor,
    Trade,
    account_of,
    give_gas,
    latest_timestamp,
    pack,
    pass_time_to,
    record,
    sgtin,
    sscc,
)

DAY = 86_400
SHIPMENTS = [sscc(1), sscc(2)]  # the first carries two orders
UNFUNDED = 2  # the order accepted and funded, if at all, during an example
UNORDERED = 0xFFFF  # the registry's excursion count stops there
MISHAPS = (
    "excursion",
    "excursion",
    "recall",
    "recall",
    "rejected",
    "sent_back",
    "sold",
    "consumed",
    "sent_straight_on",
    "passed_on",
)
ACTIONS = (
    *["journey"] * 4,
    *["mishap"] * 3,
    "pass_deadline",
    "pass_dispute_window",
    *["release"] * 3,
    *["apply_penalty"] * 3,
    "reclaim",
    *["open_dispute"] * 2,
    *["resolve"] * 2,
    "end_dispute",
    "accept",
    "fund",
)
"""What a step may do, each as often as it is listed (hypothesis draws rules evenly, and a pallet
needs several custody steps before most escrow actions can succeed)."""
SETTINGS = settings(
    max_examples=8, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def attempt(expected: str | None, action: Any) -> EscrowResult | None:
    """Runs an escrow action that should revert with `expected` (None: succeed)."""
    try:
        result: EscrowResult = action()
    except ContractRevert as revert:
        assert expected == revert.error_name, f"expected {expected}, the escrow said {revert}"
        return None
    assert expected is None, f"expected {expected}, the escrow accepted"
    return result


def tolerated(action: Any) -> EscrowResult | None:
    """Runs an action an adversary tries, whether or not the escrow takes it."""
    try:
        result: EscrowResult = action()
    except ContractRevert:
        return None
    return result


def reached(trade: Trade, terms: OrderTerms, milestone: Milestone) -> bool:
    """The milestone's fact as the registry recorded it (the contract's rule, read independently)."""
    registry, shipment = trade.registry, terms.shipment
    if milestone is Milestone.SHIPPED:
        return registry.party_facts_of(shipment, terms.seller).handed_over_at != 0
    if milestone is Milestone.CUSTOMS_CLEARED:
        return registry.cleared_at(shipment) != 0
    return registry.party_facts_of(shipment, terms.receiver).received_at != 0


def triggered(trade: Trade, buyer: str, terms: OrderTerms, penalty: Penalty) -> bool:
    """A report by another party than the buyer and its receiver; an excursion before the receipt."""
    registry, shipment, own = trade.registry, terms.shipment, {buyer, terms.receiver}
    if penalty is Penalty.RECALL:
        return any(r.reporter not in own for r in registry.recall_reports_of(shipment))
    delivery = registry.party_facts_of(shipment, terms.receiver)
    return any(
        r.reporter not in own
        and (
            delivery.received_at == 0
            or (r.ordinal <= delivery.excursions_before_receipt and r.ordinal != UNORDERED)
        )
        for r in registry.excursion_reports_of(shipment)
    )


def penalty_bps(terms: OrderTerms, penalty: Penalty) -> int:
    return terms.excursion_penalty_bps if penalty is Penalty.EXCURSION else terms.recall_penalty_bps


def try_record(trade: Trade, signer: Actor, kind: Kind, shipment: bytes, **fields: Any) -> bool:
    """Records one event if the registry takes it; whether it did."""
    try:
        record(trade.registry, signer, kind, shipment, **fields)
    except ContractRevert:
        return False
    return True


# ==================================================================== 1. the model


@dataclass
class ModelOrder:
    """What the escrow should hold for one order."""

    order_id: int
    terms: OrderTerms
    state: OrderState = OrderState.CREATED
    released: list[bool] = field(default_factory=lambda: [False, False, False])
    penalized: list[bool] = field(default_factory=lambda: [False, False])
    paid: int = 0
    refunded: int = 0
    unreleased: int = 0
    deadline_passed: bool = False
    dispute_ends_at: int = 0

    def unreleased_bps(self) -> int:
        return sum(bps for bps, done in zip(self.terms.milestone_bps, self.released, strict=True) if not done)

    def closed_log(self) -> list[EscrowLog]:
        """OrderClosed, if what the model just did emptied the order (and closes it)."""
        if self.unreleased != 0:
            return []
        self.state = OrderState.CLOSED
        return [
            EscrowLog("OrderClosed", {"orderId": self.order_id, "paid": self.paid, "refunded": self.refunded})
        ]


class EscrowMachine(RuleBasedStateMachine):
    trade: ClassVar[Trade]
    snapshot: ClassVar[int]
    orders: ClassVar[list[tuple[int, OrderTerms, bool]]]  # id, terms, funded at the snapshot
    stranger: ClassVar[Any]

    @initialize()
    def start_from_snapshot(self) -> None:
        self.trade.chain.w3.testing.revert(self.snapshot)  # type: ignore[attr-defined]
        self.model: list[ModelOrder] = []
        for order_id, terms, funded in self.orders:
            order = ModelOrder(order_id, terms)
            if funded:
                order.state, order.unreleased = OrderState.FUNDED, terms.amount
            self.model.append(order)
        self.buyer_start = self.trade.token.balance_of(self.trade.buyer.address)
        self.funded_here = 0  # what the buyer paid into orders during this example
        self.travelled_to = 0  # the latest time the chain was sent to
        self.logged: set[tuple[str, int, int]] = set()
        self.seen_released: list[tuple[bool, ...]] = [(False,) * 3] * 3
        self.seen_penalized: list[tuple[bool, ...]] = [(False,) * 2] * 3

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One action, drawn with the weights of ACTIONS."""
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        getattr(self, action)(data)

    # ------------------------------------------------------------ custody events

    def journey(self, data: st.DataObject) -> None:
        """A pallet goes its usual way, a few steps at a time: the seller ships it to the carrier, who
        receives it; customs clears it; the carrier ships it to the receiver, who receives it."""
        trade = self.trade
        shipment = data.draw(st.sampled_from(SHIPMENTS), label="shipment")
        steps = data.draw(st.integers(1, 3), label="steps")
        for _ in range(steps):
            state = trade.registry.product_of(shipment)
            pending = self._actor(state.pending_receiver)
            if pending is not None:
                self._record(pending, Kind.RECEIVE, shipment)
            elif state.custodian == trade.manufacturer.address:
                self._record(trade.manufacturer, Kind.SHIP, shipment, counterpart=trade.carrier.address)
            elif state.custodian == trade.carrier.address and not state.cleared:
                self._record(trade.customs, Kind.INSPECT, shipment, ref=VERDICT_CLEARED)
            elif state.custodian == trade.carrier.address:
                self._record(trade.carrier, Kind.SHIP, shipment, counterpart=trade.retailer.address)

    def mishap(self, data: st.DataObject) -> None:
        """Something off the usual way; what the registry refuses (selling what the retailer does not
        hold, say) changes nothing, and the registry's own rules are tested elsewhere."""
        trade = self.trade
        shipment = data.draw(st.sampled_from(SHIPMENTS), label="shipment")
        mishap = data.draw(st.sampled_from(MISHAPS), label="mishap")
        custodian = self._actor(trade.registry.product_of(shipment).custodian) or trade.manufacturer
        if mishap == "excursion":
            self._record(custodian, Kind.EXCURSION, shipment)
        elif mishap == "recall":
            self._record(trade.auditor, Kind.RECALL, shipment)
        elif mishap == "rejected":
            self._record(trade.customs, Kind.INSPECT, shipment, ref=VERDICT_REJECTED)
        elif mishap == "sent_back":
            self._record(custodian, Kind.SHIP, shipment, counterpart=trade.manufacturer.address)
        elif mishap == "sold":
            self._record(trade.retailer, Kind.SELL, shipment)
        elif mishap == "consumed":
            self._record(custodian, Kind.CONSUME, shipment, ref=sgtin("used"))
        elif mishap == "passed_on":  # to a party outside the order, which will receive it
            self._record(custodian, Kind.SHIP, shipment, counterpart=trade.auditor.address)
        else:
            self._record(custodian, Kind.SHIP, shipment, counterpart=trade.retailer.address)

    def pass_deadline(self, data: st.DataObject) -> None:
        deadline = self.model[data.draw(st.integers(0, 2), label="order")].terms.deadline
        self._travel_to(deadline + 1)

    def pass_dispute_window(self, data: st.DataObject) -> None:
        ends = [order.dispute_ends_at for order in self.model if order.dispute_ends_at]
        if ends:
            self._travel_to(data.draw(st.sampled_from(ends), label="dispute_end"))

    def _travel_to(self, timestamp: int) -> None:
        if latest_timestamp(self.trade.chain) < timestamp:
            pass_time_to(self.trade.chain, timestamp)
            self.travelled_to = timestamp
        for order in self.model:
            order.deadline_passed = order.deadline_passed or order.terms.deadline < self.travelled_to

    # ------------------------------------------------------------ escrow actions

    def accept(self, data: st.DataObject) -> None:
        order = self._pick(data, OrderState.CREATED)
        by = data.draw(st.sampled_from(["seller", "seller", "buyer", "stranger"]), label="by")
        expected = self._state_error(order, OrderState.CREATED)
        if expected is None and by != "seller":
            expected = "TradeEscrowNotSeller"
        elif expected is None and order.deadline_passed:
            expected = "TradeEscrowDeadlinePassed"
        result = attempt(expected, lambda: self.trade.escrow.accept_order(self._party(by), order.order_id))
        if result is None:
            return
        order.state = OrderState.ACCEPTED
        assert result.logs == [
            EscrowLog("OrderAccepted", {"orderId": order.order_id, "seller": order.terms.seller})
        ]

    def fund(self, data: st.DataObject) -> None:
        order = self.model[UNFUNDED]
        expected = self._state_error(order, OrderState.ACCEPTED)
        if expected is None and order.deadline_passed:
            expected = "TradeEscrowDeadlinePassed"
        result = attempt(expected, lambda: self.trade.escrow.fund(self.trade.buyer, order.order_id))
        if result is None:
            return
        order.state, order.unreleased = OrderState.FUNDED, order.terms.amount
        self.funded_here += order.terms.amount
        assert [log.name for log in result.logs] == ["OrderFunded"]

    def release(self, data: st.DataObject) -> None:
        """Anyone (the relayer or a stranger) releases a milestone, mostly one the order has."""
        order = self._pick(data, OrderState.FUNDED)
        in_order = [m for m in Milestone if order.terms.milestone_bps[m]]
        milestone = data.draw(st.sampled_from(in_order) | st.sampled_from(Milestone), label="milestone")
        by_stranger = data.draw(st.booleans(), label="by_stranger")
        bps = order.terms.milestone_bps[milestone]
        expected = self._release_error(order, milestone)
        due = [p for p in Penalty if self._due(order, p)] if expected is None else []
        sender = self.stranger if by_stranger else None
        result = attempt(expected, lambda: self.trade.escrow.release(order.order_id, milestone, sender))
        if result is None:
            return
        logs = [log for penalty in due for log in self._penalize(order, penalty)]
        if order.state is OrderState.FUNDED:
            unreleased_bps = order.unreleased_bps()
            payment = order.unreleased if bps == unreleased_bps else order.unreleased * bps // unreleased_bps
            order.released[milestone] = True
            order.unreleased -= payment
            order.paid += payment
            logs.append(
                EscrowLog(
                    "MilestoneReleased",
                    {
                        "orderId": order.order_id,
                        "milestone": milestone,
                        "seller": order.terms.seller,
                        "amount": payment,
                    },
                )
            )
            logs += order.closed_log()
        self._expect_logs(result, logs)

    def apply_penalty(self, data: st.DataObject) -> None:
        """Anyone applies a penalty, mostly one the order has."""
        order = self._pick(data, OrderState.FUNDED)
        agreed = [p for p in Penalty if penalty_bps(order.terms, p)] or list(Penalty)
        penalty = data.draw(st.sampled_from(agreed) | st.sampled_from(Penalty), label="penalty")
        expected = self._state_error(order, OrderState.FUNDED)
        if expected is None and penalty_bps(order.terms, penalty) == 0:
            expected = "TradeEscrowPenaltyNotInOrder"
        elif expected is None and order.penalized[penalty]:
            expected = "TradeEscrowPenaltyAlreadyApplied"
        elif expected is None and not triggered(self.trade, self.trade.buyer.address, order.terms, penalty):
            expected = "TradeEscrowPenaltyNotTriggered"
        result = attempt(expected, lambda: self.trade.escrow.apply_penalty(order.order_id, penalty))
        if result is not None:
            self._expect_logs(result, self._penalize(order, penalty))

    def reclaim(self, data: st.DataObject) -> None:
        order = self._pick(data, OrderState.FUNDED)
        by = data.draw(st.sampled_from(["buyer", "seller"]), label="by")
        expected = self._reclaim_error(order, by)
        result = attempt(expected, lambda: self.trade.escrow.reclaim(self._party(by), order.order_id))
        if result is None:
            return
        refund = order.unreleased
        order.unreleased, order.refunded = 0, order.refunded + refund
        reclaimed = EscrowLog(
            "OrderReclaimed", {"orderId": order.order_id, "buyer": self.trade.buyer.address, "refund": refund}
        )
        self._expect_logs(result, [reclaimed, *order.closed_log()])

    def open_dispute(self, data: st.DataObject) -> None:
        order = self._pick(data, OrderState.FUNDED)
        by = data.draw(st.sampled_from(["buyer", "seller", "arbiter", "stranger"]), label="by")
        expected = self._state_error(order, OrderState.FUNDED)
        if expected is None and order.terms.arbiter == ZERO_ADDRESS:
            expected = "TradeEscrowNoArbiter"
        elif expected is None and by not in ("buyer", "seller"):
            expected = "TradeEscrowNotParty"
        elif expected is None and order.dispute_ends_at:
            expected = "TradeEscrowDisputeAlreadyOpened"
        party = self._party(by)
        result = attempt(expected, lambda: self.trade.escrow.open_dispute(party, order.order_id))
        if result is None:
            return
        opened_at = int(self.trade.chain.w3.eth.get_block(result.receipt["blockNumber"])["timestamp"])
        order.state, order.dispute_ends_at = OrderState.DISPUTED, opened_at + order.terms.dispute_window
        assert result.logs == [
            EscrowLog(
                "DisputeOpened",
                {"orderId": order.order_id, "openedBy": party.address, "endsAt": order.dispute_ends_at},
            )
        ]

    def resolve(self, data: st.DataObject) -> None:
        order = self._pick(data, OrderState.DISPUTED)
        by = data.draw(st.sampled_from(["arbiter", "arbiter", "buyer", "stranger"]), label="by")
        to_seller_bps = data.draw(st.sampled_from([0, 3333, BPS, BPS + 1]), label="to_seller_bps")
        expected = self._state_error(order, OrderState.DISPUTED)
        if expected is None and self._party(by).address != order.terms.arbiter:
            expected = "TradeEscrowNotArbiter"
        elif expected is None and self._dispute_over(order):
            expected = "TradeEscrowDisputeEnded"
        elif expected is None and to_seller_bps > BPS:
            expected = "TradeEscrowInvalidSplit"
        result = attempt(
            expected, lambda: self.trade.escrow.resolve(self._party(by), order.order_id, to_seller_bps)
        )
        if result is None:
            return
        to_seller = order.unreleased * to_seller_bps // BPS
        to_buyer = order.unreleased - to_seller
        order.paid += to_seller
        order.refunded += to_buyer
        order.unreleased = 0
        resolved = EscrowLog(
            "DisputeResolved",
            {
                "orderId": order.order_id,
                "arbiter": order.terms.arbiter,
                "toSellerBps": to_seller_bps,
                "toSeller": to_seller,
                "toBuyer": to_buyer,
            },
        )
        self._expect_logs(result, [resolved, *order.closed_log()])

    def end_dispute(self, data: st.DataObject) -> None:
        order = self._pick(data, OrderState.DISPUTED)
        by_stranger = data.draw(st.booleans(), label="by_stranger")
        expected = self._state_error(order, OrderState.DISPUTED)
        if expected is None and not self._dispute_over(order):
            expected = "TradeEscrowDisputeNotEnded"
        sender = self.stranger if by_stranger else None
        result = attempt(expected, lambda: self.trade.escrow.end_dispute(order.order_id, sender))
        if result is None:
            return
        order.state = OrderState.FUNDED
        ended_by = self.stranger.address if by_stranger else self.trade.chain.relayer.address
        assert result.logs == [EscrowLog("DisputeEnded", {"orderId": order.order_id, "endedBy": ended_by})]

    # ------------------------------------------------------------ invariants

    @invariant()
    def the_books_balance(self) -> None:
        """Read from the chain once per step; every property of the model in the module docstring."""
        if not hasattr(self, "model"):
            return
        trade, escrow = self.trade, self.trade.escrow
        on_chain = [escrow.order_of(order.order_id) for order in self.model]

        # The escrow holds exactly what its orders have not paid out.
        assert trade.token.balance_of(escrow.address) == sum(order.unreleased for order in on_chain)
        for chain in on_chain:
            amount = chain.terms.amount
            if chain.state in (OrderState.CREATED, OrderState.ACCEPTED):
                assert chain.paid == chain.refunded == chain.unreleased == 0
            else:
                assert chain.paid + chain.refunded + chain.unreleased == amount
            if chain.state is OrderState.CLOSED:
                assert chain.paid + chain.refunded == amount
            elif chain.state in (OrderState.FUNDED, OrderState.DISPUTED):
                assert chain.unreleased > 0  # an open funded order always holds something

        # Released stays released, applied stays applied.
        for i, chain in enumerate(on_chain):
            assert all(
                now or not before for before, now in zip(self.seen_released[i], chain.released, strict=True)
            )
            assert all(
                now or not before
                for before, now in zip(self.seen_penalized[i], chain.penalties_applied, strict=True)
            )
            self.seen_released[i] = chain.released
            self.seen_penalized[i] = chain.penalties_applied

        # Nobody is paid twice: the parties hold exactly what the orders say they got.
        assert trade.token.balance_of(trade.manufacturer.address) == sum(order.paid for order in on_chain)
        refunded = sum(order.refunded for order in on_chain)
        assert trade.token.balance_of(trade.buyer.address) == self.buyer_start - self.funded_here + refunded

        # And the chain agrees with the model.
        for model, chain in zip(self.model, on_chain, strict=True):
            assert (chain.state, list(chain.released), list(chain.penalties_applied)) == (
                model.state,
                model.released,
                model.penalized,
            )
            assert (chain.paid, chain.refunded, chain.unreleased, chain.dispute_ends_at) == (
                model.paid,
                model.refunded,
                model.unreleased,
                model.dispute_ends_at,
            )

    # ------------------------------------------------------------ helpers

    def _due(self, order: ModelOrder, penalty: Penalty) -> bool:
        return (
            penalty_bps(order.terms, penalty) != 0
            and not order.penalized[penalty]
            and triggered(self.trade, self.trade.buyer.address, order.terms, penalty)
        )

    def _penalize(self, order: ModelOrder, penalty: Penalty) -> list[EscrowLog]:
        """The model applies a penalty (if the order is still open) and returns the logs it makes."""
        if order.state is not OrderState.FUNDED:
            return []
        refund = min(order.terms.amount * penalty_bps(order.terms, penalty) // BPS, order.unreleased)
        order.penalized[penalty] = True
        order.unreleased -= refund
        order.refunded += refund
        applied = EscrowLog(
            "PenaltyApplied",
            {
                "orderId": order.order_id,
                "penalty": penalty,
                "buyer": self.trade.buyer.address,
                "refund": refund,
            },
        )
        return [applied, *order.closed_log()]

    def _expect_logs(self, result: EscrowResult, expected: list[EscrowLog]) -> None:
        assert result.logs == expected
        for log in result.logs:
            if log.name in ("OrderClosed", "DisputeEnded"):
                continue
            key = (log.name, log.args["orderId"], int(log.args.get("milestone", log.args.get("penalty", -1))))
            assert key not in self.logged, f"{key} logged twice"
            self.logged.add(key)

    def _pick(self, data: st.DataObject, state: OrderState) -> ModelOrder:
        """Mostly an order in `state` (where the action can do something), sometimes any order."""
        candidates = [i for i, order in enumerate(self.model) if order.state is state] or [0, 1, 2]
        index = data.draw(st.sampled_from(candidates) | st.integers(0, 2), label="order")
        return self.model[index]

    def _dispute_over(self, order: ModelOrder) -> bool:
        return self.travelled_to >= order.dispute_ends_at

    def _release_error(self, order: ModelOrder, milestone: Milestone) -> str | None:
        if order.state is not OrderState.FUNDED:
            return "TradeEscrowUnexpectedState"
        if order.terms.milestone_bps[milestone] == 0:
            return "TradeEscrowMilestoneNotInOrder"
        if order.released[milestone]:
            return "TradeEscrowMilestoneAlreadyReleased"
        if order.released[Milestone.RECEIVED]:
            return None  # delivery counts as shipped and cleared
        if not reached(self.trade, order.terms, milestone):
            return "TradeEscrowMilestoneNotReached"
        return None

    def _reclaim_error(self, order: ModelOrder, by: str) -> str | None:
        if order.state is not OrderState.FUNDED:
            return "TradeEscrowUnexpectedState"
        if by != "buyer":
            return "TradeEscrowNotBuyer"
        if not order.deadline_passed:
            return "TradeEscrowDeadlineNotPassed"
        if order.released[Milestone.RECEIVED]:
            return "TradeEscrowMilestoneAlreadyReleased"
        if reached(self.trade, order.terms, Milestone.RECEIVED):
            return "TradeEscrowDelivered"
        if self.trade.registry.product_of(order.terms.shipment).pending_receiver == order.terms.receiver:
            return "TradeEscrowDeliveryPending"
        return None

    def _state_error(self, order: ModelOrder, expected: OrderState) -> str | None:
        return None if order.state is expected else "TradeEscrowUnexpectedState"

    def _record(self, signer: Actor, kind: Kind, shipment: bytes, **fields: Any) -> None:
        with contextlib.suppress(ContractRevert):
            record(self.trade.registry, signer, kind, shipment, **fields)

    def _party(self, name: str) -> Any:
        return self.stranger if name == "stranger" else getattr(self.trade, name)

    def _actor(self, address: str) -> Actor | None:
        trade = self.trade
        for actor in (trade.manufacturer, trade.carrier, trade.retailer, trade.auditor):
            if actor.address == address:
                return actor
        return None


def test_escrow_accounting_holds_under_random_actions(trade: Trade) -> None:
    """Three orders on two pallets: FOB with an arbiter and both penalties; on the other pallet DAP
    with a full excursion penalty and an odd amount; on the first again, a tiny 2000/3000/5000
    order with an arbiter and a full recall penalty, neither accepted nor funded yet."""
    assert trade.shipment == SHIPMENTS[0]
    record(trade.registry, trade.manufacturer, Kind.COMMISSION, sgtin(2))
    pack(trade.registry, trade.manufacturer, SHIPMENTS[1], sgtin(2))
    now = latest_timestamp(trade.chain)
    arbiter = trade.arbiter.address
    specs = [
        (
            trade.terms(
                deadline=now + DAY, arbiter=arbiter, excursion_penalty_bps=2000, recall_penalty_bps=5000
            ),
            True,
        ),
        (
            trade.terms(
                shipment=SHIPMENTS[1],
                amount=333_333_333,
                milestone_bps=(0, 0, BPS),
                deadline=now + 2 * DAY,
                excursion_penalty_bps=BPS,
            ),
            True,
        ),
        (
            trade.terms(
                amount=1001,
                milestone_bps=(2000, 3000, 5000),
                deadline=now + 3 * DAY,
                arbiter=arbiter,
                recall_penalty_bps=BPS,
            ),
            False,
        ),
    ]
    orders = []
    for terms, funded in specs:
        order_id = trade.escrow.create_order(trade.buyer, terms).order_id
        if funded:
            trade.accept(order_id)
            trade.fund(order_id)
        else:
            trade.token.faucet(trade.buyer.address, terms.amount)
            trade.token.approve(trade.buyer, trade.escrow.address, terms.amount)
        orders.append((order_id, trade.escrow.order_of(order_id).terms, funded))
    stranger = Account.create()
    give_gas(trade.chain, stranger.address)

    machine = type(
        "EscrowOnTester",
        (EscrowMachine,),
        {
            "trade": trade,
            "orders": orders,
            "stranger": stranger,
            "snapshot": trade.chain.w3.testing.snapshot(),  # type: ignore[attr-defined]
        },
    )
    run_state_machine_as_test(machine, settings=SETTINGS)


# ==================================================================== 2. and 3. one party alone


class OnePartyMachine(RuleBasedStateMachine):
    """One funded order (shares 3000/2000/5000, an arbiter, both penalties) and the parties' actors.

    `received` is set when the test sees the receiving address's Receive succeed, `handed_over` when
    a Receive succeeds while the seller held the pallet, `cleared` when customs' clearance does:
    the facts as the test saw them happen, independently of how the registry keeps them."""

    trade: ClassVar[Trade]
    snapshot: ClassVar[int]
    order_id: ClassVar[int]
    friend: ClassVar[Actor]

    @initialize()
    def start_from_snapshot(self) -> None:
        self.trade.chain.w3.testing.revert(self.snapshot)  # type: ignore[attr-defined]
        self.terms = self.trade.escrow.order_of(self.order_id).terms
        self.received = self.handed_over = self.cleared = False

    @property
    def shipment(self) -> bytes:
        return self.trade.shipment

    def custodian(self) -> str:
        return self.trade.registry.product_of(self.shipment).custodian

    def pending(self) -> str:
        return self.trade.registry.product_of(self.shipment).pending_receiver

    def receive(self, actor: Actor) -> None:
        """`actor` signs for the pallet if it was shipped to it; the test notes which fact that is."""
        sender = self.custodian()
        if try_record(self.trade, actor, Kind.RECEIVE, self.shipment):
            self.handed_over = self.handed_over or sender == self.trade.manufacturer.address
            self.received = self.received or actor.address == self.terms.receiver

    def wait(self, data: st.DataObject) -> None:
        """Time passes: past the deadline, or past the end of the order's dispute."""
        escrow = self.trade.escrow
        target = data.draw(st.sampled_from(["deadline", "dispute"]), label="until")
        if target == "deadline":
            timestamp = self.terms.deadline + 1
        else:
            timestamp = escrow.order_of(self.order_id).dispute_ends_at
        if latest_timestamp(self.trade.chain) < timestamp:
            pass_time_to(self.trade.chain, timestamp)

    def settle_everything(self) -> None:
        """A keeper after the fact: ends a dispute once it may, then applies and releases all it can."""
        escrow, chain = self.trade.escrow, self.trade.chain
        order = escrow.order_of(self.order_id)
        if order.state is OrderState.DISPUTED:
            if latest_timestamp(chain) < order.dispute_ends_at:
                pass_time_to(chain, order.dispute_ends_at)
            escrow.end_dispute(self.order_id)
        for penalty in Penalty:
            with contextlib.suppress(ContractRevert):
                escrow.apply_penalty(self.order_id, penalty)
        for milestone in (Milestone.RECEIVED, Milestone.SHIPPED, Milestone.CUSTOMS_CLEARED):
            with contextlib.suppress(ContractRevert):
                escrow.release(self.order_id, milestone)


BUYER_ACTIONS = (
    *["environment"] * 5,
    *["receive_it"] * 3,
    "sell_it",
    "consume_it",
    *["report_excursion"] * 2,
    *["recall_it"] * 2,
    *["pass_it_on"] * 2,
    *["friend_reports"] * 2,
    "friend_returns_it",
    *["reclaim"] * 3,
    "open_dispute",
    "end_dispute",
    *["release"] * 2,
    *["apply_penalty"] * 2,
    *["wait"] * 2,
)


class BuyerMachine(OnePartyMachine):
    """Invariant 1: the buyer and its receiving address (here also an auditor, so that it may
    recall) act as they please; the seller and the carrier deliver before the deadline, with no
    mishap, so the seller is due the whole amount. (Penalties due on other parties' reports are the
    model's business, in EscrowMachine.)"""

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        action = data.draw(st.sampled_from(BUYER_ACTIONS), label="action")
        getattr(self, action)(data)

    def environment(self, data: st.DataObject) -> None:
        """The honest side, a few steps: the seller hands the pallet to the carrier, customs clears it,
        the carrier offers it to the receiver before the deadline."""
        for _ in range(data.draw(st.integers(1, 4), label="steps")):
            self.one_honest_step()

    def one_honest_step(self) -> None:
        trade = self.trade
        custodian, pending = self.custodian(), self.pending()
        if pending == trade.carrier.address:
            self.receive(trade.carrier)
        elif custodian == trade.manufacturer.address and pending == ZERO_ADDRESS:
            try_record(trade, trade.manufacturer, Kind.SHIP, self.shipment, counterpart=trade.carrier.address)
        elif custodian == trade.carrier.address and trade.registry.cleared_at(self.shipment) == 0:
            try_record(trade, trade.customs, Kind.INSPECT, self.shipment, ref=VERDICT_CLEARED)
        elif (
            custodian == trade.carrier.address
            and pending == ZERO_ADDRESS
            and latest_timestamp(trade.chain) + 60 < self.terms.deadline  # delivered on time
        ):
            try_record(trade, trade.carrier, Kind.SHIP, self.shipment, counterpart=trade.retailer.address)

    # ------------------------------------------------------------ the buyer's own actions

    def receive_it(self, data: st.DataObject) -> None:
        self.receive(self.trade.retailer)

    def sell_it(self, data: st.DataObject) -> None:
        try_record(self.trade, self.trade.retailer, Kind.SELL, self.shipment)

    def consume_it(self, data: st.DataObject) -> None:
        try_record(self.trade, self.trade.retailer, Kind.CONSUME, self.shipment, ref=sgtin("used"))

    def report_excursion(self, data: st.DataObject) -> None:
        try_record(self.trade, self.trade.retailer, Kind.EXCURSION, self.shipment)

    def recall_it(self, data: st.DataObject) -> None:
        try_record(self.trade, self.trade.retailer, Kind.RECALL, self.shipment)

    def pass_it_on(self, data: st.DataObject) -> None:
        """The receiver ships the pallet to a participant the buyer controls, which signs for it."""
        if try_record(
            self.trade, self.trade.retailer, Kind.SHIP, self.shipment, counterpart=self.friend.address
        ):
            self.receive(self.friend)

    def friend_reports(self, data: st.DataObject) -> None:
        try_record(self.trade, self.friend, Kind.EXCURSION, self.shipment)

    def friend_returns_it(self, data: st.DataObject) -> None:
        trade = self.trade
        if try_record(trade, self.friend, Kind.SHIP, self.shipment, counterpart=trade.retailer.address):
            self.receive(trade.retailer)

    def reclaim(self, data: st.DataObject) -> None:
        tolerated(lambda: self.trade.escrow.reclaim(self.trade.buyer, self.order_id))

    def open_dispute(self, data: st.DataObject) -> None:
        tolerated(lambda: self.trade.escrow.open_dispute(self.trade.buyer, self.order_id))

    def end_dispute(self, data: st.DataObject) -> None:
        tolerated(lambda: self.trade.escrow.end_dispute(self.order_id, self.trade.buyer))

    def release(self, data: st.DataObject) -> None:
        milestone = data.draw(st.sampled_from(Milestone), label="milestone")
        tolerated(lambda: self.trade.escrow.release(self.order_id, milestone, self.trade.buyer))

    def apply_penalty(self, data: st.DataObject) -> None:
        penalty = data.draw(st.sampled_from(Penalty), label="penalty")
        tolerated(lambda: self.trade.escrow.apply_penalty(self.order_id, penalty, self.trade.buyer))

    # ------------------------------------------------------------ the invariant

    @invariant()
    def delivered_goods_are_never_refunded(self) -> None:
        if not hasattr(self, "terms") or not self.received:
            return
        order = self.trade.escrow.order_of(self.order_id)
        assert order.refunded == 0, order

    def teardown(self) -> None:
        if not hasattr(self, "terms") or not self.received:
            return
        self.settle_everything()
        order = self.trade.escrow.order_of(self.order_id)
        assert (order.state, order.paid, order.refunded) == (OrderState.CLOSED, self.terms.amount, 0), order
        assert self.trade.token.balance_of(self.trade.manufacturer.address) == self.terms.amount


SELLER_ACTIONS = (
    *["ship_to"] * 4,
    "consume_it",
    "report_excursion",
    "try_recall",
    "try_inspect",
    *["counterparties"] * 4,
    *["release"] * 3,
    "apply_penalty",
    "open_dispute",
    "end_dispute",
    "wait",
)


class SellerMachine(OnePartyMachine):
    """Invariant 2: the seller acts as it pleases; counterparties sign for what is shipped to them."""

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        action = data.draw(st.sampled_from(SELLER_ACTIONS), label="action")
        getattr(self, action)(data)

    def counterparties(self, data: st.DataObject) -> None:
        """Whoever the pallet was shipped to signs for it (a handover, then, if the seller shipped it);
        the carrier ships it on to the receiver; customs clears it now and then."""
        trade = self.trade
        pending = self.pending()
        by_address = {
            a.address: a for a in (trade.carrier, trade.retailer, trade.auditor, trade.manufacturer)
        }
        if pending in by_address:
            self.receive(by_address[pending])
        elif self.custodian() == trade.carrier.address:
            try_record(trade, trade.carrier, Kind.SHIP, self.shipment, counterpart=trade.retailer.address)
        elif data.draw(st.booleans(), label="inspect"):
            self.cleared |= try_record(trade, trade.customs, Kind.INSPECT, self.shipment, ref=VERDICT_CLEARED)

    # ------------------------------------------------------------ the seller's own actions

    def ship_to(self, data: st.DataObject) -> None:
        """A proposal (or a redirection) to anyone: the carrier, the receiver, an outsider, itself."""
        trade = self.trade
        to = data.draw(
            st.sampled_from([trade.carrier, trade.retailer, trade.auditor, trade.manufacturer]), label="to"
        )
        try_record(trade, trade.manufacturer, Kind.SHIP, self.shipment, counterpart=to.address)

    def consume_it(self, data: st.DataObject) -> None:
        try_record(self.trade, self.trade.manufacturer, Kind.CONSUME, self.shipment, ref=sgtin("soup"))

    def report_excursion(self, data: st.DataObject) -> None:
        try_record(self.trade, self.trade.manufacturer, Kind.EXCURSION, self.shipment)

    def try_recall(self, data: st.DataObject) -> None:
        try_record(self.trade, self.trade.manufacturer, Kind.RECALL, self.shipment)

    def try_inspect(self, data: st.DataObject) -> None:
        try_record(self.trade, self.trade.manufacturer, Kind.INSPECT, self.shipment, ref=VERDICT_CLEARED)

    def release(self, data: st.DataObject) -> None:
        milestone = data.draw(st.sampled_from(Milestone), label="milestone")
        result = tolerated(lambda: self.trade.escrow.release(self.order_id, milestone, self.trade.seller))
        if result is not None and any(log.name == "MilestoneReleased" for log in result.logs):
            assert self.happened(milestone), (milestone, self.handed_over, self.cleared, self.received)

    def apply_penalty(self, data: st.DataObject) -> None:
        penalty = data.draw(st.sampled_from(Penalty), label="penalty")
        tolerated(lambda: self.trade.escrow.apply_penalty(self.order_id, penalty, self.trade.seller))

    def open_dispute(self, data: st.DataObject) -> None:
        tolerated(lambda: self.trade.escrow.open_dispute(self.trade.seller, self.order_id))

    def end_dispute(self, data: st.DataObject) -> None:
        tolerated(lambda: self.trade.escrow.end_dispute(self.order_id, self.trade.seller))

    # ------------------------------------------------------------ the invariant

    def happened(self, milestone: Milestone) -> bool:
        if self.received:
            return True  # delivered: every milestone counts as met
        return {
            Milestone.SHIPPED: self.handed_over,
            Milestone.CUSTOMS_CLEARED: self.cleared,
            Milestone.RECEIVED: False,
        }[milestone]

    @invariant()
    def the_seller_is_paid_only_for_what_happened(self) -> None:
        if not hasattr(self, "terms"):
            return
        earned_bps = sum(
            bps for m, bps in zip(Milestone, self.terms.milestone_bps, strict=True) if self.happened(m)
        )
        paid = self.trade.token.balance_of(self.trade.manufacturer.address)
        assert paid <= self.terms.amount * earned_bps // BPS, (
            paid,
            self.handed_over,
            self.cleared,
            self.received,
        )

    def teardown(self) -> None:
        if not hasattr(self, "terms"):
            return
        self.settle_everything()  # whatever the keeper releases afterwards rests on facts as well
        self.the_seller_is_paid_only_for_what_happened()


def _one_party_run(trade: Trade, machine: type[OnePartyMachine], *, receiver_recalls: bool) -> None:
    friend = Actor.new("friend", trade.registry)
    trade.registry.grant_role(Role.CARRIER, friend.address)
    if receiver_recalls:
        trade.registry.grant_role(Role.AUDITOR, trade.retailer.address)
    give_gas(trade.chain, account_of(friend).address)
    order_id = trade.funded(
        milestone_bps=(3000, 2000, 5000),
        arbiter=trade.arbiter.address,
        excursion_penalty_bps=2000,
        recall_penalty_bps=3000,
        deadline=latest_timestamp(trade.chain) + 2 * DAY,
    )
    run_state_machine_as_test(
        type(
            machine.__name__ + "OnTester",
            (machine,),
            {
                "trade": trade,
                "order_id": order_id,
                "friend": friend,
                "snapshot": trade.chain.w3.testing.snapshot(),  # type: ignore[attr-defined]
            },
        ),
        settings=settings(SETTINGS, max_examples=12, stateful_step_count=30),
    )


def test_no_sequence_of_the_buyers_own_actions_underpays_delivered_goods(trade: Trade) -> None:
    _one_party_run(trade, BuyerMachine, receiver_recalls=True)


def test_no_sequence_of_the_sellers_own_actions_is_paid_for_goods_it_did_not_ship(trade: Trade) -> None:
    _one_party_run(trade, SellerMachine, receiver_recalls=False)
