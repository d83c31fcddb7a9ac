"""TraceRegistry's rules for each kind of event: every custom error, with the facts it carries.

Signatures and heads are always valid here (tests/contracts/test_trace_registry_recording.py covers
those), so each test reaches the rule it names.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from tracechain.chain import reverts
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import (
    VERDICT_CLEARED,
    VERDICT_REJECTED,
    ZERO_ADDRESS,
    ZERO_HASH,
    Kind,
    Status,
)

from ..factories import Actor, hand_over, pack, random_hash, record, sgtin, sign_event, sscc

DEAD = "0x000000000000000000000000000000000000dEaD"
"""A receiver nobody holds a key for, where only the order of the checks matters."""

PALLET = sscc(200)
UNKNOWN = sgtin("never-commissioned")
CLEARED = VERDICT_CLEARED


def actor(request: pytest.FixtureRequest, role: str) -> Actor:
    """The participant fixture named `role` (manufacturer, carrier, ...), for parametrized tests."""
    participant: Actor = request.getfixturevalue(role)
    return participant


def new_manufacturer(registry: TraceRegistry) -> Actor:
    other = Actor.new("other manufacturer", registry)
    registry.grant_role(Role.MANUFACTURER, other.address)
    return other


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize(
    "kind",
    [
        Kind.OBSERVE,
        Kind.AGGREGATE,
        Kind.DISAGGREGATE,
        Kind.SHIP,
        Kind.RECEIVE,
        Kind.SELL,
        Kind.CONSUME,
        Kind.EXCURSION,
        Kind.WITHDRAW,
    ],
    ids=lambda kind: kind.name.lower(),
)
def test_event_reverts_when_the_signer_holds_no_role(
    registry: TraceRegistry, outsider: Actor, packed_item: bytes, case: bytes, kind: Kind
) -> None:
    with pytest.raises(reverts.TraceRegistryNotParticipant) as exc:
        record(registry, outsider, kind, packed_item, ref=case, counterpart=DEAD)
    assert exc.value.arguments == {"signer": outsider.address}


@pytest.mark.parametrize(
    ("kind", "signer", "role", "fields"),
    [
        pytest.param(Kind.COMMISSION, "carrier", Role.MANUFACTURER, {}, id="commission_by_carrier"),
        pytest.param(Kind.COMMISSION, "outsider", Role.MANUFACTURER, {}, id="commission_by_outsider"),
        pytest.param(Kind.INSPECT, "carrier", Role.CUSTOMS, {"ref": CLEARED}, id="inspect_by_carrier"),
        pytest.param(Kind.INSPECT, "outsider", Role.CUSTOMS, {"ref": CLEARED}, id="inspect_by_outsider"),
    ],
)
def test_event_reverts_when_the_signer_lacks_the_role_the_kind_needs(
    request: pytest.FixtureRequest,
    registry: TraceRegistry,
    item: bytes,
    kind: Kind,
    signer: str,
    role: bytes,
    fields: dict[str, Any],
) -> None:
    subject = sgtin(3) if kind is Kind.COMMISSION else item
    who = actor(request, signer)

    with pytest.raises(reverts.TraceRegistryMissingRole) as exc:
        record(registry, who, kind, subject, **fields)
    assert exc.value.arguments == {"signer": who.address, "role": role}


def test_sell_reverts_when_the_custodian_is_not_a_retailer(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, carrier, item)

    with pytest.raises(reverts.TraceRegistryMissingRole) as exc:
        record(registry, carrier, Kind.SELL, item)
    assert exc.value.arguments == {"signer": carrier.address, "role": Role.RETAILER}


def test_a_role_found_earlier_in_a_batch_stands_in_for_no_other_role(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    """A batch looks a run of one signer's roles up once: what it found must not excuse another role."""
    hand_over(registry, manufacturer, carrier, item)
    observed = sign_event(registry, carrier, Kind.OBSERVE, item)  # the carrier is a participant ...
    with pytest.raises(reverts.TraceRegistryMissingRole) as exc:
        registry.record([observed, sign_event(registry, carrier, Kind.SELL, item)])  # ... not a retailer
    assert exc.value.arguments == {"signer": carrier.address, "role": Role.RETAILER}

    commissioned = sign_event(registry, manufacturer, Kind.COMMISSION, sgtin(3))
    with pytest.raises(reverts.TraceRegistryMissingRole) as exc:
        registry.record([commissioned, sign_event(registry, manufacturer, Kind.INSPECT, item, ref=CLEARED)])
    assert exc.value.arguments == {"signer": manufacturer.address, "role": Role.CUSTOMS}


