"""Who sees what: each rule of `tracechain.visibility`, tried with the keys of those it is about.

A journey carries commercial data (a purchase order, an invoice, a bill of lading, a unit price in a
private extension). The maker captured it, the carrier held the pallet and was named by the
shipment, the retailer received it. A rival maker, an auditor with and without a grant, and nobody
at all then read every path, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.epcis.identifiers import gs1_key
from tracechain.verification import verify_bundle

from .conftest import Api
from .test_capture import ITEM, PALLET, T0, commissioning
from .test_trace import BROWSER_ACCEPT, DIGITAL_LINK

CARRIER_PARTY, RETAILER_PARTY = "urn:epc:id:pgln:5790001.00000", "urn:epc:id:pgln:8712345.00002"
PURCHASE_ORDER = "urn:epcglobal:cbv:bt:6901234000004:PO-4711"
INVOICE = "INV-2026-0042"
BILL_OF_LADING = "urn:epcglobal:cbv:bt:5790001000001:BOL-77"
UNIT_PRICE = "12.50 EUR"
COMMERCIAL = (PURCHASE_ORDER, "PO-4711", INVOICE, BILL_OF_LADING, "BOL-77", UNIT_PRICE)
GTIN = gs1_key(ITEM)


def _with_commerce(event: dict[str, Any], transaction: str, **extensions: str) -> dict[str, Any]:
    return {
        **event,
        "bizTransactionList": [{"type": "po", "bizTransaction": transaction}],
        **{f"acme:{name}": value for name, value in extensions.items()},
    }


def commercial_journey(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    day = timedelta(days=1)
    packing = _with_commerce(aggregation_event(PALLET, [ITEM], at=T0 + day / 4), PURCHASE_ORDER)
    shipping = _with_commerce(
        object_event([PALLET], biz_step="shipping", at=T0 + day, destination=CARRIER_PARTY),
        PURCHASE_ORDER,
        invoice=INVOICE,
        unitPrice=UNIT_PRICE,
    )
    onward = _with_commerce(
        object_event([PALLET], biz_step="shipping", at=T0 + 31 * day, destination=RETAILER_PARTY),
        BILL_OF_LADING,
    )
    steps = [
        ("manufacturer", [commissioning(), packing]),
        ("manufacturer", [shipping]),
        ("carrier", [object_event([PALLET], biz_step="receiving", at=T0 + 2 * day)]),
        ("carrier", [onward]),
        ("retailer", [object_event([PALLET], biz_step="receiving", at=T0 + 32 * day)]),
    ]
    for party, events in steps:
        response = api.capture(parties[party], events)
        assert response.status_code == 202, response.text
    api.settle()


@pytest.fixture
def cast(api: Api, parties: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The journey's parties, a rival maker and an auditor, after the commercial journey."""
    everyone = {
        **parties,
        "rival": api.create_participant(
            "Rival Electronics", ["manufacturer"], "urn:epc:id:pgln:6901235.00000", "CN"
        ),
        "auditor": api.create_participant("Audit & Co", ["auditor"], "urn:epc:id:pgln:8712345.00019", "NL"),
    }
    api.settle()
    commercial_journey(api, everyone)
    return everyone


def _key(participant: dict[str, Any] | None) -> dict[str, str]:
    return {} if participant is None else {"Authorization": f"Bearer {participant['apiKey']}"}


