"""TradeEscrow's effects: what each action pays, to whom, the state it leaves and the logs it emits.

The three demo outcomes come first (30/70 paid on shipped then received; a temperature excursion
ending in a partial refund; a missed deadline refunded), then each action on its own.
"""

from __future__ import annotations

from eth_account import Account

from tracechain.chain.escrow import BPS, EscrowLog, Milestone, OrderState, OrderTerms, Penalty
from tracechain.chain.trace_event import VERDICT_REJECTED, ZERO_ADDRESS, Kind

from ..factories import DISPUTE_WINDOW, DUSD, Trade, latest_timestamp, pass_time_to, record


def released(order_id: int, milestone: Milestone, seller: str, amount: int) -> EscrowLog:
    return EscrowLog(
        "MilestoneReleased", {"orderId": order_id, "milestone": milestone, "seller": seller, "amount": amount}
    )


def closed(order_id: int, paid: int, refunded: int) -> EscrowLog:
    return EscrowLog("OrderClosed", {"orderId": order_id, "paid": paid, "refunded": refunded})


def penalty_applied(order_id: int, penalty: Penalty, buyer: str, refund: int) -> EscrowLog:
    return EscrowLog(
        "PenaltyApplied", {"orderId": order_id, "penalty": penalty, "buyer": buyer, "refund": refund}
    )


# ---------------------------------------------------------------- the demo's three orders


def test_fob_order_pays_30_percent_when_shipped_and_70_when_received(trade: Trade) -> None:
    escrow, seller, buyer = trade.escrow, trade.manufacturer.address, trade.buyer.address
    order_id = trade.funded(milestone_bps=(3000, 0, 7000))

    trade.ship()
    shipped = escrow.release(order_id, Milestone.SHIPPED)
    assert shipped.logs == [released(order_id, Milestone.SHIPPED, seller, 300 * DUSD)]
    assert trade.balances() == (300 * DUSD, 0, 700 * DUSD)

    trade.clear_customs()  # on the way; no share rides on it in this order
    trade.deliver()
    received = escrow.release(order_id, Milestone.RECEIVED)
    assert received.logs == [
        released(order_id, Milestone.RECEIVED, seller, 700 * DUSD),
        closed(order_id, 1_000 * DUSD, 0),
    ]
    assert trade.balances() == (1_000 * DUSD, 0, 0)
    order = escrow.order_of(order_id)
    assert order.state is OrderState.CLOSED
    assert order.released == (True, False, True)
    assert (order.paid, order.refunded, order.unreleased) == (1_000 * DUSD, 0, 0)
    assert buyer == order.buyer


def test_temperature_excursion_ends_in_a_partial_refund(trade: Trade) -> None:
    """1,000 dUSD at 3000/0/7000 with a 20% excursion penalty: 300 on shipping, 200 back to the
    buyer for the excursion, the remaining 500 on receipt."""
    escrow, seller, buyer = trade.escrow, trade.manufacturer.address, trade.buyer.address
    order_id = trade.funded(excursion_penalty_bps=2000)
    trade.ship()
    escrow.release(order_id, Milestone.SHIPPED)

    trade.report_excursion()  # the carrier's reefer logged a reading outside the agreed range
    assert escrow.penalty_triggered(order_id, Penalty.EXCURSION)
    penalty = escrow.apply_penalty(order_id, Penalty.EXCURSION)
    assert penalty.logs == [penalty_applied(order_id, Penalty.EXCURSION, buyer, 200 * DUSD)]
    assert trade.balances() == (300 * DUSD, 200 * DUSD, 500 * DUSD)

    trade.deliver()
    received = escrow.release(order_id, Milestone.RECEIVED)
    assert received.logs == [
        released(order_id, Milestone.RECEIVED, seller, 500 * DUSD),
        closed(order_id, 800 * DUSD, 200 * DUSD),
    ]
    assert trade.balances() == (800 * DUSD, 200 * DUSD, 0)
    assert escrow.order_of(order_id).penalties_applied == (True, False)


def test_missed_deadline_refunds_the_buyer(trade: Trade) -> None:
    """DAP-like 0/0/10000: shipped, never delivered, the buyer takes the whole amount back."""
    escrow, buyer = trade.escrow, trade.buyer.address
    order_id = trade.funded(milestone_bps=(0, 0, BPS))
    trade.ship()
    pass_time_to(trade.chain, escrow.order_of(order_id).terms.deadline + 1)

    reclaimed = escrow.reclaim(trade.buyer, order_id)
    assert reclaimed.logs == [
        EscrowLog("OrderReclaimed", {"orderId": order_id, "buyer": buyer, "refund": 1_000 * DUSD}),
        closed(order_id, 0, 1_000 * DUSD),
    ]
    assert trade.balances() == (0, 1_000 * DUSD, 0)
    order = escrow.order_of(order_id)
    assert (order.state, order.paid, order.refunded, order.unreleased) == (
        OrderState.CLOSED,
        0,
        1_000 * DUSD,
        0,
    )


