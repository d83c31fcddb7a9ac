from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tracechain.chain.trace_event import VERDICT_CLEARED, VERDICT_REJECTED, Kind
from tracechain.epcis.identifiers import InvalidIdentifier, canonical_epc
from tracechain.epcis.mapping import (
    Effect,
    InvalidEvent,
    bare_vocabulary,
    describe,
    effects_of,
    identifiers_of,
)

from .examples import capture_documents, event, events, example, load, name

ITEM = "urn:epc:id:sgtin:6901234.067890.1001"
ITEM_LINK = "https://id.gs1.org/01/06901234678901/21/1001"  # the same item
OTHER = "urn:epc:id:sgtin:6901234.067890.1002"
LOT = "urn:epc:class:lgtin:6901234.067890.L42"
PRODUCT = "urn:epc:idpat:sgtin:6901234.067890.*"  # a product type: no lot, no serial
PALLET = "urn:epc:id:sscc:6901234.0000000001"
RETAILER = "urn:epc:id:pgln:0614141.00002"
RETAILER_STORE = "urn:epc:id:sgln:0614141.00002.0"
CARRIER = "urn:epc:id:pgln:4012345.00001"


def _quantities(*classes: str) -> list[dict[str, Any]]:
    return [{"epcClass": epc_class, "quantity": 10} for epc_class in classes]


def _kinds(effects: list[Effect]) -> list[tuple[str, Kind]]:
    return [(effect.subject, effect.kind) for effect in effects]


def _alarm(kind: str = "Temperature", exception: str = "ALARM_CONDITION") -> list[dict[str, Any]]:
    return [{"sensorReport": [{"type": kind, "value": 12.5, "uom": "CEL", "exception": exception}]}]


# ---------------------------------------------------------------- ObjectEvent rows


def test_commissioning_add_commissions_each_epc_and_each_lot_but_not_a_product_type() -> None:
    commissioning = event(
        action="ADD",
        bizStep="commissioning",
        epcList=[ITEM, OTHER],
        quantityList=_quantities(LOT, PRODUCT),
    )
    assert effects_of(commissioning) == [
        Effect(ITEM, Kind.COMMISSION),
        Effect(OTHER, Kind.COMMISSION),
        Effect(LOT, Kind.COMMISSION),
        Effect(PRODUCT, Kind.OBSERVE),
    ]


def test_commissioning_without_add_is_only_observed() -> None:
    assert _kinds(effects_of(event(action="OBSERVE", bizStep="commissioning", epcList=[ITEM]))) == [
        (ITEM, Kind.OBSERVE)
    ]


def test_shipping_proposes_custody_to_the_owning_party_first() -> None:
    shipping = event(
        bizStep="shipping",
        epcList=[PALLET],
        destinationList=[
            {"type": "location", "destination": RETAILER_STORE},
            {"type": "possessing_party", "destination": CARRIER},
            {"type": "owning_party", "destination": RETAILER},
        ],
    )
    assert effects_of(shipping) == [Effect(PALLET, Kind.SHIP, counterpart_party=RETAILER)]


@pytest.mark.parametrize(
    ("destinations", "party"),
    [
        (
            [
                {"type": "possessing_party", "destination": CARRIER},
                {"type": "location", "destination": RETAILER_STORE},
            ],
            CARRIER,
        ),
        ([{"type": "location", "destination": RETAILER_STORE}], RETAILER_STORE),
        ([{"type": "urn:epcglobal:cbv:sdt:owning_party", "destination": RETAILER}], RETAILER),
        ([{"type": "https://ref.gs1.org/cbv/SDT-owning_party", "destination": RETAILER}], RETAILER),
    ],
)
def test_shipping_falls_back_to_possessing_party_then_location(
    destinations: list[dict[str, str]], party: str
) -> None:
    [ship] = effects_of(event(bizStep="shipping", epcList=[ITEM], destinationList=destinations))
    assert (ship.kind, ship.counterpart_party) == (Kind.SHIP, party)


def test_destination_written_as_digital_link_is_given_as_its_canonical_urn() -> None:
    destinations = [{"type": "owning_party", "destination": "https://id.gs1.org/417/0614141000029"}]
    [ship] = effects_of(event(bizStep="shipping", epcList=[ITEM], destinationList=destinations))
    assert ship.counterpart_party == RETAILER


