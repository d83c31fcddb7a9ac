"""The plain API: each call builds the EPCIS event and goes the way of a capture."""

from __future__ import annotations

from typing import Any

from tracechain.chain.trace_event import subject_id

from .conftest import Api

GTIN = "06901234678901"
ITEM = "urn:epc:id:sgtin:6901234.067890.5001"
LOT = "urn:epc:class:lgtin:6901234.067890.L42"
PALLET = "urn:epc:id:sscc:6901234.0000000077"
RETAILER_PARTY = "urn:epc:id:pgln:8712345.00002"
CARRIER_PARTY = "urn:epc:id:pgln:5790001.00000"


def call(api: Api, who: dict[str, Any], path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api.client.post(path, json=body or {}, headers=api.as_participant(who))
    assert response.status_code == 202, response.text
    assert response.headers["Location"].startswith("/capture/")
    job: dict[str, Any] = response.json()
    return job


def test_a_journey_through_the_plain_api(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    m, c, x, r = (parties[name] for name in ("manufacturer", "carrier", "customs", "retailer"))
    call(api, m, "/products", {"gtin": GTIN, "serial": "5001", "location": "urn:epc:id:sgln:6901234.00001.0"})
    call(api, m, "/shipments", {"sscc": PALLET, "contents": [ITEM], "destination": CARRIER_PARTY})
    call(api, c, f"/shipments/{PALLET}/receipt")
    call(api, c, f"/products/{PALLET}/sensor-readings", {"value": 4.5, "minimum": 2, "maximum": 8})
    call(api, c, f"/products/{PALLET}/sensor-readings", {"value": 11.0, "minimum": 2, "maximum": 8})
    call(api, x, f"/shipments/{PALLET}/clearance", {"cleared": True})
    call(api, c, "/shipments", {"sscc": PALLET, "destination": RETAILER_PARTY})
    call(api, r, f"/shipments/{PALLET}/receipt")
    call(api, r, f"/products/{ITEM}/sale")
    api.settle()

    registry = api.services.registry
    pallet = registry.product_of(subject_id(PALLET))
    assert pallet.custodian == r["address"] and pallet.cleared and pallet.excursions == 1
    assert registry.product_of(subject_id(ITEM)).status.name == "SOLD"
    trace = api.client.get(f"/01/{GTIN}/21/5001").json()
    assert trace["verdict"] == "verified", trace["reasons"]
    assert [e["event"]["bizStep"] for e in trace["events"]][:3] == ["commissioning", "packing", "shipping"]


def test_a_lot_can_be_registered_and_recalled_with_a_reason(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    call(api, parties["manufacturer"], "/products", {"gtin": GTIN, "lot": "L42"})
    call(api, parties["manufacturer"], f"/products/{LOT}/recall", {"reason": "salmonella in batch L42"})
    api.settle()
    assert api.services.registry.product_of(subject_id(LOT)).recalled
    events = api.admin("GET", f"/epcs/{LOT}/events").json()["epcisBody"]["queryResults"]["resultsBody"][
        "eventList"
    ]
    assert events[-1]["recall:reason"] == "salmonella in batch L42"


def test_registering_needs_exactly_one_of_serial_or_lot(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    for body in ({"gtin": GTIN}, {"gtin": GTIN, "serial": "1", "lot": "L1"}):
        response = api.client.post(
            "/products", json=body, headers=api.as_participant(parties["manufacturer"])
        )
        assert response.status_code == 422
        assert "exactly one of serial" in response.json()["detail"]


def test_a_bad_gtin_check_digit_is_a_400_naming_it(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    response = api.client.post(
        "/products",
        json={"gtin": "06901234678907", "serial": "1"},
        headers=api.as_participant(parties["manufacturer"]),
    )
    assert response.status_code == 400 and "06901234678907" in response.json()["detail"]


def test_receiving_a_shipment_meant_for_someone_else_is_refused(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    m = parties["manufacturer"]
    call(api, m, "/products", {"gtin": GTIN, "serial": "5001"})
    call(api, m, "/shipments", {"sscc": PALLET, "contents": [ITEM], "destination": CARRIER_PARTY})
    response = api.client.post(
        f"/shipments/{PALLET}/receipt", json={}, headers=api.as_participant(parties["retailer"])
    )
    assert response.status_code == 400
    assert "TraceRegistryNotProposedReceiver" in response.json()["errors"][0]["reason"]
