"""Which chain a database's records are on: its id, its first block, the registry and its code.

The records, heads and confirmations in a database only mean something on the chain that holds
them. A node with the same chain id that is another chain (another anvil, a wiped state, a fork)
shows none of them: taken for a reorganisation, the indexer would un-confirm every record and the
submitter send them all again, and back on the right node nothing would match. So the database
remembers the chain the first time it is served, and every start (and the indexer, while running)
compares: a different chain, or one that lost the registry, is refused with what differs and what
to do, never repaired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from eth_utils import keccak
from hexbytes import HexBytes

from tracechain.chain.connect import Chain
from tracechain.errors import ConfigurationError


@dataclass(frozen=True)
class ChainIdentity:
    chain_id: int
    genesis_hash: str
    """The hash of block 0: two chains with the same id differ here."""
    registry: str
    registry_code_hash: str
    """keccak256 of the registry's runtime code: zero-code (a wiped or other chain) differs here."""

    @classmethod
    def of(cls, chain: Chain, registry: str) -> ChainIdentity:
        w3 = chain.w3
        genesis = HexBytes(w3.eth.get_block(0)["hash"]).to_0x_hex()
        code = bytes(w3.eth.get_code(registry))  # type: ignore[arg-type]
        return cls(chain.chain_id, genesis, registry, "0x" + keccak(code).hex() if code else "")

    def differences(self, now: ChainIdentity) -> list[str]:
        """What is not as this database remembers it, in words; empty when it is the same chain."""
        found = []
        if now.chain_id != self.chain_id:
            found.append(f"chain id {now.chain_id}, not {self.chain_id}")
        if now.genesis_hash != self.genesis_hash:
            genesis = f"{now.genesis_hash[:12]}…, not {self.genesis_hash[:12]}…"
            found.append(f"first block {genesis} (another chain)")
        if now.registry != self.registry:
            found.append(f"registry {now.registry}, not {self.registry}")
        elif not now.registry_code_hash:
            found.append(f"no contract at the registry's address {self.registry} (the chain lost it)")
        elif now.registry_code_hash != self.registry_code_hash:
            found.append(f"other code at the registry's address {self.registry}")
        return found


class WrongChain(ConfigurationError):
    """The node serves another chain than the one the database's records are on."""

    def __init__(self, url: str, differences: list[str]) -> None:
        self.differences = differences
        super().__init__(
            f"the node at {url} is not the chain this database's records are on: "
            + "; ".join(differences)
            + ". Point TRACECHAIN_RPC_URL (or the managed node's state) at that chain, or serve a new "
            "database and data folder for this one"
        )


class IdentityGuard:
    """Checks, when asked and at most every `interval` seconds unless forced, that the node still
    serves the chain a database remembers; raises WrongChain otherwise. The submitter asks before
    it takes a vanished transaction for a reorganised one, the indexer before it rolls back."""

    def __init__(self, chain: Chain, remembered: ChainIdentity, url: str, interval: float = 30.0) -> None:
        self.chain, self.remembered, self.url, self.interval = chain, remembered, url, interval
        self._checked_at = float("-inf")

    def verify(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < self.interval:
            return
        differences = self.remembered.differences(ChainIdentity.of(self.chain, self.remembered.registry))
        if differences:
            raise WrongChain(self.url, differences)
        self._checked_at = now
