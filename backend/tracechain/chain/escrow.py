"""Typed access to a deployed TradeEscrow (orders paid by milestones the registry shows) and to the
ERC-20 tokens its orders pay in.

Calls that the contract accepts only from one party (creating, accepting and funding an order,
reclaiming, disputing, resolving) take that party's LocalAccount and go out through `transact_as`;
releases, penalties and ending a lapsed dispute are open to anyone and go out from the relayer unless
a sender is given, or are built unsent (`release_call` ...) for the relayer's outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from tracechain.chain.artifacts import load_artifact
from tracechain.chain.connect import Chain
from tracechain.chain.trace_event import ZERO_ADDRESS
from tracechain.chain.transactions import call, transact, transact_as

BPS = 10_000
"""An order's whole amount in basis points, as TradeEscrow.BPS."""
MIN_DISPUTE_WINDOW = 3600
MAX_DISPUTE_WINDOW = 365 * 86_400
"""The dispute windows (seconds) an order with an arbiter may agree, as TradeEscrow's constants."""


class Milestone(IntEnum):
    """TradeEscrow.Milestone; the numbers are part of the ABI."""

    SHIPPED = 0
    CUSTOMS_CLEARED = 1
    RECEIVED = 2


class Penalty(IntEnum):
    """TradeEscrow.Penalty."""

    EXCURSION = 0
    RECALL = 1


class OrderState(IntEnum):
    """TradeEscrow.OrderState."""

    UNKNOWN = 0
    CREATED = 1
    ACCEPTED = 2
    FUNDED = 3
    DISPUTED = 4
    CLOSED = 5


_TERMS_FIELDS = (
    "seller",
    "token",
    "amount",
    "shipment",
    "receiver",
    "milestoneBps",
    "deadline",
    "arbiter",
    "disputeWindow",
    "excursionPenaltyBps",
    "recallPenaltyBps",
)
_ENUM_ARGUMENTS: dict[str, type[IntEnum]] = {"milestone": Milestone, "penalty": Penalty}


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What a buyer proposes (TradeEscrow.OrderTerms); see the contract for each field's meaning."""

    seller: str
    token: str
    amount: int
    shipment: bytes
    receiver: str
    milestone_bps: tuple[int, int, int]
    deadline: int
    arbiter: str = ZERO_ADDRESS
    dispute_window: int = 0
    """Seconds a dispute may freeze the order: MIN..MAX_DISPUTE_WINDOW with an arbiter, 0 without."""
    excursion_penalty_bps: int = 0
    recall_penalty_bps: int = 0

    def as_abi_tuple(self) -> tuple[Any, ...]:
        return (
            to_checksum_address(self.seller),
            to_checksum_address(self.token),
            self.amount,
            self.shipment,
            to_checksum_address(self.receiver),
            list(self.milestone_bps),
            self.deadline,
            to_checksum_address(self.arbiter),
            self.dispute_window,
            self.excursion_penalty_bps,
            self.recall_penalty_bps,
        )

    @classmethod
    def from_abi(cls, value: Any) -> OrderTerms:
        """From a call's tuple or an event's struct (web3 decodes those by field name)."""
        if isinstance(value, Mapping):
            value = [value[field] for field in _TERMS_FIELDS]
        seller, token, amount, shipment, receiver, bps, deadline, arbiter, window, excursion, recall = value
        return cls(
            seller=seller,
            token=token,
            amount=amount,
            shipment=bytes(shipment),
            receiver=receiver,
            milestone_bps=(bps[0], bps[1], bps[2]),
            deadline=deadline,
            arbiter=arbiter,
            dispute_window=window,
            excursion_penalty_bps=excursion,
            recall_penalty_bps=recall,
        )


@dataclass(frozen=True, slots=True)
class Order:
    """An order as TradeEscrow.orderOf reports it; `released` is indexed by Milestone;
    `dispute_ends_at` is when its one dispute ends (0: none opened)."""

    state: OrderState
    buyer: str
    terms: OrderTerms
    released: tuple[bool, bool, bool]
    penalties_applied: tuple[bool, bool]
    paid: int
    refunded: int
    unreleased: int
    dispute_ends_at: int = 0


@dataclass(frozen=True, slots=True)
class EscrowLog:
    """One TradeEscrow log, by event name, with its arguments by parameter name.

    Milestone and Penalty arguments come back as those enums and OrderCreated's terms as
    OrderTerms, so a test or the indexer compares them with the values it sent.
    """

    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class EscrowResult:
    """A mined escrow transaction and the escrow's logs in it, in order (token logs left out)."""

    receipt: TxReceipt
    logs: list[EscrowLog]

    @property
    def gas_used(self) -> int:
        return int(self.receipt["gasUsed"])

    @property
    def order_id(self) -> int:
        """The order the transaction acted on: every TradeEscrow event names it first."""
        return int(self.logs[0].args["orderId"])


