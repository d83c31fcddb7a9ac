"""Orders through the HTTP API: the buyer's money follows the goods, and only the parties see it.

The settler (run by `Api.settle`, as the worker does in the service) releases milestones and applies
penalties by itself as the trace shows them; nobody calls a release here unless the test is about
calling one by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import latest_timestamp, pass_time_to
from tracechain.epcis.builders import aggregation_event, object_event, sensor_event

from .conftest import Api

GTIN = "06901234678901"
ITEM = "urn:epc:id:sgtin:6901234.067890.7001"
PALLET = "urn:epc:id:sscc:6901234.0000000701"
CARRIER_PARTY = "urn:epc:id:pgln:5790001.00000"
RETAILER_PARTY = "urn:epc:id:pgln:8712345.00002"


def post(
    api: Api, who: dict[str, Any], path: str, body: dict[str, Any] | None = None, status: int = 200
) -> Any:
    response = api.client.post(path, json=body, headers=api.as_participant(who))
    assert response.status_code == status, response.text
    return response.json()


def get(api: Api, who: dict[str, Any], path: str, status: int = 200) -> Any:
    response = api.client.get(path, headers=api.as_participant(who))
    assert response.status_code == status, response.text
    return response.json()


def order_terms(seller_party: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "seller": seller_party["id"],
        "shipment": PALLET,
        "amount": "10000.00",
        "milestones": {"shipped": 30, "received": 70},
        "deadline": (datetime.now(UTC) + timedelta(days=60)).isoformat(),
        **overrides,
    }


def accepted_order(api: Api, buyer: dict[str, Any], seller: dict[str, Any], **overrides: Any) -> int:
    """The buyer proposes the order and the seller accepts its terms."""
    created = post(api, buyer, "/orders", order_terms(seller, **overrides), status=201)
    order_id = int(created["orderId"])
    assert created["state"] == "created"
    assert post(api, seller, f"/orders/{order_id}/acceptance")["state"] == "accepted"
    return order_id


def funded_order(api: Api, buyer: dict[str, Any], seller: dict[str, Any], **overrides: Any) -> int:
    post(api, buyer, "/settlement/faucet", {"amount": overrides.pop("faucet", "10000")})
    order_id = accepted_order(api, buyer, seller, **overrides)
    created = get(api, buyer, f"/orders/{order_id}")
    funded = post(api, buyer, f"/orders/{order_id}/funding")
    assert funded["state"] == "funded" and funded["unreleased"] == created["amount"]
    return order_id


def chain_deadline(api: Api, hours: int) -> datetime:
    """`hours` after the chain's own clock, which earlier tests on this session's chain may have
    moved ahead of this machine's."""
    latest = latest_timestamp(api.services.chain)
    return max(datetime.now(UTC), datetime.fromtimestamp(latest, UTC)) + timedelta(hours=hours)


def balance(api: Api, who: dict[str, Any]) -> str:
    return str(get(api, who, "/settlement/balance")["balance"])


