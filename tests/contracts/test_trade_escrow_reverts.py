"""TradeEscrow's rules: every custom error, with the facts it carries.

The registry is driven for real (signed events), so a milestone's condition fails or holds because
of what the participants recorded. Token-specific failures are in test_trade_escrow_tokens.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from tracechain.chain import reverts
from tracechain.chain.escrow import (
    BPS,
    MAX_DISPUTE_WINDOW,
    MIN_DISPUTE_WINDOW,
    Milestone,
    OrderState,
    Penalty,
)
from tracechain.chain.registry import Role
from tracechain.chain.trace_event import VERDICT_REJECTED, ZERO_ADDRESS, ZERO_HASH, Kind

from ..factories import DUSD, Trade, account_of, give_gas, latest_timestamp, pass_time_to, record, sscc

UNKNOWN_ORDER = 999


def past_deadline(trade: Trade, order_id: int) -> None:
    pass_time_to(trade.chain, trade.escrow.order_of(order_id).terms.deadline + 1)


def past_dispute(trade: Trade, order_id: int) -> None:
    pass_time_to(trade.chain, trade.escrow.order_of(order_id).dispute_ends_at)


def disputed(trade: Trade) -> int:
    order_id = trade.funded(arbiter=trade.arbiter.address)
    trade.escrow.open_dispute(trade.buyer, order_id)
    return order_id


def closed(trade: Trade) -> int:
    order_id = trade.funded(milestone_bps=(BPS, 0, 0))
    trade.ship()
    trade.escrow.release(order_id, Milestone.SHIPPED)
    return order_id


# ---------------------------------------------------------------- createOrder


@pytest.mark.parametrize(
    ("overrides", "error", "arguments"),
    [
        pytest.param({"seller": ZERO_ADDRESS}, "InvalidSeller", {"seller": ZERO_ADDRESS}, id="seller_zero"),
        pytest.param(
            {"receiver": ZERO_ADDRESS}, "InvalidReceiver", {"receiver": ZERO_ADDRESS}, id="receiver_zero"
        ),
        pytest.param({"amount": 0}, "InvalidAmount", {"amount": 0}, id="amount_zero"),
        pytest.param({"amount": 2**128}, "InvalidAmount", {"amount": 2**128}, id="amount_above_uint128"),
        pytest.param({"shipment": ZERO_HASH}, "InvalidShipment", {"shipment": ZERO_HASH}, id="shipment_zero"),
        pytest.param(
            {"milestone_bps": (3000, 0, 6999)},
            "MilestonesNotWhole",
            {"totalBps": 9999},
            id="shares_below_whole",
        ),
        pytest.param(
            {"milestone_bps": (5000, 5000, 1)},
            "MilestonesNotWhole",
            {"totalBps": 10_001},
            id="shares_above_whole",
        ),
        pytest.param(
            {"excursion_penalty_bps": 10_001},
            "PenaltyTooHigh",
            {"penalty": Penalty.EXCURSION, "bps": 10_001},
            id="excursion_penalty_above_whole",
        ),
        pytest.param(
            {"recall_penalty_bps": 65_535},
            "PenaltyTooHigh",
            {"penalty": Penalty.RECALL, "bps": 65_535},
            id="recall_penalty_above_whole",
        ),
    ],
)
def test_create_order_reverts_on_invalid_terms(
    trade: Trade, overrides: dict[str, Any], error: str, arguments: dict[str, Any]
) -> None:
    with pytest.raises(reverts.error_class(f"TradeEscrow{error}")) as exc:
        trade.create(**overrides)
    assert exc.value.arguments == arguments


@pytest.mark.parametrize(
    ("arbiter", "window"),
    [
        pytest.param(False, 1, id="window_without_arbiter"),
        pytest.param(True, 0, id="arbiter_without_window"),
        pytest.param(True, MIN_DISPUTE_WINDOW - 1, id="window_below_an_hour"),
        pytest.param(True, MAX_DISPUTE_WINDOW + 1, id="window_above_a_year"),
    ],
)
def test_create_order_reverts_on_a_dispute_window_that_does_not_fit_the_arbiter(
    trade: Trade, arbiter: bool, window: int
) -> None:
    named = trade.arbiter.address if arbiter else ZERO_ADDRESS

    with pytest.raises(reverts.TradeEscrowInvalidDisputeWindow) as exc:
        trade.create(arbiter=named, dispute_window=window)
    assert exc.value.arguments == {"arbiter": named, "disputeWindow": window}


@pytest.mark.parametrize("window", [MIN_DISPUTE_WINDOW, MAX_DISPUTE_WINDOW])
def test_create_order_accepts_the_bounds_of_the_dispute_window(trade: Trade, window: int) -> None:
    order_id = trade.create(arbiter=trade.arbiter.address, dispute_window=window)
    assert trade.escrow.order_of(order_id).terms.dispute_window == window


def test_create_order_reverts_when_the_buyer_names_itself_seller(trade: Trade) -> None:
    with pytest.raises(reverts.TradeEscrowInvalidSeller) as exc:
        trade.create(seller=trade.buyer.address)
    assert exc.value.arguments == {"seller": trade.buyer.address}


def test_create_order_reverts_when_the_seller_would_receive_its_own_shipment(trade: Trade) -> None:
    with pytest.raises(reverts.TradeEscrowInvalidReceiver) as exc:
        trade.create(receiver=trade.manufacturer.address)
    assert exc.value.arguments == {"receiver": trade.manufacturer.address}


@pytest.mark.parametrize("party", ["buyer", "seller"])
def test_create_order_reverts_when_a_party_is_the_arbiter(trade: Trade, party: str) -> None:
    arbiter = getattr(trade, party).address

    with pytest.raises(reverts.TradeEscrowInvalidArbiter) as exc:
        trade.create(arbiter=arbiter)
    assert exc.value.arguments == {"arbiter": arbiter}


def test_create_order_reverts_when_the_token_is_not_a_contract(trade: Trade) -> None:
    not_a_token = Account.create().address

    with pytest.raises(reverts.TradeEscrowInvalidToken) as exc:
        trade.create(token=not_a_token)
    assert exc.value.arguments == {"token": not_a_token}


def test_create_order_reverts_when_the_deadline_is_not_in_the_future(trade: Trade) -> None:
    deadline = latest_timestamp(trade.chain)

    with pytest.raises(reverts.TradeEscrowDeadlineNotInFuture) as exc:
        trade.create(deadline=deadline)
    assert exc.value.arguments["deadline"] == deadline
    assert exc.value.arguments["timestamp"] >= deadline  # the time of the block it would have run in


# ---------------------------------------------------------------- acceptOrder


def test_accept_order_reverts_for_an_unknown_order(trade: Trade) -> None:
    with pytest.raises(reverts.TradeEscrowUnknownOrder) as exc:
        trade.escrow.accept_order(trade.seller, UNKNOWN_ORDER)
    assert exc.value.arguments == {"orderId": UNKNOWN_ORDER}


@pytest.mark.parametrize("who", ["buyer", "arbiter", "stranger"])
def test_accept_order_reverts_when_the_sender_is_not_the_seller(trade: Trade, who: str) -> None:
    order_id = trade.create(arbiter=trade.arbiter.address)
    sender = getattr(trade, who) if who != "stranger" else Account.create()

    with pytest.raises(reverts.TradeEscrowNotSeller) as exc:
        trade.escrow.accept_order(sender, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "caller": sender.address,
        "seller": trade.manufacturer.address,
    }


@pytest.mark.parametrize(
    ("setup", "state"), [("accepted", OrderState.ACCEPTED), ("funded", OrderState.FUNDED)]
)
def test_accept_order_reverts_once_accepted(trade: Trade, setup: str, state: OrderState) -> None:
    order_id = getattr(trade, setup)()

    with pytest.raises(reverts.TradeEscrowUnexpectedState) as exc:
        trade.escrow.accept_order(trade.seller, order_id)
    assert exc.value.arguments == {"orderId": order_id, "state": state, "expected": OrderState.CREATED}


def test_accept_order_reverts_after_the_deadline(trade: Trade) -> None:
    order_id = trade.create()
    deadline = trade.escrow.order_of(order_id).terms.deadline
    pass_time_to(trade.chain, deadline + 1)

    with pytest.raises(reverts.TradeEscrowDeadlinePassed) as exc:
        trade.escrow.accept_order(trade.seller, order_id)
    assert exc.value.arguments == {"orderId": order_id, "deadline": deadline}


# ---------------------------------------------------------------- fund


def test_fund_reverts_until_the_seller_accepted_the_order(trade: Trade) -> None:
    """The buyer alone cannot bind the seller to an arbiter: money goes in only on accepted terms."""
    order_id = trade.create(arbiter=trade.arbiter.address)
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    trade.token.approve(trade.buyer, trade.escrow.address, 1_000 * DUSD)

    with pytest.raises(reverts.TradeEscrowUnexpectedState) as exc:
        trade.escrow.fund(trade.buyer, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "state": OrderState.CREATED,
        "expected": OrderState.ACCEPTED,
    }


def test_fund_reverts_for_an_unknown_order(trade: Trade) -> None:
    with pytest.raises(reverts.TradeEscrowUnknownOrder) as exc:
        trade.escrow.fund(trade.buyer, UNKNOWN_ORDER)
    assert exc.value.arguments == {"orderId": UNKNOWN_ORDER}


def test_fund_reverts_when_the_sender_is_not_the_buyer(trade: Trade) -> None:
    order_id = trade.accepted()

    with pytest.raises(reverts.TradeEscrowNotBuyer) as exc:
        trade.escrow.fund(trade.seller, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "caller": trade.seller.address,
        "buyer": trade.buyer.address,
    }


def test_fund_reverts_when_the_order_is_already_funded(trade: Trade) -> None:
    order_id = trade.funded()
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    trade.token.approve(trade.buyer, trade.escrow.address, 1_000 * DUSD)

    with pytest.raises(reverts.TradeEscrowUnexpectedState) as exc:
        trade.escrow.fund(trade.buyer, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "state": OrderState.FUNDED,
        "expected": OrderState.ACCEPTED,
    }


def test_fund_reverts_after_the_deadline(trade: Trade) -> None:
    order_id = trade.accepted()
    deadline = trade.escrow.order_of(order_id).terms.deadline
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    trade.token.approve(trade.buyer, trade.escrow.address, 1_000 * DUSD)
    pass_time_to(trade.chain, deadline + 1)

    with pytest.raises(reverts.TradeEscrowDeadlinePassed) as exc:
        trade.escrow.fund(trade.buyer, order_id)
    assert exc.value.arguments == {"orderId": order_id, "deadline": deadline}


def test_fund_reverts_without_an_allowance_for_the_whole_amount(trade: Trade) -> None:
    order_id = trade.accepted()
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    trade.token.approve(trade.buyer, trade.escrow.address, 999 * DUSD)

    with pytest.raises(reverts.ERC20InsufficientAllowance) as exc:
        trade.escrow.fund(trade.buyer, order_id)
    assert exc.value.arguments == {
        "spender": trade.escrow.address,
        "allowance": 999 * DUSD,
        "needed": 1_000 * DUSD,
    }


def test_fund_with_permit_reverts_when_the_permit_is_not_the_buyers(trade: Trade) -> None:
    """A permit signed by someone else fails inside; the transfer then finds no allowance."""
    order_id = trade.accepted()
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    deadline = latest_timestamp(trade.chain) + 3600
    permit = trade.token.sign_permit(trade.seller, trade.escrow.address, 1_000 * DUSD, deadline)

    with pytest.raises(reverts.ERC20InsufficientAllowance) as exc:
        trade.escrow.fund_with_permit(trade.buyer, order_id, permit)
    assert exc.value.arguments == {"spender": trade.escrow.address, "allowance": 0, "needed": 1_000 * DUSD}


def test_fund_with_permit_reverts_when_the_permit_is_for_less_than_the_amount(trade: Trade) -> None:
    order_id = trade.accepted()
    trade.token.faucet(trade.buyer.address, 1_000 * DUSD)
    deadline = latest_timestamp(trade.chain) + 3600
    permit = trade.token.sign_permit(trade.buyer, trade.escrow.address, 999 * DUSD, deadline)

    with pytest.raises(reverts.ERC20InsufficientAllowance) as exc:
        trade.escrow.fund_with_permit(trade.buyer, order_id, permit)
    assert exc.value.arguments == {"spender": trade.escrow.address, "allowance": 0, "needed": 1_000 * DUSD}


def test_fund_with_permit_reverts_when_the_sender_is_not_the_buyer(trade: Trade) -> None:
    order_id = trade.accepted()
    deadline = latest_timestamp(trade.chain) + 3600
    permit = trade.token.sign_permit(trade.buyer, trade.escrow.address, 1_000 * DUSD, deadline)

    with pytest.raises(reverts.TradeEscrowNotBuyer) as exc:
        trade.escrow.fund_with_permit(trade.seller, order_id, permit)
    assert exc.value.arguments == {
        "orderId": order_id,
        "caller": trade.seller.address,
        "buyer": trade.buyer.address,
    }


# ---------------------------------------------------------------- state guards shared by the actions


def _act(trade: Trade, action: str, order_id: int) -> None:
    """Runs `action` on the order as the party the action needs (so only the state can fail it)."""
    escrow = trade.escrow
    if action == "release":
        escrow.release(order_id, Milestone.SHIPPED)
    elif action == "apply_penalty":
        escrow.apply_penalty(order_id, Penalty.EXCURSION)
    elif action == "reclaim":
        escrow.reclaim(trade.buyer, order_id)
    elif action == "open_dispute":
        escrow.open_dispute(trade.buyer, order_id)
    elif action == "resolve":
        escrow.resolve(trade.arbiter, order_id, 5000)
    elif action == "end_dispute":
        escrow.end_dispute(order_id)


FUNDED_ONLY = ["release", "apply_penalty", "reclaim", "open_dispute"]


@pytest.mark.parametrize("action", [*FUNDED_ONLY, "resolve", "end_dispute"])
def test_action_reverts_for_an_unknown_order(trade: Trade, action: str) -> None:
    with pytest.raises(reverts.TradeEscrowUnknownOrder) as exc:
        _act(trade, action, UNKNOWN_ORDER)
    assert exc.value.arguments == {"orderId": UNKNOWN_ORDER}


@pytest.mark.parametrize(
    ("setup", "state"), [("create", OrderState.CREATED), ("accepted", OrderState.ACCEPTED)]
)
@pytest.mark.parametrize("action", FUNDED_ONLY)
def test_action_reverts_before_the_order_is_funded(
    trade: Trade, action: str, setup: str, state: OrderState
) -> None:
    order_id = getattr(trade, setup)(arbiter=trade.arbiter.address, excursion_penalty_bps=1000)

    with pytest.raises(reverts.TradeEscrowUnexpectedState) as exc:
        _act(trade, action, order_id)
    assert exc.value.arguments == {"orderId": order_id, "state": state, "expected": OrderState.FUNDED}


@pytest.mark.parametrize("action", FUNDED_ONLY)
def test_action_reverts_while_a_dispute_freezes_the_order(trade: Trade, action: str) -> None:
    """Every condition holds (shipped, excursion, deadline passed, undelivered): only the dispute stops it."""
    order_id = trade.funded(arbiter=trade.arbiter.address, excursion_penalty_bps=1000)
    trade.ship()
    trade.report_excursion()
    trade.escrow.open_dispute(trade.seller, order_id)
    past_deadline(trade, order_id)

    with pytest.raises(reverts.TradeEscrowUnexpectedState) as exc:
        _act(trade, action, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "state": OrderState.DISPUTED,
        "expected": OrderState.FUNDED,
    }


@pytest.mark.parametrize("action", FUNDED_ONLY)
def test_action_reverts_once_the_order_is_closed(trade: Trade, action: str) -> None:
    order_id = closed(trade)

    with pytest.raises(reverts.TradeEscrowUnexpectedState) as exc:
        _act(trade, action, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "state": OrderState.CLOSED,
        "expected": OrderState.FUNDED,
    }


@pytest.mark.parametrize("action", ["resolve", "end_dispute"])
@pytest.mark.parametrize(
    ("setup", "state"),
    [("create", OrderState.CREATED), ("accepted", OrderState.ACCEPTED), ("funded", OrderState.FUNDED)],
)
def test_dispute_action_reverts_without_a_dispute(
    trade: Trade, action: str, setup: str, state: OrderState
) -> None:
    order_id = getattr(trade, setup)(arbiter=trade.arbiter.address)

    with pytest.raises(reverts.TradeEscrowUnexpectedState) as exc:
        _act(trade, action, order_id)
    assert exc.value.arguments == {"orderId": order_id, "state": state, "expected": OrderState.DISPUTED}


@pytest.mark.parametrize("action", ["resolve", "end_dispute"])
def test_dispute_action_reverts_once_the_dispute_is_resolved(trade: Trade, action: str) -> None:
    order_id = disputed(trade)
    trade.escrow.resolve(trade.arbiter, order_id, 5000)
    past_dispute(trade, order_id)

    with pytest.raises(reverts.TradeEscrowUnexpectedState) as exc:
        _act(trade, action, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "state": OrderState.CLOSED,
        "expected": OrderState.DISPUTED,
    }


# ---------------------------------------------------------------- release


def test_release_reverts_for_a_milestone_outside_the_order(trade: Trade) -> None:
    order_id = trade.funded(milestone_bps=(3000, 0, 7000))
    trade.ship()
    trade.clear_customs()

    with pytest.raises(reverts.TradeEscrowMilestoneNotInOrder) as exc:
        trade.escrow.release(order_id, Milestone.CUSTOMS_CLEARED)
    assert exc.value.arguments == {"orderId": order_id, "milestone": Milestone.CUSTOMS_CLEARED}


def test_release_reverts_when_the_milestone_was_released(trade: Trade) -> None:
    order_id = trade.funded()
    trade.ship()
    trade.escrow.release(order_id, Milestone.SHIPPED)

    with pytest.raises(reverts.TradeEscrowMilestoneAlreadyReleased) as exc:
        trade.escrow.release(order_id, Milestone.SHIPPED)
    assert exc.value.arguments == {"orderId": order_id, "milestone": Milestone.SHIPPED}


def not_reached(trade: Trade, order_id: int, milestone: Milestone, party: str) -> dict[str, Any]:
    return {"orderId": order_id, "milestone": milestone, "shipment": trade.shipment, "party": party}


def test_release_reverts_when_the_seller_still_holds_the_shipment(trade: Trade) -> None:
    order_id = trade.funded()

    with pytest.raises(reverts.TradeEscrowMilestoneNotReached) as exc:
        trade.escrow.release(order_id, Milestone.SHIPPED)
    assert exc.value.arguments == not_reached(trade, order_id, Milestone.SHIPPED, trade.manufacturer.address)


def test_release_reverts_when_the_shipment_was_never_commissioned(trade: Trade) -> None:
    shipment = sscc("never-packed")
    order_id = trade.funded(shipment=shipment)

    with pytest.raises(reverts.TradeEscrowMilestoneNotReached) as exc:
        trade.escrow.release(order_id, Milestone.SHIPPED)
    assert exc.value.arguments == {
        "orderId": order_id,
        "milestone": Milestone.SHIPPED,
        "shipment": shipment,
        "party": trade.manufacturer.address,
    }


@pytest.mark.parametrize("redirected", [False, True], ids=["proposed", "redirected_to_the_seller_s_choice"])
def test_release_reverts_while_the_sellers_shipment_is_only_proposed(trade: Trade, redirected: bool) -> None:
    """A Ship is a proposal the seller can redirect: nobody has taken the goods from it yet."""
    order_id = trade.funded()
    record(trade.registry, trade.manufacturer, Kind.SHIP, trade.shipment, counterpart=trade.carrier.address)
    if redirected:
        record(
            trade.registry, trade.manufacturer, Kind.SHIP, trade.shipment, counterpart=trade.auditor.address
        )

    with pytest.raises(reverts.TradeEscrowMilestoneNotReached) as exc:
        trade.escrow.release(order_id, Milestone.SHIPPED)
    assert exc.value.arguments == not_reached(trade, order_id, Milestone.SHIPPED, trade.manufacturer.address)


def test_release_reverts_when_someone_else_shipped_the_shipment(trade: Trade) -> None:
    """The seller never held the pallet it sells: another's handover is not the seller's."""
    seller = account_of(trade.auditor)
    give_gas(trade.chain, seller.address)
    order_id = trade.create(seller=seller.address)
    trade.escrow.accept_order(seller, order_id)
    trade.fund(order_id)
    trade.ship()

    with pytest.raises(reverts.TradeEscrowMilestoneNotReached) as exc:
        trade.escrow.release(order_id, Milestone.SHIPPED)
    assert exc.value.arguments == not_reached(trade, order_id, Milestone.SHIPPED, trade.auditor.address)


@pytest.mark.parametrize("verdict", [None, VERDICT_REJECTED], ids=["not_inspected", "rejected"])
def test_release_reverts_when_customs_has_not_cleared_the_shipment(
    trade: Trade, verdict: bytes | None
) -> None:
    order_id = trade.funded(milestone_bps=(0, 5000, 5000))
    trade.ship()
    if verdict is not None:
        trade.clear_customs(verdict)

    with pytest.raises(reverts.TradeEscrowMilestoneNotReached) as exc:
        trade.escrow.release(order_id, Milestone.CUSTOMS_CLEARED)
    assert exc.value.arguments == not_reached(trade, order_id, Milestone.CUSTOMS_CLEARED, ZERO_ADDRESS)


def test_release_reverts_while_the_shipment_is_on_its_way_to_the_receiver(trade: Trade) -> None:
    order_id = trade.funded()
    trade.ship()
    record(trade.registry, trade.carrier, Kind.SHIP, trade.shipment, counterpart=trade.retailer.address)

    with pytest.raises(reverts.TradeEscrowMilestoneNotReached) as exc:
        trade.escrow.release(order_id, Milestone.RECEIVED)
    assert exc.value.arguments == not_reached(trade, order_id, Milestone.RECEIVED, trade.retailer.address)


def test_release_reverts_when_someone_other_than_the_receiver_received_it(trade: Trade) -> None:
    order_id = trade.funded()
    trade.ship()

    with pytest.raises(reverts.TradeEscrowMilestoneNotReached) as exc:
        trade.escrow.release(order_id, Milestone.RECEIVED)
    assert exc.value.arguments == not_reached(trade, order_id, Milestone.RECEIVED, trade.retailer.address)


# ---------------------------------------------------------------- applyPenalty


@pytest.mark.parametrize("penalty", list(Penalty), ids=lambda p: p.name.lower())
def test_apply_penalty_reverts_for_a_penalty_outside_the_order(trade: Trade, penalty: Penalty) -> None:
    order_id = trade.funded()
    trade.ship()
    trade.report_excursion()
    trade.recall()

    with pytest.raises(reverts.TradeEscrowPenaltyNotInOrder) as exc:
        trade.escrow.apply_penalty(order_id, penalty)
    assert exc.value.arguments == {"orderId": order_id, "penalty": penalty}


@pytest.mark.parametrize("penalty", list(Penalty), ids=lambda p: p.name.lower())
def test_apply_penalty_reverts_when_the_registry_shows_no_trigger(trade: Trade, penalty: Penalty) -> None:
    order_id = trade.funded(excursion_penalty_bps=1000, recall_penalty_bps=1000)
    trade.ship()

    with pytest.raises(reverts.TradeEscrowPenaltyNotTriggered) as exc:
        trade.escrow.apply_penalty(order_id, penalty)
    assert exc.value.arguments == {"orderId": order_id, "penalty": penalty, "shipment": trade.shipment}


def test_apply_penalty_reverts_when_the_excursion_was_recorded_for_an_item_on_the_pallet(
    trade: Trade,
) -> None:
    """Excursions count per subject: the order looks at its shipment's own record."""
    order_id = trade.funded(excursion_penalty_bps=1000)
    record(trade.registry, trade.manufacturer, Kind.EXCURSION, trade.item)

    with pytest.raises(reverts.TradeEscrowPenaltyNotTriggered) as exc:
        trade.escrow.apply_penalty(order_id, Penalty.EXCURSION)
    assert exc.value.arguments == {
        "orderId": order_id,
        "penalty": Penalty.EXCURSION,
        "shipment": trade.shipment,
    }


