"""Participants that keep their own key: the service hands out EIP-712 messages, any wallet signs."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tracechain.chain.trace_event import subject_id
from tracechain.epcis.builders import aggregation_event, object_event

from .conftest import Api
from .test_capture import ITEM, OTHER_ITEM, PALLET, T0, commissioning

RETAILER = "urn:epc:id:pgln:8712345.00002"


@pytest.fixture
def wallet() -> LocalAccount:
    return Account.from_key(os.urandom(32))


@pytest.fixture
def own_key_maker(api: Api, wallet: LocalAccount) -> dict[str, Any]:
    return new_own_key_maker(api, wallet)


def new_own_key_maker(api: Api, wallet: LocalAccount) -> dict[str, Any]:
    response = api.admin(
        "POST",
        "/participants",
        json={
            "name": "Own-key Maker",
            "roles": ["manufacturer"],
            "partyId": "urn:epc:id:pgln:6901234.00007",
            "country": "CN",
            "address": wallet.address,
        },
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["custodialKey"] is False and created["address"] == wallet.address
    api.settle()
    return created


def signatures_for(job: dict[str, Any], wallet: LocalAccount) -> dict[str, Any]:
    return {
        "signatures": [
            {
                "recordId": request["recordId"],
                "signature": wallet.sign_typed_data(full_message=request["typedData"]).signature.to_0x_hex(),
            }
            for request in job["signingRequests"]
        ]
    }


@pytest.mark.parametrize("service", ["sqlite_api", "real_api"], ids=["sqlite-tester", "postgresql-anvil"])
def test_a_wallet_signs_the_published_messages_and_the_events_are_recorded(
    request: pytest.FixtureRequest, service: str, wallet: LocalAccount
) -> None:
    """On PostgreSQL every such capture answered 500: the job's status did not fit its column."""
    api: Api = request.getfixturevalue(service)
    own_key_maker = new_own_key_maker(api, wallet)
    job = api.capture(own_key_maker, [commissioning()]).json()
    assert job["status"] == "awaiting_signatures" and len(job["signingRequests"]) == 1
    assert job["signingRequests"][0]["typedData"]["domain"] == api.services.registry.domain.as_dict()
    api.settle()
    assert api.services.registry.recorded_events() == []  # nothing goes on chain unsigned

    signed = api.client.post(
        f"/capture/{job['captureID']}/signatures",
        json=signatures_for(job, wallet),
        headers=api.as_participant(own_key_maker),
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "pending" and signed.json()["signingRequests"] == []
    api.settle()

    assert api.services.registry.product_of(subject_id(ITEM)).manufacturer == wallet.address
    assert api.client.get(f"/trace/{ITEM}").json()["verdict"] == "verified"


def test_a_signature_by_another_key_is_rejected_naming_the_record(
    api: Api, own_key_maker: dict[str, Any], wallet: LocalAccount
) -> None:
    job = api.capture(own_key_maker, [commissioning()]).json()
    forged = signatures_for(job, Account.from_key(os.urandom(32)))
    response = api.client.post(
        f"/capture/{job['captureID']}/signatures", json=forged, headers=api.as_participant(own_key_maker)
    )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["location"] == f"signatures[{job['signingRequests'][0]['recordId']}]"
    assert wallet.address in error["reason"]
    again = api.client.get(f"/capture/{job['captureID']}", headers=api.as_participant(own_key_maker)).json()
    assert again["status"] == "awaiting_signatures" and len(again["signingRequests"]) == 1


def test_an_unsigned_capture_holds_back_only_what_it_touches(
    api: Api, parties: dict[str, dict[str, Any]], own_key_maker: dict[str, Any], wallet: LocalAccount
) -> None:
    """Records captured after an unsigned one waited for it, whoever captured them and whatever
    they touched: one participant that never signed stopped everyone's events, for good."""
    waiting = api.capture(own_key_maker, [commissioning()]).json()
    packed_on_it = aggregation_event(PALLET, [ITEM], at=T0 + timedelta(hours=1))
    api.capture(own_key_maker, [packed_on_it])  # its own, after the unsigned one: also unsigned
    api.capture(parties["manufacturer"], [commissioning(OTHER_ITEM)])  # someone else's product
    api.settle()
    assert [e.subject for e in api.services.registry.recorded_events()] == [subject_id(OTHER_ITEM)]

    api.client.post(
        f"/capture/{waiting['captureID']}/signatures",
        json=signatures_for(waiting, wallet),
        headers=api.as_participant(own_key_maker),
    )
    api.settle()
    assert [e.subject for e in api.services.registry.recorded_events()] == [
        subject_id(OTHER_ITEM),
        subject_id(ITEM),
    ]


def test_another_participants_record_on_what_an_unsigned_one_touches_waits_for_it(
    api: Api, parties: dict[str, dict[str, Any]], own_key_maker: dict[str, Any], wallet: LocalAccount
) -> None:
    """The retailer receives an item whose shipment to it is still unsigned: on chain the receipt
    would be refused, so it waits for the signature; an unrelated product does not."""
    made = api.capture(own_key_maker, [commissioning()]).json()
    api.client.post(
        f"/capture/{made['captureID']}/signatures",
        json=signatures_for(made, wallet),
        headers=api.as_participant(own_key_maker),
    )
    api.settle()
    shipped = object_event([ITEM], biz_step="shipping", at=T0 + timedelta(days=1), destination=RETAILER)
    unsigned = api.capture(own_key_maker, [shipped]).json()
    received = object_event([ITEM], biz_step="receiving", at=T0 + timedelta(days=2))
    assert api.capture(parties["retailer"], [received]).status_code == 202
    assert api.capture(parties["manufacturer"], [commissioning(OTHER_ITEM)]).status_code == 202
    api.settle()
    assert [e.subject for e in api.services.registry.recorded_events()][1:] == [subject_id(OTHER_ITEM)]

    api.client.post(
        f"/capture/{unsigned['captureID']}/signatures",
        json=signatures_for(unsigned, wallet),
        headers=api.as_participant(own_key_maker),
    )
    api.settle()
    kinds = [e.kind.name for e in api.services.registry.recorded_events() if e.subject == subject_id(ITEM)]
    assert kinds == ["COMMISSION", "SHIP", "RECEIVE"]


def test_signatures_for_another_participants_job_are_a_404(
    api: Api, parties: dict[str, dict[str, Any]], own_key_maker: dict[str, Any], wallet: LocalAccount
) -> None:
    job = api.capture(own_key_maker, [commissioning()]).json()
    response = api.client.post(
        f"/capture/{job['captureID']}/signatures",
        json=signatures_for(job, wallet),
        headers=api.as_participant(parties["manufacturer"]),
    )
    assert response.status_code == 404
