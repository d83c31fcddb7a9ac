"""`transact_as`, which the escrow wrapper uses for calls only a buyer, seller or arbiter may make.

(It lives in tracechain.chain.transactions; these tests sit with the escrow's, its first user.)
"""

from __future__ import annotations

import pytest
from eth_account import Account

from tracechain.chain import reverts
from tracechain.chain.connect import Chain
from tracechain.chain.transactions import GAS_ALLOWANCE, transact_as
from tracechain.config import ChainMode

from ..factories import Trade, give_gas

SPENDER = "0x000000000000000000000000000000000000dEaD"


def test_transact_as_gives_a_new_account_gas_on_a_local_chain_and_sends_from_it(trade: Trade) -> None:
    account = Account.create()

    receipt = transact_as(trade.chain, account, trade.token.contract.functions.approve(SPENDER, 5))

    assert receipt["from"] == account.address
    assert trade.token.allowance(account.address, SPENDER) == 5
    spent = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert trade.chain.w3.eth.get_balance(account.address) == GAS_ALLOWANCE - spent


def test_transact_as_gives_nothing_to_an_account_that_has_gas(trade: Trade) -> None:
    account = Account.create()
    give_gas(trade.chain, account.address)
    before = trade.chain.w3.eth.get_balance(account.address)

    receipt = transact_as(trade.chain, account, trade.token.contract.functions.approve(SPENDER, 5))

    spent = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert trade.chain.w3.eth.get_balance(account.address) == before - spent


def test_transact_as_gives_no_gas_on_a_chain_that_is_not_local(trade: Trade) -> None:
    """On a node reached by URL the account pays its own way, so a new one cannot send."""
    remote = Chain(trade.chain.w3, ChainMode.RPC, trade.chain.relayer)
    account = Account.create()

    with pytest.raises(Exception, match="cannot afford"):
        transact_as(remote, account, trade.token.contract.functions.approve(SPENDER, 5))
    assert trade.chain.w3.eth.get_balance(account.address) == 0


def test_transact_as_raises_the_contract_error_of_a_revert(trade: Trade) -> None:
    account = Account.create()

    with pytest.raises(reverts.DemoStablecoinFaucetLimit) as exc:
        transact_as(trade.chain, account, trade.token.contract.functions.faucet(account.address, 10**13))
    assert exc.value.arguments == {"requested": 10**13, "limit": 10**12}