def test_a_participant_earlier_in_a_batch_vouches_for_no_later_signer(
    registry: TraceRegistry, manufacturer: Actor, outsider: Actor, item: bytes
) -> None:
    events = [
        sign_event(registry, manufacturer, Kind.OBSERVE, item),
        sign_event(registry, outsider, Kind.OBSERVE, item),
    ]
    with pytest.raises(reverts.TraceRegistryNotParticipant) as exc:
        registry.record(events)
    assert exc.value.arguments == {"signer": outsider.address}


@pytest.mark.parametrize("signer", ["carrier", "customs", "retailer", "outsider"])
def test_recall_reverts_when_the_signer_is_neither_manufacturer_nor_auditor(
    request: pytest.FixtureRequest, registry: TraceRegistry, manufacturer: Actor, item: bytes, signer: str
) -> None:
    who = actor(request, signer)

    with pytest.raises(reverts.TraceRegistryNotManufacturerOrAuditor) as exc:
        record(registry, who, Kind.RECALL, item)
    assert exc.value.arguments == {
        "subject": item,
        "signer": who.address,
        "manufacturer": manufacturer.address,
    }


def test_recall_reverts_when_signed_by_a_manufacturer_of_something_else(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    other = new_manufacturer(registry)

    with pytest.raises(reverts.TraceRegistryNotManufacturerOrAuditor) as exc:
        record(registry, other, Kind.RECALL, item)
    assert exc.value.arguments == {
        "subject": item,
        "signer": other.address,
        "manufacturer": manufacturer.address,
    }


def test_grant_role_reverts_when_the_relayer_is_not_the_admin(
    registry: TraceRegistry, outsider: Actor
) -> None:
    elsewhere = TraceRegistry.deploy(registry.chain, admin=outsider.address)

    with pytest.raises(reverts.AccessControlUnauthorizedAccount) as exc:
        elsewhere.grant_role(Role.CARRIER, outsider.address)
    assert exc.value.arguments == {"account": registry.chain.relayer.address, "neededRole": ZERO_HASH}


# ---------------------------------------------------------------- existence and status


@pytest.mark.parametrize("by", ["same_manufacturer", "other_manufacturer"])
def test_commission_reverts_when_the_subject_was_already_commissioned(
    registry: TraceRegistry, manufacturer: Actor, item: bytes, by: str
) -> None:
    signer = manufacturer if by == "same_manufacturer" else new_manufacturer(registry)

    with pytest.raises(reverts.TraceRegistryAlreadyCommissioned) as exc:
        record(registry, signer, Kind.COMMISSION, item)
    assert exc.value.arguments == {"subject": item}


def test_commission_reverts_on_a_logistic_unit_that_packing_created(
    registry: TraceRegistry, manufacturer: Actor, packed_item: bytes, case: bytes
) -> None:
    with pytest.raises(reverts.TraceRegistryAlreadyCommissioned) as exc:
        record(registry, manufacturer, Kind.COMMISSION, case)
    assert exc.value.arguments == {"subject": case}


def test_commission_reverts_on_a_sold_product(
    registry: TraceRegistry, manufacturer: Actor, retailer: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, retailer, item)
    record(registry, retailer, Kind.SELL, item)

    with pytest.raises(reverts.TraceRegistryAlreadyCommissioned) as exc:
        record(registry, manufacturer, Kind.COMMISSION, item)
    assert exc.value.arguments == {"subject": item}


@pytest.mark.parametrize(
    ("kind", "signer", "fields"),
    [
        pytest.param(Kind.AGGREGATE, "manufacturer", {"ref": PALLET}, id="aggregate"),
        pytest.param(Kind.DISAGGREGATE, "manufacturer", {"ref": PALLET}, id="disaggregate"),
        pytest.param(Kind.SHIP, "manufacturer", {"counterpart": DEAD}, id="ship"),
        pytest.param(Kind.RECEIVE, "carrier", {}, id="receive"),
        pytest.param(Kind.INSPECT, "customs", {"ref": VERDICT_CLEARED}, id="inspect"),
        pytest.param(Kind.SELL, "retailer", {}, id="sell"),
        pytest.param(Kind.RECALL, "manufacturer", {}, id="recall"),
        pytest.param(Kind.CONSUME, "manufacturer", {"ref": sgtin("soup")}, id="consume"),
        pytest.param(Kind.EXCURSION, "carrier", {}, id="excursion"),
    ],
)
def test_event_reverts_on_a_subject_never_commissioned(
    request: pytest.FixtureRequest, registry: TraceRegistry, kind: Kind, signer: str, fields: dict[str, Any]
) -> None:
    with pytest.raises(reverts.TraceRegistryUnknownSubject) as exc:
        record(registry, actor(request, signer), kind, UNKNOWN, **fields)
    assert exc.value.arguments == {"subject": UNKNOWN}
    assert registry.product_of(PALLET).status == Status.UNKNOWN


@pytest.mark.parametrize("ending", [Kind.SELL, Kind.CONSUME], ids=["sold", "consumed"])
@pytest.mark.parametrize(
    ("kind", "signer", "fields"),
    [
        pytest.param(Kind.AGGREGATE, "retailer", {"ref": PALLET}, id="aggregate"),
        pytest.param(Kind.DISAGGREGATE, "retailer", {"ref": PALLET}, id="disaggregate"),
        pytest.param(Kind.SHIP, "retailer", {"counterpart": DEAD}, id="ship"),
        pytest.param(Kind.RECEIVE, "retailer", {}, id="receive"),
        pytest.param(Kind.INSPECT, "customs", {"ref": VERDICT_CLEARED}, id="inspect"),
        pytest.param(Kind.SELL, "retailer", {}, id="sell"),
        pytest.param(Kind.CONSUME, "retailer", {}, id="consume"),
        pytest.param(Kind.EXCURSION, "retailer", {}, id="excursion"),
    ],
)
def test_event_reverts_on_a_product_that_is_no_longer_active(
    request: pytest.FixtureRequest,
    registry: TraceRegistry,
    manufacturer: Actor,
    retailer: Actor,
    item: bytes,
    ending: Kind,
    kind: Kind,
    signer: str,
    fields: dict[str, Any],
) -> None:
    hand_over(registry, manufacturer, retailer, item)
    record(registry, retailer, ending, item)
    status = Status.SOLD if ending is Kind.SELL else Status.CONSUMED

    with pytest.raises(reverts.TraceRegistryNotActive) as exc:
        record(registry, actor(request, signer), kind, item, **fields)
    assert exc.value.arguments == {"subject": item, "status": int(status)}


def test_aggregate_reverts_when_the_parent_was_sold(
    registry: TraceRegistry, manufacturer: Actor, retailer: Actor, item: bytes
) -> None:
    sold_case = sgtin("case-sold-whole")
    record(registry, manufacturer, Kind.COMMISSION, sold_case)
    hand_over(registry, manufacturer, retailer, sold_case)
    record(registry, retailer, Kind.SELL, sold_case)
    hand_over(registry, manufacturer, retailer, item)

    with pytest.raises(reverts.TraceRegistryNotActive) as exc:
        record(registry, retailer, Kind.AGGREGATE, item, ref=sold_case)
    assert exc.value.arguments == {"subject": sold_case, "status": int(Status.SOLD)}


# ---------------------------------------------------------------- custody


@pytest.mark.parametrize(
    ("kind", "signer", "fields"),
    [
        pytest.param(Kind.SHIP, "carrier", {"counterpart": DEAD}, id="ship"),
        pytest.param(Kind.AGGREGATE, "carrier", {"ref": PALLET}, id="aggregate"),
        pytest.param(Kind.SELL, "retailer", {}, id="sell"),
        pytest.param(Kind.CONSUME, "carrier", {"ref": sgtin("soup")}, id="consume"),
        pytest.param(Kind.EXCURSION, "carrier", {}, id="excursion"),
    ],
)
def test_event_reverts_when_the_signer_is_not_the_custodian(
    request: pytest.FixtureRequest,
    registry: TraceRegistry,
    manufacturer: Actor,
    item: bytes,
    kind: Kind,
    signer: str,
    fields: dict[str, Any],
) -> None:
    who = actor(request, signer)

    with pytest.raises(reverts.TraceRegistryNotCustodian) as exc:
        record(registry, who, kind, item, **fields)
    assert exc.value.arguments == {"subject": item, "caller": who.address, "custodian": manufacturer.address}


def test_disaggregate_reverts_when_the_signer_is_not_the_custodian(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, packed_item: bytes, case: bytes
) -> None:
    with pytest.raises(reverts.TraceRegistryNotCustodian) as exc:
        record(registry, carrier, Kind.DISAGGREGATE, packed_item, ref=case)
    assert exc.value.arguments == {
        "subject": packed_item,
        "caller": carrier.address,
        "custodian": manufacturer.address,
    }


def test_ship_reverts_when_the_former_custodian_ships_after_handing_over(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, carrier, item)

    with pytest.raises(reverts.TraceRegistryNotCustodian) as exc:
        record(registry, manufacturer, Kind.SHIP, item, counterpart=DEAD)
    assert exc.value.arguments == {
        "subject": item,
        "caller": manufacturer.address,
        "custodian": carrier.address,
    }


def test_excursion_reverts_when_reported_by_the_receiver_before_it_received(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)

    with pytest.raises(reverts.TraceRegistryNotCustodian) as exc:
        record(registry, carrier, Kind.EXCURSION, item)
    assert exc.value.arguments == {
        "subject": item,
        "caller": carrier.address,
        "custodian": manufacturer.address,
    }


def test_excursion_reverts_on_a_packed_item_when_signed_by_its_own_former_holder(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, packed_item: bytes, case: bytes
) -> None:
    """The custodian named is the case's, resolved through the parent."""
    hand_over(registry, manufacturer, carrier, case)

    with pytest.raises(reverts.TraceRegistryNotCustodian) as exc:
        record(registry, manufacturer, Kind.EXCURSION, packed_item)
    assert exc.value.arguments == {
        "subject": packed_item,
        "caller": manufacturer.address,
        "custodian": carrier.address,
    }


def test_excursion_reverts_on_an_item_packed_in_a_sold_case_naming_no_custodian(
    registry: TraceRegistry, manufacturer: Actor, retailer: Actor, packed_item: bytes, case: bytes
) -> None:
    hand_over(registry, manufacturer, retailer, case)
    record(registry, retailer, Kind.SELL, case)

    with pytest.raises(reverts.TraceRegistryNotCustodian) as exc:
        record(registry, retailer, Kind.EXCURSION, packed_item)
    assert exc.value.arguments == {
        "subject": packed_item,
        "caller": retailer.address,
        "custodian": ZERO_ADDRESS,
    }


def test_aggregate_reverts_when_the_existing_parent_is_held_by_someone_else(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    carriers_item = sgtin(4)
    record(registry, manufacturer, Kind.COMMISSION, carriers_item)
    hand_over(registry, manufacturer, carrier, carriers_item)
    pack(registry, carrier, PALLET, carriers_item)

    with pytest.raises(reverts.TraceRegistryNotCustodian) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, item, ref=PALLET)
    assert exc.value.arguments == {
        "subject": PALLET,
        "caller": manufacturer.address,
        "custodian": carrier.address,
    }


@pytest.mark.parametrize("proposed", ["nobody", "another_participant"])
def test_receive_reverts_when_the_signer_is_not_the_proposed_receiver(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes, proposed: str
) -> None:
    if proposed == "another_participant":
        record(registry, manufacturer, Kind.SHIP, item, counterpart=retailer.address)

    with pytest.raises(reverts.TraceRegistryNotProposedReceiver) as exc:
        record(registry, carrier, Kind.RECEIVE, item)
    assert exc.value.arguments == {
        "subject": item,
        "caller": carrier.address,
        "proposedReceiver": retailer.address if proposed == "another_participant" else ZERO_ADDRESS,
    }


def test_receive_reverts_for_the_first_receiver_after_the_shipment_was_redirected(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)
    record(registry, manufacturer, Kind.SHIP, item, counterpart=retailer.address)

    with pytest.raises(reverts.TraceRegistryNotProposedReceiver) as exc:
        record(registry, carrier, Kind.RECEIVE, item)
    assert exc.value.arguments == {
        "subject": item,
        "caller": carrier.address,
        "proposedReceiver": retailer.address,
    }


def test_receive_reverts_when_received_twice(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, carrier, item)

    with pytest.raises(reverts.TraceRegistryNotProposedReceiver) as exc:
        record(registry, carrier, Kind.RECEIVE, item)
    assert exc.value.arguments == {
        "subject": item,
        "caller": carrier.address,
        "proposedReceiver": ZERO_ADDRESS,
    }


@pytest.mark.parametrize("receiver", ["zero_address", "the_custodian_itself"])
def test_ship_reverts_on_an_invalid_receiver(
    registry: TraceRegistry, manufacturer: Actor, item: bytes, receiver: str
) -> None:
    to = ZERO_ADDRESS if receiver == "zero_address" else manufacturer.address

    with pytest.raises(reverts.TraceRegistryInvalidReceiver) as exc:
        record(registry, manufacturer, Kind.SHIP, item, counterpart=to)
    assert exc.value.arguments == {"subject": item, "receiver": to}


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        pytest.param(Kind.AGGREGATE, {"ref": PALLET}, id="aggregate"),
        pytest.param(Kind.SELL, {}, id="sell"),
        pytest.param(Kind.CONSUME, {"ref": sgtin("soup")}, id="consume"),
    ],
)
def test_event_reverts_while_a_shipment_of_the_subject_is_pending(
    registry: TraceRegistry,
    manufacturer: Actor,
    carrier: Actor,
    retailer: Actor,
    item: bytes,
    kind: Kind,
    fields: dict[str, Any],
) -> None:
    hand_over(registry, manufacturer, retailer, item)
    record(registry, retailer, Kind.SHIP, item, counterpart=carrier.address)

    with pytest.raises(reverts.TraceRegistryInTransit) as exc:
        record(registry, retailer, kind, item, **fields)
    assert exc.value.arguments == {"subject": item, "proposedReceiver": carrier.address}


