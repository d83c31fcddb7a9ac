"""TradeEscrow against the tokens it may meet: hostile (re-entering), non-standard (no bool
returned) and lossy (fee on transfer); and DemoStablecoin, the token of local runs and the demo."""

from __future__ import annotations

import pytest
from web3.contract import Contract

from tracechain.chain import reverts
from tracechain.chain.artifacts import Artifact
from tracechain.chain.escrow import EscrowLog, Milestone, OrderState, Token
from tracechain.chain.reverts import decode_revert
from tracechain.chain.trace_event import ZERO_ADDRESS
from tracechain.chain.transactions import transact

from ..factories import DUSD, Trade, deploy_contract, pass_time_to

AMOUNT = 1_000 * DUSD


def order_in(trade: Trade, token: Contract, **overrides: object) -> int:
    """An order paid in `token`, the buyer holding and having approved exactly its amount."""
    order_id = trade.accepted(token=token.address, **overrides)
    transact(trade.chain, token.functions.mint(trade.buyer.address, AMOUNT))
    Token(trade.chain, token.address).approve(trade.buyer, trade.escrow.address, AMOUNT)
    return order_id


def balances(trade: Trade, token: Contract) -> tuple[int, int, int]:
    """The seller's, the buyer's and the escrow's balances of `token`."""
    of = Token(trade.chain, token.address).balance_of
    return of(trade.manufacturer.address), of(trade.buyer.address), of(trade.escrow.address)


# ---------------------------------------------------------------- re-entering token


@pytest.fixture
def reentrant(trade: Trade, mock_artifacts: dict[str, Artifact]) -> Contract:
    return deploy_contract(trade.chain, mock_artifacts["ReentrantToken"])


def arm(trade: Trade, token: Contract, payload: str, bubble: bool) -> None:
    """On its next transfer to or from the escrow, the token calls the escrow with `payload`."""
    transact(trade.chain, token.functions.arm(trade.escrow.address, payload, bubble))


@pytest.mark.parametrize("target", ["same_milestone", "other_milestone", "other_order"])
def test_reentry_during_a_release_is_blocked_and_pays_nothing_twice(
    trade: Trade, reentrant: Contract, target: str
) -> None:
    """The token calls back into release() while the escrow pays the seller; every call it tries
    would succeed on its own (both milestones' conditions hold), and every one is refused."""
    escrow = trade.escrow
    order_id = order_in(trade, reentrant)
    escrow.fund(trade.buyer, order_id)
    other_id = order_in(trade, reentrant)
    escrow.fund(trade.buyer, other_id)
    trade.ship()
    trade.deliver()
    reentry = {
        "same_milestone": (order_id, Milestone.SHIPPED),
        "other_milestone": (order_id, Milestone.RECEIVED),
        "other_order": (other_id, Milestone.RECEIVED),
    }[target]
    arm(trade, reentrant, escrow.contract.encode_abi("release", [reentry[0], int(reentry[1])]), bubble=False)

    shipped = escrow.release(order_id, Milestone.SHIPPED)

    attempted, succeeded, return_data = reentrant.functions.reentry().call()
    assert (attempted, succeeded) == (True, False)
    assert isinstance(decode_revert(return_data), reverts.ReentrancyGuardReentrantCall)
    assert shipped.logs == [
        EscrowLog(
            "MilestoneReleased",
            {
                "orderId": order_id,
                "milestone": Milestone.SHIPPED,
                "seller": trade.manufacturer.address,
                "amount": 300 * DUSD,
            },
        )
    ]
    assert balances(trade, reentrant) == (300 * DUSD, 0, 1_700 * DUSD)
    assert escrow.order_of(order_id).released == (True, False, False)
    assert escrow.order_of(other_id).released == (False, False, False)


def test_reentry_during_a_reclaim_reverts_it_and_leaves_the_balances(
    trade: Trade, reentrant: Contract
) -> None:
    """A token that insists on its callback (bubbling the refusal) makes the reclaim fail as a whole."""
    escrow = trade.escrow
    order_id = order_in(trade, reentrant)
    escrow.fund(trade.buyer, order_id)
    pass_time_to(trade.chain, escrow.order_of(order_id).terms.deadline + 1)
    arm(trade, reentrant, escrow.contract.encode_abi("reclaim", [order_id]), bubble=True)

    with pytest.raises(reverts.ReentrancyGuardReentrantCall) as exc:
        escrow.reclaim(trade.buyer, order_id)
    assert exc.value.arguments == {}
    assert balances(trade, reentrant) == (0, 0, AMOUNT)
    order = escrow.order_of(order_id)
    assert (order.state, order.unreleased, order.refunded) == (OrderState.FUNDED, AMOUNT, 0)

    transact(
        trade.chain, reentrant.functions.arm(ZERO_ADDRESS, b"", False)
    )  # disarmed, it pays like any token
    escrow.reclaim(trade.buyer, order_id)
    assert balances(trade, reentrant) == (0, AMOUNT, 0)