def test_destination_urn_split_unlike_the_gs1_table_is_given_resplit() -> None:
    # GS1 Netherlands issues 8712345xxxxx as one-off 12-digit prefixes, so 8712345 is no company prefix.
    destinations = [{"type": "owning_party", "destination": "urn:epc:id:pgln:8712345.00002"}]
    [ship] = effects_of(event(bizStep="shipping", epcList=[ITEM], destinationList=destinations))
    assert ship.counterpart_party == "urn:epc:id:pgln:871234500002."


def test_destination_with_a_bad_check_digit_raises() -> None:
    destinations = [{"type": "owning_party", "destination": "https://id.gs1.org/417/0614141000028"}]
    with pytest.raises(InvalidIdentifier, match="check digit"):
        effects_of(event(bizStep="shipping", epcList=[ITEM], destinationList=destinations))


def test_destination_that_is_not_a_gs1_identifier_is_given_as_written() -> None:
    for party in ("https://parties.example.com/retailer/7", "urn:example:party:7"):
        destinations = [{"type": "owning_party", "destination": party}]
        [ship] = effects_of(event(bizStep="shipping", epcList=[ITEM], destinationList=destinations))
        assert ship.counterpart_party == party


def test_shipping_without_a_destination_is_only_observed() -> None:
    assert effects_of(event(bizStep="shipping", epcList=[ITEM])) == [Effect(ITEM, Kind.OBSERVE)]


def test_receiving_receives_each_subject() -> None:
    receiving = event(bizStep="receiving", epcList=[PALLET], quantityList=_quantities(LOT))
    assert _kinds(effects_of(receiving)) == [(PALLET, Kind.RECEIVE), (LOT, Kind.RECEIVE)]


@pytest.mark.parametrize(
    ("disposition", "verdict"), [("conformant", VERDICT_CLEARED), ("non_conformant", VERDICT_REJECTED)]
)
def test_inspecting_with_a_verdict_records_it(disposition: str, verdict: bytes) -> None:
    inspecting = event(bizStep="inspecting", disposition=disposition, epcList=[PALLET])
    assert effects_of(inspecting) == [Effect(PALLET, Kind.INSPECT, verdict=verdict)]


def test_inspecting_without_a_verdict_is_only_observed() -> None:
    inspecting = event(bizStep="inspecting", disposition="in_progress", epcList=[PALLET])
    assert effects_of(inspecting) == [Effect(PALLET, Kind.OBSERVE)]


def test_retail_selling_sells_each_item() -> None:
    assert _kinds(effects_of(event(bizStep="retail_selling", epcList=[ITEM, OTHER]))) == [
        (ITEM, Kind.SELL),
        (OTHER, Kind.SELL),
    ]


def test_destroying_consumes_each_item_so_only_its_custodian_may_say_it() -> None:
    destroyed = event(bizStep="destroying", disposition="destroyed", epcList=[ITEM, OTHER])
    assert _kinds(effects_of(destroyed)) == [(ITEM, Kind.CONSUME), (OTHER, Kind.CONSUME)]
    assert all(effect.ref_subject is None for effect in effects_of(destroyed))


@pytest.mark.parametrize(
    ("biz_step", "disposition"),
    [
        ("inspecting", "conformant"),
        ("urn:epcglobal:cbv:bizstep:inspecting", "urn:epcglobal:cbv:disp:conformant"),
        ("https://ref.gs1.org/cbv/BizStep-inspecting", "https://ref.gs1.org/cbv/Disp-conformant"),
        ("https://gs1.org/voc/BizStep-inspecting", "https://gs1.org/voc/Disp-conformant"),
    ],
)
def test_cbv_words_and_uris_map_alike(biz_step: str, disposition: str) -> None:
    inspecting = event(bizStep=biz_step, disposition=disposition, epcList=[PALLET])
    assert effects_of(inspecting) == [Effect(PALLET, Kind.INSPECT, verdict=VERDICT_CLEARED)]


def test_a_custom_biz_step_uri_is_only_observed() -> None:
    custom = event(
        bizStep="https://example.com/bizstep/shipping",
        epcList=[ITEM],
        destinationList=[{"type": "owning_party", "destination": RETAILER}],
    )
    assert effects_of(custom) == [Effect(ITEM, Kind.OBSERVE)]


