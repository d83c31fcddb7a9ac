"""Settings, read from the environment (prefix TRACECHAIN_) and an optional .env file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tracechain.errors import ConfigurationError

# Where the repository's sources live when tracechain runs from a checkout: contracts/ and
# node_modules/ are only needed to compile or to run the managed node, never to serve.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


_PLACEHOLDERS = {"secret", "changeme", "change-me", "password", "test"}


class ChainMode(StrEnum):
    ANVIL = "anvil"  # a local anvil node that tracechain starts, stops and persists itself
    TESTER = "tester"  # eth-tester on py-evm inside this process; forgets everything on exit
    RPC = "rpc"  # any JSON-RPC node at rpc_url (anvil, geth, Besu, a testnet)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACECHAIN_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".tracechain")
    """Everything tracechain keeps between runs: the managed node's state, deployments, the database."""

    host: str = "127.0.0.1"
    """Interface `tracechain serve` listens on (`--host` overrides it)."""
    port: int = 8000
    """Port `tracechain serve` listens on (`--port` overrides it); the demo's printed links use it."""

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

    database_url: str | None = None
    """SQLAlchemy URL (sqlite:///… or postgresql://…); defaults to SQLite in the data folder."""

    demo_mode: bool = False
    """Allows a missing master secret and admin token (the demo's own are used). Never in production."""
    admin_token: SecretStr | None = None
    """Bearer token of the administrator, who creates participants."""
    master_secret: SecretStr | None = None
    """Encrypts the participant keys the service holds (AES-256-GCM under a key derived from it)."""

    settlement_token: str | None = None
    """ERC-20 address escrow orders pay in. Local chains deploy the demo stablecoin (dUSD) when unset."""

    confirmations: int = 0
    """Blocks a record must be buried under before the read model calls it confirmed."""
    batch_size: int = 200
    """Most signed events per transaction."""
    recording_mode: Literal["batched", "merkle", "hybrid"] = "batched"
    """batched: every signed event goes through TraceRegistry.record(), which checks and applies it
    on chain (custody that escrow can read). merkle: a batch's events become the leaves of a Merkle
    tree and one transaction anchors its root; custody is enforced off chain only. hybrid: facts
    (every kind that changes or vouches for a subject) through record(), observations (Observe,
    Withdraw: each reporter's own chain of a subject) anchored (README: Recording modes)."""
    run_workers: bool = True
    """`serve` runs the submitter, indexer and settler in threads of its own process. Set false when
    `tracechain work` runs them in a process of their own, beside `serve` (PostgreSQL only): on a
    2-core machine that lifts ingest from one Python interpreter's lock (README: Performance)."""
    poll_interval: float = 0.2
    """Seconds between the submitter's and the indexer's rounds when idle."""

    capture_max_bytes: int = 200_000_000
    """Largest capture body, in bytes; a bigger one is refused (413) before it is read. EPCIS
    exchanges carry files of 100 MB: bodies over `capture_stream_from_bytes` are spooled to disk
    and captured a chunk of events at a time, so their size costs disk, not memory."""
    capture_stream_from_bytes: int = 4_000_000
    """Capture bodies (JSON or XML) up to this size are read into memory and captured at once (a
    refusal is the answer, 400); bigger ones are streamed: read once for their outline (a body
    that is not JSON, or not XML valid by GS1's XSD, is refused then, 400), answered 202, their job
    `capturing` with its progress until every event is stored, or failed naming what refused the
    document."""
    capture_max_events: int = 100_000
    """Most events in one capture document (a streamed one holds the capture lock while it is
    stored: about a second per thousand events)."""
    capture_max_epcs_per_event: int = 5_000
    """Most identifiers one event may name (every one becomes a signed chain record)."""
    capture_max_event_bytes: int = 1_000_000
    """Largest single event, in bytes of compact JSON (its body is stored and served as is)."""
    capture_queue: int = 256
    """Captures that may wait for the capture lock at once; more are answered 503 with Retry-After.
    A waiting capture holds no database connection, only its body and a thread while it runs."""
    capture_queue_bytes: int = 200_000_000
    """Bytes of capture bodies that may wait at once (each counted by its Content-Length before it
    is read, one without as capture_max_bytes); more are answered 503 with Retry-After."""
    signature_timeout_hours: float = 24
    """How long a participant that keeps its own key has to sign its records before the capture
    fails (its records hold back only the subjects they touch meanwhile)."""

    webhook_allow_private: bool = False
    """Whether subscriptions may deliver to loopback, private, link-local and other non-public
    addresses. Off: a participant's webhook must not reach the service's own network (the cloud's
    metadata endpoint, the database, an admin port). On for tests and single-host set-ups."""
    webhook_timeout_s: float = 10.0
    """How long a subscriber's endpoint has to answer one delivery before it counts as failed."""
    webhook_retry_base_s: float = 2.0
    """The first wait before a failed delivery is sent again; it doubles with each failure."""
    webhook_retry_max_s: float = 3600.0
    """The longest wait between two attempts of a delivery: it is retried until it succeeds or its
    subscription is deleted."""

    @model_validator(mode="after")
    def _rpc_url_selects_rpc(self) -> Settings:
        if self.rpc_url and "chain" not in self.model_fields_set:
            self.chain = ChainMode.RPC
        if self.chain is ChainMode.RPC and not self.rpc_url:
            raise ValueError("chain=rpc needs TRACECHAIN_RPC_URL, the node's JSON-RPC address")
        return self

    def require_secrets(self) -> None:
        """Refuse to serve without real secrets unless this is explicitly a demo."""
        if self.demo_mode:
            return
        for name, value in (
            ("TRACECHAIN_MASTER_SECRET", self.master_secret),
            ("TRACECHAIN_ADMIN_TOKEN", self.admin_token),
        ):
            secret = value.get_secret_value() if value else ""
            if len(secret) < 32 or secret.lower() in _PLACEHOLDERS or secret.startswith("change"):
                raise ConfigurationError(
                    f"{name} must be set to a random secret of at least 32 characters "
                    "(or set TRACECHAIN_DEMO_MODE=true for a throwaway demo)"
                )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'tracechain.db').resolve()}"

    @property
    def anvil_state_file(self) -> Path:
        return self.data_dir / "anvil-state.json"

    @property
    def deployments_dir(self) -> Path:
        return self.data_dir / "deployments"


@lru_cache
def get_settings() -> Settings:
    return Settings()
