"""Merkle-anchored recording: anchor() by the anchorer role only, once per root, with its log;
verifyAnchored() true for every leaf of an anchored tree and false for every altered claim; the gas
per event of a batch of 1,000."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tracechain.chain import reverts
from tracechain.chain.connect import Chain
from tracechain.chain.merkle import MerkleTree, hash_pair, leaf_of
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import ZERO_HASH, Kind, SignedEvent

from ..factories import Actor, random_hash, sgtin, sign_event

GAS_PER_EVENT_BUDGET = 500
"""Issue 6: at most 500 gas per event in a batch of 1,000."""


@pytest.fixture
def anchorer(registry: TraceRegistry) -> str:
    """The relayer, which sends every transaction in these tests, holding the anchorer role."""
    registry.grant_role(Role.ANCHORER, registry.chain.relayer.address)
    return registry.chain.relayer.address


def signed_batch(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, size: int
) -> list[SignedEvent]:
    """Events that custody allows, signed off chain over their projected heads: a commissioning and
    a shipment per item, then observations."""
    events: list[SignedEvent] = []
    for n in range(size):
        subject = sgtin(f"anchored-{n}")
        if n % 3 == 0:
            events.append(sign_event(registry, manufacturer, Kind.COMMISSION, subject, prev_head=ZERO_HASH))
        elif n % 3 == 1:
            events.append(
                sign_event(
                    registry,
                    manufacturer,
                    Kind.SHIP,
                    subject,
                    counterpart=carrier.address,
                    prev_head=random_hash(),
                )
            )
        else:
            events.append(sign_event(registry, carrier, Kind.OBSERVE, subject, prev_head=random_hash()))
    return events


def anchored_tree(registry: TraceRegistry, events: list[SignedEvent]) -> MerkleTree:
    tree = MerkleTree.build([leaf_of(registry.domain.separator, e) for e in events])
    registry.anchor(tree.root, len(events))
    return tree


# ---------------------------------------------------------------- anchor


def test_anchor_stores_the_root_with_its_block_time_and_count_and_logs_it(
    registry: TraceRegistry, anchorer: str
) -> None:
    root = random_hash()
    receipt = registry.anchor(root, 1_000)

    block = registry.chain.w3.eth.get_block(receipt["blockNumber"])
    anchor = registry.anchor_of(root)
    assert (anchor.block_number, anchor.timestamp, anchor.count) == (
        block["number"],
        block["timestamp"],
        1_000,
    )
    logs = registry.contract.events.BatchAnchored().process_receipt(receipt)
    assert [(bytes(log["args"]["root"]), log["args"]["anchorer"], log["args"]["count"]) for log in logs] == [
        (root, anchorer, 1_000)
    ]


def test_a_root_never_anchored_reads_as_zeros(registry: TraceRegistry) -> None:
    anchor = registry.anchor_of(random_hash())
    assert (anchor.block_number, anchor.timestamp, anchor.count) == (0, 0, 0)


def test_anchor_reverts_when_the_caller_lacks_the_anchorer_role(registry: TraceRegistry) -> None:
    with pytest.raises(reverts.AccessControlUnauthorizedAccount) as exc:
        registry.anchor(random_hash(), 1)
    assert exc.value.arguments == {"account": registry.chain.relayer.address, "neededRole": Role.ANCHORER}


def test_anchor_reverts_when_a_participant_role_is_all_the_caller_holds(registry: TraceRegistry) -> None:
    registry.grant_role(Role.MANUFACTURER, registry.chain.relayer.address)
    with pytest.raises(reverts.AccessControlUnauthorizedAccount):
        registry.anchor(random_hash(), 1)


def test_anchor_reverts_on_an_empty_batch(registry: TraceRegistry, anchorer: str) -> None:
    with pytest.raises(reverts.TraceRegistryEmptyBatch):
        registry.anchor(random_hash(), 0)


def test_anchor_reverts_when_the_root_was_anchored_before(registry: TraceRegistry, anchorer: str) -> None:
    root = random_hash()
    first = registry.anchor(root, 5)
    with pytest.raises(reverts.TraceRegistryAlreadyAnchored) as exc:
        registry.anchor(root, 7)
    assert exc.value.arguments == {"root": root, "blockNumber": first["blockNumber"]}
    assert registry.anchor_of(root).count == 5


def test_anchoring_changes_no_custody_state_or_head(
    registry: TraceRegistry, anchorer: str, manufacturer: Actor, carrier: Actor
) -> None:
    events = signed_batch(registry, manufacturer, carrier, 3)
    anchored_tree(registry, events)
    for signed in events:
        state = registry.product_of(signed.event.subject)
        assert state.status == 0 and state.head == ZERO_HASH


# ---------------------------------------------------------------- verifyAnchored


def test_every_event_of_an_anchored_batch_verifies_on_chain_with_its_proof(
    registry: TraceRegistry, anchorer: str, manufacturer: Actor, carrier: Actor
) -> None:
    events = signed_batch(registry, manufacturer, carrier, 7)
    tree = anchored_tree(registry, events)
    for index, signed in enumerate(events):
        assert registry.anchored_leaf(signed) == tree.leaves[index]
        assert registry.verify_anchored(signed, tree.proof(index), tree.root)


def test_a_single_event_batch_verifies_with_an_empty_proof(
    registry: TraceRegistry, anchorer: str, manufacturer: Actor
) -> None:
    signed = sign_event(registry, manufacturer, Kind.COMMISSION, sgtin("alone"))
    tree = anchored_tree(registry, [signed])
    assert tree.proof(0) == [] and registry.verify_anchored(signed, [], tree.root)


@pytest.fixture
def anchored(
    registry: TraceRegistry, anchorer: str, manufacturer: Actor, carrier: Actor
) -> tuple[list[SignedEvent], MerkleTree]:
    events = signed_batch(registry, manufacturer, carrier, 6)
    return events, anchored_tree(registry, events)


def test_verify_anchored_is_false_for_a_root_never_anchored(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor
) -> None:
    events = signed_batch(registry, manufacturer, carrier, 4)
    tree = MerkleTree.build([leaf_of(registry.domain.separator, e) for e in events])
    assert not registry.verify_anchored(events[0], tree.proof(0), tree.root)


def test_verify_anchored_is_false_for_an_altered_event(
    registry: TraceRegistry, anchored: tuple[list[SignedEvent], MerkleTree]
) -> None:
    events, tree = anchored
    for changed in (
        replace(events[1].event, time=events[1].event.time + 1),
        replace(events[1].event, event_hash=random_hash()),
        replace(events[1].event, prev_head=random_hash()),
    ):
        assert not registry.verify_anchored(replace(events[1], event=changed), tree.proof(1), tree.root)


def test_verify_anchored_is_false_for_a_wrong_proof_or_another_leafs_proof(
    registry: TraceRegistry, anchored: tuple[list[SignedEvent], MerkleTree]
) -> None:
    events, tree = anchored
    proof = tree.proof(2)
    assert not registry.verify_anchored(events[2], tree.proof(3), tree.root)
    assert not registry.verify_anchored(events[2], [random_hash(), *proof[1:]], tree.root)
    assert not registry.verify_anchored(events[2], proof[:-1], tree.root)


def test_verify_anchored_is_false_when_the_signer_is_not_the_one_who_signed(
    registry: TraceRegistry, anchorer: str, manufacturer: Actor, carrier: Actor
) -> None:
    """A leaf built over a false signer is in the tree, but the signature does not recover to it."""
    signed = sign_event(registry, manufacturer, Kind.OBSERVE, sgtin("claimed"))
    forged = replace(signed, signer=carrier.address)
    tree = anchored_tree(registry, [forged, signed])
    assert registry.verify_anchored(signed, tree.proof(1), tree.root)
    assert not registry.verify_anchored(forged, tree.proof(0), tree.root)


def test_verify_anchored_is_false_when_the_signer_lacks_the_kinds_role(
    registry: TraceRegistry, anchorer: str, carrier: Actor, outsider: Actor
) -> None:
    commission_by_carrier = sign_event(registry, carrier, Kind.COMMISSION, sgtin("no-maker"))
    observe_by_outsider = sign_event(registry, outsider, Kind.OBSERVE, sgtin("no-role"))
    observe_by_carrier = sign_event(registry, carrier, Kind.OBSERVE, sgtin("carrier"))
    events = [commission_by_carrier, observe_by_outsider, observe_by_carrier]
    tree = anchored_tree(registry, events)
    assert [registry.verify_anchored(e, tree.proof(i), tree.root) for i, e in enumerate(events)] == [
        False,
        False,
        True,
    ]


def test_verify_anchored_is_false_for_a_withdrawal_of_another_participants_event(
    registry: TraceRegistry, anchorer: str, manufacturer: Actor, carrier: Actor, auditor: Actor
) -> None:
    """Anchored events change nothing on chain, so Withdraw's own rule is checked here: a participant
    withdraws only its own events, an auditor anyone's, and a withdrawal names what it withdraws."""
    item, withdrawn = sgtin("withdrawn"), random_hash()
    by_rival = sign_event(
        registry, carrier, Kind.WITHDRAW, item, counterpart=manufacturer.address, ref=withdrawn
    )
    by_auditor = sign_event(
        registry, auditor, Kind.WITHDRAW, item, counterpart=manufacturer.address, ref=withdrawn
    )
    own = sign_event(registry, carrier, Kind.WITHDRAW, item, counterpart=carrier.address, ref=withdrawn)
    naming_nothing = sign_event(registry, carrier, Kind.WITHDRAW, item, counterpart=carrier.address)
    events = [by_rival, by_auditor, own, naming_nothing]
    tree = anchored_tree(registry, events)

    verdicts = [registry.verify_anchored(e, tree.proof(i), tree.root) for i, e in enumerate(events)]

    assert verdicts == [False, True, True, False]