def test_apply_penalty_reverts_when_the_receiver_reported_the_excursion_after_receiving(trade: Trade) -> None:
    """The buyer cannot refund itself: its receiving address's own report triggers nothing."""
    order_id = trade.funded(excursion_penalty_bps=2000)
    trade.ship()
    trade.deliver()
    trade.report_excursion(by=trade.retailer)

    with pytest.raises(reverts.TradeEscrowPenaltyNotTriggered) as exc:
        trade.escrow.apply_penalty(order_id, Penalty.EXCURSION)
    assert exc.value.arguments == {
        "orderId": order_id,
        "penalty": Penalty.EXCURSION,
        "shipment": trade.shipment,
    }


def test_apply_penalty_reverts_when_another_party_reported_the_excursion_after_the_receipt(
    trade: Trade,
) -> None:
    """The receiver passes the pallet on to a party of its choosing, which reports an excursion: the
    goods were no longer in the seller's or a carrier's hands for the order."""
    order_id = trade.funded(excursion_penalty_bps=2000)
    trade.ship()
    trade.deliver()
    record(trade.registry, trade.retailer, Kind.SHIP, trade.shipment, counterpart=trade.carrier.address)
    record(trade.registry, trade.carrier, Kind.RECEIVE, trade.shipment)
    trade.report_excursion(by=trade.carrier)

    with pytest.raises(reverts.TradeEscrowPenaltyNotTriggered) as exc:
        trade.escrow.apply_penalty(order_id, Penalty.EXCURSION)
    assert exc.value.arguments == {
        "orderId": order_id,
        "penalty": Penalty.EXCURSION,
        "shipment": trade.shipment,
    }