# ---------------------------------------------------------------- creating and funding


def test_create_order_records_the_terms_and_logs_them(trade: Trade) -> None:
    terms = trade.terms(
        milestone_bps=(2000, 3000, 5000),
        arbiter=trade.arbiter.address,
        excursion_penalty_bps=1500,
        recall_penalty_bps=BPS,
    )
    first = trade.escrow.create_order(trade.buyer, terms)
    second = trade.escrow.create_order(trade.buyer, terms)

    assert first.logs == [
        EscrowLog(
            "OrderCreated",
            {
                "orderId": 1,
                "buyer": trade.buyer.address,
                "seller": trade.manufacturer.address,
                "terms": terms,
            },
        )
    ]
    assert second.order_id == 2
    assert trade.escrow.order_count() == 2
    order = trade.escrow.order_of(1)
    assert order.terms == terms
    assert order.terms.dispute_window == DISPUTE_WINDOW
    assert (order.state, order.buyer) == (OrderState.CREATED, trade.buyer.address)
    assert order.released == (False, False, False)
    assert order.penalties_applied == (False, False)
    assert (order.paid, order.refunded, order.unreleased) == (0, 0, 0)
    assert trade.balances() == (0, 0, 0)


def test_accept_order_by_the_seller_lets_the_buyer_fund_it(trade: Trade) -> None:
    order_id = trade.create(arbiter=trade.arbiter.address)

    accepted = trade.escrow.accept_order(trade.seller, order_id)
    assert accepted.logs == [
        EscrowLog("OrderAccepted", {"orderId": order_id, "seller": trade.manufacturer.address})
    ]
    assert trade.escrow.order_of(order_id).state is OrderState.ACCEPTED
    assert [log.name for log in trade.fund(order_id).logs] == ["OrderFunded"]


def test_order_of_an_unknown_id_reports_unknown_and_zeros(trade: Trade) -> None:
    order = trade.escrow.order_of(42)
    assert order.state is OrderState.UNKNOWN
    assert order.buyer == ZERO_ADDRESS
    assert order.terms == OrderTerms(ZERO_ADDRESS, ZERO_ADDRESS, 0, bytes(32), ZERO_ADDRESS, (0, 0, 0), 0)


def test_fund_pulls_exactly_the_amount_and_logs_it(trade: Trade) -> None:
    order_id = trade.accepted(amount=1_234_567_891)
    trade.token.faucet(trade.buyer.address, 2_000 * DUSD)
    trade.token.approve(trade.buyer, trade.escrow.address, 2_000 * DUSD)

    funded = trade.escrow.fund(trade.buyer, order_id)
    assert funded.logs == [
        EscrowLog(
            "OrderFunded",
            {
                "orderId": order_id,
                "buyer": trade.buyer.address,
                "token": trade.token.address,
                "amount": 1_234_567_891,
            },
        )
    ]
    assert trade.balances() == (0, 2_000 * DUSD - 1_234_567_891, 1_234_567_891)
    assert trade.token.allowance(trade.buyer.address, trade.escrow.address) == 2_000 * DUSD - 1_234_567_891
    order = trade.escrow.order_of(order_id)
    assert (order.state, order.unreleased) == (OrderState.FUNDED, 1_234_567_891)
    assert trade.escrow.unreleased_of(order_id) == 1_234_567_891


def test_fund_with_permit_funds_in_one_transaction_without_an_approval(trade: Trade) -> None:
    order_id = trade.accepted()
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    permit = trade.token.sign_permit(
        trade.buyer, trade.escrow.address, 1_000 * DUSD, latest_timestamp(trade.chain) + 3600
    )

    funded = trade.escrow.fund_with_permit(trade.buyer, order_id, permit)
    assert [log.name for log in funded.logs] == ["OrderFunded"]
    assert funded.logs[0].args["amount"] == 1_000 * DUSD
    assert trade.balances() == (0, 0, 1_000 * DUSD)
    assert trade.token.allowance(trade.buyer.address, trade.escrow.address) == 0
    assert trade.escrow.order_of(order_id).state is OrderState.FUNDED