def test_other_biz_steps_observe_each_identifier() -> None:
    assert _kinds(
        effects_of(event(bizStep="storing", epcList=[ITEM], quantityList=_quantities(PRODUCT)))
    ) == [
        (ITEM, Kind.OBSERVE),
        (PRODUCT, Kind.OBSERVE),
    ]


# ---------------------------------------------------------------- recall and sensor alarms


def test_recalled_disposition_recalls_each_subject_instead_of_observing_it() -> None:
    recall = event(
        bizStep="holding", disposition="recalled", epcList=[ITEM], quantityList=_quantities(LOT, PRODUCT)
    )
    assert effects_of(recall) == [
        Effect(PRODUCT, Kind.OBSERVE),
        Effect(ITEM, Kind.RECALL),
        Effect(LOT, Kind.RECALL),
    ]


def test_recalled_disposition_adds_a_recall_to_a_custody_effect() -> None:
    shipping = event(
        bizStep="shipping",
        disposition="urn:epcglobal:cbv:disp:recalled",
        epcList=[ITEM],
        destinationList=[{"type": "owning_party", "destination": RETAILER}],
    )
    assert _kinds(effects_of(shipping)) == [(ITEM, Kind.SHIP), (ITEM, Kind.RECALL)]


def test_sensor_alarm_adds_an_excursion_to_a_custody_effect() -> None:
    shipping = event(
        bizStep="shipping",
        epcList=[PALLET],
        destinationList=[{"type": "owning_party", "destination": RETAILER}],
        sensorElementList=_alarm(),
    )
    assert _kinds(effects_of(shipping)) == [(PALLET, Kind.SHIP), (PALLET, Kind.EXCURSION)]


def test_sensor_alarm_replaces_an_observation_with_an_excursion() -> None:
    reading = event(bizStep="sensor_reporting", epcList=[PALLET], sensorElementList=_alarm())
    assert effects_of(reading) == [Effect(PALLET, Kind.EXCURSION)]


@pytest.mark.parametrize("exception", ["ERROR_CONDITION", None])
def test_sensor_report_without_alarm_is_no_excursion(exception: str | None) -> None:
    report: dict[str, Any] = {"type": "Temperature", "value": 4.0, "uom": "CEL"}
    if exception:
        report["exception"] = exception
    reading = event(
        bizStep="sensor_reporting", epcList=[PALLET], sensorElementList=[{"sensorReport": [report]}]
    )
    assert effects_of(reading) == [Effect(PALLET, Kind.OBSERVE)]


# ---------------------------------------------------------------- AggregationEvent rows


def test_aggregation_add_aggregates_each_child_into_the_parent() -> None:
    packing = event(
        "AggregationEvent",
        action="ADD",
        bizStep="packing",
        parentID=PALLET,
        childEPCs=[ITEM, OTHER],
        childQuantityList=_quantities(LOT, PRODUCT),
    )
    assert effects_of(packing) == [
        Effect(ITEM, Kind.AGGREGATE, ref_subject=PALLET),
        Effect(OTHER, Kind.AGGREGATE, ref_subject=PALLET),
        Effect(LOT, Kind.AGGREGATE, ref_subject=PALLET),
        Effect(PRODUCT, Kind.OBSERVE),
    ]


def test_aggregation_delete_disaggregates_each_child_from_the_parent() -> None:
    unpacking = event(
        "AggregationEvent", action="DELETE", bizStep="unpacking", parentID=PALLET, childEPCs=[ITEM]
    )
    assert effects_of(unpacking) == [Effect(ITEM, Kind.DISAGGREGATE, ref_subject=PALLET)]


def test_aggregation_delete_without_children_observes_the_parent() -> None:
    unpacking = event("AggregationEvent", action="DELETE", bizStep="unpacking", parentID=PALLET)
    assert effects_of(unpacking) == [Effect(PALLET, Kind.OBSERVE)]