def test_apply_penalty_reverts_when_the_receiver_itself_recalled_the_shipment(trade: Trade) -> None:
    """A receiving address that is also an auditor cannot recall its way to a refund."""
    trade.registry.grant_role(Role.AUDITOR, trade.retailer.address)
    order_id = trade.funded(recall_penalty_bps=2000)
    record(trade.registry, trade.retailer, Kind.RECALL, trade.shipment)

    with pytest.raises(reverts.TradeEscrowPenaltyNotTriggered) as exc:
        trade.escrow.apply_penalty(order_id, Penalty.RECALL)
    assert exc.value.arguments == {"orderId": order_id, "penalty": Penalty.RECALL, "shipment": trade.shipment}


@pytest.mark.parametrize(
    ("penalty", "trigger"),
    [(Penalty.EXCURSION, "report_excursion"), (Penalty.RECALL, "recall")],
    ids=["excursion", "recall"],
)
def test_apply_penalty_reverts_when_the_penalty_was_applied(
    trade: Trade, penalty: Penalty, trigger: str
) -> None:
    order_id = trade.funded(excursion_penalty_bps=1000, recall_penalty_bps=1000)
    trade.ship()
    getattr(trade, trigger)()
    trade.escrow.apply_penalty(order_id, penalty)
    if penalty is Penalty.EXCURSION:
        trade.report_excursion()  # a second excursion does not apply the penalty again

    with pytest.raises(reverts.TradeEscrowPenaltyAlreadyApplied) as exc:
        trade.escrow.apply_penalty(order_id, penalty)
    assert exc.value.arguments == {"orderId": order_id, "penalty": penalty}


