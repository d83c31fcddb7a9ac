"""What one party could do to the other under the first escrow, each now a test that failed on it.

- The buyer received the goods and did not pay: it captured the receipt and the sale (or consumption)
  in one document, so the custodian was never the receiving address when anyone looked, and it
  reclaimed the unpaid 70% after the deadline.
- The buyer refunded itself: it reported an excursion right after receiving.
- The seller was paid for nothing: consuming the pallet made "the custodian is no longer the seller".
- Funds froze: a dispute had no end, and the buyer alone picked the arbiter.

The rules that close them are TradeEscrow's invariants (its NatSpec); the property test
(test_trade_escrow_properties.py) tries random sequences of each party's own actions against them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tracechain.chain import reverts
from tracechain.chain.escrow import Milestone, OrderState, Penalty
from tracechain.chain.trace_event import Kind, SignedEvent, next_head

from ..factories import DUSD, Actor, Trade, pass_time_to, record, sgtin, sign_event


def one_batch(trade: Trade, *steps: tuple[Actor, Kind, dict[str, Any]]) -> None:
    """The steps as one `record` transaction (one block), as a capture document of several events
    goes: each signs over the head the one before it leaves on the shipment's chain of facts."""
    head = trade.registry.head_of(trade.shipment)
    events: list[SignedEvent] = []
    for actor, kind, fields in steps:
        signed = sign_event(trade.registry, actor, kind, trade.shipment, prev_head=head, **fields)
        head = next_head(head, signed.event.event_hash)
        events.append(signed)
    trade.registry.record(events)


def past_deadline(trade: Trade, order_id: int) -> None:
    pass_time_to(trade.chain, trade.escrow.order_of(order_id).terms.deadline + 1)


# ---------------------------------------------------------------- the buyer


@pytest.mark.parametrize("then", [Kind.SELL, Kind.CONSUME], ids=["sold", "consumed"])
def test_goods_received_and_sold_in_one_document_are_paid_for(trade: Trade, then: Kind) -> None:
    """Received is a fact of the receipt, not "the receiver holds it now"; and after it no deadline
    sends the money back."""
    escrow = trade.escrow
    order_id = trade.funded()
    trade.ship()
    escrow.release(order_id, Milestone.SHIPPED)
    record(trade.registry, trade.carrier, Kind.SHIP, trade.shipment, counterpart=trade.retailer.address)
    one_batch(trade, (trade.retailer, Kind.RECEIVE, {}), (trade.retailer, then, {"ref": sgtin("used")}))
    past_deadline(trade, order_id)

    with pytest.raises(reverts.TradeEscrowDelivered):
        escrow.reclaim(trade.buyer, order_id)
    assert escrow.milestone_reached(order_id, Milestone.RECEIVED)
    escrow.release(order_id, Milestone.RECEIVED)
    assert trade.balances() == (1_000 * DUSD, 0, 0)


def test_the_buyer_cannot_refund_itself_by_reporting_an_excursion_after_receiving(trade: Trade) -> None:
    escrow = trade.escrow
    order_id = trade.funded(excursion_penalty_bps=2000)
    trade.ship()
    trade.deliver()
    trade.report_excursion(by=trade.retailer)

    assert not escrow.penalty_triggered(order_id, Penalty.EXCURSION)
    escrow.release(order_id, Milestone.SHIPPED)
    escrow.release(order_id, Milestone.RECEIVED)
    order = escrow.order_of(order_id)
    assert (order.state, order.paid, order.refunded) == (OrderState.CLOSED, 1_000 * DUSD, 0)


def test_a_party_the_receiver_hands_the_goods_to_cannot_report_the_buyer_a_refund(trade: Trade) -> None:
    """Even in the receipt's own block: the registry orders each excursion report against receipts."""
    order_id = trade.funded(excursion_penalty_bps=2000)
    trade.ship()
    record(trade.registry, trade.carrier, Kind.SHIP, trade.shipment, counterpart=trade.retailer.address)
    friend = trade.auditor  # any participant the receiver ships the pallet on to
    one_batch(
        trade,
        (trade.retailer, Kind.RECEIVE, {}),
        (trade.retailer, Kind.SHIP, {"counterpart": friend.address}),
        (friend, Kind.RECEIVE, {}),
        (friend, Kind.EXCURSION, {}),
    )

    assert not trade.escrow.penalty_triggered(order_id, Penalty.EXCURSION)


