"""What each recorded event does: its EventRecorded log and the state productOf reports afterwards."""

from __future__ import annotations

from typing import Any

import pytest

from tracechain.chain import reverts
from tracechain.chain.registry import ProductState, RecordedEvent, Role, TraceRegistry
from tracechain.chain.trace_event import (
    VERDICT_CLEARED,
    VERDICT_REJECTED,
    ZERO_ADDRESS,
    ZERO_HASH,
    Kind,
    SignedEvent,
    Status,
    chain_of,
    next_head,
)

from ..factories import Actor, chain_head, hand_over, pack, record, sgtin, sign_event, sscc

PALLET = sscc(200)
SOUP = sgtin("soup")


def logged(log: RecordedEvent) -> dict[str, Any]:
    return {
        "subject": log.subject,
        "event_hash": log.event_hash,
        "signer": log.signer,
        "kind": log.kind,
        "counterpart": log.counterpart,
        "ref": log.ref,
        "time": log.time,
        "head": log.head,
    }


def expected_log(signed: SignedEvent, head_before: bytes) -> dict[str, Any]:
    """The EventRecorded fields `signed` must produce on a subject whose head was `head_before`."""
    event = signed.event
    return {
        "subject": event.subject,
        "event_hash": event.event_hash,
        "signer": signed.signer,
        "kind": event.kind,
        "counterpart": event.counterpart,
        "ref": event.ref,
        "time": event.time,
        "head": next_head(head_before, event.event_hash),
    }


def record_logged(
    registry: TraceRegistry, actor: Actor, kind: Kind, subject: bytes, **fields: Any
) -> RecordedEvent:
    """Records one event, checks its one EventRecorded log and the new head of the chain it joined
    (the subject's facts, or the actor's observations of it), returns the log."""
    head_before = chain_head(registry, kind, subject, actor.address)
    signed = sign_event(registry, actor, kind, subject, **fields)
    result = registry.record([signed])
    assert [logged(log) for log in result.events] == [expected_log(signed, head_before)]
    assert chain_head(registry, kind, subject, actor.address) == result.events[0].head
    return result.events[0]


def address(actor: Actor | None) -> str:
    return ZERO_ADDRESS if actor is None else actor.address


def state(
    registry: TraceRegistry,
    subject: bytes,
    *,
    manufacturer: Actor | None,
    custodian: Actor | None,
    status: Status = Status.ACTIVE,
    pending_receiver: Actor | None = None,
    parent: bytes = ZERO_HASH,
    recalled: bool = False,
    cleared: bool = False,
    excursions: int = 0,
) -> ProductState:
    """The ProductState productOf should report; the head is the one headOf reports."""
    return ProductState(
        status=status,
        manufacturer=address(manufacturer),
        custodian=address(custodian),
        pending_receiver=address(pending_receiver),
        parent=parent,
        recalled=recalled,
        cleared=cleared,
        excursions=excursions,
        head=registry.head_of(subject),
    )


# ---------------------------------------------------------------- one event of each kind


def test_commission_makes_the_manufacturer_the_custodian_of_an_active_product(
    registry: TraceRegistry, manufacturer: Actor
) -> None:
    subject = sgtin(1)
    assert registry.product_of(subject) == state(
        registry, subject, manufacturer=None, custodian=None, status=Status.UNKNOWN
    )

    record_logged(registry, manufacturer, Kind.COMMISSION, subject)

    assert registry.product_of(subject) == state(
        registry, subject, manufacturer=manufacturer, custodian=manufacturer
    )