# ---------------------------------------------------------------- reclaim


def test_reclaim_reverts_when_the_sender_is_not_the_buyer(trade: Trade) -> None:
    order_id = trade.funded()
    past_deadline(trade, order_id)

    with pytest.raises(reverts.TradeEscrowNotBuyer) as exc:
        trade.escrow.reclaim(trade.seller, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "caller": trade.seller.address,
        "buyer": trade.buyer.address,
    }


def test_reclaim_reverts_before_the_deadline(trade: Trade) -> None:
    order_id = trade.funded()
    deadline = trade.escrow.order_of(order_id).terms.deadline

    with pytest.raises(reverts.TradeEscrowDeadlineNotPassed) as exc:
        trade.escrow.reclaim(trade.buyer, order_id)
    assert exc.value.arguments == {"orderId": order_id, "deadline": deadline}


def test_reclaim_reverts_at_the_deadline_itself(trade: Trade) -> None:
    order_id = trade.funded()
    deadline = trade.escrow.order_of(order_id).terms.deadline
    pass_time_to(trade.chain, deadline)

    with pytest.raises(reverts.TradeEscrowDeadlineNotPassed) as exc:
        trade.escrow.reclaim(trade.buyer, order_id)
    assert exc.value.arguments == {"orderId": order_id, "deadline": deadline}