def test_an_excursion_in_the_carriers_hands_counts_though_the_receipt_shares_its_block(trade: Trade) -> None:
    order_id = trade.funded(excursion_penalty_bps=2000)
    trade.ship()
    one_batch(
        trade,
        (trade.carrier, Kind.EXCURSION, {}),
        (trade.carrier, Kind.SHIP, {"counterpart": trade.retailer.address}),
        (trade.retailer, Kind.RECEIVE, {}),
    )

    assert trade.escrow.penalty_triggered(order_id, Penalty.EXCURSION)
    received = trade.escrow.release(order_id, Milestone.RECEIVED)  # the refund comes out first
    assert [log.name for log in received.logs] == ["PenaltyApplied", "MilestoneReleased"]
    assert received.logs[0].args["refund"] == 200 * DUSD


def test_holding_back_the_receipt_until_the_deadline_does_not_refund_the_buyer(trade: Trade) -> None:
    order_id = trade.funded()
    trade.ship()
    record(trade.registry, trade.carrier, Kind.SHIP, trade.shipment, counterpart=trade.retailer.address)
    past_deadline(trade, order_id)

    with pytest.raises(reverts.TradeEscrowDeliveryPending):
        trade.escrow.reclaim(trade.buyer, order_id)
    record(trade.registry, trade.retailer, Kind.RECEIVE, trade.shipment)
    trade.escrow.release(order_id, Milestone.RECEIVED)
    assert trade.escrow.order_of(order_id).paid == 700 * DUSD


# ---------------------------------------------------------------- the seller


def test_consuming_the_pallet_is_not_shipping_it(trade: Trade) -> None:
    order_id = trade.funded()
    record(trade.registry, trade.manufacturer, Kind.CONSUME, trade.shipment, ref=sgtin("soup"))

    assert not trade.escrow.milestone_reached(order_id, Milestone.SHIPPED)
    with pytest.raises(reverts.TradeEscrowMilestoneNotReached):
        trade.escrow.release(order_id, Milestone.SHIPPED, sender=trade.seller)
    past_deadline(trade, order_id)
    assert trade.escrow.reclaim(trade.buyer, order_id).logs[0].args["refund"] == 1_000 * DUSD


# ---------------------------------------------------------------- disputes and arbiters


def test_the_buyer_alone_cannot_bind_the_seller_to_an_arbiter(trade: Trade) -> None:
    order_id = trade.create(arbiter=trade.arbiter.address)
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    trade.token.approve(trade.buyer, trade.escrow.address, 1_000 * DUSD)

    with pytest.raises(reverts.TradeEscrowUnexpectedState):
        trade.escrow.fund(trade.buyer, order_id)
    trade.accept(order_id)
    assert trade.escrow.fund(trade.buyer, order_id).logs[0].name == "OrderFunded"


def test_a_dispute_the_arbiter_leaves_undecided_ends_and_the_order_pays_as_the_facts_say(
    trade: Trade,
) -> None:
    escrow = trade.escrow
    order_id = trade.funded(arbiter=trade.arbiter.address)
    escrow.open_dispute(trade.buyer, order_id)
    trade.ship()
    trade.deliver()
    pass_time_to(trade.chain, escrow.order_of(order_id).dispute_ends_at)

    escrow.end_dispute(order_id)
    with pytest.raises(reverts.TradeEscrowDisputeAlreadyOpened):
        escrow.open_dispute(trade.buyer, order_id)
    escrow.release(order_id, Milestone.SHIPPED)
    escrow.release(order_id, Milestone.RECEIVED)
    assert trade.balances() == (1_000 * DUSD, 0, 0)
