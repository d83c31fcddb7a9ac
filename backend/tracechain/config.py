"""Settings, read from the environment (prefix TRACECHAIN_) and an optional .env file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where the repository's sources live when tracechain runs from a checkout: contracts/ and
# node_modules/ are only needed to compile or to run the managed node, never to serve.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


class ChainMode(StrEnum):
    ANVIL = "anvil"  # a local anvil node that tracechain starts, stops and persists itself
    TESTER = "tester"  # eth-tester on py-evm inside this process; forgets everything on exit
    RPC = "rpc"  # any JSON-RPC node at rpc_url (anvil, geth, Besu, a testnet)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACECHAIN_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".tracechain")
    """Everything tracechain keeps between runs: the managed node's state, deployments, the database."""

    chain: ChainMode = ChainMode.ANVIL
    rpc_url: str | None = None
    """Setting this alone selects chain=rpc."""

    anvil_host: str = "127.0.0.1"
    anvil_port: int = 8545
    anvil_binary: Path | None = None
    """Defaults to the binary of the pinned npm package @foundry-rs/anvil."""
    chain_id: int = 31337
    """Chain id of the managed anvil node (other modes report their own)."""

    relayer_key: SecretStr | None = None
    """Private key that pays for transactions on an rpc chain. Local chains use a funded dev account."""

    solc_binary: Path | None = None
    """A native solc to compile with instead of the npm `solc` package run by Node."""

    @model_validator(mode="after")
    def _rpc_url_selects_rpc(self) -> Settings:
        if self.rpc_url and "chain" not in self.model_fields_set:
            self.chain = ChainMode.RPC
        if self.chain is ChainMode.RPC and not self.rpc_url:
            raise ValueError("chain=rpc needs TRACECHAIN_RPC_URL, the node's JSON-RPC address")
        return self

    @property
    def anvil_state_file(self) -> Path:
        return self.data_dir / "anvil-state.json"

    @property
    def deployments_dir(self) -> Path:
        return self.data_dir / "deployments"


@lru_cache
def get_settings() -> Settings:
    return Settings()