def test_reclaim_reverts_once_the_received_milestone_was_released(trade: Trade) -> None:
    """Customs never cleared the shipment, so its share is still in the order after delivery."""
    order_id = trade.funded(milestone_bps=(0, 3000, 7000))
    trade.ship()
    trade.deliver()
    trade.escrow.release(order_id, Milestone.RECEIVED)
    past_deadline(trade, order_id)

    with pytest.raises(reverts.TradeEscrowMilestoneAlreadyReleased) as exc:
        trade.escrow.reclaim(trade.buyer, order_id)
    assert exc.value.arguments == {"orderId": order_id, "milestone": Milestone.RECEIVED}


@pytest.mark.parametrize("then", [None, Kind.SELL, Kind.CONSUME], ids=["held", "sold", "consumed"])
def test_reclaim_reverts_once_the_receiver_has_received_the_shipment(trade: Trade, then: Kind | None) -> None:
    """Delivered but not yet released by the deadline: the goods are paid for, not refunded, whatever
    the receiver did with them since."""
    order_id = trade.funded()
    trade.ship()
    trade.deliver()
    received_at = trade.registry.party_facts_of(trade.shipment, trade.retailer.address).received_at
    if then is not None:
        record(trade.registry, trade.retailer, then, trade.shipment)
    past_deadline(trade, order_id)

    with pytest.raises(reverts.TradeEscrowDelivered) as exc:
        trade.escrow.reclaim(trade.buyer, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "receiver": trade.retailer.address,
        "receivedAt": received_at,
    }


