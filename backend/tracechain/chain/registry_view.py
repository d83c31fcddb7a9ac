"""A TraceRegistry as any node shows it, read-only: what `tracechain verify` asks of the chain.

Unlike TraceRegistry it needs no relayer and no deployment record, only a node and an address, and
it trusts nothing at that address beyond what the node answers: the address may hold no contract,
or another one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import MismatchedABI

from tracechain.chain.artifacts import load_artifact
from tracechain.chain.trace_event import SignedEvent


@dataclass(frozen=True, slots=True)
class RegistryLog:
    """One TraceRegistry log, with its arguments by parameter name as the ABI decodes them."""

    name: str
    args: dict[str, Any]
    block_number: int


class RegistryView:
    def __init__(self, w3: Web3, address: ChecksumAddress) -> None:
        self.w3 = w3
        self.address = address
        self._contract = w3.eth.contract(address=address, abi=load_artifact("TraceRegistry").abi)
        self._receipts: dict[str, Any] = {}

    @property
    def chain_id(self) -> int:
        """The id of the chain the node serves."""
        return int(self.w3.eth.chain_id)

    def has_code(self) -> bool:
        """Whether any contract lives at the address."""
        return bool(self.w3.eth.get_code(self.address))

    def logged(
        self, transaction: str, log_index: int, event: Literal["EventRecorded", "BatchAnchored"]
    ) -> RegistryLog | None:
        """The transaction's log at `log_index`, if this address emitted it and it is an `event`.
        None too when the transaction is not on this chain."""
        receipt = self._receipt(transaction)
        if receipt is None:
            return None
        for log in receipt["logs"]:
            if log["logIndex"] == log_index and log["address"] == self._contract.address:
                try:
                    decoded = self._contract.events[event]().process_log(log)
                except MismatchedABI:  # a log of the other kind at that index
                    return None
                return RegistryLog(event, dict(decoded["args"]), decoded["blockNumber"])
        return None

    def verify_anchored_at(self, signed: SignedEvent, proof: list[bytes], root: bytes, block: int) -> bool:
        """TraceRegistry.verifyAnchored as of `block`, or as of now from a node that keeps no state
        that old."""
        verify = self._contract.functions.verifyAnchored(signed.as_abi_tuple(), proof, root)
        try:
            return bool(verify.call(block_identifier=block))
        except Exception:
            return bool(verify.call())

    def had_role(self, role: bytes, account: str, block: int) -> bool:
        """TraceRegistry.hasRole as of `block`, or as of now from a node that keeps no state that old."""
        try:
            return bool(self._contract.functions.hasRole(role, account).call(block_identifier=block))
        except Exception:
            return bool(self._contract.functions.hasRole(role, account).call())

    def _receipt(self, transaction: str) -> Any:
        """The transaction's receipt, read once; None when it is not on this chain."""
        if transaction not in self._receipts:
            try:
                self._receipts[transaction] = self.w3.eth.get_transaction_receipt(HexBytes(transaction))
            except Exception:  # not on this chain at all
                self._receipts[transaction] = None
        return self._receipts[transaction]