def test_an_inner_node_cannot_be_verified_as_an_event(
    registry: TraceRegistry, anchored: tuple[list[SignedEvent], MerkleTree]
) -> None:
    """OpenZeppelin's processProof would accept an inner node as a leaf with a shortened proof;
    verifyAnchored builds the leaf from the event, hashed twice, so only events verify."""
    events, tree = anchored
    inner = hash_pair(tree.leaves[0], tree.leaves[1])
    assert tree.levels[1][0] == inner
    shortened = tree.proof(0)[1:]
    assert MerkleTree.build(list(tree.leaves)).root == tree.root
    for signed in events:
        assert registry.anchored_leaf(signed) != inner
        assert not registry.verify_anchored(signed, shortened, tree.root)


# ---------------------------------------------------------------- gas


def test_anchoring_a_batch_of_1000_costs_at_most_500_gas_per_event(
    anvil_chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = TraceRegistry.deploy(anvil_chain)
    registry.grant_role(Role.ANCHORER, anvil_chain.relayer.address)
    manufacturer, carrier = Actor.new("manufacturer", registry), Actor.new("carrier", registry)
    events = signed_batch(registry, manufacturer, carrier, 1_000)
    tree = MerkleTree.build([leaf_of(registry.domain.separator, e) for e in events])

    receipt = registry.anchor(tree.root, len(events))

    per_event = receipt["gasUsed"] / len(events)
    with capsys.disabled():
        print(f"\nanchor, batch of 1,000: {receipt['gasUsed']:,} gas, {per_event:,.1f} per event")
    assert per_event <= GAS_PER_EVENT_BUDGET