def test_aggregation_observe_observes_parent_and_children() -> None:
    observed = event("AggregationEvent", bizStep="receiving", parentID=PALLET, childEPCs=[ITEM, OTHER])
    assert _kinds(effects_of(observed)) == [
        (PALLET, Kind.OBSERVE),
        (ITEM, Kind.OBSERVE),
        (OTHER, Kind.OBSERVE),
    ]


def test_aggregation_with_a_sensor_alarm_records_an_excursion_on_parent_and_children() -> None:
    observed = event("AggregationEvent", parentID=PALLET, childEPCs=[ITEM], sensorElementList=_alarm())
    assert _kinds(effects_of(observed)) == [(PALLET, Kind.EXCURSION), (ITEM, Kind.EXCURSION)]


# ---------------------------------------------------------------- TransformationEvent rows


def test_transformation_consumes_inputs_into_the_first_output_and_commissions_outputs() -> None:
    cocoa, sugar = "urn:epc:class:lgtin:6901234.011111.C1", "urn:epc:class:lgtin:6901234.022222.S1"
    bars = ["urn:epc:id:sgtin:6901234.033333.1", "urn:epc:id:sgtin:6901234.033333.2"]
    transformation = event(
        "TransformationEvent",
        bizStep="commissioning",
        inputQuantityList=_quantities(cocoa, sugar),
        outputEPCList=bars,
    )
    assert effects_of(transformation) == [
        Effect(cocoa, Kind.CONSUME, ref_subject=bars[0]),
        Effect(sugar, Kind.CONSUME, ref_subject=bars[0]),
        Effect(bars[0], Kind.COMMISSION),
        Effect(bars[1], Kind.COMMISSION),
    ]


def test_recalled_transformation_recalls_only_its_outputs() -> None:
    transformation = event(
        "TransformationEvent",
        disposition="recalled",
        inputEPCList=[ITEM],
        outputQuantityList=_quantities(LOT),
    )
    assert _kinds(effects_of(transformation)) == [
        (ITEM, Kind.CONSUME),
        (LOT, Kind.COMMISSION),
        (LOT, Kind.RECALL),
    ]


# ---------------------------------------------------------------- everything else


def test_error_declaration_never_replays_custody_effects() -> None:
    declared = event(
        action="ADD",
        bizStep="commissioning",
        disposition="recalled",
        epcList=[ITEM],
        errorDeclaration={"declarationTime": "2024-05-02T10:00:00Z", "reason": "incorrect_data"},
    )
    assert effects_of(declared) == [Effect(ITEM, Kind.WITHDRAW)]


@pytest.mark.parametrize("kind", ["TransactionEvent", "AssociationEvent", "example:CustomEvent"])
def test_other_event_types_observe_each_identifier(kind: str) -> None:
    other = event(kind, action="ADD", bizStep="shipping", parentID=PALLET, epcList=[ITEM], childEPCs=[OTHER])
    assert _kinds(effects_of(other)) == [(PALLET, Kind.OBSERVE), (ITEM, Kind.OBSERVE), (OTHER, Kind.OBSERVE)]


def test_one_item_written_as_urn_and_digital_link_is_one_subject() -> None:
    assert effects_of(event(bizStep="receiving", epcList=[ITEM, ITEM_LINK])) == [Effect(ITEM, Kind.RECEIVE)]


def test_event_naming_no_identifier_observes_its_place_or_has_no_effect() -> None:
    reading = event(bizStep="sensor_reporting", readPoint={"id": RETAILER_STORE}, sensorElementList=_alarm())
    # An alarm at a place names no goods: an observation of the place, never an excursion of goods.
    assert effects_of(reading) == [Effect(canonical_epc(RETAILER_STORE), Kind.OBSERVE)]
    at_location = event(bizStep="sensor_reporting", bizLocation={"id": RETAILER_STORE})
    assert effects_of(at_location) == [Effect(canonical_epc(RETAILER_STORE), Kind.OBSERVE)]
    withdrawn = event(
        readPoint={"id": RETAILER_STORE}, errorDeclaration={"declarationTime": "2024-05-02T10:00:00Z"}
    )
    assert effects_of(withdrawn) == [Effect(canonical_epc(RETAILER_STORE), Kind.WITHDRAW)]
    assert effects_of(event(bizStep="sensor_reporting", readPoint={"id": "https://example.com/dock-4"})) == []
    assert effects_of(event(bizStep="sensor_reporting")) == []


@pytest.mark.parametrize(
    "epc_list",
    [["https://id.gs1.org/01/06901234678902/21/1001"], ["not-an-epc"], [42]],
    ids=["bad-check-digit", "not-an-identifier", "not-a-string"],
)
def test_invalid_identifier_raises(epc_list: list[Any]) -> None:
    with pytest.raises(InvalidIdentifier):
        effects_of(event(bizStep="receiving", epcList=epc_list))


def test_invalid_parent_raises() -> None:
    with pytest.raises(InvalidIdentifier, match="sscc"):
        effects_of(
            event("AggregationEvent", action="ADD", parentID="urn:epc:id:sscc:6901234.1", childEPCs=[ITEM])
        )


def test_list_field_that_is_not_a_list_raises() -> None:
    with pytest.raises(InvalidEvent, match="epcList must be a list"):
        effects_of(event(bizStep="receiving", epcList=ITEM))


# ---------------------------------------------------------------- the standard's examples


@pytest.mark.parametrize("path", capture_documents(), ids=name)
def test_every_example_event_maps_to_canonical_subjects(path: Path) -> None:
    for each in events(load(path)):
        for effect in effects_of(each):
            assert effect.subject.startswith("urn:epc:"), effect
            assert isinstance(effect.kind, Kind)


def test_aggregation_example_9_6_3_is_an_observation_at_receiving() -> None:
    [observed] = events(example("Example_9.6.3-AggregationEvent.jsonld"))
    assert _kinds(effects_of(observed)) == [
        ("urn:epc:id:sscc:0614141.1234567890", Kind.OBSERVE),
        ("urn:epc:id:sgtin:0614141.107346.2017", Kind.OBSERVE),
        ("urn:epc:id:sgtin:0614141.107346.2018", Kind.OBSERVE),
        ("urn:epc:idpat:sgtin:4012345.098765.*", Kind.OBSERVE),
        ("urn:epc:class:lgtin:4012345.012345.998877", Kind.OBSERVE),
    ]


def test_aggregation_example_9_6_3_as_add_aggregates_each_child_into_the_pallet() -> None:
    [packing] = events(example("Example_9.6.3-AggregationEvent.jsonld"))
    packing["action"] = "ADD"
    pallet = "urn:epc:id:sscc:0614141.1234567890"
    assert effects_of(packing) == [
        Effect("urn:epc:id:sgtin:0614141.107346.2017", Kind.AGGREGATE, ref_subject=pallet),
        Effect("urn:epc:id:sgtin:0614141.107346.2018", Kind.AGGREGATE, ref_subject=pallet),
        Effect("urn:epc:class:lgtin:4012345.012345.998877", Kind.AGGREGATE, ref_subject=pallet),
        Effect("urn:epc:idpat:sgtin:4012345.098765.*", Kind.OBSERVE),
    ]


def test_transformation_example_9_6_4_consumes_inputs_and_commissions_outputs() -> None:
    [transformation] = events(example("Example_9.6.4-TransformationEvent.jsonld"))
    effects = effects_of(transformation)
    first_output = "urn:epc:id:sgtin:4012345.077889.25"
    assert [e.subject for e in effects if e.kind == Kind.CONSUME] == [
        "urn:epc:id:sgtin:4012345.011122.25",
        "urn:epc:id:sgtin:4000001.065432.99886655",
        "urn:epc:class:lgtin:4012345.011111.4444",
        "urn:epc:class:lgtin:0614141.077777.987",
    ]
    assert {e.ref_subject for e in effects if e.kind == Kind.CONSUME} == {first_output}
    assert [e.subject for e in effects if e.kind == Kind.COMMISSION] == [
        f"urn:epc:id:sgtin:4012345.077889.{serial}" for serial in (25, 26, 27, 28)
    ]
    assert [e.subject for e in effects if e.kind == Kind.OBSERVE] == ["urn:epc:idpat:sgtin:4012345.066666.*"]


def test_digital_link_example_9_6_4_maps_as_its_urn_twin() -> None:
    [urns] = events(example("Example_9.6.4-TransformationEvent.jsonld"))
    [links] = events(example("digital-link/Example_9.6.4-TransformationEventWithDigitalLink.jsonld"))
    assert effects_of(links) == effects_of(urns)