def test_observe_joins_the_reporters_own_chain_and_leaves_the_subject_as_it_was(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    before = registry.product_of(item)

    log = record_logged(registry, carrier, Kind.OBSERVE, item, ref=sscc("dock-7"))

    assert (
        registry.observation_head_of(item, carrier.address)
        == log.head
        == next_head(ZERO_HASH, log.event_hash)
    )
    assert registry.product_of(item) == before  # the chain of facts, its head included, did not move
    assert registry.observation_head_of(item, manufacturer.address) == ZERO_HASH
    chain = bytes(registry.contract.functions.chainOf(item, int(Kind.OBSERVE), carrier.address).call())
    assert chain == chain_of(item, Kind.OBSERVE, carrier.address) != item
    assert bytes(registry.contract.functions.chainOf(item, int(Kind.SHIP), carrier.address).call()) == item


def test_a_rivals_observation_cannot_stale_what_the_custodian_signed(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes
) -> None:
    """Anyone may observe anyone's product; on one shared chain an observation mined first would move
    the head the custodian's pending events were signed over, and the chain would refuse them."""
    shipped = sign_event(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)

    record(registry, retailer, Kind.OBSERVE, item)
    record(registry, retailer, Kind.OBSERVE, item)

    (log,) = registry.record([shipped]).events
    assert log.kind == Kind.SHIP and registry.product_of(item).pending_receiver == carrier.address


def test_withdraw_by_the_signer_of_the_withdrawn_event_is_logged_on_its_observation_chain(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    observed = record_logged(registry, carrier, Kind.OBSERVE, item)
    before = registry.product_of(item)

    log = record_logged(
        registry, carrier, Kind.WITHDRAW, item, counterpart=carrier.address, ref=observed.event_hash
    )

    assert log.head == next_head(observed.head, log.event_hash)
    assert registry.product_of(item) == before


def test_an_auditor_withdraws_another_participants_event(
    registry: TraceRegistry, manufacturer: Actor, auditor: Actor, item: bytes
) -> None:
    (commissioned,) = registry.recorded_events(subject=item)

    log = record_logged(
        registry, auditor, Kind.WITHDRAW, item, counterpart=manufacturer.address, ref=commissioned.event_hash
    )

    assert (log.signer, log.counterpart, log.ref) == (
        auditor.address,
        manufacturer.address,
        commissioned.event_hash,
    )


@pytest.mark.parametrize("signer", ["manufacturer", "carrier", "customs", "retailer", "auditor"])
def test_observe_is_open_to_every_role(
    request: pytest.FixtureRequest, registry: TraceRegistry, item: bytes, signer: str
) -> None:
    observer: Actor = request.getfixturevalue(signer)

    log = record_logged(registry, observer, Kind.OBSERVE, item)

    assert log.signer == observer.address


def test_observe_of_an_unknown_subject_leaves_its_chain_of_facts_to_start_at_commissioning(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor
) -> None:
    subject = sgtin(3)

    observed = record_logged(registry, carrier, Kind.OBSERVE, subject)
    assert registry.product_of(subject) == state(
        registry, subject, manufacturer=None, custodian=None, status=Status.UNKNOWN
    )
    commissioned = record_logged(registry, manufacturer, Kind.COMMISSION, subject)

    assert commissioned.head == next_head(ZERO_HASH, commissioned.event_hash)
    assert registry.observation_head_of(subject, carrier.address) == observed.head
    assert registry.product_of(subject).status == Status.ACTIVE


def test_aggregate_packs_the_item_and_creates_the_unit_held_by_the_packer(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    record_logged(registry, manufacturer, Kind.AGGREGATE, item, ref=PALLET)

    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=manufacturer, parent=PALLET
    )
    assert registry.product_of(PALLET) == state(
        registry, PALLET, manufacturer=manufacturer, custodian=manufacturer
    )
    assert registry.head_of(PALLET) == ZERO_HASH


def test_aggregate_into_a_unit_that_exists_leaves_the_unit_as_it_was(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    second = sgtin(2)
    record(registry, manufacturer, Kind.COMMISSION, second)
    hand_over(registry, manufacturer, carrier, item)
    hand_over(registry, manufacturer, carrier, second)
    pack(registry, carrier, PALLET, item)
    pallet_before = registry.product_of(PALLET)

    record_logged(registry, carrier, Kind.AGGREGATE, second, ref=PALLET)

    assert registry.product_of(second) == state(
        registry, second, manufacturer=manufacturer, custodian=carrier, parent=PALLET
    )
    assert (
        registry.product_of(PALLET)
        == pallet_before
        == state(registry, PALLET, manufacturer=carrier, custodian=carrier)
    )


def test_disaggregate_gives_the_item_the_current_custodian_of_its_unit(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes
) -> None:
    stays = sgtin(2)
    record(registry, manufacturer, Kind.COMMISSION, stays)
    pack(registry, manufacturer, PALLET, item, stays)
    hand_over(registry, manufacturer, carrier, PALLET)

    record_logged(registry, carrier, Kind.DISAGGREGATE, item, ref=PALLET)
    assert registry.product_of(item) == state(registry, item, manufacturer=manufacturer, custodian=carrier)

    hand_over(registry, carrier, retailer, PALLET)
    assert registry.product_of(item).custodian == carrier.address
    assert registry.product_of(stays) == state(
        registry, stays, manufacturer=manufacturer, custodian=retailer, parent=PALLET
    )


def test_disaggregate_keeps_a_recall_of_the_unit_on_the_item(
    registry: TraceRegistry, manufacturer: Actor, auditor: Actor, item: bytes
) -> None:
    left_before = sgtin(2)
    stays = sgtin(3)
    for subject in (left_before, stays):
        record(registry, manufacturer, Kind.COMMISSION, subject)
    pack(registry, manufacturer, PALLET, item, left_before, stays)
    record(registry, manufacturer, Kind.DISAGGREGATE, left_before, ref=PALLET)
    record(registry, auditor, Kind.RECALL, PALLET)  # only an auditor recalls a packed unit

    record_logged(registry, manufacturer, Kind.DISAGGREGATE, item, ref=PALLET)

    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=manufacturer, recalled=True
    )
    assert registry.product_of(stays).recalled
    assert not registry.product_of(left_before).recalled


def test_ship_proposes_the_receiver_and_leaves_custody_with_the_shipper(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    log = record_logged(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)

    assert log.counterpart == carrier.address
    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=manufacturer, pending_receiver=carrier
    )


def test_ship_while_a_shipment_is_pending_redirects_it(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)

    record_logged(registry, manufacturer, Kind.SHIP, item, counterpart=retailer.address)
    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=manufacturer, pending_receiver=retailer
    )

    record_logged(registry, retailer, Kind.RECEIVE, item)
    assert registry.product_of(item).custodian == retailer.address


def test_receive_moves_custody_to_the_receiver_and_ends_the_shipment(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)

    record_logged(registry, carrier, Kind.RECEIVE, item)

    assert registry.product_of(item) == state(registry, item, manufacturer=manufacturer, custodian=carrier)


def test_inspect_with_the_cleared_verdict_clears_the_product(
    registry: TraceRegistry, manufacturer: Actor, customs: Actor, item: bytes
) -> None:
    record_logged(registry, customs, Kind.INSPECT, item, ref=VERDICT_CLEARED)

    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=manufacturer, cleared=True
    )