def test_fund_with_permit_still_funds_when_someone_submitted_the_permit_first(trade: Trade) -> None:
    """A permit copied from the mempool and sent on its own leaves the allowance the order needs."""
    order_id = trade.accepted()
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    permit = trade.token.sign_permit(
        trade.buyer, trade.escrow.address, 1_000 * DUSD, latest_timestamp(trade.chain) + 3600
    )
    front_runner = trade.token.contract.functions.permit(
        trade.buyer.address, trade.escrow.address, 1_000 * DUSD, permit.deadline, permit.v, permit.r, permit.s
    )
    front_runner.transact({"from": trade.chain.relayer.address})

    funded = trade.escrow.fund_with_permit(trade.buyer, order_id, permit)
    assert [log.name for log in funded.logs] == ["OrderFunded"]
    assert trade.balances() == (0, 0, 1_000 * DUSD)


# ---------------------------------------------------------------- releasing


def test_shipped_counts_once_the_party_the_seller_shipped_to_received_it(trade: Trade) -> None:
    order_id = trade.funded()
    record(trade.registry, trade.manufacturer, Kind.SHIP, trade.shipment, counterpart=trade.carrier.address)
    assert not trade.escrow.milestone_reached(order_id, Milestone.SHIPPED)  # a proposal, not a handover

    record(trade.registry, trade.carrier, Kind.RECEIVE, trade.shipment)
    assert trade.escrow.milestone_reached(order_id, Milestone.SHIPPED)
    released_ = trade.escrow.release(order_id, Milestone.SHIPPED)
    assert released_.logs == [released(order_id, Milestone.SHIPPED, trade.manufacturer.address, 300 * DUSD)]


def test_shipped_stays_met_when_the_goods_come_back_to_the_seller(trade: Trade) -> None:
    """A handover is a fact: the carrier returning the pallet later does not undo it."""
    order_id = trade.funded()
    trade.ship()
    record(trade.registry, trade.carrier, Kind.SHIP, trade.shipment, counterpart=trade.manufacturer.address)
    record(trade.registry, trade.manufacturer, Kind.RECEIVE, trade.shipment)

    assert trade.escrow.milestone_reached(order_id, Milestone.SHIPPED)
    assert trade.escrow.release(order_id, Milestone.SHIPPED).logs[0].args["amount"] == 300 * DUSD


def test_milestones_release_in_any_order_their_conditions_hold(trade: Trade) -> None:
    """Customs clears the pallet at origin before it leaves: CustomsCleared pays before Shipped."""
    escrow, seller = trade.escrow, trade.manufacturer.address
    order_id = trade.funded(milestone_bps=(2000, 3000, 5000))
    trade.clear_customs()
    assert not escrow.milestone_reached(order_id, Milestone.SHIPPED)

    cleared = escrow.release(order_id, Milestone.CUSTOMS_CLEARED)
    trade.ship()
    shipped = escrow.release(order_id, Milestone.SHIPPED)
    trade.deliver()
    received = escrow.release(order_id, Milestone.RECEIVED)

    assert cleared.logs == [released(order_id, Milestone.CUSTOMS_CLEARED, seller, 300 * DUSD)]
    assert shipped.logs == [released(order_id, Milestone.SHIPPED, seller, 200 * DUSD)]
    assert received.logs == [
        released(order_id, Milestone.RECEIVED, seller, 500 * DUSD),
        closed(order_id, 1_000 * DUSD, 0),
    ]
    assert escrow.order_of(order_id).released == (True, True, True)


def test_a_clearance_counts_although_a_later_inspection_rejects_the_shipment(trade: Trade) -> None:
    order_id = trade.funded(milestone_bps=(0, 5000, 5000))
    trade.ship()
    trade.clear_customs()
    trade.clear_customs(VERDICT_REJECTED)

    assert trade.escrow.milestone_reached(order_id, Milestone.CUSTOMS_CLEARED)
    trade.escrow.release(order_id, Milestone.CUSTOMS_CLEARED)
    order = trade.escrow.order_of(order_id)
    assert order.released == (False, True, False)
    assert order.paid == 500 * DUSD