def ship_to_carrier(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    m = parties["manufacturer"]
    post(api, m, "/products", {"gtin": GTIN, "serial": "7001"}, status=202)
    post(api, m, "/shipments", {"sscc": PALLET, "contents": [ITEM], "destination": CARRIER_PARTY}, status=202)
    post(api, parties["carrier"], f"/shipments/{PALLET}/receipt", {}, status=202)
    api.settle()


def deliver_to_retailer(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    post(api, parties["carrier"], "/shipments", {"sscc": PALLET, "destination": RETAILER_PARTY}, status=202)
    post(api, parties["retailer"], f"/shipments/{PALLET}/receipt", {}, status=202)
    api.settle()


def test_the_money_follows_the_goods_30_on_shipping_70_on_receipt(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    order_id = funded_order(api, buyer, seller)
    assert balance(api, buyer) == "0.000000"
    api.settle()
    assert get(api, buyer, f"/orders/{order_id}")["paid"] == "0.000000"  # nothing shipped yet

    ship_to_carrier(api, parties)
    order = get(api, seller, f"/orders/{order_id}")
    assert order["released"] == {"shipped": True, "customsCleared": False, "received": False}
    assert (order["paid"], order["unreleased"], order["state"]) == ("3000.000000", "7000.000000", "funded")
    assert balance(api, seller) == "3000.000000"

    deliver_to_retailer(api, parties)
    order = get(api, buyer, f"/orders/{order_id}")
    assert order["state"] == "closed" and order["released"]["received"]
    assert (order["paid"], order["refunded"], order["unreleased"]) == ("10000.000000", "0.000000", "0.000000")
    assert balance(api, seller) == "10000.000000" and balance(api, buyer) == "0.000000"
    # The list answers from the stored snapshot, which the settler kept current.
    assert [o["state"] for o in get(api, seller, "/orders")] == ["closed"]

    # The product's trace says the shipment's order is settled, and nothing more: no amounts,
    # shares or parties, whoever asks.
    for headers in ({}, api.as_participant(buyer)):
        trace = api.client.get(f"/trace/{ITEM}", headers=headers)
        assert trace.json()["settlement"] == [{"shipment": PALLET, "payment": "settled"}]
    page = api.client.get(f"/01/{GTIN}/21/7001", headers={"Accept": "text/html"}).text
    assert "Settled" in page
    for commercial in ("30% paid", "70% paid", "10000.0", "10,000", "dUSD", "milestone"):
        assert commercial not in page  # the parties appear as the journey names them


def test_a_temperature_excursion_refunds_the_penalty_before_the_rest_is_paid(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller, carrier = parties["retailer"], parties["manufacturer"], parties["carrier"]
    order_id = funded_order(api, buyer, seller, penalties={"excursion": 20})
    ship_to_carrier(api, parties)  # 30% of 10,000 paid
    reading = {"value": 11.5, "minimum": 2, "maximum": 8}
    post(api, carrier, f"/products/{PALLET}/sensor-readings", reading, status=202)
    api.settle()
    order = get(api, buyer, f"/orders/{order_id}")
    assert order["penaltiesApplied"] == {"excursion": True, "recall": False}
    assert order["refunded"] == "2000.000000"  # 20% of the amount, out of the 7,000 unreleased

    deliver_to_retailer(api, parties)
    order = get(api, buyer, f"/orders/{order_id}")
    assert (order["state"], order["paid"], order["refunded"]) == ("closed", "8000.000000", "2000.000000")
    assert balance(api, buyer) == "2000.000000" and balance(api, seller) == "8000.000000"
    page = api.client.get(f"/01/{GTIN}/21/7001", headers={"Accept": "text/html"}).text
    assert "Settled" in page
    for commercial in ("20% refunded", "refunded to the buyer", "2000.0", "2,000", "penalt"):
        assert commercial not in page


def test_past_the_deadline_without_delivery_the_buyer_reclaims_everything_unreleased(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    deadline = chain_deadline(api, hours=1)
    order_id = funded_order(api, buyer, seller, deadline=deadline.isoformat())

    early = post(api, buyer, f"/orders/{order_id}/reclaim", status=409)
    assert early["title"] == "TradeEscrowDeadlineNotPassed"
    pass_time_to(api.services.chain, max(latest_timestamp(api.services.chain), int(deadline.timestamp())) + 1)
    order = post(api, buyer, f"/orders/{order_id}/reclaim")
    assert (order["state"], order["refunded"], order["paid"]) == ("closed", "10000.000000", "0.000000")
    assert balance(api, buyer) == "10000.000000"


def test_a_dispute_freezes_the_order_until_the_arbiter_splits_it(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    arbiter = api.create_participant("Rotterdam Arbitration", ["auditor"], "urn:epc:id:pgln:8712345.00010")
    api.settle()
    order_id = funded_order(api, buyer, seller, arbiter=arbiter["id"])
    order = get(api, arbiter, f"/orders/{order_id}")
    assert order["arbiter"]["id"] == arbiter["id"]
    assert (order["disputeDays"], order["disputeEndsAt"]) == (14, None)  # the default window

    post(api, seller, f"/orders/{order_id}/resolution", {"toSeller": 50}, status=403)
    disputed = post(api, seller, f"/orders/{order_id}/dispute")
    assert disputed["state"] == "disputed" and disputed["disputeEndsAt"] is not None
    ship_to_carrier(api, parties)  # the settler pays nothing on a disputed order
    assert get(api, seller, f"/orders/{order_id}")["paid"] == "0.000000"

    order = post(api, arbiter, f"/orders/{order_id}/resolution", {"toSeller": 40})
    assert (order["state"], order["paid"], order["refunded"]) == ("closed", "4000.000000", "6000.000000")


def test_a_milestone_released_by_hand_must_be_reached_and_is_paid_once(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    order_id = funded_order(api, buyer, seller)
    refused = post(api, seller, f"/orders/{order_id}/releases", {"milestone": "shipped"}, status=409)
    assert refused["title"] == "TradeEscrowMilestoneNotReached"

    m = parties["manufacturer"]
    post(api, m, "/products", {"gtin": GTIN, "serial": "7001"}, status=202)
    post(api, m, "/shipments", {"sscc": PALLET, "contents": [ITEM], "destination": CARRIER_PARTY}, status=202)
    post(api, parties["carrier"], f"/shipments/{PALLET}/receipt", {}, status=202)
    for _ in range(3):  # the captures only: no settler round before the manual release
        api.services.submitter.run_once()
    order = post(api, seller, f"/orders/{order_id}/releases", {"milestone": "shipped"})
    assert order["paid"] == "3000.000000"
    again = post(api, buyer, f"/orders/{order_id}/releases", {"milestone": "shipped"}, status=409)
    assert again["title"] == "TradeEscrowMilestoneAlreadyReleased"
    api.settle()  # the settler finds nothing left to do for Shipped
    assert balance(api, seller) == "3000.000000"


def test_a_participant_sees_and_acts_on_only_its_own_orders(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller, carrier = parties["retailer"], parties["manufacturer"], parties["carrier"]
    order_id = funded_order(api, buyer, seller)
    assert [o["orderId"] for o in get(api, buyer, "/orders")] == [order_id]
    assert get(api, carrier, "/orders") == []
    assert (
        get(api, carrier, f"/orders/{order_id}", status=404)["detail"]
        == f"you are party to no order {order_id}"
    )
    post(api, carrier, f"/orders/{order_id}/dispute", status=404)
    post(api, carrier, f"/orders/{order_id}/acceptance", status=404)
    forbidden = post(api, seller, f"/orders/{order_id}/funding", status=403)
    assert "only the order's buyer" in forbidden["detail"]
    forbidden = post(api, buyer, f"/orders/{order_id}/acceptance", status=403)
    assert "only the order's seller" in forbidden["detail"]
    post(api, seller, f"/orders/{order_id}/reclaim", status=403)
    assert api.client.get("/orders").status_code == 401


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"milestones": {"shipped": 30, "received": 60}}, "add up to 100"),
        ({"amount": "10.1234567"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"seller": "no-such-participant"}, "seller"),
        ({"deadline": "2020-01-01T00:00:00+00:00"}, "deadline"),
        ({"deadline": "2030-01-01T00:00:00"}, "deadline"),  # no time zone
        ({"shipment": "urn:epc:id:sscc:6901234.000000070"}, "sscc"),
        ({"penalties": {"excursion": 101}}, "penalties.excursion"),
        ({"disputeDays": 3}, "disputeDays: a dispute window needs an arbiter"),
        ({"disputeDays": 366}, "disputeDays"),
        ({"disputeDays": -1}, "disputeDays"),
    ],
)
def test_a_bad_order_is_refused_naming_the_field_and_nothing_is_written(
    api: Api, parties: dict[str, dict[str, Any]], overrides: dict[str, Any], names: str
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    response = api.client.post(
        "/orders", json=order_terms(seller, **overrides), headers=api.as_participant(buyer)
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert names in response.json()["detail"]
    assert get(api, buyer, "/orders") == []
    assert api.services.settlement is not None and api.services.settlement.escrow.order_count() == 0


def test_a_participant_cannot_sell_to_itself(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    buyer = parties["retailer"]
    refused = post(api, buyer, "/orders", order_terms(buyer), status=422)
    assert refused["detail"] == "seller: a participant cannot sell to itself"


def test_an_own_wallet_participant_is_told_to_call_the_escrow_itself(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    wallet = api.admin(
        "POST",
        "/participants",
        json={
            "name": "Self-custody Buyer",
            "roles": ["retailer"],
            "country": "DE",
            "address": "0x00000000000000000000000000000000000000b1",
        },
    ).json()
    escrow = api.services.settlement.escrow.address  # type: ignore[union-attr]
    refused = post(api, wallet, "/orders", order_terms(parties["manufacturer"]), status=409)
    assert refused["title"] == "Own wallet" and escrow in refused["detail"]


def test_the_settlement_endpoint_names_the_contracts_and_the_faucet_is_capped(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    contracts = api.client.get("/settlement").json()
    settlement = api.services.settlement
    assert settlement is not None
    assert contracts["escrow"] == settlement.escrow.address
    assert contracts["registry"] == api.services.registry.address
    assert contracts["token"] == {"address": settlement.token.address, "symbol": "dUSD", "decimals": 6}
    buyer = parties["retailer"]
    assert post(api, buyer, "/settlement/faucet", {"amount": "12.5"})["balance"] == "12.500000"
    post(api, buyer, "/settlement/faucet", {"amount": "1000001"}, status=422)


def test_orders_settle_on_anvil_and_postgresql(
    real_api: Api, real_parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller = real_parties["retailer"], real_parties["manufacturer"]
    order_id = funded_order(real_api, buyer, seller, shipment="urn:epc:id:sscc:6901234.0000000702")
    m = real_parties["manufacturer"]
    post(real_api, m, "/products", {"gtin": GTIN, "serial": "7002"}, status=202)
    item = "urn:epc:id:sgtin:6901234.067890.7002"
    body = {"sscc": "urn:epc:id:sscc:6901234.0000000702", "contents": [item], "destination": CARRIER_PARTY}
    post(real_api, m, "/shipments", body, status=202)
    real_api.settle()
    assert get(real_api, buyer, f"/orders/{order_id}")["paid"] == "0.000000"  # proposed, not handed over
    post(
        real_api,
        real_parties["carrier"],
        "/shipments/urn:epc:id:sscc:6901234.0000000702/receipt",
        {},
        status=202,
    )
    real_api.settle()
    order = get(real_api, buyer, f"/orders/{order_id}")
    assert (order["paid"], order["state"]) == ("3000.000000", "funded")


def test_the_settler_goes_on_once_its_transaction_is_mined_on_an_idle_chain(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """Its release was in flight when a round came; the next round must look again although no new
    block arrived since (the chain is idle once that release is mined)."""
    buyer, seller, carrier = parties["retailer"], parties["manufacturer"], parties["carrier"]
    order_id = funded_order(api, buyer, seller)
    post(api, seller, "/products", {"gtin": GTIN, "serial": "7001"}, status=202)
    post(
        api,
        seller,
        "/shipments",
        {"sscc": PALLET, "contents": [ITEM], "destination": CARRIER_PARTY},
        status=202,
    )
    post(api, carrier, f"/shipments/{PALLET}/receipt", {}, status=202)
    post(api, carrier, "/shipments", {"sscc": PALLET, "destination": RETAILER_PARTY}, status=202)
    post(api, buyer, f"/shipments/{PALLET}/receipt", {}, status=202)
    submitter, settler = api.services.submitter, api.services.settlement
    assert settler is not None
    for _ in range(3):  # record the captures; no settler round yet
        submitter.run_once()
    api.services.indexer.run_once()

    assert settler.settle_round() == 1  # Shipped and Received are reached: Shipped goes first
    submitter.run_once()  # broadcast: mined in a new block, but the outbox does not know it yet
    assert settler.settle_round() == 0  # still in flight as far as the outbox knows
    submitter.run_once()  # the outbox sees it mined; no block follows
    assert settler.settle_round() == 1  # Received
    submitter.run_once()
    assert get(api, buyer, f"/orders/{order_id}")["state"] == "closed"


def test_funding_by_approval_takes_the_amount_as_a_permit_does(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    post(api, buyer, "/settlement/faucet", {"amount": "250"})
    order_id = accepted_order(api, buyer, seller, amount="250")
    funded = post(api, buyer, f"/orders/{order_id}/funding", {"method": "approve"})
    assert (funded["state"], funded["unreleased"]) == ("funded", "250.000000")
    assert balance(api, buyer) == "0.000000"
    again = post(api, buyer, f"/orders/{order_id}/funding", status=409)
    assert again["title"] == "TradeEscrowUnexpectedState"


# -------------------------------------------------------------------- acceptance and disputes


def test_the_seller_accepts_the_terms_and_arbiter_before_the_buyer_can_fund(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """The buyer alone cannot bind the seller to an arbiter: funding waits for the acceptance."""
    buyer, seller = parties["retailer"], parties["manufacturer"]
    arbiter = api.create_participant("Rotterdam Arbitration", ["auditor"], "urn:epc:id:pgln:8712345.00010")
    api.settle()
    post(api, buyer, "/settlement/faucet", {"amount": "10000"})
    terms = order_terms(seller, arbiter=arbiter["id"], disputeDays=30)
    order_id = post(api, buyer, "/orders", terms, status=201)["orderId"]

    refused = post(api, buyer, f"/orders/{order_id}/funding", status=409)
    assert refused["title"] == "TradeEscrowUnexpectedState"
    post(api, arbiter, f"/orders/{order_id}/acceptance", status=403)
    accepted = post(api, seller, f"/orders/{order_id}/acceptance")
    assert (accepted["state"], accepted["disputeDays"]) == ("accepted", 30)
    assert post(api, buyer, f"/orders/{order_id}/funding")["state"] == "funded"
    again = post(api, seller, f"/orders/{order_id}/acceptance", status=409)
    assert again["title"] == "TradeEscrowUnexpectedState"


@pytest.mark.parametrize("days", [0, "0.04"])
def test_a_dispute_window_under_an_hour_is_refused_naming_the_field(
    api: Api, parties: dict[str, dict[str, Any]], days: Any
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    arbiter = api.create_participant("Rotterdam Arbitration", ["auditor"], "urn:epc:id:pgln:8712345.00010")
    refused = post(
        api, buyer, "/orders", order_terms(seller, arbiter=arbiter["id"], disputeDays=days), status=422
    )
    assert refused["detail"].startswith("disputeDays: from one hour")
    assert get(api, buyer, "/orders") == []


def test_a_dispute_nobody_resolves_ends_with_its_window_and_the_settler_pays_as_the_trace_shows(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    arbiter = api.create_participant("Rotterdam Arbitration", ["auditor"], "urn:epc:id:pgln:8712345.00010")
    api.settle()
    order_id = funded_order(api, buyer, seller, arbiter=arbiter["id"], disputeDays=2)
    post(api, buyer, f"/orders/{order_id}/dispute")
    ship_to_carrier(api, parties)
    order = get(api, seller, f"/orders/{order_id}")
    assert (order["state"], order["paid"]) == ("disputed", "0.000000")

    chain = api.services.chain
    pass_time_to(chain, int(datetime.fromisoformat(order["disputeEndsAt"]).timestamp()))
    chain.w3.testing.mine(1)  # type: ignore[attr-defined]  # the chain's clock passes the window
    api.settle()
    order = get(api, seller, f"/orders/{order_id}")
    assert (order["state"], order["paid"]) == ("funded", "3000.000000")
    refused = post(api, arbiter, f"/orders/{order_id}/resolution", {"toSeller": 0}, status=409)
    assert refused["title"] == "TradeEscrowUnexpectedState"
    again = post(api, buyer, f"/orders/{order_id}/dispute", status=409)
    assert again["title"] == "TradeEscrowDisputeAlreadyOpened"


# -------------------------------------------------------------------- what neither party can do to the other


def capture(api: Api, who: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """A capture document, recorded on chain (the settler not run)."""
    response = api.capture(who, events)
    assert response.status_code == 202, response.text
    for _ in range(3):
        api.services.submitter.run_once()


@pytest.mark.parametrize("then", ["retail_selling", "destroying"])
def test_goods_received_and_sold_in_one_document_are_paid_for(
    api: Api, parties: dict[str, dict[str, Any]], then: str
) -> None:
    """Before: the custodian was never the receiving address when the settler looked, and after the
    deadline the buyer reclaimed the unpaid 70%."""
    buyer, seller = parties["retailer"], parties["manufacturer"]
    deadline = chain_deadline(api, hours=1)
    order_id = funded_order(api, buyer, seller, deadline=deadline.isoformat())
    ship_to_carrier(api, parties)
    post(api, parties["carrier"], "/shipments", {"sscc": PALLET, "destination": RETAILER_PARTY}, status=202)
    now = datetime.now(UTC)
    capture(
        api,
        buyer,
        [
            object_event([PALLET], biz_step="receiving", at=now, location=RETAILER_PARTY),
            object_event([PALLET], biz_step=then, at=now + timedelta(minutes=5), location=RETAILER_PARTY),
        ],
    )
    pass_time_to(api.services.chain, max(latest_timestamp(api.services.chain), int(deadline.timestamp())) + 1)

    refused = post(api, buyer, f"/orders/{order_id}/reclaim", status=409)
    assert refused["title"] == "TradeEscrowDelivered"
    api.settle()
    order = get(api, seller, f"/orders/{order_id}")
    assert (order["state"], order["paid"], order["refunded"]) == ("closed", "10000.000000", "0.000000")
    assert balance(api, seller) == "10000.000000"


def test_the_buyer_cannot_refund_itself_by_reporting_an_excursion_on_receipt(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    buyer, seller = parties["retailer"], parties["manufacturer"]
    order_id = funded_order(api, buyer, seller, penalties={"excursion": 20})
    ship_to_carrier(api, parties)
    post(api, parties["carrier"], "/shipments", {"sscc": PALLET, "destination": RETAILER_PARTY}, status=202)
    post(api, buyer, f"/shipments/{PALLET}/receipt", {}, status=202)
    reading = {"value": 11.5, "minimum": 2, "maximum": 8}
    post(api, buyer, f"/products/{PALLET}/sensor-readings", reading, status=202)
    api.settle()

    order = get(api, buyer, f"/orders/{order_id}")
    assert order["penaltiesApplied"] == {"excursion": False, "recall": False}
    assert (order["state"], order["paid"], order["refunded"]) == ("closed", "10000.000000", "0.000000")


def test_consuming_the_pallet_pays_the_seller_nothing(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    """Before: "the custodian is no longer the seller" paid 30% for a pallet nobody shipped."""
    buyer, seller = parties["retailer"], parties["manufacturer"]
    deadline = chain_deadline(api, hours=1)
    order_id = funded_order(api, buyer, seller, deadline=deadline.isoformat())
    post(api, seller, "/products", {"gtin": GTIN, "serial": "7001"}, status=202)
    now = datetime.now(UTC)
    capture(
        api,
        seller,
        [
            aggregation_event(PALLET, [ITEM], at=now),
            object_event([PALLET], biz_step="destroying", at=now + timedelta(minutes=5)),
        ],
    )
    api.settle()
    assert get(api, seller, f"/orders/{order_id}")["paid"] == "0.000000"
    refused = post(api, seller, f"/orders/{order_id}/releases", {"milestone": "shipped"}, status=409)
    assert refused["title"] == "TradeEscrowMilestoneNotReached"

    pass_time_to(api.services.chain, max(latest_timestamp(api.services.chain), int(deadline.timestamp())) + 1)
    order = post(api, buyer, f"/orders/{order_id}/reclaim")
    assert (order["state"], order["refunded"]) == ("closed", "10000.000000")


def test_a_receipt_an_excursion_and_a_sale_in_one_document_on_anvil_and_postgresql(
    real_api: Api, real_parties: dict[str, dict[str, Any]]
) -> None:
    """Both of the buyer's tricks at once, on a real node and database: the seller is paid in full."""
    api, parties = real_api, real_parties
    buyer, seller, carrier = parties["retailer"], parties["manufacturer"], parties["carrier"]
    pallet, item = "urn:epc:id:sscc:6901234.0000000703", "urn:epc:id:sgtin:6901234.067890.7003"
    order_id = funded_order(api, buyer, seller, shipment=pallet, penalties={"excursion": 20})
    post(api, seller, "/products", {"gtin": GTIN, "serial": "7003"}, status=202)
    post(
        api,
        seller,
        "/shipments",
        {"sscc": pallet, "contents": [item], "destination": CARRIER_PARTY},
        status=202,
    )
    post(api, carrier, f"/shipments/{pallet}/receipt", {}, status=202)
    post(api, carrier, "/shipments", {"sscc": pallet, "destination": RETAILER_PARTY}, status=202)
    api.settle()
    now = datetime.now(UTC)
    capture(
        api,
        buyer,
        [
            object_event([pallet], biz_step="receiving", at=now, location=RETAILER_PARTY),
            sensor_event(
                [pallet],
                at=now + timedelta(minutes=1),
                measurement="Temperature",
                value=11.5,
                uom="CEL",
                minimum=2.0,
                maximum=8.0,
                location=RETAILER_PARTY,
            ),
            object_event([pallet], biz_step="retail_selling", at=now + timedelta(minutes=5)),
        ],
    )
    api.settle()

    order = get(api, buyer, f"/orders/{order_id}")
    assert order["penaltiesApplied"]["excursion"] is False
    assert (order["state"], order["paid"], order["refunded"]) == ("closed", "10000.000000", "0.000000")
