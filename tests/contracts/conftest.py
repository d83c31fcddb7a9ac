"""Subjects that most TraceRegistry tests start from, on top of the participants in tests/conftest.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from eth_account import Account

from tracechain.chain.artifacts import Artifact
from tracechain.chain.compiler import compile_contracts
from tracechain.chain.connect import Chain
from tracechain.chain.escrow import Token, TradeEscrow
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import Kind

from ..factories import Actor, Trade, account_of, give_gas, pack, record, sgtin, sscc


@pytest.fixture
def item(registry: TraceRegistry, manufacturer: Actor) -> bytes:
    """An item the manufacturer commissioned and still holds, packed in nothing."""
    subject = sgtin(1)
    record(registry, manufacturer, Kind.COMMISSION, subject)
    return subject


@pytest.fixture
def case() -> bytes:
    """The logistic unit `packed_item` is packed into; it exists once `packed_item` does."""
    return sscc(100)


@pytest.fixture
def packed_item(registry: TraceRegistry, manufacturer: Actor, case: bytes) -> bytes:
    """An item the manufacturer commissioned and packed into `case`, which the packing created."""
    subject = sgtin(2)
    record(registry, manufacturer, Kind.COMMISSION, subject)
    pack(registry, manufacturer, case, subject)
    return subject


# ---------------------------------------------------------------- test-only contracts


@pytest.fixture(scope="session")
def mock_artifacts() -> dict[str, Artifact]:
    """The test tokens of contracts/mocks/, compiled once per session: the package ships none of them."""
    artifacts = {}
    for text in compile_contracts(test_contracts=True).files.values():
        data = json.loads(text)
        if "abi" in data:
            artifacts[data["contractName"]] = Artifact(
                data["contractName"], data["abi"], data["bytecode"], data["deployedBytecode"]
            )
    return artifacts


# ---------------------------------------------------------------- settlement (TradeEscrow)


@pytest.fixture(scope="module")
def trade_world(tester_chain: Chain) -> tuple[Trade, int]:
    """A registry with its participants, a packed pallet, an escrow and dUSD, deployed once per module,
    and the chain snapshot every `trade` starts from (twenty-odd transactions saved per test)."""
    registry = TraceRegistry.deploy(tester_chain)
    cast = {}
    for name, role in [
        ("manufacturer", Role.MANUFACTURER),
        ("carrier", Role.CARRIER),
        ("customs", Role.CUSTOMS),
        ("retailer", Role.RETAILER),
        ("auditor", Role.AUDITOR),
    ]:
        cast[name] = Actor.new(name, registry)
        registry.grant_role(role, cast[name].address)
    item, pallet = sgtin(1), sscc(1)
    record(registry, cast["manufacturer"], Kind.COMMISSION, item)
    pack(registry, cast["manufacturer"], pallet, item)
    trade = Trade(
        chain=tester_chain,
        registry=registry,
        escrow=TradeEscrow.deploy(tester_chain, registry.address),
        token=Token.deploy_demo_stablecoin(tester_chain),
        arbiter=Account.create(),
        item=item,
        shipment=pallet,
        **cast,
    )
    for account in (trade.buyer, trade.seller, trade.arbiter, account_of(trade.carrier)):
        give_gas(tester_chain, account.address)
    return trade, tester_chain.w3.testing.snapshot()  # type: ignore[attr-defined]


@pytest.fixture
def trade(trade_world: tuple[Trade, int]) -> Iterator[Trade]:
    """The manufacturer sells the retailer a pallet it packed and still holds, through an escrow
    paying in dUSD. The chain is as `trade_world` left it, whatever the test before did, and is put
    back afterwards, so no later test inherits this one's blocks or its time travel."""
    trade, snapshot = trade_world
    trade.chain.w3.testing.revert(snapshot)  # type: ignore[attr-defined]
    yield trade
    trade.chain.w3.testing.revert(snapshot)  # type: ignore[attr-defined]