def test_reclaim_reverts_while_a_shipment_to_the_receiver_awaits_its_receipt(trade: Trade) -> None:
    """Goods at the door past the deadline: the receiver signs for them (and they are paid) or they
    are sent elsewhere first; holding the receipt back until a refund is not a way out."""
    order_id = trade.funded()
    trade.ship()
    record(trade.registry, trade.carrier, Kind.SHIP, trade.shipment, counterpart=trade.retailer.address)
    past_deadline(trade, order_id)

    with pytest.raises(reverts.TradeEscrowDeliveryPending) as exc:
        trade.escrow.reclaim(trade.buyer, order_id)
    assert exc.value.arguments == {"orderId": order_id, "receiver": trade.retailer.address}


# ---------------------------------------------------------------- disputes


def test_open_dispute_reverts_when_the_order_has_no_arbiter(trade: Trade) -> None:
    order_id = trade.funded()

    with pytest.raises(reverts.TradeEscrowNoArbiter) as exc:
        trade.escrow.open_dispute(trade.buyer, order_id)
    assert exc.value.arguments == {"orderId": order_id}


@pytest.mark.parametrize("who", ["arbiter", "carrier", "stranger"])
def test_open_dispute_reverts_when_the_sender_is_not_a_party(trade: Trade, who: str) -> None:
    order_id = trade.funded(arbiter=trade.arbiter.address)
    sender = {
        "arbiter": trade.arbiter,
        "carrier": account_of(trade.carrier),
        "stranger": Account.create(),
    }[who]

    with pytest.raises(reverts.TradeEscrowNotParty) as exc:
        trade.escrow.open_dispute(sender, order_id)
    assert exc.value.arguments == {"orderId": order_id, "caller": sender.address}