def test_delivery_counts_as_shipped_and_cleared_once_received_is_released(trade: Trade) -> None:
    """The buyer's receiving address signed for the goods: the earlier milestones cannot strand funds."""
    escrow, seller = trade.escrow, trade.manufacturer.address
    order_id = trade.funded(milestone_bps=(0, 3000, 7000))
    trade.ship()
    trade.deliver()  # no inspection on record
    assert not escrow.milestone_reached(order_id, Milestone.CUSTOMS_CLEARED)

    escrow.release(order_id, Milestone.RECEIVED)
    assert escrow.milestone_reached(order_id, Milestone.CUSTOMS_CLEARED)
    cleared = escrow.release(order_id, Milestone.CUSTOMS_CLEARED)
    assert cleared.logs == [
        released(order_id, Milestone.CUSTOMS_CLEARED, seller, 300 * DUSD),
        closed(order_id, 1_000 * DUSD, 0),
    ]


def test_the_last_milestone_takes_the_rounding_remainder(trade: Trade) -> None:
    escrow, seller = trade.escrow, trade.manufacturer.address
    order_id = trade.funded(amount=1001, milestone_bps=(3333, 3333, 3334))
    trade.ship()
    trade.clear_customs()
    trade.deliver()

    payments = [escrow.release(order_id, m).logs[0].args["amount"] for m in Milestone]
    assert payments == [333, 333, 335]  # 1001 * 3333 // 10000 = 333, then 668 * 3333 // 6667 = 333
    assert trade.balances() == (1001, 0, 0)
    assert escrow.order_of(order_id).state is OrderState.CLOSED
    assert seller == escrow.order_of(order_id).terms.seller


def test_release_after_the_deadline_still_pays_until_the_buyer_reclaims(trade: Trade) -> None:
    escrow = trade.escrow
    order_id = trade.funded()
    trade.ship()
    pass_time_to(trade.chain, escrow.order_of(order_id).terms.deadline + 1)

    escrow.release(order_id, Milestone.SHIPPED)
    reclaimed = escrow.reclaim(trade.buyer, order_id)
    assert reclaimed.logs == [
        EscrowLog(
            "OrderReclaimed", {"orderId": order_id, "buyer": trade.buyer.address, "refund": 700 * DUSD}
        ),
        closed(order_id, 300 * DUSD, 700 * DUSD),
    ]
    assert trade.balances() == (300 * DUSD, 700 * DUSD, 0)


def test_release_can_be_sent_by_anyone(trade: Trade) -> None:
    order_id = trade.funded()
    trade.ship()
    stranger = Account.create()
    trade.chain.w3.eth.send_transaction(
        {"from": trade.chain.relayer.address, "to": stranger.address, "value": 10**17}
    )

    shipped = trade.escrow.release(order_id, Milestone.SHIPPED, sender=stranger)
    assert shipped.receipt["from"] == stranger.address
    assert trade.balances()[0] == 300 * DUSD  # still the seller's, whoever sent it


# ---------------------------------------------------------------- penalties


def test_a_recall_penalty_shrinks_the_unreleased_milestones_in_proportion(trade: Trade) -> None:
    """1,000 at 2000/3000/5000, Shipped paid (200): a 50% recall refunds 500 of the 800 left; the 300
    left pays CustomsCleared and Received 3:5."""
    escrow, seller = trade.escrow, trade.manufacturer.address
    order_id = trade.funded(milestone_bps=(2000, 3000, 5000), recall_penalty_bps=5000)
    trade.ship()
    escrow.release(order_id, Milestone.SHIPPED)
    trade.recall()

    recalled = escrow.apply_penalty(order_id, Penalty.RECALL)
    assert recalled.logs == [penalty_applied(order_id, Penalty.RECALL, trade.buyer.address, 500 * DUSD)]
    trade.clear_customs()
    cleared = escrow.release(order_id, Milestone.CUSTOMS_CLEARED)
    trade.deliver()
    received = escrow.release(order_id, Milestone.RECEIVED)

    assert cleared.logs == [released(order_id, Milestone.CUSTOMS_CLEARED, seller, 112_500_000)]
    assert received.logs == [
        released(order_id, Milestone.RECEIVED, seller, 187_500_000),
        closed(order_id, 500 * DUSD, 500 * DUSD),
    ]
    assert trade.balances() == (500 * DUSD, 500 * DUSD, 0)


def test_a_penalty_is_capped_at_the_unreleased_funds_and_closes_the_order(trade: Trade) -> None:
    escrow = trade.escrow
    order_id = trade.funded(excursion_penalty_bps=BPS)
    trade.ship()
    escrow.release(order_id, Milestone.SHIPPED)
    trade.report_excursion()

    penalty = escrow.apply_penalty(order_id, Penalty.EXCURSION)
    assert penalty.logs == [
        penalty_applied(order_id, Penalty.EXCURSION, trade.buyer.address, 700 * DUSD),
        closed(order_id, 300 * DUSD, 700 * DUSD),
    ]
    assert trade.balances() == (300 * DUSD, 700 * DUSD, 0)
    assert escrow.order_of(order_id).state is OrderState.CLOSED