def test_inspect_with_the_rejected_verdict_withdraws_a_clearance(
    registry: TraceRegistry, manufacturer: Actor, customs: Actor, item: bytes
) -> None:
    record(registry, customs, Kind.INSPECT, item, ref=VERDICT_CLEARED)

    record_logged(registry, customs, Kind.INSPECT, item, ref=VERDICT_REJECTED)

    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=manufacturer
    )


def test_sell_ends_custody_of_the_product(
    registry: TraceRegistry, manufacturer: Actor, retailer: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, retailer, item)

    record_logged(registry, retailer, Kind.SELL, item)

    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=None, status=Status.SOLD
    )


def test_sell_out_of_a_packed_case_detaches_the_item_from_the_case(
    registry: TraceRegistry,
    manufacturer: Actor,
    retailer: Actor,
    packed_item: bytes,
    case: bytes,
    item: bytes,
) -> None:
    pack(registry, manufacturer, case, item)
    hand_over(registry, manufacturer, retailer, case)

    record_logged(registry, retailer, Kind.SELL, packed_item)

    assert registry.product_of(packed_item) == state(
        registry, packed_item, manufacturer=manufacturer, custodian=None, status=Status.SOLD
    )
    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=retailer, parent=case
    )
    assert registry.product_of(case) == state(registry, case, manufacturer=manufacturer, custodian=retailer)


def test_sell_out_of_a_recalled_case_keeps_the_recall_on_the_sold_item(
    registry: TraceRegistry,
    manufacturer: Actor,
    auditor: Actor,
    retailer: Actor,
    packed_item: bytes,
    case: bytes,
) -> None:
    hand_over(registry, manufacturer, retailer, case)
    record(registry, auditor, Kind.RECALL, case)

    record_logged(registry, retailer, Kind.SELL, packed_item)

    assert registry.product_of(packed_item) == state(
        registry, packed_item, manufacturer=manufacturer, custodian=None, status=Status.SOLD, recalled=True
    )


@pytest.mark.parametrize("signer", ["manufacturer", "auditor"])
def test_recall_marks_the_product_recalled_and_leaves_custody_alone(
    request: pytest.FixtureRequest,
    registry: TraceRegistry,
    manufacturer: Actor,
    carrier: Actor,
    item: bytes,
    signer: str,
) -> None:
    hand_over(registry, manufacturer, carrier, item)
    recaller: Actor = request.getfixturevalue(signer)

    record_logged(registry, recaller, Kind.RECALL, item)

    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=carrier, recalled=True
    )


