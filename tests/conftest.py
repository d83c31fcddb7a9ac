"""Chains, registries and participants for the tests.

The in-process chain (eth-tester on py-evm) serves most tests; `any_chain` runs a test on it and on a
real anvil node that the session starts on a free port and stops at the end.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tracechain.chain.connect import Chain, in_process_chain, rpc_chain
from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode, find_anvil_binary
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.config import Settings

from .factories import Actor
from .nodes.hardhat_network import HardhatNetworkNode

POSTGRES_ADMIN_URL = "postgresql://root@127.0.0.1:5432/test"
"""The PostgreSQL server every machine of this project runs (trust auth)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def tester_chain() -> Chain:
    return in_process_chain()


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    node = AnvilNode(find_anvil_binary(Settings()), port=free_port())
    with node:
        yield node


@pytest.fixture(scope="session")
def hardhat_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HardhatNetworkNode]:
    """A second node implementation, Hardhat Network, for the tests marked `hardhat`."""
    log_file = tmp_path_factory.mktemp("hardhat") / "node.log"
    with HardhatNetworkNode(free_port(), log_file) as node:
        yield node


@pytest.fixture(scope="session")
def anvil_chain(anvil_node: AnvilNode) -> Chain:
    return rpc_chain(anvil_node.url, ANVIL_DEV_KEY)


@pytest.fixture(params=["tester", "anvil"])
def any_chain(request: pytest.FixtureRequest) -> Chain:
    chain: Chain = request.getfixturevalue(f"{request.param}_chain")
    return chain


@pytest.fixture
def registry(tester_chain: Chain) -> TraceRegistry:
    """A fresh registry per test, so no test sees another's products."""
    return TraceRegistry.deploy(tester_chain)


def _participant(registry: TraceRegistry, name: str, *roles: bytes) -> Actor:
    actor = Actor.new(name, registry)
    for role in roles:
        registry.grant_role(role, actor.address)
    return actor


@pytest.fixture
def manufacturer(registry: TraceRegistry) -> Actor:
    return _participant(registry, "manufacturer", Role.MANUFACTURER)


@pytest.fixture
def carrier(registry: TraceRegistry) -> Actor:
    return _participant(registry, "carrier", Role.CARRIER)


@pytest.fixture
def customs(registry: TraceRegistry) -> Actor:
    return _participant(registry, "customs", Role.CUSTOMS)


@pytest.fixture
def retailer(registry: TraceRegistry) -> Actor:
    return _participant(registry, "retailer", Role.RETAILER)


@pytest.fixture
def auditor(registry: TraceRegistry) -> Actor:
    return _participant(registry, "auditor", Role.AUDITOR)


@pytest.fixture
def outsider(registry: TraceRegistry) -> Actor:
    """Holds no role at all."""
    return Actor.new("outsider", registry)


@contextmanager
def temporary_database(prefix: str = "tracechain_test") -> Iterator[str]:
    """A new, empty PostgreSQL database on the machine's server, dropped afterwards (also used by
    scripts/bench.py)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://root@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database on the machine's server, dropped afterwards."""
    with temporary_database() as url:
        yield url