def test_disaggregate_reverts_while_the_case_is_being_shipped(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, packed_item: bytes, case: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, case, counterpart=carrier.address)

    with pytest.raises(reverts.TraceRegistryInTransit) as exc:
        record(registry, manufacturer, Kind.DISAGGREGATE, packed_item, ref=case)
    assert exc.value.arguments == {"subject": packed_item, "proposedReceiver": carrier.address}


def test_aggregate_reverts_when_the_parent_is_being_shipped(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, packed_item: bytes, case: bytes, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, case, counterpart=carrier.address)

    with pytest.raises(reverts.TraceRegistryInTransit) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, item, ref=case)
    assert exc.value.arguments == {"subject": case, "proposedReceiver": carrier.address}


@pytest.mark.parametrize(
    ("kind", "signer", "fields"),
    [
        pytest.param(Kind.SHIP, "manufacturer", {"counterpart": DEAD}, id="ship"),
        pytest.param(Kind.RECEIVE, "carrier", {}, id="receive"),
        pytest.param(Kind.CONSUME, "manufacturer", {"ref": sgtin("soup")}, id="consume"),
        pytest.param(Kind.AGGREGATE, "manufacturer", {"ref": PALLET}, id="aggregate"),
    ],
)
def test_event_reverts_when_the_subject_is_packed(
    request: pytest.FixtureRequest,
    registry: TraceRegistry,
    packed_item: bytes,
    case: bytes,
    kind: Kind,
    signer: str,
    fields: dict[str, Any],
) -> None:
    with pytest.raises(reverts.TraceRegistryPacked) as exc:
        record(registry, actor(request, signer), kind, packed_item, **fields)
    assert exc.value.arguments == {"subject": packed_item, "parent": case}