def test_recall_of_a_sold_product_is_recorded(
    registry: TraceRegistry, manufacturer: Actor, retailer: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, retailer, item)
    record(registry, retailer, Kind.SELL, item)

    record_logged(registry, manufacturer, Kind.RECALL, item)

    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=None, status=Status.SOLD, recalled=True
    )


def test_recall_of_a_pallet_shows_on_everything_packed_on_it(
    registry: TraceRegistry, manufacturer: Actor, auditor: Actor, packed_item: bytes, case: bytes, item: bytes
) -> None:
    pack(registry, manufacturer, PALLET, case)
    item_head = registry.head_of(packed_item)

    record_logged(registry, auditor, Kind.RECALL, PALLET)

    assert registry.product_of(packed_item) == state(
        registry, packed_item, manufacturer=manufacturer, custodian=manufacturer, parent=case, recalled=True
    )
    assert registry.product_of(case) == state(
        registry, case, manufacturer=manufacturer, custodian=manufacturer, parent=PALLET, recalled=True
    )
    assert registry.head_of(packed_item) == item_head
    assert not registry.product_of(item).recalled


def test_consume_ends_the_product_as_an_ingredient_of_another(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    log = record_logged(registry, manufacturer, Kind.CONSUME, item, ref=SOUP)

    assert log.ref == SOUP
    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=None, status=Status.CONSUMED
    )


def test_excursion_counts_each_reading_outside_the_range(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, carrier, item)

    record_logged(registry, carrier, Kind.EXCURSION, item)
    record_logged(registry, carrier, Kind.EXCURSION, item)

    assert registry.product_of(item) == state(
        registry, item, manufacturer=manufacturer, custodian=carrier, excursions=2
    )


def test_excursion_on_a_packed_item_is_reported_by_the_custodian_of_its_unit(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, packed_item: bytes, case: bytes
) -> None:
    hand_over(registry, manufacturer, carrier, case)

    record_logged(registry, carrier, Kind.EXCURSION, packed_item)

    assert registry.product_of(packed_item) == state(
        registry, packed_item, manufacturer=manufacturer, custodian=carrier, parent=case, excursions=1
    )
    assert registry.product_of(case).excursions == 0


def test_excursion_may_be_reported_by_the_shipper_while_the_shipment_is_pending(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)

    record_logged(registry, manufacturer, Kind.EXCURSION, item)

    assert registry.product_of(item) == state(
        registry,
        item,
        manufacturer=manufacturer,
        custodian=manufacturer,
        pending_receiver=carrier,
        excursions=1,
    )


# ---------------------------------------------------------------- custody through packing