def test_release_applies_the_penalties_due_before_it_pays(trade: Trade) -> None:
    """Releasing first cannot beat a reported excursion: the refund comes out before the payment."""
    escrow, seller, buyer = trade.escrow, trade.manufacturer.address, trade.buyer.address
    order_id = trade.funded(excursion_penalty_bps=2000, recall_penalty_bps=1000)
    trade.ship()
    trade.report_excursion()

    shipped = escrow.release(order_id, Milestone.SHIPPED, sender=trade.seller)
    assert shipped.logs == [
        penalty_applied(order_id, Penalty.EXCURSION, buyer, 200 * DUSD),
        released(order_id, Milestone.SHIPPED, seller, 240 * DUSD),  # 30% of the 800 left
    ]
    assert trade.balances() == (240 * DUSD, 200 * DUSD, 560 * DUSD)
    assert escrow.order_of(order_id).penalties_applied == (True, False)


def test_release_returns_without_paying_when_the_penalties_due_take_the_rest(trade: Trade) -> None:
    escrow, buyer = trade.escrow, trade.buyer.address
    order_id = trade.funded(excursion_penalty_bps=6000, recall_penalty_bps=5000)
    trade.ship()
    trade.report_excursion()
    trade.recall()

    shipped = escrow.release(order_id, Milestone.SHIPPED)
    assert shipped.logs == [
        penalty_applied(order_id, Penalty.EXCURSION, buyer, 600 * DUSD),
        penalty_applied(order_id, Penalty.RECALL, buyer, 400 * DUSD),  # capped at what was left
        closed(order_id, 0, 1_000 * DUSD),
    ]
    order = escrow.order_of(order_id)
    assert (order.state, order.released) == (OrderState.CLOSED, (False, False, False))
    assert trade.balances() == (0, 1_000 * DUSD, 0)


def test_both_penalties_apply_each_once_on_the_amount(trade: Trade) -> None:
    escrow, buyer = trade.escrow, trade.buyer.address
    order_id = trade.funded(milestone_bps=(0, 0, BPS), excursion_penalty_bps=1000, recall_penalty_bps=2500)
    trade.ship()
    trade.report_excursion()
    trade.recall()

    excursion = escrow.apply_penalty(order_id, Penalty.EXCURSION)
    recall = escrow.apply_penalty(order_id, Penalty.RECALL)
    assert excursion.logs == [penalty_applied(order_id, Penalty.EXCURSION, buyer, 100 * DUSD)]
    assert recall.logs == [penalty_applied(order_id, Penalty.RECALL, buyer, 250 * DUSD)]
    order = escrow.order_of(order_id)
    assert order.penalties_applied == (True, True)
    assert (order.refunded, order.unreleased) == (350 * DUSD, 650 * DUSD)


def test_a_recall_counts_for_the_shipment_itself_not_for_what_it_is_packed_in(trade: Trade) -> None:
    """Facts are kept for the subject an event names: the order's shipment must be recalled itself."""
    container = b"\x01" * 32
    order_id = trade.funded(recall_penalty_bps=1000)
    record(trade.registry, trade.manufacturer, Kind.AGGREGATE, trade.shipment, ref=container)
    record(trade.registry, trade.auditor, Kind.RECALL, container)
    assert trade.registry.product_of(trade.shipment).recalled
    assert not trade.escrow.penalty_triggered(order_id, Penalty.RECALL)

    trade.recall()
    assert trade.escrow.apply_penalty(order_id, Penalty.RECALL).logs[0].args["refund"] == 100 * DUSD


# ---------------------------------------------------------------- reclaiming and disputes


def test_reclaim_returns_what_is_left_after_partial_payment_and_penalty(trade: Trade) -> None:
    escrow = trade.escrow
    order_id = trade.funded(excursion_penalty_bps=1000)
    trade.ship()
    escrow.release(order_id, Milestone.SHIPPED)
    trade.report_excursion()
    escrow.apply_penalty(order_id, Penalty.EXCURSION)
    pass_time_to(trade.chain, escrow.order_of(order_id).terms.deadline + 1)

    reclaimed = escrow.reclaim(trade.buyer, order_id)
    assert reclaimed.logs == [
        EscrowLog(
            "OrderReclaimed", {"orderId": order_id, "buyer": trade.buyer.address, "refund": 600 * DUSD}
        ),
        closed(order_id, 300 * DUSD, 700 * DUSD),
    ]
    assert trade.balances() == (300 * DUSD, 700 * DUSD, 0)


