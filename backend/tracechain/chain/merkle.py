"""Merkle trees of signed events, built exactly as TraceRegistry.verifyAnchored checks them.

Inner nodes hash their two children in sorted order (OpenZeppelin's MerkleProof), so a proof is a
plain list of sibling hashes with no left/right flags. Leaves are hashed twice, as OpenZeppelin's
StandardMerkleTree does: a leaf is keccak256 of a 32-byte hash, an inner node keccak256 of 64 bytes,
so an inner node can never pass for a leaf (see TraceRegistry.anchoredLeaf). An odd node at the end
of a level is carried up unchanged rather than paired with itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import to_canonical_address
from sha3 import keccak_256

from tracechain.chain.eip712 import digest
from tracechain.chain.trace_event import SignedEvent


def keccak256(data: bytes) -> bytes:
    """keccak256 from pysha3's C code: some ten times faster than eth_utils' keccak (pycryptodome
    behind two layers of Python), which counts where a tree is built per event (`disclosure`)."""
    return keccak_256(data).digest()


def leaf_of(domain_separator: bytes, signed: SignedEvent) -> bytes:
    """`keccak256(bytes.concat(keccak256(abi.encode(digest, signer, r, vs))))`, as the contract hashes it."""
    inner = keccak256(
        digest(domain_separator, signed.event)
        + bytes(12)
        + to_canonical_address(signed.signer)
        + signed.r
        + signed.vs
    )
    return keccak256(inner)


def hash_pair(a: bytes, b: bytes) -> bytes:
    """An inner node: OpenZeppelin's commutative keccak256 of two sorted hashes."""
    return keccak256(a + b) if a < b else keccak256(b + a)


def process_proof(proof: Sequence[bytes], leaf: bytes) -> bytes:
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def verify_proof(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """MerkleProof.verify: the proof leads from `leaf` to `root`."""
    return process_proof(proof, leaf) == root


@dataclass(frozen=True)
class MerkleTree:
    """All levels of a tree over `leaves` (in the order given), leaves first, the root last."""

    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def build(cls, leaves: Sequence[bytes]) -> MerkleTree:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        level = tuple(leaves)
        levels = [level]
        while len(level) > 1:
            paired = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                paired.append(level[-1])
            level = tuple(paired)
            levels.append(level)
        return cls(tuple(levels))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    @property
    def leaves(self) -> tuple[bytes, ...]:
        return self.levels[0]

    def proof(self, index: int) -> list[bytes]:
        """The siblings on the way from leaf `index` to the root."""
        if not 0 <= index < len(self.leaves):
            raise IndexError(f"no leaf {index} among {len(self.leaves)}")
        proof = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof
