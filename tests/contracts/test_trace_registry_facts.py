"""The trade facts TraceRegistry keeps for good as events happen: first receipts and handovers per
party, the first clearance, the first reporters of excursions and recalls. No later event changes
or clears one; the escrow pays on them (test_trade_escrow_*.py)."""

from __future__ import annotations

from tracechain.chain.registry import PartyFacts, RecordResult, Report, TraceRegistry
from tracechain.chain.trace_event import VERDICT_CLEARED, VERDICT_REJECTED, Kind, SignedEvent, next_head

from ..factories import Actor, hand_over, record, sgtin, sign_event

NO_FACTS = PartyFacts(0, 0, 0)


def block_time(registry: TraceRegistry, result: RecordResult) -> int:
    return int(registry.chain.w3.eth.get_block(result.receipt["blockNumber"])["timestamp"])


def recorded_at(registry: TraceRegistry, actor: Actor, kind: Kind, subject: bytes, **fields: object) -> int:
    """Records one event and returns the timestamp of the block it landed in."""
    return block_time(registry, record(registry, actor, kind, subject, **fields))


# ---------------------------------------------------------------- receipts and handovers


def test_receive_records_the_receivers_first_receipt_and_the_shippers_handover(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)
    assert registry.party_facts_of(item, manufacturer.address) == NO_FACTS  # a proposal hands nothing over

    at = recorded_at(registry, carrier, Kind.RECEIVE, item)

    assert registry.party_facts_of(item, carrier.address) == PartyFacts(at, 0, 0)
    assert registry.party_facts_of(item, manufacturer.address) == PartyFacts(0, at, 0)


def test_a_redirected_shipment_is_handed_over_to_whoever_received_it(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)
    record(registry, manufacturer, Kind.SHIP, item, counterpart=retailer.address)

    at = recorded_at(registry, retailer, Kind.RECEIVE, item)

    assert registry.party_facts_of(item, retailer.address) == PartyFacts(at, 0, 0)
    assert registry.party_facts_of(item, carrier.address) == NO_FACTS
    assert registry.party_facts_of(item, manufacturer.address).handed_over_at == at


def test_only_the_first_receipt_and_the_first_handover_of_a_party_are_kept(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)
    first = recorded_at(registry, carrier, Kind.RECEIVE, item)
    record(registry, carrier, Kind.SHIP, item, counterpart=manufacturer.address)
    back = recorded_at(registry, manufacturer, Kind.RECEIVE, item)
    hand_over(registry, manufacturer, carrier, item)  # the carrier receives it a second time

    assert first < back
    assert registry.party_facts_of(item, carrier.address) == PartyFacts(first, back, 0)
    assert registry.party_facts_of(item, manufacturer.address) == PartyFacts(back, first, 0)


def test_a_receipt_keeps_how_many_excursions_were_on_record_before_it(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes
) -> None:
    hand_over(registry, manufacturer, carrier, item)
    record(registry, carrier, Kind.EXCURSION, item)
    record(registry, carrier, Kind.EXCURSION, item)

    hand_over(registry, carrier, retailer, item)
    record(registry, retailer, Kind.EXCURSION, item)

    assert registry.party_facts_of(item, retailer.address).excursions_before_receipt == 2
    assert registry.party_facts_of(item, carrier.address).excursions_before_receipt == 0
    assert [r.ordinal for r in registry.excursion_reports_of(item)] == [1, 3]


def test_what_happens_after_a_receipt_changes_none_of_the_facts(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes
) -> None:
    """Selling what was received leaves the receipt on record: the escrow's Received holds for good."""
    hand_over(registry, manufacturer, carrier, item)
    hand_over(registry, carrier, retailer, item)
    facts = {party.address: registry.party_facts_of(item, party.address) for party in (carrier, retailer)}

    record(registry, retailer, Kind.SELL, item)

    assert {p: registry.party_facts_of(item, p) for p in facts} == facts
    assert facts[retailer.address].received_at != 0


def test_consuming_or_selling_what_one_holds_hands_nothing_over(
    registry: TraceRegistry, manufacturer: Actor, retailer: Actor, item: bytes
) -> None:
    record(registry, manufacturer, Kind.CONSUME, item, ref=sgtin("soup"))
    assert registry.party_facts_of(item, manufacturer.address) == NO_FACTS

    other = sgtin("sold")
    record(registry, manufacturer, Kind.COMMISSION, other)
    hand_over(registry, manufacturer, retailer, other)
    record(registry, retailer, Kind.SELL, other)
    assert registry.party_facts_of(other, retailer.address).handed_over_at == 0


def test_facts_are_kept_for_the_subject_an_event_names_not_for_what_is_packed_in_it(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, packed_item: bytes, case: bytes
) -> None:
    at = block_time(registry, registry.record(_hand_over_events(registry, manufacturer, carrier, case)))

    assert registry.party_facts_of(case, carrier.address).received_at == at
    assert registry.party_facts_of(packed_item, carrier.address) == NO_FACTS


def test_a_receipt_stays_on_record_when_the_goods_move_on_inside_a_unit(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, retailer: Actor, item: bytes
) -> None:
    """The carrier received the item, packed it in a case and handed the case on; the retailer
    unpacks it. Nobody received or handed over the item itself since the carrier's receipt."""
    record(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)
    at = recorded_at(registry, carrier, Kind.RECEIVE, item)
    case = sgtin("case")
    record(registry, carrier, Kind.AGGREGATE, item, ref=case)
    hand_over(registry, carrier, retailer, case)
    record(registry, retailer, Kind.DISAGGREGATE, item, ref=case)

    assert registry.product_of(item).custodian == retailer.address
    assert registry.party_facts_of(item, carrier.address) == PartyFacts(at, 0, 0)
    assert registry.party_facts_of(item, retailer.address) == NO_FACTS
    assert registry.party_facts_of(item, manufacturer.address) == PartyFacts(0, at, 0)


def _hand_over_events(
    registry: TraceRegistry, sender: Actor, receiver: Actor, subject: bytes
) -> list[SignedEvent]:
    """A Ship and its Receive, signed to go in one batch: the Receive signs over the head the Ship leaves."""
    ship = sign_event(registry, sender, Kind.SHIP, subject, counterpart=receiver.address)
    head = next_head(ship.event.prev_head, ship.event.event_hash)
    return [ship, sign_event(registry, receiver, Kind.RECEIVE, subject, prev_head=head)]


# ---------------------------------------------------------------- clearance


def test_the_first_clearance_is_kept_whatever_a_later_inspection_says(
    registry: TraceRegistry, customs: Actor, item: bytes
) -> None:
    assert registry.cleared_at(item) == 0
    record(registry, customs, Kind.INSPECT, item, ref=VERDICT_REJECTED)
    assert registry.cleared_at(item) == 0

    at = recorded_at(registry, customs, Kind.INSPECT, item, ref=VERDICT_CLEARED)
    record(registry, customs, Kind.INSPECT, item, ref=VERDICT_REJECTED)
    record(registry, customs, Kind.INSPECT, item, ref=VERDICT_CLEARED)

    assert registry.cleared_at(item) == at
    assert registry.product_of(item).cleared  # the latest verdict, as productOf tells it


# ---------------------------------------------------------------- excursion and recall reports


def test_the_first_three_distinct_excursion_reporters_are_kept_with_their_first_report(
    registry: TraceRegistry,
    manufacturer: Actor,
    carrier: Actor,
    customs: Actor,
    retailer: Actor,
    item: bytes,
) -> None:
    times = [recorded_at(registry, manufacturer, Kind.EXCURSION, item)]
    record(registry, manufacturer, Kind.EXCURSION, item)  # the same reporter again: not a new place
    hand_over(registry, manufacturer, carrier, item)
    times.append(recorded_at(registry, carrier, Kind.EXCURSION, item))
    hand_over(registry, carrier, customs, item)
    times.append(recorded_at(registry, customs, Kind.EXCURSION, item))
    hand_over(registry, customs, retailer, item)
    record(registry, retailer, Kind.EXCURSION, item)  # a fourth reporter: counted, not kept

    assert registry.excursion_reports_of(item) == [
        Report(manufacturer.address, times[0], 1),
        Report(carrier.address, times[1], 3),
        Report(customs.address, times[2], 4),
    ]
    assert registry.product_of(item).excursions == 5


def test_recall_reports_keep_each_recalling_party_once(
    registry: TraceRegistry, manufacturer: Actor, auditor: Actor, item: bytes
) -> None:
    first = recorded_at(registry, manufacturer, Kind.RECALL, item)
    record(registry, manufacturer, Kind.RECALL, item)
    second = recorded_at(registry, auditor, Kind.RECALL, item)

    assert registry.recall_reports_of(item) == [
        Report(manufacturer.address, first, 0),
        Report(auditor.address, second, 0),
    ]


def test_a_recall_of_the_unit_is_not_a_recall_report_of_what_is_packed_in_it(
    registry: TraceRegistry, auditor: Actor, packed_item: bytes, case: bytes
) -> None:
    at = recorded_at(registry, auditor, Kind.RECALL, case)

    assert registry.product_of(packed_item).recalled  # the item shows the recall it inherits
    assert registry.recall_reports_of(packed_item) == []
    assert registry.recall_reports_of(case) == [Report(auditor.address, at, 0)]


def test_unknown_subjects_and_parties_have_no_facts(registry: TraceRegistry, manufacturer: Actor) -> None:
    unknown = sgtin("never")
    assert registry.party_facts_of(unknown, manufacturer.address) == NO_FACTS
    assert registry.cleared_at(unknown) == 0
    assert registry.excursion_reports_of(unknown) == registry.recall_reports_of(unknown) == []
