"""Merkle trees of signed events: any leaf of any tree verifies with its proof; a changed leaf, proof
or root does not; an inner node never passes for a leaf; leaves match the contract's."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import assume, given
from hypothesis import strategies as st

from tracechain.chain.connect import Chain
from tracechain.chain.merkle import MerkleTree, hash_pair, leaf_of, process_proof, verify_proof
from tracechain.chain.registry import TraceRegistry
from tracechain.chain.trace_event import Kind

from ..factories import Actor, random_hash, sgtin, sign_event

hashes = st.binary(min_size=32, max_size=32)
leaf_sets = st.lists(hashes, min_size=1, max_size=70, unique=True)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[MerkleTree, int]:
    tree = MerkleTree.build(draw(leaf_sets))
    return tree, draw(st.integers(0, len(tree.leaves) - 1))


@given(tree_and_index())
def test_every_leaf_of_any_tree_verifies_with_its_proof(case: tuple[MerkleTree, int]) -> None:
    tree, index = case
    assert verify_proof(tree.proof(index), tree.root, tree.leaves[index])


@given(tree_and_index(), hashes)
def test_a_changed_leaf_does_not_verify(case: tuple[MerkleTree, int], other: bytes) -> None:
    tree, index = case
    assume(other != tree.leaves[index])
    assert not verify_proof(tree.proof(index), tree.root, other)


@given(tree_and_index(), st.data())
def test_a_changed_proof_does_not_verify(case: tuple[MerkleTree, int], data: st.DataObject) -> None:
    tree, index = case
    proof = tree.proof(index)
    assume(proof)
    position = data.draw(st.integers(0, len(proof) - 1))
    replacement = data.draw(hashes)
    assume(replacement != proof[position])
    tampered = [*proof[:position], replacement, *proof[position + 1 :]]
    assert not verify_proof(tampered, tree.root, tree.leaves[index])
    assert not verify_proof(proof[:position], tree.root, tree.leaves[index])


@given(tree_and_index(), hashes)
def test_another_root_does_not_verify(case: tuple[MerkleTree, int], root: bytes) -> None:
    tree, index = case
    assume(root != tree.root)
    assert not verify_proof(tree.proof(index), root, tree.leaves[index])


@given(st.lists(hashes, min_size=2, max_size=40, unique=True), st.data())
def test_an_inner_node_is_no_leaf_of_hashed_data(leaves_data: list[bytes], data: st.DataObject) -> None:
    """Leaves are keccak256(keccak256(data)) of the signed data; an inner node is keccak256 of its
    two children. Hashing the children as if they were leaf data gives another value, so the
    subtree's proof (which OpenZeppelin's processProof would accept for the bare node) never
    verifies the node as an event's leaf."""
    leaves = [keccak(keccak(d)) for d in leaves_data]
    tree = MerkleTree.build(leaves)
    level = data.draw(st.integers(1, len(tree.levels) - 1))
    index = data.draw(st.integers(0, len(tree.levels[level]) - 1))
    node = tree.levels[level][index]
    assume(node not in tree.leaves)  # an odd node carried up unchanged is still a leaf
    left_index = index * 2
    below = tree.levels[level - 1]
    assume(left_index + 1 < len(below))
    left, right = sorted((below[left_index], below[left_index + 1]))
    assert node == keccak(left + right)
    assert keccak(keccak(left + right)) != node
    assert keccak(keccak(left + right)) not in tree.leaves


def test_pairs_hash_the_same_in_either_order() -> None:
    a, b = random_hash(), random_hash()
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))


def test_an_odd_node_is_carried_up_unpaired() -> None:
    leaves = [random_hash() for _ in range(3)]
    tree = MerkleTree.build(leaves)
    assert tree.root == hash_pair(hash_pair(leaves[0], leaves[1]), leaves[2])
    assert tree.proof(2) == [hash_pair(leaves[0], leaves[1])]
    assert process_proof(tree.proof(0), leaves[0]) == tree.root


def test_an_empty_tree_is_refused() -> None:
    with pytest.raises(ValueError):
        MerkleTree.build([])


def test_leaves_hash_as_the_contract_hashes_them(tester_chain: Chain) -> None:
    registry = TraceRegistry.deploy(tester_chain)
    signer = Actor.new("manufacturer", registry)
    for kind in (Kind.COMMISSION, Kind.SHIP, Kind.OBSERVE):
        signed = sign_event(registry, signer, kind, sgtin(f"leaf-{kind.name}"), counterpart=signer.address)
        assert leaf_of(registry.domain.separator, signed) == registry.anchored_leaf(signed)
