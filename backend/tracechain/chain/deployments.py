"""Where tracechain's contracts live on each chain, remembered in the data folder between runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from eth_utils import to_checksum_address

from tracechain.chain.connect import Chain
from tracechain.chain.escrow import Token, TradeEscrow
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.transactions import is_dev_chain
from tracechain.config import ChainMode, Settings
from tracechain.errors import ConfigurationError, NotDeployedYet


def load_or_deploy_registry(chain: Chain, settings: Settings, *, may_deploy: bool = True) -> TraceRegistry:
    """The registry recorded for this chain if its code is still there, else a new deployment.

    A chain that was reset (a wiped anvil state file, a new in-process chain) no longer holds the
    code, so the registry is deployed again rather than pointing at an empty address.
    """
    deployed: list[TraceRegistry] = []

    def deploy() -> str:
        deployed.append(TraceRegistry.deploy(chain))  # knows its deployment block: logs start there
        return deployed[0].address

    address = _load_or_deploy(chain, settings, "TraceRegistry", deploy, may_deploy=may_deploy)
    return deployed[0] if deployed else TraceRegistry(chain, address)


def ensure_anchorer(registry: TraceRegistry, *, may_grant: bool = True) -> None:
    """Merkle mode: the relayer, which sends the anchors, holds ANCHORER_ROLE (granted by itself as
    the registry's admin; on a registry someone else administers, that admin grants it)."""
    relayer = registry.chain.relayer.address
    if not registry.has_role(Role.ANCHORER, relayer):
        if not may_grant:
            raise NotDeployedYet(f"the relayer {relayer} does not hold ANCHORER_ROLE yet")
        registry.grant_role(Role.ANCHORER, relayer)


def load_or_deploy_escrow(
    chain: Chain, settings: Settings, registry: TraceRegistry, *, may_deploy: bool = True
) -> TradeEscrow:
    """The TradeEscrow bound to `registry`: a registry deployed anew gets a new escrow too."""

    def usable(address: str) -> bool:
        escrow = TradeEscrow(chain, address)
        return bool(to_checksum_address(escrow.registry_address()) == registry.address)

    address = _load_or_deploy(
        chain,
        settings,
        "TradeEscrow",
        lambda: TradeEscrow.deploy(chain, registry.address).address,
        usable,
        may_deploy=may_deploy,
    )
    return TradeEscrow(chain, address)


def settlement_token(chain: Chain, settings: Settings, *, may_deploy: bool = True) -> Token:
    """The ERC-20 orders pay in: TRACECHAIN_SETTLEMENT_TOKEN, or on a development chain the demo
    stablecoin. Raises ConfigurationError on any other chain without the setting."""
    if settings.settlement_token:
        token = Token(chain, settings.settlement_token)
        if not chain.w3.eth.get_code(token.address):
            raise ConfigurationError(
                f"TRACECHAIN_SETTLEMENT_TOKEN {token.address} holds no contract on this chain"
            )
        return token
    if not is_dev_chain(chain):
        raise ConfigurationError(
            "set TRACECHAIN_SETTLEMENT_TOKEN to the ERC-20 orders pay in; the demo stablecoin is only "
            "deployed on development chains"
        )
    address = _load_or_deploy(
        chain,
        settings,
        "DemoStablecoin",
        lambda: Token.deploy_demo_stablecoin(chain).address,
        may_deploy=may_deploy,
    )
    return Token(chain, address)


def _load_or_deploy(
    chain: Chain,
    settings: Settings,
    name: str,
    deploy: Callable[[], str],
    usable: Callable[[str], bool] = lambda address: True,
    *,
    may_deploy: bool,
) -> str:
    """The address of `name` recorded for this chain, or of a new deployment if `may_deploy`
    (only `serve` deploys: a worker process raises NotDeployedYet and waits for it)."""
    path = settings.deployments_dir / f"{chain.chain_id}.json"
    known = _read(path) if chain.mode is not ChainMode.TESTER else {}
    if name in known:
        kept = to_checksum_address(known[name])
        if chain.w3.eth.get_code(kept) and usable(kept):
            return kept
    if not may_deploy:
        raise NotDeployedYet(f"no {name} is deployed on chain {chain.chain_id} yet")
    address = deploy()
    if chain.mode is not ChainMode.TESTER:  # the in-process chain dies with the process
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**_read(path), name: address}, indent=2) + "\n")
    return address


def _read(path: Path) -> dict[str, str]:
    return dict(json.loads(path.read_text())) if path.is_file() else {}
