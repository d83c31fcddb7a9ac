from __future__ import annotations

import copy
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracechain.epcis.event_hash import (
    EPCIS_CONTEXT,
    EventHashError,
    RemoteContextRefused,
    event_hash_id,
    event_hash_ids,
    pre_hash_strings,
)
from tracechain.epcis.identifiers import InvalidIdentifier, digital_link

from .examples import document_of, event, events, example, example_files, load, name
from .reference import (
    ReferenceCannotHash,
    readable_by_reference,
    reference_hash_ids,
    reference_hash_ids_of,
    reference_pre_hashes,
)

# The query result document has its events under epcisBody.queryResults: nobody hashes it.
NOT_CAPTURE = {"EPCISQueryDocument.jsonld"}
# GS1's reference tool crashes on this capture document: its inline @context defines terms by
# objects, and its first bizTransaction has no type. tracechain hashes it; the ids are checked
# against the reference's algorithm applied to a form of it the reference reads (see below).
REFERENCE_CRASHES = "Example-TransactionEvents-2020_07_03y.jsonld"


def _reference_cli(path: Path) -> subprocess.CompletedProcess[str]:
    """GS1's reference tool itself, as a user runs it: `python -m epcis_event_hash_generator FILE`."""
    return subprocess.run(
        [sys.executable, "-m", "epcis_event_hash_generator", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _printed_hash_ids(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.startswith("ni:///")]


@pytest.mark.parametrize("path", example_files(), ids=name)
def test_hash_ids_of_every_example_are_what_the_reference_tool_prints(path: Path) -> None:
    reference = _reference_cli(path)
    if name(path) in NOT_CAPTURE:
        assert reference.returncode != 0, reference.stdout
        with pytest.raises(EventHashError, match="cannot read this document"):
            event_hash_ids(load(path))
        return
    if name(path) == REFERENCE_CRASHES:
        assert reference.returncode != 0, reference.stdout
        return  # its ids: test_the_example_the_reference_crashes_on_hashes_as_its_readable_form
    assert reference.returncode == 0, reference.stderr
    printed = _printed_hash_ids(reference.stdout)
    assert len(printed) == len(events(load(path))) > 0
    assert event_hash_ids(load(path)) == printed


@pytest.mark.parametrize("path", [p for p in example_files() if name(p) not in NOT_CAPTURE], ids=name)
def test_pre_hash_of_every_example_event_is_the_references(path: Path) -> None:
    """Pre-hash strings, not ids: a difference shows where it is."""
    document = load(path)
    if name(path) == REFERENCE_CRASHES:
        document, _ = readable_by_reference(document)
    assert pre_hash_strings(document) == reference_pre_hashes(document)


def test_the_example_the_reference_crashes_on_hashes_as_its_readable_form() -> None:
    """Example-TransactionEvents-2020_07_03y.jsonld, which GS1's tool cannot read, twice over:

    - Its inline @context defines `rail:vehicleMasterGIAI` and four other keys by objects
      (`{"@type": "@id"}`, `{"@type": "xsd:integer"}` ...). The reference adds every context
      entry to its prefix table as `"{" + value + "}"` and so fails on an object (TypeError).
      Those entries declare no prefix - they type the values of compact-IRI keys - so the form
      the reference reads has them left out; `rail` stays, and the reference writes `rail:` keys
      as `{urn:gs1:epcisapp:rail:}...` from it. Leaving them out changes no vocabulary IRI the
      JSON-LD expansion yields (asserted in reference_hash_ids_of), which is all the hash
      takes from the typing.
    - Its first event's bizTransaction has no type, as EPCIS allows. The reference builds a
      (type, bizTransaction) pair from the first two keys and fails on one key (IndexError).
      The CBV algorithm hashes a bizTransaction as `type=...` (when it has one) then
      `bizTransaction=...`; so the readable form gives it a placeholder type that is no CBV
      term, and the placeholder's `type=...` is taken out of the reference's pre-hash again.
    """
    document = example(REFERENCE_CRASHES)
    with pytest.raises(ReferenceCannotHash):
        reference_hash_ids(document)
    readable, placeheld = readable_by_reference(document)
    assert placeheld == [0]
    assert readable["@context"][1] == {"rail": "urn:gs1:epcisapp:rail:"}

    derived = reference_hash_ids_of(document)
    assert event_hash_ids(document) == derived
    # The second event needs no placeholder: its id is the reference's for the readable form.
    assert event_hash_ids(document)[1] == reference_hash_ids(readable)[1]
    # By hand, what the derivation means for the first event: no type in its bizTransaction,
    # the GDTI as a Digital Link, the SGLN extension 0 dropped.
    assert pre_hash_strings(document)[0].endswith(
        "readPointid=https://id.gs1.org/414/9524567987655"
        "bizTransactionListbizTransaction=https://id.gs1.org/253/95252084000140003555480001000"
    )


def test_inline_term_defined_by_an_object_declares_its_id_as_the_string_form_does() -> None:
    extended = event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"], **{"ex:field": "x"})
    by_string = document_of(extended, context=[EPCIS_CONTEXT, {"ex": "https://ns.example.com/ex/"}])
    by_object = document_of(extended, context=[EPCIS_CONTEXT, {"ex": {"@id": "https://ns.example.com/ex/"}}])
    assert "{https://ns.example.com/ex/}field=x" in pre_hash_strings(by_object)[0]
    assert event_hash_ids(by_object) == event_hash_ids(by_string) == reference_hash_ids(by_string)


@pytest.mark.parametrize(
    "keywords",
    [{"@version": 1.1}, {"@protected": True}, {"@version": 1.1, "@protected": True}],
    ids=["version", "protected", "both"],
)
def test_inline_context_keywords_hash_as_if_absent(keywords: dict[str, Any]) -> None:
    """The reference crashes on them (a number or boolean in its prefix table); they declare no prefix."""
    extended = event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"], **{"ex:field": "x"})
    with_keywords = document_of(
        extended, context=[EPCIS_CONTEXT, {**keywords, "ex": "https://ns.example.com/ex/"}]
    )
    without = document_of(extended, context=[EPCIS_CONTEXT, {"ex": "https://ns.example.com/ex/"}])
    with pytest.raises(ReferenceCannotHash):
        reference_hash_ids(with_keywords)
    assert event_hash_ids(with_keywords) == reference_hash_ids(without)


_EX = {"ex": "https://ns.example.com/"}
_ODD_DOCUMENTS = {
    "vocab-expands-unprefixed-keys": document_of(
        event(epcList=[], myField="https://gs1.org/voc/Thing", other="Thing"),
        context=[EPCIS_CONTEXT, {"@vocab": "https://ns.example.com/v/"}],
    ),
    "unprefixed-keys-dropped-by-json-ld": document_of(
        event(epcList=[], myField="https://gs1.org/voc/Thing", other="Thing")
    ),
    "context-embedded-in-an-event": document_of(
        event(epcList=[], **{"@context": [EPCIS_CONTEXT, _EX], "ex:f": "shipping", "bizStep": "shipping"}),
        event(epcList=[], **{"ex:f": "x"}),
        context=[EPCIS_CONTEXT, {"ex": "https://other.example.com/"}],
    ),
    "two-iris-end-alike": document_of(
        event(
            bizStep="https://ref.gs1.org/cbv/BizStep-x",
            disposition="https://ref.gs1.org/cbv/Disp-x",
            **{"ex:f": "x"},
        ),
        context=[EPCIS_CONTEXT, _EX],
    ),
    "replacement-across-events": document_of(
        event(bizStep="shipping"), event(**{"ex:f": "shipping"}), context=[EPCIS_CONTEXT, _EX]
    ),
    "compact-iri-values": document_of(
        event(
            bizStep="cbv:BizStep-shipping",
            sensorElementList=[{"sensorReport": [{"type": "gs1:Speed", "value": 5, "ex:u": "Speed"}]}],
            **{"ex:f": "shipping", "ex:thing": {"id": "gs1:Item-1", "ex:v": "Item-1"}},
        ),
        context=[EPCIS_CONTEXT, _EX],
    ),
    "master-data-in-the-header": {
        **document_of(event(**{"ex:f": "Foo"}), context=[EPCIS_CONTEXT, _EX]),
        "epcisHeader": {
            "epcisMasterData": {
                "vocabularyList": [
                    {
                        "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
                        "vocabularyElementList": [
                            {
                                "id": "urn:epc:id:sgln:0614141.00777.0",
                                "attributes": [
                                    {
                                        "id": "urn:epcglobal:cbv:mda#name",
                                        "attribute": "https://gs1.org/voc/Foo",
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        },
    },
    "one-event-body": {**document_of(), "epcisBody": {"event": event(bizStep="shipping")}},
    "times-dateutil-reads": document_of(
        event(eventTime="January 1 2024 10:00 +0100"),
        event(eventTime="not a time"),
        event(eventTime="2024-01-01 10:00Z"),
    ),
}


@pytest.mark.parametrize("document", _ODD_DOCUMENTS.values(), ids=_ODD_DOCUMENTS.keys())
def test_odd_documents_hash_as_the_reference_hashes_each_of_their_events_alone(
    document: dict[str, Any],
) -> None:
    body = document["epcisBody"]
    alone = [
        reference_pre_hashes(document_of(each, context=document["@context"]))[0]
        for each in body.get("eventList", [body.get("event")])
    ]
    assert pre_hash_strings(document) == alone


def test_digital_link_example_9_6_4_hashes_as_its_urn_twin() -> None:
    """Its Digital Links name the very lots and product the URN example names."""
    urns = event_hash_ids(example("Example_9.6.4-TransformationEvent.jsonld"))
    links = event_hash_ids(example("digital-link/Example_9.6.4-TransformationEventWithDigitalLink.jsonld"))
    assert links == urns


@pytest.mark.parametrize(
    "relative",
    [
        "digital-link/Example_9.6.1-ObjectEventWithDigitalLink.jsonld",
        "digital-link/Example_9.6.2-ObjectEventWithDigitalLink.jsonld",
        "digital-link/Example_9.6.3-AggregationEventWithDigitalLink.jsonld",
    ],
)
def test_other_digital_link_examples_name_other_items_and_hash_differently(relative: str) -> None:
    """These examples use GTIN 70614141123451, which is not the URN examples' 10614141073464."""
    twin = relative.removeprefix("digital-link/").replace("WithDigitalLink", "")
    assert event_hash_ids(example(relative)) != event_hash_ids(example(twin))


def _as_digital_links(value: Any) -> Any:
    """Every GS1 URN in a document rewritten as its Digital Link."""
    if isinstance(value, dict):
        return {key: _as_digital_links(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_as_digital_links(child) for child in value]
    if isinstance(value, str) and value.startswith("urn:epc:"):
        try:
            return digital_link(value)
        except InvalidIdentifier:
            return value
    return value


@pytest.mark.parametrize(
    "relative",
    [
        "Example_9.6.1-ObjectEvent.jsonld",
        "Example_9.6.2-ObjectEvent.jsonld",
        "Example_9.6.3-AggregationEvent.jsonld",
        "Example_9.6.4-TransformationEvent.jsonld",
        "PersistentDisposition-example.jsonld",
        "Example-Type-sourceOrDestination,measurement,bizTransaction.jsonld",
        "error-declaration/ErrorDeclarationAndCorrectiveEvent.jsonld",
    ],
)
def test_rewriting_every_urn_as_our_digital_link_keeps_every_hash(relative: str) -> None:
    document = example(relative)
    rewritten = _as_digital_links(document)
    assert rewritten != document
    assert event_hash_ids(rewritten) == event_hash_ids(document) == reference_hash_ids(rewritten)


@pytest.mark.parametrize(
    "relative",
    [
        "Example_9.6.1-with-comment.jsonld",
        "error-declaration/Example_9.6.1-ObjectEvent-with-error-declaration.jsonld",
    ],
)
def test_comments_and_error_declarations_leave_the_hash_of_the_event_unchanged(relative: str) -> None:
    assert event_hash_ids(example(relative)) == event_hash_ids(example("Example_9.6.1-ObjectEvent.jsonld"))


def test_one_event_hashes_alone_as_in_its_document() -> None:
    document = example("Example_9.6.1-ObjectEvent.jsonld")
    assert [event_hash_id(each, document["@context"]) for each in events(document)] == event_hash_ids(
        document
    )


def test_hashing_leaves_the_document_unchanged() -> None:
    document = example("Example_9.6.2-ObjectEvent.jsonld")
    before = copy.deepcopy(document)
    event_hash_ids(document)
    assert document == before


# ---------------------------------------------------------------- what does and does not change an id

_SHIPPED = event(
    epcList=["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"],
    bizStep="shipping",
    disposition="in_transit",
    readPoint={"id": "urn:epc:id:sgln:0614141.07346.1234"},
    bizTransactionList=[{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0614141073467:1152"}],
    quantityList=[{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 200, "uom": "KGM"}],
    **{"example:temperature": {"example:value": "3.50", "example:unit": "CEL"}},
)
_EXTENDED = [EPCIS_CONTEXT, {"example": "https://ns.example.com/epcis/"}]


def _shipped_id(**changes: Any) -> str:
    return event_hash_id({**_SHIPPED, **changes}, _EXTENDED)


def test_field_order_whitespace_and_offset_of_the_same_instant_keep_the_id() -> None:
    reordered = dict(reversed(list(_SHIPPED.items())))
    assert event_hash_id(reordered, _EXTENDED) == _shipped_id()
    assert _shipped_id(epcList=list(reversed(_SHIPPED["epcList"]))) == _shipped_id()
    assert _shipped_id(readPoint={"id": " urn:epc:id:sgln:0614141.07346.1234\n"}) == _shipped_id()
    assert (
        _shipped_id(**{"example:temperature": {"example:value": " 3.50 ", "example:unit": "CEL"}})
        == _shipped_id()
    )
    assert _shipped_id(bizStep="https://ref.gs1.org/cbv/BizStep-shipping") == _shipped_id()
    assert _shipped_id(bizStep="urn:epcglobal:cbv:bizstep:shipping") == _shipped_id()
    # 10:00 at +08:00 is 02:00 UTC; the recorded offset itself is hashed as written.
    assert _shipped_id(eventTime="2024-05-01T02:00:00Z") == _shipped_id()
    assert _shipped_id(eventTime="2024-04-30T21:00:00.000-05:00") == _shipped_id()
    assert _shipped_id(readPoint={"id": "https://example.com/414/0614141073467/254/1234"}) == _shipped_id()
    assert (
        _shipped_id(
            quantityList=[
                {"quantity": 200.0, "uom": "KGM", "epcClass": _SHIPPED["quantityList"][0]["epcClass"]}
            ]
        )
        == _shipped_id()
    )
    assert (
        _shipped_id(**{"example:temperature": {"example:unit": "CEL", "example:value": "3.5"}})
        == _shipped_id()
    )


def test_whitespace_around_a_bare_cbv_term_changes_the_id_as_in_the_reference() -> None:
    """JSON-LD expands `shipping`, not ` shipping `, to the CBV IRI; the value is stripped only after."""
    padded = {**_SHIPPED, "bizStep": "  shipping "}
    assert _shipped_id(bizStep="  shipping ") != _shipped_id()
    assert [event_hash_id(padded, _EXTENDED)] == reference_hash_ids(document_of(padded, context=_EXTENDED))


@pytest.mark.parametrize(
    "changes",
    [
        {"eventTime": "2024-05-01T10:00:00.001+08:00"},
        {"eventTimeZoneOffset": "+09:00"},
        {"epcList": ["urn:epc:id:sgtin:0614141.107346.2017"]},
        {"bizStep": "receiving"},
        {"readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1235"}},
        {
            "quantityList": [
                {"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 201, "uom": "KGM"}
            ]
        },
        {
            "bizTransactionList": [
                {"type": "inv", "bizTransaction": "urn:epcglobal:cbv:bt:0614141073467:1152"}
            ]
        },
        {"example:temperature": {"example:value": "3.6", "example:unit": "CEL"}},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_a_changed_value_changes_the_id(changes: dict[str, Any]) -> None:
    assert _shipped_id(**changes) != _shipped_id()


def test_what_the_reference_fails_fails_here_naming_the_event() -> None:
    """An infinite quantity: the reference's number canonicalisation overflows and skips the event."""
    bad = event(quantityList=[{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": "inf"}])
    document = document_of(event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"]), bad)
    with pytest.raises(ReferenceCannotHash):
        reference_pre_hashes(document)
    with pytest.raises(EventHashError, match="event 1 cannot be hashed"):
        event_hash_ids(document)


def test_prefix_declared_by_one_document_does_not_leak_into_the_next() -> None:
    extended = event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"], **{"example:myField": "x"})
    declaring = document_of(extended, context=[EPCIS_CONTEXT, {"example": "http://ns.example.com/epcis/"}])
    undeclared = document_of(extended)
    before = event_hash_ids(undeclared)
    assert event_hash_ids(declaring) != before
    assert event_hash_ids(undeclared) == before == reference_hash_ids(undeclared)


# ---------------------------------------------------------------- native == reference, for generated events

_COMPANY_PREFIXES = ("0614141", "4012345", "952000", "95252084", "061414100")
_SERIALS = st.text(alphabet="0123456789ABCabc-_.", min_size=1, max_size=8)
_BIZ_STEPS = ("shipping", "receiving", "commissioning", "packing", "transporting", "inspecting")
_DISPOSITIONS = ("in_transit", "in_progress", "active", "sellable_accessible", "recalled", "destroyed")


def _reference_digits(prefix: str, total: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=total - len(prefix), max_size=total - len(prefix))


@st.composite
def _sgtin(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(_COMPANY_PREFIXES))
    reference = draw(_reference_digits(prefix, 13))
    urn = f"urn:epc:id:sgtin:{prefix}.{reference}.{draw(_SERIALS)}"
    link = _digital_link_or(urn)
    short_names = link.replace("/01/", "/gtin/").replace("/21/", "/ser/")
    return draw(st.sampled_from([urn, link, link + "?17=250131", short_names]))


@st.composite
def _lgtin(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(_COMPANY_PREFIXES))
    reference = draw(_reference_digits(prefix, 13))
    lot = draw(st.text(alphabet="0123456789ABC", min_size=1, max_size=6))
    return draw(
        st.sampled_from(
            [f"urn:epc:class:lgtin:{prefix}.{reference}.{lot}", f"urn:epc:idpat:sgtin:{prefix}.{reference}.*"]
        )
    )


@st.composite
def _sgln(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(_COMPANY_PREFIXES))
    reference = draw(_reference_digits(prefix, 12))
    extension = draw(st.sampled_from(["0", "1234", "dock-7"]))
    urn = f"urn:epc:id:sgln:{prefix}.{reference}.{extension}"
    return draw(st.sampled_from([urn, _digital_link_or(urn)]))


@st.composite
def _sscc(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(_COMPANY_PREFIXES))
    return f"urn:epc:id:sscc:{prefix}.{draw(_reference_digits(prefix, 17))}"


def _digital_link_or(urn: str) -> str:
    try:
        return digital_link(urn, host="https://brand.example.com/dl")
    except InvalidIdentifier:
        return urn


@st.composite
def _time(draw: st.DrawFn) -> tuple[str, str]:
    """An event time written at an offset, with 0-9 fractional digits, and that offset; sometimes
    in a form ISO 8601 allows less plainly (a space for the T, a 4-digit offset)."""
    hours = draw(st.integers(-11, 13))
    minutes = draw(st.sampled_from([0, 30]))
    offset = f"{'-' if hours < 0 else '+'}{abs(hours):02d}:{minutes:02d}"
    digits = draw(st.integers(0, 9))
    fraction = "." + draw(st.text(alphabet="0123456789", min_size=digits, max_size=digits)) if digits else ""
    day = draw(st.integers(1, 28))
    clock = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:{draw(st.integers(0, 59)):02d}"
    zone = draw(st.sampled_from([offset, "Z"])) if offset == "+00:00" else offset
    separator = draw(st.sampled_from(["T", "T", "T", " "]))
    zone = draw(st.sampled_from([zone, zone, zone.replace(":", "")]))
    return f"2024-03-{day:02d}{separator}{clock}{fraction}{zone}", offset


_QUANTITY = st.builds(
    lambda epc_class, quantity, uom: {"epcClass": epc_class, "quantity": quantity, **uom},
    _lgtin(),
    st.one_of(st.integers(0, 10_000), st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 3))),
    st.sampled_from([{}, {"uom": "KGM"}, {"uom": "LTR"}]),
)
_EXTENSION_VALUE = st.recursive(
    st.one_of(
        st.text(alphabet="abcXYZ019 .-", max_size=8),
        st.integers(-1000, 1000),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(
            [
                "shipping",
                "in_transit",
                "Temperature",
                "urn:epc:id:sgtin:0614141.107346.2017",
                "urn:epcglobal:cbv:disp:active",
                " 3.50 ",
                "+1e3",
                "1_000",
                "-0",
                "nan",
                "https://gs1.org/voc/Temperature",
                "https://ref.gs1.org/cbv/BizStep-shipping",
                "did_not_occur",
                "2024-03-01T10:00:00.5+01:00",
            ]
        ),
    ),
    lambda children: (
        st.dictionaries(
            st.sampled_from(["example:a", "example:b", "example:aList", "other:c", "plain", "myTime"]),
            children,
            min_size=1,
        )
        | st.lists(children, min_size=1, max_size=3)
    ),
    max_leaves=6,
)
_SENSOR_REPORT = st.fixed_dictionaries(
    {"type": st.sampled_from(["Temperature", "gs1:Temperature", "RelativeHumidity", "gs1:Mass"])},
    optional={
        "value": st.floats(-40, 60, allow_nan=False).map(lambda x: round(x, 2)),
        "uom": st.sampled_from(["CEL", "FAH", "A93"]),
        "minValue": st.integers(-40, 0),
        "maxValue": st.integers(0, 60),
        "stringValue": st.sampled_from(["ok", "shipping"]),
        "booleanValue": st.booleans(),
        "exception": st.sampled_from(["ALARM_CONDITION", "ERROR_CONDITION"]),
        "component": st.sampled_from(["x", "latitude"]),
        "example:note": st.text(alphabet="abc", min_size=1, max_size=3),
    },
)


@st.composite
def _sensor_element(draw: st.DrawFn) -> dict[str, Any]:
    element: dict[str, Any] = {"sensorReport": draw(st.lists(_SENSOR_REPORT, min_size=1, max_size=3))}
    if draw(st.booleans()):
        time, _ = draw(_time())
        element["sensorMetadata"] = {
            "time": time,
            "deviceID": "urn:epc:id:giai:4000001.111",
            **({"example:firmware": "1.2"} if draw(st.booleans()) else {}),
        }
    return element


def _party_list(kind: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    entry = st.builds(
        lambda type_, party, type_first: (
            {"type": type_, kind: party} if type_first else {kind: party, "type": type_}
        ),
        st.sampled_from(
            ["owning_party", "possessing_party", "location", "https://ref.gs1.org/cbv/SDT-location"]
        ),
        _sgln(),
        st.booleans(),
    )
    return st.lists(entry, min_size=1, max_size=2)


_BIZ_TRANSACTIONS = st.lists(
    st.builds(
        lambda type_, transaction, type_first: (
            {"type": type_, "bizTransaction": transaction}
            if type_first
            else {"bizTransaction": transaction, "type": type_}
        ),
        st.sampled_from(
            ["po", "inv", "desadv", "urn:epcglobal:cbv:btt:po", "https://ref.gs1.org/cbv/BTT-bol"]
        ),
        st.sampled_from(
            ["urn:epcglobal:cbv:bt:0614141073467:1152", "http://transaction.example.com/po/12345"]
        ),
        st.booleans(),
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def _generated_event(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["ObjectEvent", "AggregationEvent", "TransformationEvent", "AssociationEvent", "TransactionEvent"]
        )
    )
    time, offset = draw(_time())
    fields: dict[str, Any] = {"type": kind, "eventTime": time, "eventTimeZoneOffset": offset}
    epcs = st.lists(st.one_of(_sgtin(), _sscc()), min_size=1, max_size=3)
    quantities = st.lists(_QUANTITY, min_size=1, max_size=2)
    if kind != "TransformationEvent":
        fields["action"] = draw(st.sampled_from(["ADD", "OBSERVE", "DELETE"]))
    if kind in ("ObjectEvent", "TransactionEvent"):
        fields["epcList"] = draw(epcs)
        if draw(st.booleans()):
            fields["quantityList"] = draw(quantities)
    if kind in ("AggregationEvent", "AssociationEvent"):
        fields["parentID"] = draw(_sscc())
        fields["childEPCs"] = draw(epcs)
        if draw(st.booleans()):
            fields["childQuantityList"] = draw(quantities)
    if kind == "TransformationEvent":
        fields["inputEPCList"] = draw(epcs)
        fields["outputEPCList"] = draw(epcs)
        fields["inputQuantityList"] = draw(quantities)
        fields["outputQuantityList"] = draw(quantities)
        fields["transformationID"] = "urn:epc:id:gdti:0614141.12345.400"
    if kind == "TransactionEvent" or draw(st.booleans()):
        fields["bizTransactionList"] = draw(_BIZ_TRANSACTIONS)
    optional = {
        "bizStep": st.sampled_from(_BIZ_STEPS).flatmap(
            lambda step: st.sampled_from(
                [step, f"https://ref.gs1.org/cbv/BizStep-{step}", f"urn:epcglobal:cbv:bizstep:{step}"]
            )
        ),
        "disposition": st.sampled_from(_DISPOSITIONS),
        "readPoint": st.builds(
            lambda gln, extra: {"id": gln, **extra},
            _sgln(),
            st.sampled_from(
                [{}, {"example:door": "2"}, {"other:transactionRef": "x"}, {"example:a": "1", "other:c": "2"}]
            ),
        ),
        "bizLocation": st.builds(
            lambda gln, extra: {"id": gln, **extra}, _sgln(), st.sampled_from([{}, {"example:bay": "7"}])
        ),
        "sourceList": _party_list("source"),
        "destinationList": _party_list("destination"),
        "sensorElementList": st.lists(_sensor_element(), min_size=1, max_size=2),
        "persistentDisposition": st.just(
            {"set": ["completeness_verified"], "unset": ["completeness_inferred"]}
        ),
        "certificationInfo": st.just("https://accreditation-council.example.org/certificate/ABC12345"),
        "example:extension": _EXTENSION_VALUE,
        "other:extension": _EXTENSION_VALUE,
        "undeclared": _EXTENSION_VALUE,
        "errorDeclaration": st.builds(
            lambda reason: {"declarationTime": "2024-03-02T10:00:00Z", "reason": reason},
            st.sampled_from(["did_not_occur", "incorrect_data", "https://ns.example.com/er/typo"]),
        ),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            fields[key] = draw(strategy)
    if kind == "ObjectEvent" and fields["action"] == "ADD" and draw(st.booleans()):
        fields["ilmd"] = {"example:bestBeforeDate": "2025-01-31", "example:lot": draw(_SERIALS)}
    keys = draw(st.permutations(list(fields)))
    return {key: fields[key] for key in keys}


_CONTEXTS = st.sampled_from(
    [
        [EPCIS_CONTEXT],
        [EPCIS_CONTEXT, {"example": "https://ns.example.com/epcis/"}],
        [EPCIS_CONTEXT, {"example": "https://ns.example.com/epcis/", "other": "urn:example:other:"}],
        [EPCIS_CONTEXT, {"example": "http://ns.example.com/epcis"}],
        [EPCIS_CONTEXT, {"example": "https://ns.example.com/epcis/", "@vocab": "https://gs1.org/voc/ext/"}],
        [
            EPCIS_CONTEXT,
            {"example": "https://ns.example.com/epcis/", "other": "https://ref.gs1.org/cbv/Other-"},
        ],
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_generated_event(), min_size=1, max_size=3), _CONTEXTS)
def test_native_pre_hash_is_the_references_for_generated_events(
    generated: list[dict[str, Any]], context: list[Any]
) -> None:
    """Each event against the reference reading it alone, as tracechain reads it (see the tests below)."""
    document = document_of(*generated, context=context)
    try:
        expected = [reference_pre_hashes(document_of(each, context=context))[0] for each in generated]
    except ReferenceCannotHash:
        with pytest.raises(EventHashError):
            event_hash_ids(document)
        return
    assert pre_hash_strings(document) == expected


# ---------------------------------------------------------------- an event's id is its own

_EXTENDED_CONTEXT = [EPCIS_CONTEXT, {"example": "https://ns.example.com/epcis/"}]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            event(epcList=["urn:epc:id:sgtin:0614141.107346.1"], bizStep="shipping"),
            event(epcList=["urn:epc:id:sgtin:0614141.107346.2"], **{"example:note": "shipping"}),
            id="a-vocabulary-iri-of-another-event",
        ),
        pytest.param(
            event(epcList=["urn:epc:id:sgtin:0614141.107346.3"], **{"@xmlns:zz": "https://zz.example/"}),
            event(epcList=["urn:epc:id:sgtin:0614141.107346.4"], **{"zz:note": "1"}),
            id="a-prefix-another-event-declares",
        ),
    ],
)
def test_an_event_hashes_in_a_document_as_it_does_alone_where_the_reference_lets_it_leak(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Read whole, GS1's reference lets a vocabulary IRI or an `@xmlns` prefix of one event change
    how the next is hashed; whoever checks that event later holds it alone, and a rival could use
    the difference to make another party's event fail its check. Each event is hashed alone."""
    document = document_of(before, after, context=_EXTENDED_CONTEXT)
    alone = document_of(after, context=_EXTENDED_CONTEXT)
    assert reference_pre_hashes(document)[1] != reference_pre_hashes(alone)[0]

    assert pre_hash_strings(document)[1] == reference_pre_hashes(alone)[0] == pre_hash_strings(alone)[0]
    assert event_hash_ids(document)[1] == event_hash_id(after, _EXTENDED_CONTEXT)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_generated_event(), min_size=2, max_size=4), _CONTEXTS)
def test_every_event_of_a_generated_document_has_the_id_it_has_alone(
    generated: list[dict[str, Any]], context: list[Any]
) -> None:
    document = document_of(*generated, context=context)
    try:
        in_document = event_hash_ids(document)
    except EventHashError:
        with pytest.raises(EventHashError):  # then some event cannot be hashed alone either
            for each in generated:
                event_hash_id(each, context)
        return
    assert in_document == [event_hash_id(each, context) for each in generated]
    assert event_hash_ids(document_of(*reversed(generated), context=context)) == in_document[::-1]


# ---------------------------------------------------------------- no network, ever


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to open a connection, recorded and refused."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_hashing_every_example_opens_no_connection(no_network: list[object]) -> None:
    for path in example_files():
        if name(path) not in NOT_CAPTURE:
            assert event_hash_ids(load(path))
    assert no_network == []


@pytest.mark.parametrize(
    "context",
    [
        ["https://example.com/context.jsonld"],
        [
            EPCIS_CONTEXT,
            {"ex": {"@id": "https://ns.example.com/ex", "@context": "https://example.com/scoped.jsonld"}},
        ],
        [EPCIS_CONTEXT, {"@import": "https://example.com/imported.jsonld"}],
    ],
    ids=["named", "scoped-in-inline", "imported-by-inline"],
)
def test_remote_context_is_refused_without_a_connection(context: list[Any], no_network: list[object]) -> None:
    url = next(value for value in _strings(context) if value.startswith("https://example.com/"))
    document = document_of(
        event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"], **{"ex": "x"}), context=context
    )
    with pytest.raises(RemoteContextRefused) as refused:
        event_hash_ids(document)
    assert refused.value.url == url
    assert isinstance(refused.value, ValueError)
    assert no_network == []


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for child in value.values() for s in _strings(child)]
    if isinstance(value, list):
        return [s for child in value for s in _strings(child)]
    return [value] if isinstance(value, str) else []


def test_redefining_a_protected_epcis_term_is_refused_as_json_ld_refuses_it() -> None:
    document = document_of(
        event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"]),
        context=[EPCIS_CONTEXT, {"bizStep": "https://ns.example.com/step"}],
    )
    with pytest.raises(ReferenceCannotHash):
        reference_pre_hashes(document)
    with pytest.raises(EventHashError, match="protected term 'bizStep'"):
        event_hash_ids(document)
