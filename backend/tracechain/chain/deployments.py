"""Where tracechain's contracts live on each chain, remembered in the data folder between runs."""

from __future__ import annotations

import json

from eth_utils import to_checksum_address

from tracechain.chain.connect import Chain
from tracechain.chain.registry import TraceRegistry
from tracechain.config import ChainMode, Settings


def load_or_deploy_registry(chain: Chain, settings: Settings) -> TraceRegistry:
    """The registry recorded for this chain if its code is still there, else a new deployment.

    A chain that was reset (a wiped anvil state file, a new in-process chain) no longer holds the
    code, so the registry is deployed again rather than pointing at an empty address.
    """
    path = settings.deployments_dir / f"{chain.chain_id}.json"
    if chain.mode is not ChainMode.TESTER and path.is_file():
        address = to_checksum_address(json.loads(path.read_text())["TraceRegistry"])
        if chain.w3.eth.get_code(address):
            return TraceRegistry(chain, address)
    registry = TraceRegistry.deploy(chain)
    if chain.mode is not ChainMode.TESTER:  # the in-process chain dies with the process
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"TraceRegistry": registry.address}, indent=2) + "\n")
    return registry