def events_seen(api: Api, who: dict[str, Any] | None, **params: str) -> list[dict[str, Any]]:
    # As captured (the binding's default serves Digital Links): these tests compare with what was sent.
    headers = {**_key(who), "GS1-EPC-Format": "Never_Translates"}
    response = api.client.get("/events", params={"perPage": "1000", **params}, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return found


def by_step(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The events keyed by (type or bizStep, destination party if any)."""
    keyed = {}
    for event in events:
        destination = (event.get("destinationList") or [{}])[0].get("destination", "")
        keyed[(str(event.get("bizStep") or event["type"]), destination)] = event
    return keyed


def bundle_of(api: Api, who: dict[str, Any] | None) -> str:
    """The product's proof bundle as `who` gets it, after checking that it verifies on the chain."""
    response = api.client.get(f"/trace/{ITEM}/proof", headers=_key(who))
    assert response.status_code == 200, response.text
    result = verify_bundle(response.json(), api.services.chain.w3)
    assert result.verified, result.every_problem
    return response.text


def _admin_events(api: Api) -> list[dict[str, Any]]:
    response = api.admin("GET", "/events", params={"perPage": "1000"})
    found: list[dict[str, Any]] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return found


# ---------------------------------------------------------------- nobody


def test_without_a_key_no_event_query_answers(api: Api, cast: dict[str, dict[str, Any]]) -> None:
    some_id = _admin_events(api)[0]["eventID"]
    for path in ("/events", "/events/" + quote(some_id, safe=""), f"/epcs/{PALLET}/events", "/orders"):
        response = api.client.get(path)
        assert response.status_code == 401, path
        assert response.headers["content-type"].startswith("application/problem+json")
    assert api.client.get("/grants").status_code == 401


def test_the_public_trace_page_and_bundle_hold_nothing_commercial(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    trace = api.client.get(f"/trace/{ITEM}")
    page = api.client.get(DIGITAL_LINK, headers={"Accept": BROWSER_ACCEPT})
    bundle = api.client.get(f"/trace/{ITEM}/proof")
    for served in (trace, page, bundle):
        assert served.status_code == 200
        for secret in COMMERCIAL:
            assert secret not in served.text
        assert CARRIER_PARTY not in served.text and RETAILER_PARTY not in served.text  # trading partners
    shown = trace.json()
    assert shown["verdict"] == "verified"
    shipping = next(e for e in shown["events"] if e["event"].get("bizStep") == "shipping")
    assert shipping["eventID"] is None  # its hash id would let a guesser test the withheld fields
    assert {"bizTransactionList", "destinationList", "acme:invoice", "acme:unitPrice", "epcList"} <= set(
        shipping["withheld"]
    )
    assert shipping["event"]["eventTime"] and shipping["event"]["bizStep"] == "shipping"
    # Only the records of what the trace follows: not the other goods an event names.
    assert {r["subject"] for e in shown["events"] for r in e["verification"]["records"]} <= {ITEM, PALLET}


# ---------------------------------------------------------------- the capturer


def test_the_capturer_sees_its_own_events_in_full(api: Api, cast: dict[str, dict[str, Any]]) -> None:
    seen = by_step(events_seen(api, cast["manufacturer"]))
    shipping = seen[("shipping", CARRIER_PARTY)]
    assert shipping["bizTransactionList"][0]["bizTransaction"] == PURCHASE_ORDER
    assert shipping["acme:invoice"] == INVOICE and "tracechain:withheld" not in shipping
    # The rest of the pallet's journey, after its own part: who, when, where, and nothing commercial.
    onward = seen[("shipping", "")]
    assert "bizTransactionList" not in onward and "destinationList" not in onward
    assert {"bizTransactionList", "destinationList"} <= set(onward["tracechain:withheld"])
    assert seen[("receiving", "")]["eventTime"]


def test_the_capturer_sees_its_events_in_full_in_its_trace_and_bundle(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    trace = api.client.get(f"/trace/{ITEM}", headers=_key(cast["manufacturer"])).json()
    shipping = next(
        e for e in trace["events"] if e["event"].get("bizStep") == "shipping" and not e["withheld"]
    )
    assert shipping["event"]["acme:invoice"] == INVOICE and shipping["eventID"].startswith("ni:///")
    bundle = api.client.get(f"/trace/{ITEM}/proof", headers=_key(cast["manufacturer"])).text
    assert INVOICE in bundle and "BOL-77" not in bundle  # the carrier's bill of lading stays its own
    public = api.client.get(
        f"/trace/{ITEM}/proof", params={"view": "public"}, headers=_key(cast["manufacturer"])
    )
    assert INVOICE not in public.text


# ---------------------------------------------------------------- a former custodian


def test_a_former_custodian_sees_its_part_as_partner_and_the_rest_as_custody_facts(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    seen = by_step(events_seen(api, cast["carrier"]))
    # The maker's shipment to it: the carrier is named, so it sees it, but not the maker's
    # purchase order or private extensions.
    inbound = seen[("shipping", CARRIER_PARTY)]
    assert inbound["destinationList"][0]["destination"] == CARRIER_PARTY
    assert "bizTransactionList" not in inbound and "acme:invoice" not in inbound
    assert set(inbound["tracechain:withheld"]) == {"bizTransactionList", "acme:invoice", "acme:unitPrice"}
    # Its own onward shipment in full; the retailer's receipt after it as a custody fact.
    assert seen[("shipping", RETAILER_PARTY)]["bizTransactionList"][0]["bizTransaction"] == BILL_OF_LADING
    assert "epcList" not in seen[("receiving", "")] or seen[("receiving", "")].get("epcList") is None
    # Its bundle: its bill of lading, not the maker's order; it verifies all the same.
    bundle = bundle_of(api, cast["carrier"])
    assert "BOL-77" in bundle and "PO-4711" not in bundle and INVOICE not in bundle
    # The item's commissioning names only the item, whose journey the carrier took no part in.
    assert ("commissioning", "") not in seen
    assert all(
        secret not in json.dumps(list(seen.values())) for secret in (INVOICE, PURCHASE_ORDER, UNIT_PRICE)
    )


def test_every_filter_and_path_gives_a_former_custodian_the_same_views(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    carrier = cast["carrier"]
    as_captured = {**_key(carrier), "GS1-EPC-Format": "Never_Translates"}
    everything = {e["eventID"]: e for e in events_seen(api, carrier)}
    filtered = [
        events_seen(api, carrier, EQ_bizStep="shipping"),
        events_seen(api, carrier, MATCH_anyEPC=PALLET),
        events_seen(api, carrier, eventType="ObjectEvent"),
        events_seen(api, carrier, GE_eventTime=T0.isoformat()),
        events_seen(api, carrier, LT_eventTime=(T0 + timedelta(days=3)).isoformat()),
        events_seen(api, carrier, perPage="2"),
        api.client.get(f"/epcs/{PALLET}/events", headers=as_captured).json()["epcisBody"]["queryResults"][
            "resultsBody"
        ]["eventList"],
    ]
    for found in filtered:
        assert found
        for event in found:
            assert event == {**everything[event["eventID"]], "recordTime": event["recordTime"]}
    for event_id, event in everything.items():
        response = api.client.get("/events/" + quote(event_id, safe=""), headers=as_captured)
        served = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert event in served


def test_filters_find_nothing_by_what_a_reader_may_not_see(api: Api, cast: dict[str, dict[str, Any]]) -> None:
    """A carrier filtering on the maker's purchase order, its private extensions or the items on a
    pallet it sees only as custody facts must not learn which event holds them."""
    carrier, maker = cast["carrier"], cast["manufacturer"]
    by_order = {"EQ_bizTransaction_po": PURCHASE_ORDER}
    assert [e["bizStep"] for e in events_seen(api, maker, **by_order)] == ["packing", "shipping"]
    assert events_seen(api, carrier, **by_order) == []
    # The pallet's packing lists the item among its children: hidden from the carrier's view of it.
    packed = {"MATCH_epc": ITEM, "eventType": "AggregationEvent"}
    assert len(events_seen(api, maker, **packed)) == 1
    assert events_seen(api, carrier, **packed) == []
    # What the carrier is shown it may filter on: the shipment to it names it as destination.
    to_carrier = {"EQ_destination_owning_party": CARRIER_PARTY}
    assert [e["bizStep"] for e in events_seen(api, carrier, **to_carrier)] == ["shipping"]


def test_extension_filters_find_nothing_by_extensions_a_reader_may_not_see(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    """The carrier sees the maker's shipment to it without the maker's private extensions: neither
    their values (EQ_) nor their presence (EXISTS_) may be found out by filtering on them."""
    carrier, maker = cast["carrier"], cast["manufacturer"]
    for params in ({"EQ_acme:invoice": INVOICE}, {"EXISTS_acme:unitPrice": "true"}):
        assert [e["bizStep"] for e in events_seen(api, maker, **params)] == ["shipping"]
        assert events_seen(api, carrier, **params) == []
    # Their absence is what the carrier is shown, and all it can filter on.
    absent = {"EXISTS_acme:invoice": "false", "EQ_bizStep": "shipping"}
    assert len(events_seen(api, carrier, **absent)) == 2


# ---------------------------------------------------------------- a competitor


def test_a_competitor_reads_nothing_of_a_journey_it_had_no_part_in(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    rival = cast["rival"]
    assert events_seen(api, rival) == []
    assert events_seen(api, rival, MATCH_anyEPC=PALLET) == []
    assert api.client.get(f"/epcs/{PALLET}/events", headers=_key(rival)).status_code == 404
    for event in _admin_events(api):
        response = api.client.get("/events/" + quote(event["eventID"], safe=""), headers=_key(rival))
        assert response.status_code == 404
    # The maker's capture jobs are not the rival's to read.
    job = api.capture(cast["manufacturer"], [commissioning("urn:epc:id:sgtin:6901234.067890.2002")]).json()
    assert api.client.get(f"/capture/{job['captureID']}", headers=_key(rival)).status_code == 404
    assert (
        api.client.get(f"/capture/{job['captureID']}", headers=_key(cast["manufacturer"])).status_code == 200
    )
    assert api.client.get("/orders", headers=_key(rival)).json() == []
    assert bundle_of(api, rival) == bundle_of(api, None)
    # Its trace of the product is the consumer's.
    as_rival = api.client.get(f"/trace/{ITEM}", headers=_key(rival)).json()
    as_nobody = api.client.get(f"/trace/{ITEM}").json()
    assert [e["event"] for e in as_rival["events"]] == [e["event"] for e in as_nobody["events"]]


# ---------------------------------------------------------------- an auditor


def test_an_auditor_reads_what_a_grant_gives_it_and_nothing_after_it_is_revoked(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    auditor, maker = cast["auditor"], cast["manufacturer"]
    assert events_seen(api, auditor) == []

    def grant(scope: str, **value: str) -> str:
        response = api.client.post(
            "/grants", json={"grantee": auditor["id"], "scope": scope, **value}, headers=_key(maker)
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    by_step_grant = grant("bizStep", bizStep="urn:epcglobal:cbv:bizstep:shipping")
    seen = events_seen(api, auditor)
    assert [(e["bizStep"], e["acme:invoice"]) for e in seen] == [("shipping", INVOICE)]
    subject_grant = grant("subject", subject=ITEM)
    steps = sorted(str(e.get("bizStep")) for e in events_seen(api, auditor))
    assert steps == ["commissioning", "packing", "shipping"]  # the item's, and the shipment granted
    for grant_id in (by_step_grant, subject_grant):
        assert api.client.delete(f"/grants/{grant_id}", headers=_key(maker)).status_code == 204
    assert events_seen(api, auditor) == []

    assert INVOICE not in bundle_of(api, auditor)
    everything = grant("all")
    assert INVOICE in bundle_of(api, auditor) and "BOL-77" not in bundle_of(api, auditor)
    assert len(events_seen(api, auditor)) == 3 and all(
        "tracechain:withheld" not in e for e in events_seen(api, auditor)
    )
    listed = api.client.get("/grants", headers=_key(auditor)).json()
    assert {g["id"] for g in listed} == {by_step_grant, subject_grant, everything}
    assert sum(g["revokedAt"] is None for g in listed) == 1
    # Only the grantor (or the admin) revokes; the grantee and others cannot.
    assert api.client.delete(f"/grants/{everything}", headers=_key(auditor)).status_code == 404
    assert api.client.delete(f"/grants/{everything}", headers=_key(cast["rival"])).status_code == 404
    assert api.admin("DELETE", f"/grants/{everything}").status_code == 204
    assert events_seen(api, auditor) == []


def test_nobody_grants_access_to_another_partys_events(api: Api, cast: dict[str, dict[str, Any]]) -> None:
    response = api.client.post(
        "/grants",
        json={"grantee": cast["rival"]["id"], "scope": "all", "grantor": cast["manufacturer"]["id"]},
        headers=_key(cast["carrier"]),
    )
    assert response.status_code == 403
    assert events_seen(api, cast["rival"]) == []
    bad = api.client.post(
        "/grants", json={"grantee": cast["rival"]["id"], "scope": "subject"}, headers=_key(cast["carrier"])
    )
    assert bad.status_code == 422 and "subject" in bad.text
    # A read key may not grant, the admin must name whose events it grants, and nobody grants itself.
    read = api.client.post(
        "/participants/me/keys", json={"scope": "read"}, headers=_key(cast["manufacturer"])
    )
    everything = {"grantee": cast["rival"]["id"], "scope": "all"}
    assert api.client.post("/grants", json=everything, headers=_key(read.json())).status_code == 403
    assert api.admin("POST", "/grants", json=everything).status_code == 422
    to_itself = {"grantee": cast["manufacturer"]["id"], "scope": "all"}
    assert api.client.post("/grants", json=to_itself, headers=_key(cast["manufacturer"])).status_code == 422
    assert events_seen(api, cast["rival"]) == []


# ---------------------------------------------------------------- keys


def test_a_read_key_reads_but_cannot_act_and_keys_rotate_and_revoke(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    maker = cast["manufacturer"]
    issued = api.client.post(
        "/participants/me/keys", json={"scope": "read", "label": "dashboard"}, headers=_key(maker)
    )
    assert issued.status_code == 201, issued.text
    reader = {"apiKey": issued.json()["apiKey"]}
    assert len(events_seen(api, reader)) == len(events_seen(api, maker))
    refused = api.capture(reader, [commissioning("urn:epc:id:sgtin:6901234.067890.3003")])
    assert refused.status_code == 403 and "read" in refused.json()["detail"]
    assert (
        api.client.post("/participants/me/keys", json={"scope": "capture"}, headers=_key(reader)).status_code
        == 403
    )

    rotated = api.client.post(f"/participants/me/keys/{issued.json()['id']}/rotation", headers=_key(maker))
    assert rotated.status_code == 201 and rotated.json()["scope"] == "read"
    assert api.client.get("/events", headers=_key(reader)).status_code == 401
    new_reader = {"apiKey": rotated.json()["apiKey"]}
    assert api.client.get("/events", headers=_key(new_reader)).status_code == 200
    assert (
        api.client.delete(f"/participants/me/keys/{rotated.json()['id']}", headers=_key(maker)).status_code
        == 204
    )
    assert api.client.get("/events", headers=_key(new_reader)).status_code == 401
    keys = api.client.get("/participants/me/keys", headers=_key(maker)).json()
    assert [(k["scope"], k["revokedAt"] is None) for k in keys] == [
        ("capture", True),
        ("read", False),
        ("read", False),
    ]
    assert all("apiKey" not in k for k in keys)
    # Another participant's keys are not the maker's to list; the admin manages anyone's.
    assert api.client.get(f"/participants/{cast['rival']['id']}/keys", headers=_key(maker)).status_code == 404
    assert len(api.admin("GET", f"/participants/{maker['id']}/keys").json()) == 3


# ---------------------------------------------------------------- making more public


def test_a_maker_makes_more_of_its_events_public_for_one_product_class(
    api: Api, cast: dict[str, dict[str, Any]]
) -> None:
    maker = cast["manufacturer"]
    response = api.client.put(
        f"/participants/me/public-fields/{GTIN}", json={"fields": ["acme:unitPrice"]}, headers=_key(maker)
    )
    assert response.status_code == 200, response.text
    trace = api.client.get(f"/trace/{ITEM}").json()
    shipping = next(
        e
        for e in trace["events"]
        if e["event"].get("bizStep") == "shipping" and "acme:unitPrice" in e["event"]
    )
    assert shipping["event"]["acme:unitPrice"] == UNIT_PRICE and "acme:invoice" in shipping["withheld"]
    assert UNIT_PRICE in api.client.get(f"/trace/{ITEM}/proof").text
    assert INVOICE not in api.client.get(f"/trace/{ITEM}/proof").text
    bad = api.client.put(
        "/participants/me/public-fields/06901234678907", json={"fields": []}, headers=_key(maker)
    )
    assert bad.status_code == 422
