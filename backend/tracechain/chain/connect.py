"""Connects to the chain the settings choose: managed anvil, in-process eth-tester, or any RPC node."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, HTTPProvider, Web3

from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode, node_answers
from tracechain.config import ChainMode, Settings
from tracechain.errors import ChainError, ConfigurationError


@dataclass(frozen=True, slots=True)
class Block:
    """What tracechain reads of a block: where it is, its hash (0x-hex), its time and gas limit."""

    number: int
    hash: str
    timestamp: int
    gas_limit: int


@dataclass
class Chain:
    """A connected chain and its relayer: the account that signs and pays for the service's own
    transactions on it (a participant's acts go out from the participant's account)."""

    w3: Web3
    mode: ChainMode
    relayer: LocalAccount

    @cached_property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    @cached_property
    def speaks_raw_json_rpc(self) -> bool:
        """False for eth-tester in this process: it answers only through web3's formatters, so
        tracechain cannot read raw JSON-RPC answers from it, nor estimate at the pending block."""
        return not isinstance(self.w3.provider, EthereumTesterProvider)

    @property
    def endpoint(self) -> str | None:
        """The node's JSON-RPC URL; None for the in-process chain, which has none."""
        url = getattr(self.w3.provider, "endpoint_uri", None)
        return str(url) if url else None

    def tip(self) -> int:
        """The number of the latest block."""
        return int(self.w3.eth.block_number)

    def tip_within(self, timeout_s: float) -> int:
        """The number of the latest block, asked over a connection of its own that gives up after
        `timeout_s` (this chain's waits 60 s: too long for a readiness check). Raises what the
        connection raised when the node does not answer."""
        url = self.endpoint
        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout_s})) if url else self.w3
        return int(w3.eth.block_number)

    def block(self, which: int | Literal["latest"] = "latest") -> Block:
        """A block by number, or the latest one."""
        found = self.w3.eth.get_block(which)
        return Block(
            number=int(found["number"]),
            hash=HexBytes(found["hash"]).to_0x_hex(),
            timestamp=int(found["timestamp"]),
            gas_limit=int(found["gasLimit"]),
        )


def in_process_chain() -> Chain:
    """A fresh eth-tester chain on py-evm, inside this process. Nothing survives the process."""
    from eth_tester import EthereumTester, PyEVMBackend  # only the [tester] extra installs it
    from web3 import EthereumTesterProvider

    backend = PyEVMBackend()
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))
    return Chain(w3, ChainMode.TESTER, Account.from_key(backend.account_keys[0].to_bytes()))


def rpc_chain(url: str, relayer_key: str, mode: ChainMode = ChainMode.RPC) -> Chain:
    return Chain(node_at(url), mode, Account.from_key(relayer_key))


def node_at(url: str, timeout_s: float = 60) -> Web3:
    """The JSON-RPC node at `url`, for reading (no relayer: `tracechain verify` sends nothing);
    ChainError if none answers there."""
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout_s}))
    if not w3.is_connected():
        raise ChainError(f"no JSON-RPC node answers at {url}")
    return w3


@contextmanager
def open_chain(settings: Settings, *, start_node: bool = True) -> Iterator[Chain]:
    """The chain chosen by settings, for as long as the block runs.

    The managed anvil is started here unless one already answers on its port (such as
    `tracechain node` in another terminal), and stopped on exit only if started here. Without
    `start_node` (a worker process beside `serve`), a managed node that does not answer is a
    ChainError.
    """
    if settings.chain is ChainMode.TESTER:
        yield in_process_chain()
    elif settings.chain is ChainMode.RPC:
        if settings.relayer_key is None:
            raise ConfigurationError(
                "chain=rpc needs TRACECHAIN_RELAYER_KEY, the key that pays for transactions"
            )
        assert settings.rpc_url is not None  # Settings validates it
        yield rpc_chain(settings.rpc_url, settings.relayer_key.get_secret_value())
    else:
        node = AnvilNode.from_settings(settings)
        if node_answers(node.url):
            yield rpc_chain(node.url, ANVIL_DEV_KEY, ChainMode.ANVIL)
        elif not start_node:
            raise ChainError(f"no node answers at {node.url}")
        else:
            with node:
                yield rpc_chain(node.url, ANVIL_DEV_KEY, ChainMode.ANVIL)
