"""Gas of recording one event alone and per event in a batch of 100 (signatures checked on chain).

Gas is deterministic for given code and calldata, so budgets are asserted here; the figures are
printed for README. Commissioning writes two new storage slots (the product and its head), which is
44,200 gas of its cost, and so does a reporter's first observation of a subject (its own chain's
head); the other kinds update slots that already exist, except that a receipt keeps the trade facts
for good: the manufacturer's first handover fits in the product's slot, while a later one writes a
new slot of the sender's facts (its receipt and its handover), 22,100 gas.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tracechain.chain.connect import Chain
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import Kind, SignedEvent

from ..factories import Actor, sgtin, sign_event

BATCH = 100
SINGLE_BUDGET = 80_000
BATCHED_BUDGET = 20_000


@pytest.fixture(scope="module")
def gas_figures(anvil_chain: Chain) -> dict[str, tuple[int, float]]:
    registry = TraceRegistry.deploy(anvil_chain)
    manufacturer, carrier = Actor.new("manufacturer", registry), Actor.new("carrier", registry)
    retailer = Actor.new("retailer", registry)
    registry.grant_role(Role.MANUFACTURER, manufacturer.address)
    registry.grant_role(Role.CARRIER, carrier.address)
    registry.grant_role(Role.RETAILER, retailer.address)
    serials = iter(range(10**6))

    def commissioned(count: int) -> list[bytes]:
        subjects = [sgtin(next(serials)) for _ in range(count)]
        registry.record([sign_event(registry, manufacturer, Kind.COMMISSION, s) for s in subjects])
        return subjects

    def shipped(count: int) -> list[bytes]:
        subjects = commissioned(count)
        registry.record(
            [sign_event(registry, manufacturer, Kind.SHIP, s, counterpart=carrier.address) for s in subjects]
        )
        return subjects

    def shipped_on(count: int) -> list[bytes]:
        """Received by the carrier, who ships them on to the retailer."""
        subjects = shipped(count)
        registry.record([sign_event(registry, carrier, Kind.RECEIVE, s) for s in subjects])
        registry.record(
            [sign_event(registry, carrier, Kind.SHIP, s, counterpart=retailer.address) for s in subjects]
        )
        return subjects

    def observed(count: int) -> list[bytes]:
        subjects = commissioned(count)
        registry.record([sign_event(registry, manufacturer, Kind.OBSERVE, s) for s in subjects])
        return subjects

    scenarios: dict[str, tuple[Callable[[int], list[bytes]], Callable[[bytes], SignedEvent]]] = {
        "commission": (
            lambda n: [sgtin(next(serials)) for _ in range(n)],
            lambda s: sign_event(registry, manufacturer, Kind.COMMISSION, s),
        ),
        # A reporter's first observation of a subject starts its own chain of it (a new slot).
        "observe, first": (commissioned, lambda s: sign_event(registry, manufacturer, Kind.OBSERVE, s)),
        "observe": (observed, lambda s: sign_event(registry, manufacturer, Kind.OBSERVE, s)),
        "ship": (
            commissioned,
            lambda s: sign_event(registry, manufacturer, Kind.SHIP, s, counterpart=carrier.address),
        ),
        # The manufacturer's first handover is kept in the product's own slot: no new slot for it.
        "receive": (shipped, lambda s: sign_event(registry, carrier, Kind.RECEIVE, s)),
        # Any later handover keeps the sender's receipt and handover in a new slot of its facts.
        "receive, onward": (shipped_on, lambda s: sign_event(registry, retailer, Kind.RECEIVE, s)),
    }
    figures = {}
    for name, (prepare, sign) in scenarios.items():
        single = registry.record([sign(prepare(1)[0])]).gas_used
        batched = registry.record([sign(s) for s in prepare(BATCH)]).gas_used / BATCH
        figures[name] = (single, batched)
    return figures


def test_gas_per_event_alone_and_in_a_batch_of_100(
    gas_figures: dict[str, tuple[int, float]], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\n{'event':<16}{'alone':>10}{'batch of 100, per event':>26}")
        for name, (single, batched) in gas_figures.items():
            print(f"{name:<16}{single:>10,}{batched:>26,.0f}")
    for name in ("observe", "ship", "receive"):
        assert gas_figures[name][0] <= SINGLE_BUDGET, name
    assert gas_figures["observe"][1] <= BATCHED_BUDGET
    # Two fresh storage slots per product cannot fit the batched budget; keep it from growing.
    assert gas_figures["commission"][0] <= 83_000
    # A handover after the first writes the sender's facts to a new slot (measured: 83,486).
    assert gas_figures["receive, onward"][0] <= 85_000
