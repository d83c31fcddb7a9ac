"""Python EIP-712 digests equal the contract's and a generic library's; signatures cannot be replayed."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from tracechain.chain import reverts
from tracechain.chain.connect import Chain, rpc_chain
from tracechain.chain.eip712 import Domain, EventSigner, digest, typed_data
from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode, find_anvil_binary
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import Kind, TraceEvent
from tracechain.config import Settings

from ..conftest import free_port
from ..factories import Actor, sgtin, sign_event

events = st.builds(
    TraceEvent,
    subject=st.binary(min_size=32, max_size=32),
    kind=st.sampled_from(Kind),
    event_hash=st.binary(min_size=32, max_size=32),
    counterpart=st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b)),
    ref=st.binary(min_size=32, max_size=32),
    time=st.integers(min_value=0, max_value=2**64 - 1),
    prev_head=st.binary(min_size=32, max_size=32),
)


@pytest.fixture(scope="module")
def parity_registry(tester_chain: Chain) -> TraceRegistry:
    return TraceRegistry.deploy(tester_chain)


@settings(max_examples=60, deadline=None)
@given(event=events)
def test_python_digest_equals_contract_and_eth_account(
    parity_registry: TraceRegistry, event: TraceEvent
) -> None:
    ours = digest(parity_registry.domain.separator, event)
    assert ours == parity_registry.event_digest(event.as_abi_tuple())
    generic = encode_typed_data(full_message=typed_data(parity_registry.domain, event))
    assert ours == keccak(b"\x19" + generic.version + generic.header + generic.body)


def test_compact_signature_recovers_to_the_signer_with_a_generic_wallet(
    parity_registry: TraceRegistry,
) -> None:
    """A wallet signing the published typed data produces a signature the contract accepts."""
    key = os.urandom(32)
    ours = EventSigner(key, parity_registry.domain).sign(TraceEvent(sgtin(1), Kind.OBSERVE, os.urandom(32)))
    wallet = Account.from_key(key).sign_typed_data(
        full_message=typed_data(parity_registry.domain, ours.event)
    )
    assert wallet.r == int.from_bytes(ours.r, "big")
    s = int.from_bytes(ours.vs, "big") & ((1 << 255) - 1)
    assert wallet.s == s
    assert wallet.v - 27 == int.from_bytes(ours.vs, "big") >> 255


def test_replayed_event_is_rejected_as_stale(
    registry: TraceRegistry, manufacturer: Actor, auditor: Actor
) -> None:
    signed = sign_event(registry, auditor, Kind.OBSERVE, sgtin(1))
    registry.record([signed])
    with pytest.raises(reverts.TraceRegistryStaleHead) as exc:
        registry.record([signed])
    assert exc.value.arguments == {
        "subject": sgtin(1),
        "head": registry.observation_head_of(sgtin(1), auditor.address),
        "signedHead": signed.event.prev_head,
    }


def test_replay_on_another_registry_of_the_same_chain_is_rejected(
    tester_chain: Chain, registry: TraceRegistry, auditor: Actor
) -> None:
    other = TraceRegistry.deploy(tester_chain)
    other.grant_role(Role.AUDITOR, auditor.address)
    signed = sign_event(registry, auditor, Kind.OBSERVE, sgtin(1))
    registry.record([signed])
    with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
        other.record([signed])
    assert exc.value.arguments["signer"] == auditor.address
    assert exc.value.arguments["recovered"] != auditor.address


def test_replay_on_another_chain_id_is_rejected() -> None:
    """Same deployer, same nonce, so the same contract address on two chains that differ only in id."""
    binary = find_anvil_binary(Settings())
    with (
        AnvilNode(binary, port=free_port(), chain_id=1001) as first,
        AnvilNode(binary, port=free_port(), chain_id=1002) as second,
    ):
        registries = [TraceRegistry.deploy(rpc_chain(node.url, ANVIL_DEV_KEY)) for node in (first, second)]
        assert registries[0].address == registries[1].address
        key = os.urandom(32)
        signer_on_first = EventSigner(key, registries[0].domain)
        for registry in registries:
            registry.grant_role(Role.AUDITOR, signer_on_first.address)
        signed = signer_on_first.sign(TraceEvent(sgtin(1), Kind.OBSERVE, os.urandom(32)))
        registries[0].record([signed])
        with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
            registries[1].record([signed])
        assert exc.value.arguments["signer"] == signer_on_first.address
        # Signed for the second chain's domain, the same event is accepted there.
        resigned = EventSigner(key, Domain(1002, registries[1].address)).sign(signed.event)
        registries[1].record([resigned])
