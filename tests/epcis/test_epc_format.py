"""GS1-EPC-Format: identifiers served as Digital Links or EPC URNs, the event's hash id unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracechain.epcis.epc_format import EpcFormat, event_in
from tracechain.epcis.event_hash import event_hash_id

from .examples import capture_documents, event, events, load, name

URN = "urn:epc:id:sgtin:0614141.107346.2017"
LINK = "https://id.gs1.org/01/10614141073464/21/2017"


@pytest.mark.parametrize("path", capture_documents(), ids=name)
@pytest.mark.parametrize("epc_format", [EpcFormat.ALWAYS_GS1_DIGITAL_LINK, EpcFormat.ALWAYS_EPC_URN])
def test_every_example_event_translated_hashes_to_its_own_id(path: Path, epc_format: EpcFormat) -> None:
    document = load(path)
    context = document["@context"]
    for captured in events(document):
        assert event_hash_id(event_in(captured, epc_format), context) == event_hash_id(captured, context)


def test_an_event_is_served_with_every_identifier_field_in_the_asked_form() -> None:
    gln = "urn:epc:id:sgln:0614141.00777.0"
    party = "urn:epc:id:pgln:0614141.00001"
    captured = event(
        "AggregationEvent",
        parentID="urn:epc:id:sscc:0614141.1234567890",
        childEPCs=[URN],
        childQuantityList=[{"epcClass": "urn:epc:class:lgtin:0614141.107346.LOT1", "quantity": 2}],
        readPoint={"id": gln},
        bizLocation={"id": "urn:epc:id:sgln:0614141.00777.12"},
        sourceList=[{"type": "owning_party", "source": party}],
        destinationList=[{"type": "location", "destination": gln}],
    )
    served = event_in(captured, EpcFormat.ALWAYS_GS1_DIGITAL_LINK)
    assert served["parentID"] == "https://id.gs1.org/00/106141412345678908"
    assert served["childEPCs"] == [LINK]
    assert served["childQuantityList"] == [
        {"epcClass": "https://id.gs1.org/01/10614141073464/10/LOT1", "quantity": 2}
    ]
    assert served["readPoint"] == {"id": "https://id.gs1.org/414/0614141007776"}
    assert served["bizLocation"] == {"id": "https://id.gs1.org/414/0614141007776/254/12"}
    assert served["sourceList"] == [
        {"type": "owning_party", "source": "https://id.gs1.org/417/0614141000012"}
    ]
    assert served["destinationList"] == [
        {"type": "location", "destination": "https://id.gs1.org/414/0614141007776"}
    ]
    assert event_in(served, EpcFormat.ALWAYS_EPC_URN) == captured
    assert "epcList" not in served  # no field is added that the event did not have


@pytest.mark.parametrize("epc_format", [EpcFormat.NEVER_TRANSLATES, EpcFormat.NO_PREFERENCE])
def test_never_translates_and_no_preference_serve_the_event_as_captured(epc_format: EpcFormat) -> None:
    captured = event(epcList=[URN, LINK])
    assert event_in(captured, epc_format) == captured


@pytest.mark.parametrize(
    "identifier",
    [
        "urn:epc:id:gid:95100000.12345.400",  # no GS1 key: no Digital Link form
        "https://example.com/things/42",  # a private URI
        # A serial with an escaped "/": GS1's normaliser does not read the Digital Link it would
        # become, so the hash would read another value.
        "urn:epc:id:sgtin:0614141.107346.%2F",
    ],
)
def test_what_the_hash_would_read_differently_keeps_its_spelling(identifier: str) -> None:
    captured = event(epcList=[identifier])
    for epc_format in (EpcFormat.ALWAYS_GS1_DIGITAL_LINK, EpcFormat.ALWAYS_EPC_URN):
        served = event_in(captured, epc_format)
        assert served == captured
        assert event_hash_id(served) == event_hash_id(captured)