def test_open_dispute_freezes_the_order_and_logs_who_opened_it(trade: Trade) -> None:
    order_id = trade.funded(arbiter=trade.arbiter.address)

    opened = trade.escrow.open_dispute(trade.seller, order_id)
    ends_at = latest_timestamp(trade.chain) + DISPUTE_WINDOW
    assert opened.logs == [
        EscrowLog(
            "DisputeOpened",
            {"orderId": order_id, "openedBy": trade.manufacturer.address, "endsAt": ends_at},
        )
    ]
    order = trade.escrow.order_of(order_id)
    assert (order.state, order.dispute_ends_at) == (OrderState.DISPUTED, ends_at)
    assert trade.balances() == (0, 0, 1_000 * DUSD)


def test_a_dispute_ends_by_itself_when_its_window_does_and_the_rules_resume(trade: Trade) -> None:
    """The arbiter never decides: after the agreed window anyone ends the dispute, and what the
    registry shows is paid as if there had been none."""
    escrow = trade.escrow
    order_id = trade.funded(arbiter=trade.arbiter.address)
    escrow.open_dispute(trade.buyer, order_id)
    trade.ship()
    pass_time_to(trade.chain, escrow.order_of(order_id).dispute_ends_at)
    stranger = Account.create()
    trade.chain.w3.eth.send_transaction(
        {"from": trade.chain.relayer.address, "to": stranger.address, "value": 10**17}
    )

    ended = escrow.end_dispute(order_id, stranger)
    assert ended.logs == [EscrowLog("DisputeEnded", {"orderId": order_id, "endedBy": stranger.address})]
    assert escrow.order_of(order_id).state is OrderState.FUNDED
    assert escrow.release(order_id, Milestone.SHIPPED).logs[0].args["amount"] == 300 * DUSD


def test_resolve_splits_the_unreleased_funds_and_closes_the_order(trade: Trade) -> None:
    escrow = trade.escrow
    order_id = trade.funded(arbiter=trade.arbiter.address)
    trade.ship()
    escrow.release(order_id, Milestone.SHIPPED)
    escrow.open_dispute(trade.buyer, order_id)

    resolved = escrow.resolve(trade.arbiter, order_id, 6000)
    assert resolved.logs == [
        EscrowLog(
            "DisputeResolved",
            {
                "orderId": order_id,
                "arbiter": trade.arbiter.address,
                "toSellerBps": 6000,
                "toSeller": 420 * DUSD,
                "toBuyer": 280 * DUSD,
            },
        ),
        closed(order_id, 720 * DUSD, 280 * DUSD),
    ]
    assert trade.balances() == (720 * DUSD, 280 * DUSD, 0)
    order = escrow.order_of(order_id)
    assert (order.state, order.paid, order.refunded, order.unreleased) == (
        OrderState.CLOSED,
        720 * DUSD,
        280 * DUSD,
        0,
    )


def test_resolve_may_give_everything_to_one_side(trade: Trade) -> None:
    escrow = trade.escrow
    to_buyer = trade.funded(arbiter=trade.arbiter.address)
    to_seller = trade.funded(arbiter=trade.arbiter.address)
    escrow.open_dispute(trade.buyer, to_buyer)
    escrow.open_dispute(trade.buyer, to_seller)

    assert escrow.resolve(trade.arbiter, to_buyer, 0).logs[1] == closed(to_buyer, 0, 1_000 * DUSD)
    assert escrow.resolve(trade.arbiter, to_seller, BPS).logs[1] == closed(to_seller, 1_000 * DUSD, 0)
    assert trade.balances() == (1_000 * DUSD, 1_000 * DUSD, 0)


def test_orders_hold_their_funds_apart(trade: Trade) -> None:
    escrow = trade.escrow
    fob = trade.funded(milestone_bps=(3000, 0, 7000))
    dap = trade.funded(milestone_bps=(0, 0, BPS), amount=500 * DUSD)
    trade.ship()
    escrow.release(fob, Milestone.SHIPPED)

    assert (escrow.unreleased_of(fob), escrow.unreleased_of(dap)) == (700 * DUSD, 500 * DUSD)
    assert trade.balances()[2] == 1_200 * DUSD