def test_reentry_during_funding_is_blocked(trade: Trade, reentrant: Contract) -> None:
    escrow = trade.escrow
    funded_id = order_in(trade, reentrant)
    escrow.fund(trade.buyer, funded_id)
    trade.ship()
    order_id = order_in(trade, reentrant)
    arm(
        trade,
        reentrant,
        escrow.contract.encode_abi("release", [funded_id, int(Milestone.SHIPPED)]),
        bubble=False,
    )

    escrow.fund(trade.buyer, order_id)

    attempted, succeeded, return_data = reentrant.functions.reentry().call()
    assert (attempted, succeeded) == (True, False)
    assert isinstance(decode_revert(return_data), reverts.ReentrancyGuardReentrantCall)
    assert escrow.order_of(funded_id).released == (False, False, False)
    assert balances(trade, reentrant) == (0, 0, 2 * AMOUNT)


# ---------------------------------------------------------------- token returning no bool (USDT)


def test_a_token_returning_nothing_settles_like_any_other(
    trade: Trade, mock_artifacts: dict[str, Artifact]
) -> None:
    token = deploy_contract(trade.chain, mock_artifacts["NoBoolToken"])
    escrow = trade.escrow
    delivered = order_in(trade, token)
    escrow.fund(trade.buyer, delivered)
    late = order_in(trade, token, milestone_bps=(0, 0, 10_000))
    escrow.fund(trade.buyer, late)
    assert balances(trade, token) == (0, 0, 2 * AMOUNT)

    trade.ship()
    escrow.release(delivered, Milestone.SHIPPED)
    pass_time_to(trade.chain, escrow.order_of(late).terms.deadline + 1)
    escrow.reclaim(trade.buyer, late)
    trade.deliver()
    escrow.release(delivered, Milestone.RECEIVED)

    assert balances(trade, token) == (AMOUNT, AMOUNT, 0)
    assert escrow.order_of(delivered).state is OrderState.CLOSED
    assert escrow.order_of(late).state is OrderState.CLOSED


# ---------------------------------------------------------------- fee-on-transfer token


def test_funding_in_a_fee_on_transfer_token_is_rejected(
    trade: Trade, mock_artifacts: dict[str, Artifact]
) -> None:
    token = deploy_contract(trade.chain, mock_artifacts["FeeOnTransferToken"])
    order_id = order_in(trade, token)

    with pytest.raises(reverts.TradeEscrowAmountNotReceived) as exc:
        trade.escrow.fund(trade.buyer, order_id)
    assert exc.value.arguments == {
        "orderId": order_id,
        "token": token.address,
        "expected": AMOUNT,
        "received": AMOUNT * 99 // 100,
    }
    assert balances(trade, token) == (0, AMOUNT, 0)
    assert trade.escrow.order_of(order_id).state is OrderState.ACCEPTED


# ---------------------------------------------------------------- DemoStablecoin


def test_demo_stablecoin_is_a_six_decimal_dollar(trade: Trade) -> None:
    functions = trade.token.contract.functions
    assert (functions.name().call(), functions.symbol().call(), functions.decimals().call()) == (
        "Demo USD",
        "dUSD",
        6,
    )


def test_faucet_mints_up_to_a_million_per_call(trade: Trade) -> None:
    receipt = trade.token.faucet(trade.buyer.address, 1_000_000 * DUSD)

    (minted,) = trade.token.contract.events.Transfer().process_receipt(receipt)
    assert dict(minted["args"]) == {
        "from": ZERO_ADDRESS,
        "to": trade.buyer.address,
        "value": 1_000_000 * DUSD,
    }
    assert trade.token.balance_of(trade.buyer.address) == 1_000_000 * DUSD


def test_faucet_reverts_above_a_million_per_call(trade: Trade) -> None:
    with pytest.raises(reverts.DemoStablecoinFaucetLimit) as exc:
        trade.token.faucet(trade.buyer.address, 1_000_000 * DUSD + 1)
    assert exc.value.arguments == {"requested": 1_000_000 * DUSD + 1, "limit": 1_000_000 * DUSD}
