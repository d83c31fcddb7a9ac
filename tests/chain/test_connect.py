"""The chain layer against the in-process chain and a real anvil: connect, deploy, revert, persist."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracechain.chain import reverts
from tracechain.chain.connect import Chain, open_chain
from tracechain.chain.node import AnvilNode, find_anvil_binary
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import Kind, Status
from tracechain.config import ChainMode, Settings
from tracechain.errors import ChainError, ConfigurationError, NodeStartError

from ..conftest import free_port
from ..factories import Actor, record, sgtin


def test_deploy_record_and_revert_on_each_chain(any_chain: Chain) -> None:
    registry = TraceRegistry.deploy(any_chain)
    manufacturer = Actor.new("manufacturer", registry)
    registry.grant_role(Role.MANUFACTURER, manufacturer.address)

    result = record(registry, manufacturer, Kind.COMMISSION, sgtin(1))

    assert [e.kind for e in result.events] == [Kind.COMMISSION]
    assert registry.product_of(sgtin(1)).status is Status.ACTIVE
    with pytest.raises(reverts.TraceRegistryAlreadyCommissioned) as exc:
        record(registry, manufacturer, Kind.COMMISSION, sgtin(1))
    assert exc.value.arguments == {"subject": sgtin(1)}
    assert str(exc.value).startswith("TraceRegistryAlreadyCommissioned(subject=0x")


def test_in_process_mode_needs_no_setup() -> None:
    with open_chain(Settings(chain=ChainMode.TESTER)) as chain:
        assert chain.mode is ChainMode.TESTER
        assert chain.w3.eth.get_balance(chain.relayer.address) > 0


def test_managed_anvil_keeps_its_chain_across_a_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, anvil_port=free_port())
    with open_chain(settings) as chain:
        assert chain.mode is ChainMode.ANVIL
        registry = TraceRegistry.deploy(chain)
        manufacturer = Actor.new("manufacturer", registry)
        registry.grant_role(Role.MANUFACTURER, manufacturer.address)
        record(registry, manufacturer, Kind.COMMISSION, sgtin(7))
        head = registry.head_of(sgtin(7))
    assert settings.anvil_state_file.stat().st_size > 0

    with open_chain(settings) as chain:
        restarted = TraceRegistry(chain, registry.address)
        assert restarted.head_of(sgtin(7)) == head
        assert [e.subject for e in restarted.recorded_events()] == [sgtin(7)]


def test_open_chain_reuses_a_node_already_running_on_the_port(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, anvil_port=free_port())
    with AnvilNode.from_settings(settings) as node, open_chain(settings) as chain:
        TraceRegistry.deploy(chain)
        assert node_is_alive(node)
    # The node was started outside open_chain, so open_chain left it running until its own stop.


def node_is_alive(node: AnvilNode) -> bool:
    return node._process is not None and node._process.poll() is None


def test_starting_a_node_on_a_busy_port_fails_clearly(anvil_node: AnvilNode) -> None:
    second = AnvilNode(find_anvil_binary(Settings()), port=anvil_node.port)
    with pytest.raises(NodeStartError, match="already answers"):
        second.start()


def test_rpc_url_alone_selects_rpc_mode_and_it_needs_a_relayer_key() -> None:
    settings = Settings(rpc_url="http://127.0.0.1:1")
    assert settings.chain is ChainMode.RPC
    with pytest.raises(ConfigurationError, match="TRACECHAIN_RELAYER_KEY"), open_chain(settings):
        pass


def test_rpc_mode_without_url_is_refused() -> None:
    with pytest.raises(ValueError, match="TRACECHAIN_RPC_URL"):
        Settings(chain=ChainMode.RPC)


def test_unreachable_rpc_node_is_a_clear_error() -> None:
    settings = Settings(rpc_url=f"http://127.0.0.1:{free_port()}", relayer_key="0x" + "11" * 32)
    with pytest.raises(ChainError, match="no JSON-RPC node answers"), open_chain(settings):
        pass


def test_missing_anvil_binary_names_the_fix(tmp_path: Path) -> None:
    settings = Settings(anvil_binary=tmp_path / "no-such-anvil", anvil_port=free_port(), data_dir=tmp_path)
    with pytest.raises(NodeStartError, match=r"cannot run anvil at .*no-such-anvil"):
        AnvilNode.from_settings(settings).start()