# ---------------------------------------------------------------- packing


@pytest.mark.parametrize("names_parent", [True, False], ids=["naming_a_unit", "naming_none"])
def test_disaggregate_reverts_when_the_item_is_not_packed(
    registry: TraceRegistry,
    manufacturer: Actor,
    item: bytes,
    packed_item: bytes,
    case: bytes,
    names_parent: bool,
) -> None:
    """Naming no parent for an item packed in none is no match either: nothing gets unpacked."""
    named_parent = case if names_parent else ZERO_HASH

    with pytest.raises(reverts.TraceRegistryNotPackedIn) as exc:
        record(registry, manufacturer, Kind.DISAGGREGATE, item, ref=named_parent)
    assert exc.value.arguments == {"subject": item, "expectedParent": named_parent, "actualParent": ZERO_HASH}


@pytest.mark.parametrize("named_parent", [PALLET, ZERO_HASH], ids=["another_unit", "zero"])
def test_disaggregate_reverts_when_the_item_is_packed_in_another_parent(
    registry: TraceRegistry, manufacturer: Actor, packed_item: bytes, case: bytes, named_parent: bytes
) -> None:
    with pytest.raises(reverts.TraceRegistryNotPackedIn) as exc:
        record(registry, manufacturer, Kind.DISAGGREGATE, packed_item, ref=named_parent)
    assert exc.value.arguments == {
        "subject": packed_item,
        "expectedParent": named_parent,
        "actualParent": case,
    }


