"""Builders for test data: participants with keys, signed events, EPCs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from tracechain.chain.artifacts import Artifact
from tracechain.chain.connect import Chain
from tracechain.chain.eip712 import EventSigner
from tracechain.chain.escrow import EscrowResult, OrderTerms, Token, TradeEscrow
from tracechain.chain.registry import RecordResult, TraceRegistry
from tracechain.chain.trace_event import (
    OBSERVATION_KINDS,
    VERDICT_CLEARED,
    ZERO_ADDRESS,
    ZERO_HASH,
    Kind,
    SignedEvent,
    TraceEvent,
    subject_id,
)
from tracechain.chain.transactions import transact


def random_hash() -> bytes:
    return os.urandom(32)


def sgtin(serial: int | str) -> bytes:
    """The subject id of one item of a demo GTIN."""
    return subject_id(f"urn:epc:id:sgtin:0614141.107346.{serial}")


def sscc(serial: int | str) -> bytes:
    return subject_id(f"urn:epc:id:sscc:0614141.{serial}")


@dataclass
class Actor:
    """A participant's key, able to sign for one registry's domain."""

    name: str
    key: bytes
    signer: EventSigner

    @property
    def address(self) -> str:
        return self.signer.address

    @classmethod
    def new(cls, name: str, registry: TraceRegistry) -> Actor:
        key = os.urandom(32)
        return cls(name, key, EventSigner(key, registry.domain))


def sign_event(
    registry: TraceRegistry,
    actor: Actor,
    kind: Kind,
    subject: bytes,
    *,
    counterpart: str = ZERO_ADDRESS,
    ref: bytes = ZERO_HASH,
    event_hash: bytes | None = None,
    prev_head: bytes | None = None,
    time: int = 1_767_225_600,
) -> SignedEvent:
    """`actor` signs an event over the current on-chain head of the chain it joins (the subject's
    facts, or the actor's own observations of it) unless told otherwise."""
    event = TraceEvent(
        subject=subject,
        kind=kind,
        event_hash=event_hash or random_hash(),
        counterpart=counterpart,
        ref=ref,
        time=time,
        prev_head=chain_head(registry, kind, subject, actor.address) if prev_head is None else prev_head,
    )
    return actor.signer.sign(event)


def chain_head(registry: TraceRegistry, kind: Kind, subject: bytes, signer: str) -> bytes:
    """The on-chain head of the chain an event of `kind` by `signer` joins."""
    if kind in OBSERVATION_KINDS:
        return registry.observation_head_of(subject, signer)
    return registry.head_of(subject)


def record(
    registry: TraceRegistry, actor: Actor, kind: Kind, subject: bytes, **fields: object
) -> RecordResult:
    return registry.record([sign_event(registry, actor, kind, subject, **fields)])  # type: ignore[arg-type]


def pack(registry: TraceRegistry, actor: Actor, parent: bytes, *children: bytes) -> None:
    """`actor` packs each child into `parent` (an Aggregate event per child), one transaction each."""
    for child in children:
        record(registry, actor, Kind.AGGREGATE, child, ref=parent)


def hand_over(registry: TraceRegistry, sender: Actor, receiver: Actor, subject: bytes) -> None:
    """`sender` ships `subject` to `receiver`, who receives it: custody moves in two signed events."""
    record(registry, sender, Kind.SHIP, subject, counterpart=receiver.address)
    record(registry, receiver, Kind.RECEIVE, subject)


# ---------------------------------------------------------------- settlement


def account_of(actor: Actor) -> LocalAccount:
    """The actor's key as an account that sends transactions (a buyer funding an order, say)."""
    account: LocalAccount = Account.from_key(actor.key)
    return account


def latest_timestamp(chain: Chain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def pass_time_to(chain: Chain, timestamp: int) -> None:
    """The next transaction runs in a block stamped `timestamp` (the in-process chain only)."""
    chain.w3.testing.timeTravel(timestamp)  # type: ignore[attr-defined]


def give_gas(chain: Chain, address: str) -> None:
    """Sends the account 1 ETH from the in-process chain's unlocked relayer, so its first own
    transaction needs no top-up on the way."""
    tx_hash = chain.w3.eth.send_transaction({"from": chain.relayer.address, "to": address, "value": 10**18})
    chain.w3.eth.wait_for_transaction_receipt(tx_hash)


DUSD = 10**6
"""One Demo USD in its smallest units (6 decimals)."""
DISPUTE_WINDOW = 14 * 86_400
"""The dispute window `Trade.terms` agrees when an order names an arbiter."""


@dataclass
class Trade:
    """A buyer, a seller and the pallet between them, with an escrow: builds orders and moves the
    pallet on the registry with each participant signing its own events.

    The manufacturer sells; the retailer buys and receives (its address is the receiving address);
    a carrier carries; customs inspects; an auditor can recall the pallet (a packed unit: only
    auditors may recall one).
    """

    chain: Chain
    registry: TraceRegistry
    escrow: TradeEscrow
    token: Token
    manufacturer: Actor
    carrier: Actor
    customs: Actor
    retailer: Actor
    auditor: Actor
    arbiter: LocalAccount
    item: bytes
    shipment: bytes

    @property
    def buyer(self) -> LocalAccount:
        return account_of(self.retailer)

    @property
    def seller(self) -> LocalAccount:
        return account_of(self.manufacturer)

    def terms(self, **overrides: Any) -> OrderTerms:
        """1,000 dUSD, FOB-like 3000/0/7000, due in a day, no arbiter or penalties unless overridden;
        an arbiter comes with a 14-day dispute window unless one is given."""
        fields: dict[str, Any] = {
            "seller": self.manufacturer.address,
            "token": self.token.address,
            "amount": 1_000 * DUSD,
            "shipment": self.shipment,
            "receiver": self.retailer.address,
            "milestone_bps": (3000, 0, 7000),
            "deadline": latest_timestamp(self.chain) + 86_400,
        }
        if overrides.get("arbiter", ZERO_ADDRESS) != ZERO_ADDRESS:
            fields["dispute_window"] = DISPUTE_WINDOW
        return OrderTerms(**{**fields, **overrides})

    def create(self, **overrides: Any) -> int:
        return self.escrow.create_order(self.buyer, self.terms(**overrides)).order_id

    def accept(self, order_id: int) -> EscrowResult:
        return self.escrow.accept_order(self.seller, order_id)

    def accepted(self, **overrides: Any) -> int:
        """An order the buyer created and the seller accepted: ready to fund."""
        order_id = self.create(**overrides)
        self.accept(order_id)
        return order_id

    def fund(self, order_id: int) -> EscrowResult:
        """The buyer gets the amount from the faucet, approves the escrow and funds the order."""
        amount = self.escrow.order_of(order_id).terms.amount
        self.token.faucet(self.buyer.address, amount)
        self.token.approve(self.buyer, self.escrow.address, amount)
        return self.escrow.fund(self.buyer, order_id)

    def funded(self, **overrides: Any) -> int:
        order_id = self.accepted(**overrides)
        self.fund(order_id)
        return order_id

    def balances(self) -> tuple[int, int, int]:
        """The seller's, the buyer's and the escrow's token balances."""
        return (
            self.token.balance_of(self.manufacturer.address),
            self.token.balance_of(self.buyer.address),
            self.token.balance_of(self.escrow.address),
        )

    # -------------------------------------------------- the pallet's journey, as the registry sees it

    def ship(self) -> None:
        """The seller hands the pallet to the carrier: proposed, then accepted."""
        record(self.registry, self.manufacturer, Kind.SHIP, self.shipment, counterpart=self.carrier.address)
        record(self.registry, self.carrier, Kind.RECEIVE, self.shipment)

    def clear_customs(self, verdict: bytes = VERDICT_CLEARED) -> None:
        record(self.registry, self.customs, Kind.INSPECT, self.shipment, ref=verdict)

    def report_excursion(self, by: Actor | None = None) -> None:
        """The custodian (the carrier unless told) reports a reading outside the agreed range."""
        record(self.registry, by or self.carrier, Kind.EXCURSION, self.shipment)

    def recall(self) -> None:
        record(self.registry, self.auditor, Kind.RECALL, self.shipment)

    def deliver(self) -> None:
        """The carrier hands the pallet to the buyer's receiving address, which signs its receipt."""
        record(self.registry, self.carrier, Kind.SHIP, self.shipment, counterpart=self.retailer.address)
        record(self.registry, self.retailer, Kind.RECEIVE, self.shipment)


def deploy_contract(chain: Chain, artifact: Artifact, *args: Any) -> Contract:
    """Deploys a compiled contract (a test token of contracts/mocks, say: `mock_artifacts`)."""
    receipt = transact(
        chain, chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode).constructor(*args)
    )
    address = receipt["contractAddress"]
    assert address is not None
    return chain.w3.eth.contract(address=address, abi=artifact.abi)
