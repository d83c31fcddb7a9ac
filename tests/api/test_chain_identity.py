"""A database's records are on one chain: served against another (same chain id, another node, a
wiped state), the service refuses to start or to roll anything back, and says what differs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web3 import HTTPProvider

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain, rpc_chain
from tracechain.chain.identity import WrongChain
from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode, find_anvil_binary
from tracechain.config import ChainMode, Settings
from tracechain.store.models import RecordStatus

from ..conftest import free_port
from .conftest import Api, _cast, service_settings
from .test_capture import ITEM, commissioning
from .test_submission_and_indexing import statuses


class _AnvilOfAnotherDay(AnvilNode):
    """An anvil whose first block is dated in 2001: two anvils started in the same second would
    otherwise share a first block, and be one chain as far as anyone can tell."""

    def command(self) -> list[str]:
        return [*super().command(), "--timestamp", "1000000000"]


@pytest.fixture
def other_node() -> Iterator[AnvilNode]:
    """Another anvil with the same chain id: another chain all the same (its own first block)."""
    node = _AnvilOfAnotherDay(find_anvil_binary(Settings()), port=free_port())
    with node:
        yield node


def served(tmp_path: Path, postgres_url: str, chain: Chain) -> TestClient:
    settings = service_settings(
        tmp_path, database_url=postgres_url, chain=ChainMode.RPC, rpc_url="http://unused"
    )
    return TestClient(create_app(settings, chain=chain, run_workers=False))


def test_a_database_served_against_another_chain_with_the_same_id_is_refused_saying_what_differs(
    tmp_path: Path, postgres_url: str, anvil_chain: Chain, other_node: AnvilNode
) -> None:
    with served(tmp_path, postgres_url, anvil_chain) as client:
        api = Api(client)
        api.capture(_cast(api)["manufacturer"], [commissioning()])
        api.settle()

    other = rpc_chain(other_node.url, ANVIL_DEV_KEY)
    assert other.chain_id == anvil_chain.chain_id
    with pytest.raises(WrongChain) as refused, served(tmp_path / "again", postgres_url, other):
        pass
    assert "first block" in str(refused.value) and "another chain" in str(refused.value)
    assert other_node.url in str(refused.value)


def test_a_chain_that_lost_the_registry_is_refused_not_redeployed(
    tmp_path: Path, postgres_url: str, anvil_chain: Chain
) -> None:
    w3 = anvil_chain.w3
    before = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    with served(tmp_path, postgres_url, anvil_chain) as client:
        registry = client.app.state.services.registry.address  # type: ignore[attr-defined]
    w3.provider.make_request("evm_revert", [before])  # type: ignore[arg-type]  # the chain's state is gone

    with pytest.raises(WrongChain) as refused, served(tmp_path, postgres_url, anvil_chain):
        pass
    assert f"no contract at the registry's address {registry} (the chain lost it)" in str(refused.value)


def test_a_node_swapped_while_running_is_not_taken_for_a_reorganisation(
    real_api: Api, real_parties: dict[str, Any], other_node: AnvilNode
) -> None:
    """The indexer found another chain's block at the height it had indexed and rolled back every
    record it had confirmed; the submitter then sent them all again."""
    api = real_api
    api.capture(real_parties["manufacturer"], [commissioning()])
    api.settle()
    assert statuses(api) == [RecordStatus.CONFIRMED]
    w3 = api.services.chain.w3
    right = w3.provider
    w3.provider = HTTPProvider(other_node.url)
    other = rpc_chain(other_node.url, ANVIL_DEV_KEY)
    other.w3.provider.make_request("anvil_mine", [50])  # type: ignore[arg-type]  # higher than ours
    try:
        with pytest.raises(WrongChain):
            api.services.indexer.run_once()
        with pytest.raises(WrongChain):
            api.services.submitter.run_once()
        assert statuses(api) == [RecordStatus.CONFIRMED]
    finally:
        w3.provider = right

    api.settle()
    assert statuses(api) == [RecordStatus.CONFIRMED]
    assert api.client.get(f"/trace/{ITEM}").json()["verdict"] == "verified"