def test_aggregate_reverts_when_the_parent_is_zero(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    with pytest.raises(reverts.TraceRegistryInvalidParent) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, item, ref=ZERO_HASH)
    assert exc.value.arguments == {"subject": item, "parent": ZERO_HASH}


def test_aggregate_reverts_when_a_subject_is_packed_into_itself(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    with pytest.raises(reverts.TraceRegistryPackingCycle) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, item, ref=item)
    assert exc.value.arguments == {"subject": item, "parent": item}


def test_aggregate_reverts_when_a_case_is_packed_into_its_own_item(
    registry: TraceRegistry, manufacturer: Actor, packed_item: bytes, case: bytes
) -> None:
    with pytest.raises(reverts.TraceRegistryPackingCycle) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, case, ref=packed_item)
    assert exc.value.arguments == {"subject": case, "parent": packed_item}


def test_aggregate_reverts_when_a_pallet_is_packed_into_an_item_two_levels_down(
    registry: TraceRegistry, manufacturer: Actor, packed_item: bytes, case: bytes
) -> None:
    pack(registry, manufacturer, PALLET, case)

    with pytest.raises(reverts.TraceRegistryPackingCycle) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, PALLET, ref=packed_item)
    assert exc.value.arguments == {"subject": PALLET, "parent": packed_item}
    assert registry.product_of(PALLET).parent == ZERO_HASH