def test_custody_of_packed_items_follows_the_pallet_without_events_on_the_items(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    second = sgtin(2)
    record(registry, manufacturer, Kind.COMMISSION, second)
    pack(registry, manufacturer, PALLET, item, second)
    item_heads = {subject: registry.head_of(subject) for subject in (item, second)}

    record_logged(registry, manufacturer, Kind.SHIP, PALLET, counterpart=carrier.address)
    for subject in (item, second):
        assert registry.product_of(subject) == state(
            registry,
            subject,
            manufacturer=manufacturer,
            custodian=manufacturer,
            pending_receiver=carrier,
            parent=PALLET,
        )

    record_logged(registry, carrier, Kind.RECEIVE, PALLET)
    for subject in (item, second):
        assert registry.product_of(subject) == state(
            registry, subject, manufacturer=manufacturer, custodian=carrier, parent=PALLET
        )
    assert {subject: registry.head_of(subject) for subject in (item, second)} == item_heads
    assert registry.recorded_events(subject=item)[-1].kind is Kind.AGGREGATE


def test_custody_follows_the_outermost_unit_through_nested_packing(
    registry: TraceRegistry,
    manufacturer: Actor,
    carrier: Actor,
    retailer: Actor,
    packed_item: bytes,
    case: bytes,
) -> None:
    pack(registry, manufacturer, PALLET, case)

    hand_over(registry, manufacturer, carrier, PALLET)
    hand_over(registry, carrier, retailer, PALLET)

    assert registry.product_of(packed_item) == state(
        registry, packed_item, manufacturer=manufacturer, custodian=retailer, parent=case
    )
    record_logged(registry, retailer, Kind.DISAGGREGATE, case, ref=PALLET)
    record_logged(registry, retailer, Kind.SELL, packed_item)
    assert registry.product_of(packed_item).status == Status.SOLD


# ---------------------------------------------------------------- batches and heads


def test_a_batch_records_its_events_in_order_with_one_log_each(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor
) -> None:
    subject = sgtin(5)
    commission = sign_event(registry, manufacturer, Kind.COMMISSION, subject)
    after_commission = next_head(ZERO_HASH, commission.event.event_hash)
    aggregate = sign_event(
        registry, manufacturer, Kind.AGGREGATE, subject, ref=PALLET, prev_head=after_commission
    )
    ship = sign_event(registry, manufacturer, Kind.SHIP, PALLET, counterpart=carrier.address)

    result = registry.record([commission, aggregate, ship])

    assert [logged(log) for log in result.events] == [
        expected_log(commission, ZERO_HASH),
        expected_log(aggregate, after_commission),
        expected_log(ship, ZERO_HASH),
    ]
    assert [log.log_index for log in result.events] == [0, 1, 2]
    assert {log.transaction_hash for log in result.events} == {bytes(result.receipt["transactionHash"])}
    assert registry.product_of(subject) == state(
        registry,
        subject,
        manufacturer=manufacturer,
        custodian=manufacturer,
        pending_receiver=carrier,
        parent=PALLET,
    )


def test_a_failing_event_reverts_the_whole_batch_with_the_first_failure(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor
) -> None:
    first, second, unknown = sgtin(6), sgtin(7), sgtin("never-commissioned")
    good = [sign_event(registry, manufacturer, Kind.COMMISSION, subject) for subject in (first, second)]
    failing = sign_event(registry, manufacturer, Kind.SHIP, unknown, counterpart=carrier.address)
    also_failing = sign_event(registry, carrier, Kind.COMMISSION, sgtin(8))
    block_before = registry.chain.w3.eth.block_number

    with pytest.raises(reverts.TraceRegistryUnknownSubject) as exc:
        registry.record([*good, failing, also_failing])

    assert exc.value.arguments == {"subject": unknown}
    for subject in (first, second):
        assert registry.product_of(subject) == state(
            registry, subject, manufacturer=None, custodian=None, status=Status.UNKNOWN
        )
        assert registry.head_of(subject) == ZERO_HASH
    assert registry.recorded_events(from_block=block_before) == []
    # The heads did not move, so the good events' signatures still hold.
    assert len(registry.record(good).events) == 2


def test_heads_chain_every_event_of_a_subject_from_zero(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, customs: Actor, retailer: Actor
) -> None:
    subject = sgtin(9)
    record(registry, manufacturer, Kind.COMMISSION, subject)
    hand_over(registry, manufacturer, carrier, subject)
    record(registry, customs, Kind.INSPECT, subject, ref=VERDICT_CLEARED)
    hand_over(registry, carrier, retailer, subject)
    record(registry, retailer, Kind.SELL, subject)

    logs = registry.recorded_events(subject=subject)

    assert [log.kind for log in logs] == [
        Kind.COMMISSION,
        Kind.SHIP,
        Kind.RECEIVE,
        Kind.INSPECT,
        Kind.SHIP,
        Kind.RECEIVE,
        Kind.SELL,
    ]
    head = ZERO_HASH
    for log in logs:
        head = next_head(head, log.event_hash)
        assert log.head == head
    assert registry.head_of(subject) == head == registry.product_of(subject).head


# ---------------------------------------------------------------- roles


def test_grant_role_emits_role_granted_and_admits_the_account(
    registry: TraceRegistry, manufacturer: Actor, outsider: Actor, item: bytes
) -> None:
    assert not registry.has_role(Role.CARRIER, outsider.address)

    receipt = registry.grant_role(Role.CARRIER, outsider.address)

    granted = registry.contract.events.RoleGranted().process_receipt(receipt)
    assert [dict(log["args"]) for log in granted] == [
        {"role": Role.CARRIER, "account": outsider.address, "sender": registry.chain.relayer.address}
    ]
    assert registry.has_role(Role.CARRIER, outsider.address)
    record_logged(registry, outsider, Kind.OBSERVE, item)


def test_grant_role_of_a_role_already_held_emits_nothing(registry: TraceRegistry, carrier: Actor) -> None:
    receipt = registry.grant_role(Role.CARRIER, carrier.address)

    assert registry.contract.events.RoleGranted().process_receipt(receipt) == ()
    assert registry.has_role(Role.CARRIER, carrier.address)
