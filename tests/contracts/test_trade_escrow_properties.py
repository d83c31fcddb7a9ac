"""Property test: random sequences of escrow actions and custody events on three orders.

Each step is a participant moving a pallet on the registry (ship, receive, inspect, report an
excursion, recall, sell), someone trying an escrow action (release, penalty, reclaim, dispute,
resolve, fund), or time passing a deadline. A Python model of the escrow predicts every action's
outcome, the error it reverts with or exactly what it pays, from the registry state it reads. After
every step:
- the escrow's token balance equals the sum of the open orders' unreleased funds;
- each order's paid + refunded + unreleased is its amount once funded, and paid + refunded equals
  the amount once closed (never more);
- a released milestone stays released, an applied penalty stays applied;
- nobody is paid twice: no milestone or penalty is logged twice, the seller holds exactly what was
  paid and the buyer exactly what was refunded;
- the chain's view of every order equals the model's.

Each example starts from one chain snapshot, so the setup's transactions run once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tracechain.chain.escrow import BPS, EscrowLog, EscrowResult, Milestone, OrderState, OrderTerms, Penalty
from tracechain.chain.registry import ProductState
from tracechain.chain.trace_event import VERDICT_CLEARED, VERDICT_REJECTED, ZERO_ADDRESS, Kind, Status
from tracechain.errors import ContractRevert

from ..factories import Actor, Trade, give_gas, latest_timestamp, pack, pass_time_to, record, sgtin, sscc

DAY = 86_400
SHIPMENTS = [sscc(1), sscc(2)]  # the first carries two orders
UNFUNDED = 2  # the order funded, if at all, during an example
MISHAPS = ("excursion", "excursion", "recall", "recall", "rejected", "sent_back", "sold", "sent_straight_on")
ACTIONS = (
    *["journey"] * 4,
    *["mishap"] * 3,
    "pass_deadline",
    *["release"] * 3,
    *["apply_penalty"] * 3,
    "reclaim",
    *["open_dispute"] * 2,
    *["resolve"] * 2,
    "fund",
)
"""What a step may do, each as often as it is listed (hypothesis draws rules evenly, and a pallet
needs several custody steps before most escrow actions can succeed)."""


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

    def unreleased_bps(self) -> int:
        return sum(bps for bps, done in zip(self.terms.milestone_bps, self.released, strict=True) if not done)

    def close_if_empty(self) -> None:
        if self.unreleased == 0:
            self.state = OrderState.CLOSED


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
        else:
            self._record(custodian, Kind.SHIP, shipment, counterpart=trade.retailer.address)

    def pass_deadline(self, data: st.DataObject) -> None:
        deadline = self.model[data.draw(st.integers(0, 2), label="order")].terms.deadline
        if latest_timestamp(self.trade.chain) < deadline:
            pass_time_to(self.trade.chain, deadline + 1)
        for order in self.model:
            order.deadline_passed = order.deadline_passed or order.terms.deadline <= deadline

    # ------------------------------------------------------------ escrow actions

    def release(self, data: st.DataObject) -> None:
        """Anyone (the relayer or a stranger) releases a milestone, mostly one the order has."""
        order = self._pick(data, OrderState.FUNDED)
        in_order = [m for m in Milestone if order.terms.milestone_bps[m]]
        milestone = data.draw(st.sampled_from(in_order) | st.sampled_from(Milestone), label="milestone")
        by_stranger = data.draw(st.booleans(), label="by_stranger")
        bps = order.terms.milestone_bps[milestone]
        expected = self._release_error(order, milestone)
        sender = self.stranger if by_stranger else None
        result = self._attempt(expected, lambda: self.trade.escrow.release(order.order_id, milestone, sender))
        if result is None:
            return
        unreleased_bps = order.unreleased_bps()
        payment = order.unreleased if bps == unreleased_bps else order.unreleased * bps // unreleased_bps
        order.released[milestone] = True
        order.unreleased -= payment
        order.paid += payment
        order.close_if_empty()
        self._expect_logs(
            result,
            order,
            EscrowLog(
                "MilestoneReleased",
                {
                    "orderId": order.order_id,
                    "milestone": milestone,
                    "seller": order.terms.seller,
                    "amount": payment,
                },
            ),
        )

    def apply_penalty(self, data: st.DataObject) -> None:
        """Anyone applies a penalty, mostly one the order has."""
        order = self._pick(data, OrderState.FUNDED)
        terms = order.terms
        agreed = {Penalty.EXCURSION: terms.excursion_penalty_bps, Penalty.RECALL: terms.recall_penalty_bps}
        in_order = [penalty for penalty, bps in agreed.items() if bps] or list(Penalty)
        penalty = data.draw(st.sampled_from(in_order) | st.sampled_from(Penalty), label="penalty")
        bps = agreed[penalty]
        expected = self._state_error(order, OrderState.FUNDED)
        if expected is None and bps == 0:
            expected = "TradeEscrowPenaltyNotInOrder"
        elif expected is None and order.penalized[penalty]:
            expected = "TradeEscrowPenaltyAlreadyApplied"
        elif expected is None:
            state = self.trade.registry.product_of(terms.shipment)
            if not (state.excursions > 0 if penalty is Penalty.EXCURSION else state.recalled):
                expected = "TradeEscrowPenaltyNotTriggered"
        result = self._attempt(expected, lambda: self.trade.escrow.apply_penalty(order.order_id, penalty))
        if result is None:
            return
        refund = min(terms.amount * bps // BPS, order.unreleased)
        order.penalized[penalty] = True
        order.unreleased -= refund
        order.refunded += refund
        order.close_if_empty()
        self._expect_logs(
            result,
            order,
            EscrowLog(
                "PenaltyApplied",
                {
                    "orderId": order.order_id,
                    "penalty": penalty,
                    "buyer": self.trade.buyer.address,
                    "refund": refund,
                },
            ),
        )

    def reclaim(self, data: st.DataObject) -> None:
        order = self._pick(data, OrderState.FUNDED)
        by = data.draw(st.sampled_from(["buyer", "seller"]), label="by")
        expected = self._reclaim_error(order, by)
        result = self._attempt(expected, lambda: self.trade.escrow.reclaim(self._party(by), order.order_id))
        if result is None:
            return
        refund = order.unreleased
        order.unreleased, order.refunded, order.state = 0, order.refunded + refund, OrderState.CLOSED
        self._expect_logs(
            result,
            order,
            EscrowLog(
                "OrderReclaimed",
                {"orderId": order.order_id, "buyer": self.trade.buyer.address, "refund": refund},
            ),
        )

    def open_dispute(self, data: st.DataObject) -> None:
        order = self._pick(data, OrderState.FUNDED)
        by = data.draw(st.sampled_from(["buyer", "seller", "arbiter", "stranger"]), label="by")
        expected = self._state_error(order, OrderState.FUNDED)
        if expected is None and order.terms.arbiter == ZERO_ADDRESS:
            expected = "TradeEscrowNoArbiter"
        elif expected is None and by not in ("buyer", "seller"):
            expected = "TradeEscrowNotParty"
        result = self._attempt(
            expected, lambda: self.trade.escrow.open_dispute(self._party(by), order.order_id)
        )
        if result is None:
            return
        order.state = OrderState.DISPUTED
        assert result.logs == [
            EscrowLog("DisputeOpened", {"orderId": order.order_id, "openedBy": self._party(by).address})
        ]

    def resolve(self, data: st.DataObject) -> None:
        order = self._pick(data, OrderState.DISPUTED)
        by = data.draw(st.sampled_from(["arbiter", "arbiter", "buyer", "stranger"]), label="by")
        to_seller_bps = data.draw(st.sampled_from([0, 3333, BPS, BPS + 1]), label="to_seller_bps")
        expected = self._state_error(order, OrderState.DISPUTED)
        if expected is None and self._party(by).address != order.terms.arbiter:
            expected = "TradeEscrowNotArbiter"
        elif expected is None and to_seller_bps > BPS:
            expected = "TradeEscrowInvalidSplit"
        result = self._attempt(
            expected, lambda: self.trade.escrow.resolve(self._party(by), order.order_id, to_seller_bps)
        )
        if result is None:
            return
        to_seller = order.unreleased * to_seller_bps // BPS
        to_buyer = order.unreleased - to_seller
        order.paid += to_seller
        order.refunded += to_buyer
        order.unreleased, order.state = 0, OrderState.CLOSED
        self._expect_logs(
            result,
            order,
            EscrowLog(
                "DisputeResolved",
                {
                    "orderId": order.order_id,
                    "arbiter": order.terms.arbiter,
                    "toSellerBps": to_seller_bps,
                    "toSeller": to_seller,
                    "toBuyer": to_buyer,
                },
            ),
        )

    def fund(self, data: st.DataObject) -> None:
        order = self.model[UNFUNDED]
        expected = self._state_error(order, OrderState.CREATED)
        if expected is None and order.deadline_passed:
            expected = "TradeEscrowDeadlinePassed"
        result = self._attempt(expected, lambda: self.trade.escrow.fund(self.trade.buyer, order.order_id))
        if result is None:
            return
        order.state, order.unreleased = OrderState.FUNDED, order.terms.amount
        self.funded_here += order.terms.amount
        assert [log.name for log in result.logs] == ["OrderFunded"]

    # ------------------------------------------------------------ invariants

    @invariant()
    def the_books_balance(self) -> None:
        """Read from the chain once per step; every property in the module docstring."""
        if not hasattr(self, "model"):
            return
        trade, escrow = self.trade, self.trade.escrow
        on_chain = [escrow.order_of(order.order_id) for order in self.model]

        # The escrow holds exactly what its orders have not paid out.
        assert trade.token.balance_of(escrow.address) == sum(order.unreleased for order in on_chain)
        for chain in on_chain:
            amount = chain.terms.amount
            if chain.state is OrderState.CREATED:
                assert chain.paid == chain.refunded == chain.unreleased == 0
            else:
                assert chain.paid + chain.refunded + chain.unreleased == amount
            if chain.state is OrderState.CLOSED:
                assert chain.paid + chain.refunded == amount
            elif chain.state is not OrderState.CREATED:
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
            assert (chain.paid, chain.refunded, chain.unreleased) == (
                model.paid,
                model.refunded,
                model.unreleased,
            )

    # ------------------------------------------------------------ helpers

    def _attempt(self, expected: str | None, action: Any) -> EscrowResult | None:
        try:
            result: EscrowResult = action()
        except ContractRevert as revert:
            assert expected == revert.error_name, f"expected {expected}, the escrow said {revert}"
            return None
        assert expected is None, f"expected {expected}, the escrow accepted"
        return result

    def _expect_logs(self, result: EscrowResult, order: ModelOrder, first: EscrowLog) -> None:
        expected = [first]
        if order.state is OrderState.CLOSED:
            expected.append(
                EscrowLog(
                    "OrderClosed", {"orderId": order.order_id, "paid": order.paid, "refunded": order.refunded}
                )
            )
        assert result.logs == expected
        for log in result.logs:
            key = (log.name, log.args["orderId"], int(log.args.get("milestone", log.args.get("penalty", -1))))
            assert key not in self.logged, f"{key} logged twice"
            self.logged.add(key)

    def _pick(self, data: st.DataObject, state: OrderState) -> ModelOrder:
        """Mostly an order in `state` (where the action can do something), sometimes any order."""
        candidates = [i for i, order in enumerate(self.model) if order.state is state] or [0, 1, 2]
        index = data.draw(st.sampled_from(candidates) | st.integers(0, 2), label="order")
        return self.model[index]

    def _release_error(self, order: ModelOrder, milestone: Milestone) -> str | None:
        if order.state is not OrderState.FUNDED:
            return "TradeEscrowUnexpectedState"
        if order.terms.milestone_bps[milestone] == 0:
            return "TradeEscrowMilestoneNotInOrder"
        if order.released[milestone]:
            return "TradeEscrowMilestoneAlreadyReleased"
        if order.released[Milestone.RECEIVED]:
            return None  # delivery counts as shipped and cleared
        if not self._reached(order, milestone, self.trade.registry.product_of(order.terms.shipment)):
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
        if self.trade.registry.product_of(order.terms.shipment).custodian == order.terms.receiver:
            return "TradeEscrowDelivered"
        return None

    def _state_error(self, order: ModelOrder, expected: OrderState) -> str | None:
        return None if order.state is expected else "TradeEscrowUnexpectedState"

    def _reached(self, order: ModelOrder, milestone: Milestone, shipment: ProductState) -> bool:
        if milestone is Milestone.SHIPPED:
            return shipment.status is not Status.UNKNOWN and (
                shipment.custodian != order.terms.seller or shipment.pending_receiver != ZERO_ADDRESS
            )
        if milestone is Milestone.CUSTOMS_CLEARED:
            return shipment.cleared
        return shipment.custodian == order.terms.receiver

    def _record(self, signer: Actor, kind: Kind, shipment: bytes, **fields: Any) -> None:
        with contextlib.suppress(ContractRevert):
            record(self.trade.registry, signer, kind, shipment, **fields)

    def _party(self, name: str) -> Any:
        return self.stranger if name == "stranger" else getattr(self.trade, name)

    def _actor(self, address: str) -> Actor | None:
        trade = self.trade
        for actor in (trade.manufacturer, trade.carrier, trade.retailer):
            if actor.address == address:
                return actor
        return None


def test_escrow_accounting_holds_under_random_actions(trade: Trade) -> None:
    """Three orders on two pallets: FOB with an arbiter and both penalties; on the other pallet DAP
    with a full excursion penalty and an odd amount; on the first again, a tiny 2000/3000/5000
    order with a full recall penalty, not yet funded."""
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
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=8,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