def test_aggregate_allows_eight_levels_of_packing_and_reverts_on_the_ninth(
    registry: TraceRegistry, manufacturer: Actor
) -> None:
    """Packing top-down: units[k] goes into units[k - 1], so units[k] ends up k levels deep."""
    units = [sscc(f"nest-{level}") for level in range(10)]
    for child in units[1:]:
        record(registry, manufacturer, Kind.COMMISSION, child)
    for parent, child in pairwise(units[:9]):
        pack(registry, manufacturer, parent, child)
    assert registry.product_of(units[8]).parent == units[7]

    with pytest.raises(reverts.TraceRegistryPackingTooDeep) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, units[9], ref=units[8])
    assert exc.value.arguments == {"subject": units[9], "maxDepth": 8}


def test_aggregate_reverts_when_packing_bottom_up_would_nest_an_item_nine_levels_deep(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    """Packing bottom-up: the depth check counts what is already inside the child, not only its parents."""
    units = [item] + [sscc(f"stack-{level}") for level in range(1, 10)]
    for child, parent in pairwise(units[:9]):
        pack(registry, manufacturer, parent, child)
    # item is now 8 levels deep, inside units[1] ... units[8].

    with pytest.raises(reverts.TraceRegistryPackingTooDeep) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, units[8], ref=units[9])
    assert exc.value.arguments == {"subject": units[8], "maxDepth": 8}
    assert registry.product_of(units[8]).parent == ZERO_HASH
    assert registry.product_of(units[9]).status == Status.UNKNOWN


def test_aggregate_counts_the_items_in_a_case_packed_into_a_deep_unit(
    registry: TraceRegistry, manufacturer: Actor, packed_item: bytes, case: bytes
) -> None:
    """units[7] is packed in seven units, so the case fits in units[6] but not in units[7]."""
    units = [sscc(f"nest-{level}") for level in range(8)]
    for child in units[1:]:
        record(registry, manufacturer, Kind.COMMISSION, child)
    for parent, child in pairwise(units):
        pack(registry, manufacturer, parent, child)

    with pytest.raises(reverts.TraceRegistryPackingTooDeep) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, case, ref=units[7])
    assert exc.value.arguments == {"subject": case, "maxDepth": 8}

    pack(registry, manufacturer, units[6], case)
    assert registry.product_of(case).parent == units[6]