@pytest.mark.parametrize("by", ["buyer", "seller"])
def test_open_dispute_reverts_when_the_order_had_its_dispute(trade: Trade, by: str) -> None:
    order_id = disputed(trade)
    ends_at = trade.escrow.order_of(order_id).dispute_ends_at
    past_dispute(trade, order_id)
    trade.escrow.end_dispute(order_id)

    with pytest.raises(reverts.TradeEscrowDisputeAlreadyOpened) as exc:
        trade.escrow.open_dispute(getattr(trade, by), order_id)
    assert exc.value.arguments == {"orderId": order_id, "endsAt": ends_at}


def test_end_dispute_reverts_before_the_window_ends(trade: Trade) -> None:
    order_id = disputed(trade)
    ends_at = trade.escrow.order_of(order_id).dispute_ends_at
    pass_time_to(trade.chain, ends_at - 1)

    with pytest.raises(reverts.TradeEscrowDisputeNotEnded) as exc:
        trade.escrow.end_dispute(order_id)
    assert exc.value.arguments == {"orderId": order_id, "endsAt": ends_at}


def test_resolve_reverts_once_the_window_has_ended(trade: Trade) -> None:
    """The arbiter had the agreed time; after it the order's own rules decide."""
    order_id = disputed(trade)
    ends_at = trade.escrow.order_of(order_id).dispute_ends_at
    past_dispute(trade, order_id)

    with pytest.raises(reverts.TradeEscrowDisputeEnded) as exc:
        trade.escrow.resolve(trade.arbiter, order_id, 5000)
    assert exc.value.arguments == {"orderId": order_id, "endsAt": ends_at}


@pytest.mark.parametrize("who", ["buyer", "seller", "stranger"])
def test_resolve_reverts_when_the_sender_is_not_the_arbiter(trade: Trade, who: str) -> None:
    order_id = disputed(trade)
    sender = getattr(trade, who) if who != "stranger" else Account.create()

    with pytest.raises(reverts.TradeEscrowNotArbiter) as exc:
        trade.escrow.resolve(sender, order_id, 10_000)
    assert exc.value.arguments == {
        "orderId": order_id,
        "caller": sender.address,
        "arbiter": trade.arbiter.address,
    }


def test_resolve_reverts_when_the_split_exceeds_the_whole(trade: Trade) -> None:
    order_id = disputed(trade)

    with pytest.raises(reverts.TradeEscrowInvalidSplit) as exc:
        trade.escrow.resolve(trade.arbiter, order_id, 10_001)
    assert exc.value.arguments == {"orderId": order_id, "toSellerBps": 10_001}