@dataclass(frozen=True, slots=True)
class Permit:
    """An EIP-2612 permit signature: its owner lets a spender take `value` until `deadline`."""

    deadline: int
    v: int
    r: bytes
    s: bytes


class Token:
    """An ERC-20 an order pays in, addressed through DemoStablecoin's ABI (ERC-20 plus EIP-2612)."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self.contract: Contract = chain.w3.eth.contract(
            address=self.address, abi=load_artifact("DemoStablecoin").abi
        )

    @classmethod
    def deploy_demo_stablecoin(cls, chain: Chain) -> Token:
        """Deploy DemoStablecoin (dUSD, 6 decimals, open faucet): for local chains and the demo only."""
        artifact = load_artifact("DemoStablecoin")
        factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = transact(chain, factory.constructor())
        address = receipt["contractAddress"]
        assert address is not None, "a contract creation receipt names the contract"
        return cls(chain, address)

    def faucet(self, to: str, amount: int) -> TxReceipt:
        """DemoStablecoin only: mint up to 1,000,000 dUSD (in 6-decimal units) per call."""
        return transact(self.chain, self.faucet_call(to, amount))

    def faucet_call(self, to: str, amount: int) -> ContractFunction:
        """As `faucet`, built and not sent: for the relayer's outbox."""
        return self.contract.functions.faucet(to_checksum_address(to), amount)

    def symbol(self) -> str:
        return str(call(self.contract.functions.symbol()))

    def decimals(self) -> int:
        return int(call(self.contract.functions.decimals()))

    def approve(self, owner: LocalAccount, spender: str, amount: int) -> TxReceipt:
        return transact_as(
            self.chain, owner, self.contract.functions.approve(to_checksum_address(spender), amount)
        )

    def balance_of(self, account: str) -> int:
        return int(call(self.contract.functions.balanceOf(to_checksum_address(account))))

    def allowance(self, owner: str, spender: str) -> int:
        return int(
            call(self.contract.functions.allowance(to_checksum_address(owner), to_checksum_address(spender)))
        )

    def sign_permit(self, owner: LocalAccount, spender: str, value: int, deadline: int) -> Permit:
        """`owner` signs an EIP-2612 permit over the token's own EIP-712 domain (read via ERC-5267)."""
        _, name, version, chain_id, verifying_contract, _, _ = call(self.contract.functions.eip712Domain())
        nonce = call(self.contract.functions.nonces(owner.address))
        signed = owner.sign_typed_data(
            domain_data={
                "name": name,
                "version": version,
                "chainId": chain_id,
                "verifyingContract": verifying_contract,
            },
            message_types={
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ]
            },
            message_data={
                "owner": owner.address,
                "spender": to_checksum_address(spender),
                "value": value,
                "nonce": nonce,
                "deadline": deadline,
            },
        )
        return Permit(deadline, signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"))


class TradeEscrow:
    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self.contract: Contract = chain.w3.eth.contract(
            address=self.address, abi=load_artifact("TradeEscrow").abi
        )
        self._events_by_topic = {
            bytes(event_abi_to_log_topic(item)): item["name"]
            for item in self.contract.abi
            if item["type"] == "event"
        }

    @classmethod
    def deploy(cls, chain: Chain, registry: str) -> TradeEscrow:
        """Deploy an escrow whose milestones follow the TraceRegistry at `registry`."""
        artifact = load_artifact("TradeEscrow")
        factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = transact(chain, factory.constructor(to_checksum_address(registry)))
        address = receipt["contractAddress"]
        assert address is not None, "a contract creation receipt names the contract"
        return cls(chain, address)

    # ------------------------------------------------------------ transactions

    def create_order(self, buyer: LocalAccount, terms: OrderTerms) -> EscrowResult:
        """`buyer` proposes the order; the result's `order_id` names it."""
        return self._send(self.contract.functions.createOrder(terms.as_abi_tuple()), buyer)

    def accept_order(self, seller: LocalAccount, order_id: int) -> EscrowResult:
        """`seller` accepts the order's terms (arbiter and dispute window included); then it may be funded."""
        return self._send(self.contract.functions.acceptOrder(order_id), seller)

    def fund(self, buyer: LocalAccount, order_id: int) -> EscrowResult:
        """`buyer` pays the order's amount in; it must have approved the escrow for it."""
        return self._send(self.contract.functions.fund(order_id), buyer)

    def fund_with_permit(self, buyer: LocalAccount, order_id: int, permit: Permit) -> EscrowResult:
        """`buyer` pays the order's amount in with a permit (see Token.sign_permit) instead of an approval."""
        fn = self.contract.functions.fundWithPermit(order_id, permit.deadline, permit.v, permit.r, permit.s)
        return self._send(fn, buyer)

    def release(
        self, order_id: int, milestone: Milestone, sender: LocalAccount | None = None
    ) -> EscrowResult:
        return self._send(self.release_call(order_id, milestone), sender)

    def apply_penalty(
        self, order_id: int, penalty: Penalty, sender: LocalAccount | None = None
    ) -> EscrowResult:
        return self._send(self.apply_penalty_call(order_id, penalty), sender)

    def reclaim(self, buyer: LocalAccount, order_id: int) -> EscrowResult:
        return self._send(self.contract.functions.reclaim(order_id), buyer)

    def open_dispute(self, party: LocalAccount, order_id: int) -> EscrowResult:
        return self._send(self.contract.functions.openDispute(order_id), party)

    def resolve(self, arbiter: LocalAccount, order_id: int, to_seller_bps: int) -> EscrowResult:
        return self._send(self.contract.functions.resolve(order_id, to_seller_bps), arbiter)

    def end_dispute(self, order_id: int, sender: LocalAccount | None = None) -> EscrowResult:
        """Ends a dispute whose window has passed: the order is funded again and its rules resume."""
        return self._send(self.end_dispute_call(order_id), sender)

    # ------------------------------------------------------------ calls built, not sent (the outbox's)

    def release_call(self, order_id: int, milestone: Milestone) -> ContractFunction:
        return self.contract.functions.release(order_id, int(milestone))

    def apply_penalty_call(self, order_id: int, penalty: Penalty) -> ContractFunction:
        return self.contract.functions.applyPenalty(order_id, int(penalty))

    def end_dispute_call(self, order_id: int) -> ContractFunction:
        return self.contract.functions.endDispute(order_id)

    # ------------------------------------------------------------ reading

    def order_of(self, order_id: int) -> Order:
        state, buyer, terms, released, penalties, paid, refunded, unreleased, dispute_ends_at = call(
            self.contract.functions.orderOf(order_id)
        )
        return Order(
            state=OrderState(state),
            buyer=buyer,
            terms=OrderTerms.from_abi(terms),
            released=(released[0], released[1], released[2]),
            penalties_applied=(penalties[0], penalties[1]),
            paid=paid,
            refunded=refunded,
            unreleased=unreleased,
            dispute_ends_at=dispute_ends_at,
        )

    def registry_address(self) -> str:
        """The TraceRegistry whose custody facts this escrow's milestones and penalties follow."""
        return str(call(self.contract.functions.registry()))

    def unreleased_of(self, order_id: int) -> int:
        return int(call(self.contract.functions.unreleasedOf(order_id)))

    def order_count(self) -> int:
        return int(call(self.contract.functions.orderCount()))

    def milestone_reached(self, order_id: int, milestone: Milestone) -> bool:
        return bool(call(self.contract.functions.milestoneReached(order_id, int(milestone))))

    def penalty_triggered(self, order_id: int, penalty: Penalty) -> bool:
        return bool(call(self.contract.functions.penaltyTriggered(order_id, int(penalty))))

    def logs(self, receipt: TxReceipt) -> list[EscrowLog]:
        """The escrow's own logs in a receipt, in order, without other contracts' (token transfers)."""
        found = []
        for log in receipt["logs"]:
            if log["address"] != self.address or not log["topics"]:
                continue
            name = self._events_by_topic[bytes(log["topics"][0])]
            decoded = self.contract.events[name]().process_log(log)
            found.append(
                EscrowLog(name, {key: _python_value(key, value) for key, value in decoded["args"].items()})
            )
        return found

    def _send(self, fn: ContractFunction, sender: LocalAccount | None) -> EscrowResult:
        receipt = transact(self.chain, fn) if sender is None else transact_as(self.chain, sender, fn)
        return EscrowResult(receipt, self.logs(receipt))


def _python_value(key: str, value: Any) -> Any:
    if key in _ENUM_ARGUMENTS:
        return _ENUM_ARGUMENTS[key](value)
    if key == "terms":
        return OrderTerms.from_abi(value)
    if isinstance(value, bytes):
        return bytes(value)
    return value