def test_aggregate_counts_items_packed_into_a_case_after_the_case_went_onto_its_pallet(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    """Packing the item into the case deepens the pallet above it too: pallet, case, item are three
    levels, so the pallet fits in units[5] but not in units[6], which is packed in six units."""
    units = [sscc(f"nest-{level}") for level in range(7)]
    for child in units[1:]:
        record(registry, manufacturer, Kind.COMMISSION, child)
    for parent, child in pairwise(units):
        pack(registry, manufacturer, parent, child)
    empty_case = sgtin("case-packed-empty")
    record(registry, manufacturer, Kind.COMMISSION, empty_case)
    pack(registry, manufacturer, PALLET, empty_case)
    pack(registry, manufacturer, empty_case, item)

    with pytest.raises(reverts.TraceRegistryPackingTooDeep) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, PALLET, ref=units[6])
    assert exc.value.arguments == {"subject": PALLET, "maxDepth": 8}

    pack(registry, manufacturer, units[5], PALLET)
    assert registry.product_of(PALLET).parent == units[5]


def test_aggregate_still_counts_the_height_a_unit_had_before_it_was_emptied(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    """The contract keeps heights when units are unpacked ("conservative and cheap"): an emptied
    unit that once held eight levels still cannot be packed into anything."""
    units = [item] + [sscc(f"stack-{level}") for level in range(1, 10)]
    for child, parent in pairwise(units[:9]):
        pack(registry, manufacturer, parent, child)
    record(registry, manufacturer, Kind.DISAGGREGATE, units[7], ref=units[8])

    with pytest.raises(reverts.TraceRegistryPackingTooDeep) as exc:
        record(registry, manufacturer, Kind.AGGREGATE, units[8], ref=units[9])
    assert exc.value.arguments == {"subject": units[8], "maxDepth": 8}


# ---------------------------------------------------------------- inspection


@pytest.mark.parametrize(
    "verdict",
    [ZERO_HASH, (3).to_bytes(32, "big"), VERDICT_CLEARED[::-1], random_hash()],
    ids=["zero", "three", "cleared_byte_reversed", "random"],
)
def test_inspect_reverts_on_a_verdict_other_than_cleared_or_rejected(
    registry: TraceRegistry, customs: Actor, item: bytes, verdict: bytes
) -> None:
    assert verdict not in (VERDICT_CLEARED, VERDICT_REJECTED)

    with pytest.raises(reverts.TraceRegistryInvalidVerdict) as exc:
        record(registry, customs, Kind.INSPECT, item, ref=verdict)
    assert exc.value.arguments == {"subject": item, "verdict": verdict}


def test_a_carrier_cannot_recall_another_manufacturers_item_through_a_pallet_it_packed(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, carrier, item)
    pack(registry, carrier, PALLET, item)
    assert registry.product_of(PALLET).manufacturer == carrier.address

    # Packing "made" the pallet, not what is on it: only an auditor may recall a packed unit.
    with pytest.raises(reverts.TraceRegistryNotManufacturerOrAuditor) as exc:
        record(registry, carrier, Kind.RECALL, PALLET)
    assert exc.value.arguments == {"subject": PALLET, "signer": carrier.address, "manufacturer": ZERO_ADDRESS}
    record(registry, carrier, Kind.DISAGGREGATE, item, ref=PALLET)

    assert not registry.product_of(item).recalled


# ---------------------------------------------------------------- withdrawals


def test_withdraw_reverts_when_a_participant_withdraws_another_participants_event(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    """A rival cannot withdraw the manufacturer's commissioning: only its signer or an auditor may."""
    (commissioned,) = registry.recorded_events(subject=item)

    with pytest.raises(reverts.TraceRegistryNotSignerOrAuditor) as exc:
        record(
            registry,
            carrier,
            Kind.WITHDRAW,
            item,
            counterpart=manufacturer.address,
            ref=commissioned.event_hash,
        )

    assert exc.value.arguments == {
        "subject": item,
        "signer": carrier.address,
        "withdrawnSigner": manufacturer.address,
    }


def test_withdraw_reverts_without_the_withdrawn_events_hash(
    registry: TraceRegistry, carrier: Actor, item: bytes
) -> None:
    with pytest.raises(reverts.TraceRegistryInvalidWithdrawal) as exc:
        record(registry, carrier, Kind.WITHDRAW, item, counterpart=carrier.address, ref=ZERO_HASH)

    assert exc.value.arguments == {"subject": item, "withdrawnEventHash": ZERO_HASH}
