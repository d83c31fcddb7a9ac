"""Sends contract transactions signed by the relayer (or by a participant) and turns reverts into
tracechain exceptions; and what the outbox (submission.py), which signs the relayer's transactions
itself, asks of the node: fees, nonces, broadcasting, receipts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, RPCEndpoint, TxParams, TxReceipt, Wei

from tracechain.chain.connect import Chain
from tracechain.chain.reverts import decode_revert, revert_data
from tracechain.config import ChainMode
from tracechain.errors import ChainError


def as_tracechain_error(exc: Exception) -> Exception:
    """The ContractRevert a web3/eth-tester exception stands for, or the exception itself."""
    data = revert_data(exc)
    return decode_revert(data) if data is not None else exc


def call(fn: ContractFunction) -> Any:
    try:
        return fn.call()
    except Exception as exc:
        raise as_tracechain_error(exc) from exc


def transact(chain: Chain, fn: ContractFunction | ContractConstructor, gas: int | None = None) -> TxReceipt:
    """Estimate (which surfaces a revert with its reason before anything is sent), sign, send, wait."""
    return _send(chain, chain.relayer, fn, gas)


LOCAL_CHAINS = frozenset({ChainMode.TESTER, ChainMode.ANVIL})
DEV_CHAIN_IDS = frozenset({31337, 1337})
"""Chain ids of development nodes (anvil, Hardhat, Ganache, geth --dev): their coins are worthless."""


def is_dev_chain(chain: Chain) -> bool:
    """A chain whose coins are worthless: tracechain's own, or a development node reached over RPC.

    Only there does the relayer hand out gas money and the demo stablecoin get deployed.
    """
    return chain.mode in LOCAL_CHAINS or chain.chain_id in DEV_CHAIN_IDS


GAS_ALLOWANCE = Wei(10**18)
"""What `transact_as` gives an account short of gas on a local chain: ample for a test or a demo."""


def needs_gas(chain: Chain, address: ChecksumAddress) -> bool:
    """On a development chain: the account holds less than a tenth of GAS_ALLOWANCE, so the relayer
    should give it GAS_ALLOWANCE before it sends. Never on other chains: accounts pay their way."""
    return is_dev_chain(chain) and chain.w3.eth.get_balance(address) < GAS_ALLOWANCE // 10


def transact_as(
    chain: Chain, account: LocalAccount, fn: ContractFunction | ContractConstructor, gas: int | None = None
) -> TxReceipt:
    """As `transact`, but signed and paid for by `account`, for calls a contract accepts only from
    one party (an order's buyer, its arbiter).

    On a development chain the relayer first gives the account GAS_ALLOWANCE when it holds less
    than a tenth of it, so participants' keys need no funding step; on any other chain the account
    pays its own way and a node refuses it if it cannot.
    """
    if account.address != chain.relayer.address and needs_gas(chain, account.address):
        _send(chain, chain.relayer, {"to": account.address, "value": GAS_ALLOWANCE, "gas": 21_000}, None)
    return _send(chain, account, fn, gas)


def _estimate_at(chain: Chain) -> Literal["pending"] | None:
    """Estimates run against the pending block, which is stamped now: the latest one may be old on
    an idle node, and a call that depends on time having passed (a reclaim after its deadline)
    would be refused there although the block it will be mined in accepts it. eth-tester estimates
    only against its latest block (which it stamps when it is mined)."""
    return "pending" if chain.speaks_raw_json_rpc else None


@dataclass(frozen=True, slots=True)
class Fees:
    """What a transaction offers to pay per gas (EIP-1559)."""

    max_fee: Wei
    priority_fee: Wei


def current_fees(chain: Chain) -> Fees:
    """Up to twice the node's gas price (room for a base fee that rises while the transaction
    waits), with a tip of at most 1 gwei."""
    gas_price = chain.w3.eth.gas_price
    return Fees(max_fee=Wei(gas_price * 2), priority_fee=Wei(min(gas_price, 10**9)))


def next_nonce(chain: Chain, address: ChecksumAddress, *, pending: bool = False) -> int:
    """The nonce the account's next transaction takes after its mined ones; with `pending`, after
    the ones the node holds unmined too."""
    if pending:
        return int(chain.w3.eth.get_transaction_count(address, "pending"))
    return int(chain.w3.eth.get_transaction_count(address))


def broadcast(chain: Chain, raw_tx: bytes) -> None:
    """Hand a signed transaction to the node. Raises what the node answered when it refuses it
    (already known, nonce too low) or does not answer."""
    chain.w3.eth.send_raw_transaction(raw_tx)


def wait_for_receipt(chain: Chain, tx_hash: str, timeout: float) -> TxReceipt:
    """The transaction's receipt once it is mined; web3's TimeExhausted after `timeout` seconds."""
    return chain.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=timeout)


def _send(
    chain: Chain,
    account: LocalAccount,
    fn: ContractFunction | ContractConstructor | TxParams,
    gas: int | None,
) -> TxReceipt:
    """`fn` is a contract call, or a plain transaction (a value transfer) given as its fields."""
    sender = account.address
    fees = current_fees(chain)
    # Every field given up front, so building the transaction asks the node nothing more.
    params: TxParams = {
        "from": sender,
        "chainId": chain.chain_id,
        "nonce": Nonce(next_nonce(chain, sender, pending=True)),
        "maxFeePerGas": fees.max_fee,
        "maxPriorityFeePerGas": fees.priority_fee,
    }
    if isinstance(fn, dict):
        tx: TxParams = {**params, **fn}
    else:
        try:
            params["gas"] = gas or int(fn.estimate_gas(params, block_identifier=_estimate_at(chain)) * 1.2)
        except Exception as exc:
            raise as_tracechain_error(exc) from exc
        tx = fn.build_transaction(params)
    signed = account.sign_transaction(tx)  # type: ignore[arg-type]
    tx_hash = chain.w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    if receipt["status"] != 1:
        # Replaying the call at the failing block recovers the reason the receipt does not carry.
        try:
            chain.w3.eth.call({**tx, "from": sender}, receipt["blockNumber"] - 1)
        except Exception as exc:
            raise as_tracechain_error(exc) from exc
        raise ChainError(f"transaction {tx_hash.to_0x_hex()} failed without a reason")
    return receipt


@dataclass(frozen=True, slots=True)
class Mined:
    """Where a transaction was mined and whether it succeeded."""

    succeeded: bool
    block_number: int
    block_hash: str


def mined(chain: Chain, tx_hash: str) -> Mined | None:
    """The transaction's place on the chain now, or None while (or again) it is not on it."""
    if chain.speaks_raw_json_rpc:
        # The raw answer: web3 would format all of a batch's logs, which nobody reads here.
        response = chain.w3.provider.make_request(RPCEndpoint("eth_getTransactionReceipt"), [tx_hash])
        if "error" in response:
            raise ChainError(f"eth_getTransactionReceipt failed: {response['error']}")
        raw = response.get("result")
        if raw is None:
            return None
        return Mined(int(raw["status"], 16) == 1, int(raw["blockNumber"], 16), str(raw["blockHash"]))
    try:
        receipt = chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
    except TransactionNotFound:
        return None
    return Mined(
        receipt["status"] == 1, int(receipt["blockNumber"]), HexBytes(receipt["blockHash"]).to_0x_hex()
    )


def mine_a_block(chain: Chain) -> None:
    """A development node that mines only when a transaction arrives mines one empty block now."""
    chain.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
