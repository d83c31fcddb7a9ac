"""The registry wrapper's hand-made calldata and log decoding equal web3's generic ones."""

from __future__ import annotations

import pytest
from hexbytes import HexBytes

from tracechain.chain.connect import Chain
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import Kind, SignedEvent

from ..factories import Actor, random_hash, sgtin, sign_event


def _commissions(registry: TraceRegistry, maker: Actor, count: int) -> list[SignedEvent]:
    return [
        sign_event(registry, maker, Kind.COMMISSION, sgtin(f"enc{n}"), time=1_767_225_600 + n)
        for n in range(count)
    ]


def test_record_calldata_equals_web3s_abi_encoding(registry: TraceRegistry, manufacturer: Actor) -> None:
    events = _commissions(registry, manufacturer, 3)
    shipped = sign_event(
        registry, manufacturer, Kind.SHIP, sgtin("enc0"), counterpart=manufacturer.address, ref=random_hash()
    )
    events.append(shipped)
    expected = registry.contract.encode_abi("record", [[e.as_abi_tuple() for e in events]])
    assert registry.record_calldata(events) == HexBytes(expected)
    assert registry.record_calldata([]) == HexBytes(registry.contract.encode_abi("record", [[]]))


def test_recorded_events_decode_as_web3_decodes_them(registry: TraceRegistry, manufacturer: Actor) -> None:
    result = registry.record(_commissions(registry, manufacturer, 3))
    decoded = registry.recorded_events()
    assert decoded == result.events  # result.events went through web3's event decoder
    assert registry.recorded_events(subject=sgtin("enc1")) == [result.events[1]]


@pytest.mark.anvil
def test_recorded_events_decode_the_raw_json_rpc_answer_of_a_node(anvil_chain: Chain) -> None:
    registry = TraceRegistry.deploy(anvil_chain)
    maker = Actor.new("manufacturer", registry)
    registry.grant_role(Role.MANUFACTURER, maker.address)
    result = registry.record(_commissions(registry, maker, 3))
    block = result.receipt["blockNumber"]
    assert registry.recorded_events(from_block=block, to_block=block) == result.events
    assert registry.recorded_events(from_block=block, subject=sgtin("enc2")) == [result.events[2]]