def test_object_example_9_6_2_receives_the_lot() -> None:
    [receiving] = events(example("Example_9.6.2-ObjectEvent.jsonld"))
    assert effects_of(receiving) == [Effect("urn:epc:class:lgtin:4012345.012345.998877", Kind.RECEIVE)]


def test_error_declaration_example_only_withdraws() -> None:
    declared, corrective = events(example("error-declaration/ErrorDeclarationAndCorrectiveEvent.jsonld"))
    assert {effect.kind for effect in effects_of(declared)} == {Kind.WITHDRAW}
    assert Kind.COMMISSION in {effect.kind for effect in effects_of(corrective)}


# ---------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("built", "line"),
    [
        (event(action="ADD", bizStep="commissioning", epcList=[ITEM]), "Produced"),
        (event(bizStep="shipping", epcList=[ITEM]), "Shipped"),
        (event(bizStep="urn:epcglobal:cbv:bizstep:receiving", epcList=[ITEM]), "Received"),
        (
            event("AggregationEvent", action="ADD", bizStep="packing", parentID=PALLET, childEPCs=[ITEM]),
            "Packed onto pallet 069012340000000016",
        ),
        (
            event("AggregationEvent", action="DELETE", parentID=PALLET, childEPCs=[ITEM]),
            "Unpacked from pallet 069012340000000016",
        ),
        (event("AggregationEvent", action="ADD", parentID=OTHER, childEPCs=[ITEM]), f"Packed into {OTHER}"),
        (event(bizStep="inspecting", disposition="conformant", epcList=[ITEM]), "Inspected: cleared"),
        (event(bizStep="inspecting", disposition="non_conformant", epcList=[ITEM]), "Inspected: rejected"),
        (event(bizStep="inspecting", epcList=[ITEM]), "Inspected"),
        (event(bizStep="retail_selling", epcList=[ITEM]), "Sold"),
        (event(bizStep="holding", disposition="recalled", epcList=[ITEM]), "Recalled"),
        (
            event("TransformationEvent", inputEPCList=[ITEM, OTHER], outputEPCList=[LOT]),
            "Made from 2 ingredients",
        ),
        (
            event(bizStep="shipping", epcList=[ITEM], sensorElementList=_alarm()),
            "Shipped; temperature out of range",
        ),
        (
            event(bizStep="storing", epcList=[ITEM], sensorElementList=_alarm("AbsoluteHumidity")),
            "Stored; absolute humidity out of range",
        ),
        (event(bizStep="https://example.com/bizstep/blessing", epcList=[ITEM]), "Recorded"),
        (
            event(epcList=[ITEM], errorDeclaration={"declarationTime": "2024-05-02T10:00:00Z"}),
            "Record withdrawn as erroneous",
        ),
    ],
)
def test_describe_says_what_happened_in_plain_words(built: dict[str, Any], line: str) -> None:
    assert describe(built) == line


# ---------------------------------------------------------------- helpers for the store and the API


def test_identifiers_of_gives_each_canonical_identifier_with_its_role() -> None:
    transformation = event(
        "TransformationEvent",
        inputEPCList=[ITEM_LINK],
        inputQuantityList=_quantities(LOT),
        outputEPCList=[OTHER],
    )
    assert identifiers_of(transformation) == [(ITEM, "input"), (LOT, "input"), (OTHER, "output")]
    packing = event("AggregationEvent", action="ADD", parentID=PALLET, childEPCs=[ITEM], epcList=[])
    assert identifiers_of(packing) == [(PALLET, "parent"), (ITEM, "child")]


@pytest.mark.parametrize(
    ("value", "word"),
    [
        ("shipping", "shipping"),
        ("urn:epcglobal:cbv:bizstep:shipping", "shipping"),
        ("https://ref.gs1.org/cbv/BizStep-shipping", "shipping"),
        ("https://ref.gs1.org/cbv/Disp-in_transit", "in_transit"),
        ("https://example.com/bizstep/blessing", "https://example.com/bizstep/blessing"),
    ],
)
def test_bare_vocabulary_strips_cbv_forms_only(value: str, word: str) -> None:
    assert bare_vocabulary(value) == word
