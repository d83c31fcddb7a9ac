"""What a participant with a valid key and bad intent cannot do to another party's product.

Each test is one way a rival maker, a carrier with a grudge or anyone who has seen an event's
content tried to make a verdict lie, through the HTTP API on a real (in-process) chain: the victim's
trace, consumer page and proof bundle must keep telling the truth. The escrow's side of the trust
model is in tests/api/test_orders.py and tests/contracts/.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tracechain.chain.registry import Role
from tracechain.chain.trace_event import ZERO_ADDRESS, Kind, subject_id
from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.epcis.event_hash import EPCIS_CONTEXT, event_hash_id
from tracechain.store.models import CaptureJob, ChainRecord, RecordStatus
from tracechain.verification import verify_bundle

from ..factories import Actor, sign_event
from .conftest import Api
from .conftest import document as capture_document
from .test_capture import ITEM, PALLET, T0, commissioning, journey
from .test_trace import BROWSER_ACCEPT, DIGITAL_LINK, capture_described, described

CARRIER_PARTY, RETAILER_PARTY = "urn:epc:id:pgln:5790001.00000", "urn:epc:id:pgln:8712345.00002"
RIVAL_ITEM = "urn:epc:id:sgtin:6901235.067890.1"
DAY = timedelta(days=1)


def new_rival(api: Api) -> dict[str, Any]:
    """Another manufacturer, with a valid key of its own and its own products."""
    made = api.create_participant(
        "Rival Electronics", ["manufacturer"], "urn:epc:id:pgln:6901235.00000", "CN"
    )
    api.settle()
    return made


@pytest.fixture
def rival(api: Api) -> dict[str, Any]:
    return new_rival(api)


BOTH_DATABASES = pytest.mark.parametrize(
    "service", ["sqlite_api", "real_api"], ids=["sqlite-tester", "postgresql-anvil"]
)


def service_of(request: pytest.FixtureRequest, service: str) -> tuple[Api, dict[str, dict[str, Any]]]:
    """The service on the in-process chain and SQLite, or on anvil and PostgreSQL, with its cast."""
    api: Api = request.getfixturevalue(service)
    cast = "sqlite_parties" if service == "sqlite_api" else "real_parties"
    parties: dict[str, dict[str, Any]] = request.getfixturevalue(cast)
    return api, parties


def trace(api: Api, epc: str = ITEM) -> dict[str, Any]:
    found: dict[str, Any] = api.client.get(f"/trace/{epc}").json()
    return found


def page(api: Api) -> str:
    return api.client.get(DIGITAL_LINK, headers={"Accept": BROWSER_ACCEPT}).text


def bundle_verifies(api: Api, epc: str = ITEM) -> list[str]:
    """Every problem `tracechain verify` finds in the product's proof bundles, checked against the
    chain: the public one (each event's public fields) and the operator's (every event in full)."""
    problems = []
    for bundle in (
        api.client.get(f"/trace/{epc}/proof").json(),
        api.admin("GET", f"/trace/{epc}/proof").json(),
    ):
        result = verify_bundle(bundle, api.services.chain.w3)
        problems += result.every_problem
    return problems


# ---------------------------------------------------------------- ordinary data reads as what it is


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=st.integers(min_value=1, max_value=12), commissioned_together=st.booleans())
def test_items_packed_together_in_one_event_and_shipped_are_each_verified(
    api: Api, parties: dict[str, dict[str, Any]], items: int, commissioned_together: bool
) -> None:
    """One AggregationEvent packs every item; an item's trace holds its own history and its case's,
    not its siblings' (whose records share the packing event): none of theirs is "missing"."""
    batch = len(api.services.registry.recorded_events())  # a fresh serial range per example
    case = f"urn:epc:id:sscc:6901234.{batch:010d}"
    serials = [f"urn:epc:id:sgtin:6901234.067890.{batch}-{n}" for n in range(items)]
    made = [commissioning(epc, at=T0 + timedelta(minutes=n)) for n, epc in enumerate(serials)]
    for document in [made] if commissioned_together else [[each] for each in made]:
        assert api.capture(parties["manufacturer"], document).status_code == 202
    packed = aggregation_event(case, serials, at=T0 + DAY)
    shipped = object_event([case], biz_step="shipping", at=T0 + 2 * DAY, destination=CARRIER_PARTY)
    assert api.capture(parties["manufacturer"], [packed, shipped]).status_code == 202
    assert (
        api.capture(
            parties["carrier"], [object_event([case], biz_step="receiving", at=T0 + 3 * DAY)]
        ).status_code
        == 202
    )
    api.settle()

    for epc in serials:
        found = trace(api, epc)
        assert found["verdict"] == "verified", found["reasons"]
        assert found["units"] == [case]
    assert bundle_verifies(api, serials[-1]) == []


# ---------------------------------------------------------------- hashing: an event's id is its own


def test_a_document_cannot_make_another_partys_event_hash_differently_when_checked(
    api: Api, parties: dict[str, dict[str, Any]], rival: dict[str, Any]
) -> None:
    """Hashed whole (as GS1's reference does), the rival's first event let the bare word "shipping"
    in its second stand for the CBV IRI; the trace and `verify` hash that event alone and got
    another id, so the victim's product read "not verified". Each event is hashed alone."""
    journey(api, parties)
    context = [EPCIS_CONTEXT, {"example": "https://ns.example.com/epcis/"}]
    own = object_event([RIVAL_ITEM], biz_step="shipping", at=T0)
    remark = {**object_event([ITEM], biz_step="storing", at=T0 + 40 * DAY), "example:note": "shipping"}
    document = {**capture_document([own, remark]), "@context": context}
    response = api.client.post("/capture", json=document, headers=api.as_participant(rival))
    assert response.status_code == 202, response.text
    api.settle()

    found = api.admin("GET", f"/trace/{ITEM}").json()  # the operator's view shows every event's id
    assert found["verdict"] == "verified", found["reasons"]
    (observed,) = [e for e in found["events"] if e["signer"] == rival["address"]]
    assert observed["eventID"] == event_hash_id(remark, context)
    assert observed["statement"] == "observation"
    assert bundle_verifies(api) == []


# ---------------------------------------------------------------- who may say what


def test_a_rival_cannot_become_the_products_origin_by_observing_an_earlier_commissioning(
    api: Api, parties: dict[str, dict[str, Any]], rival: dict[str, Any]
) -> None:
    journey(api, parties)
    earlier = object_event([ITEM], biz_step="commissioning", action="OBSERVE", at=T0 - 30 * DAY)
    assert api.capture(rival, [earlier]).status_code == 202  # anyone may say what it saw
    api.settle()

    html = page(api)
    assert "Made by <strong>Shenzhen Bright</strong>" in html
    assert "Made by <strong>Rival Electronics</strong>" not in html
    assert "reported by Rival Electronics" in html
    found = trace(api)
    assert found["verdict"] == "verified", found["reasons"]
    assert found["origin"]["manufacturer"] == parties["manufacturer"]["address"]
    first = found["events"][0]
    assert (first["signer"], first["statement"]) == (rival["address"], "observation")
    assert bundle_verifies(api) == []


@pytest.mark.parametrize(
    ("event", "refusal"),
    [
        pytest.param(
            object_event([PALLET], biz_step="destroying", disposition="destroyed", at=T0 + 40 * DAY),
            "consume of urn:epc:id:sscc:6901234.0000000001 refused: TraceRegistryNotCustodian",
            id="destroyed",
        ),
        pytest.param(
            {
                **object_event([PALLET], biz_step="transporting", at=T0 + 3 * DAY),
                "sensorElementList": [
                    {
                        "sensorReport": [
                            {"type": "Temperature", "value": 31, "uom": "CEL", "exception": "ALARM_CONDITION"}
                        ]
                    }
                ],
            },
            "excursion of urn:epc:id:sscc:6901234.0000000001 refused: TraceRegistryNotCustodian",
            id="an excursion",
        ),
    ],
)
def test_a_fact_about_someone_elses_product_is_refused_naming_the_rule(
    api: Api, parties: dict[str, dict[str, Any]], rival: dict[str, Any], event: dict[str, Any], refusal: str
) -> None:
    journey(api, parties)
    before = trace(api)

    response = api.capture(rival, [event])

    assert response.status_code == 400
    assert refusal in response.json()["detail"]
    assert trace(api)["events"] == before["events"]


def test_a_sensor_error_reported_by_a_bystander_is_an_observation_not_an_excursion(
    api: Api, parties: dict[str, dict[str, Any]], rival: dict[str, Any]
) -> None:
    journey(api, parties)
    reading = {
        **object_event([PALLET], biz_step="sensor_reporting", at=T0 + 3 * DAY),
        "sensorElementList": [
            {
                "sensorReport": [
                    {"type": "Temperature", "value": 31, "uom": "CEL", "exception": "ERROR_CONDITION"}
                ]
            }
        ],
    }
    assert api.capture(rival, [reading]).status_code == 202
    api.settle()

    assert trace(api)["verdict"] == "verified"
    html = page(api)
    assert "Temperature: 31 °C — sensor error" in html
    assert "out of the agreed range" not in html and "reading outside the agreed range" not in html
    assert "reported by Rival Electronics" in html


def test_a_rival_cannot_name_the_product_or_its_places_on_its_page(
    api: Api, parties: dict[str, dict[str, Any]], rival: dict[str, Any]
) -> None:
    """The rival's master data names the maker's GTIN and the maker's factory, and it observes the
    goods there: its observation shows the factory's identifier, the page neither of its names."""
    factory = "urn:epc:id:sgln:6901234.00001.0"
    made = object_event([ITEM], biz_step="commissioning", action="ADD", at=T0, location=factory)
    named = described({factory: ("Bright factory", "Shenzhen", "CN")}, "Lamp")
    capture_described(api, parties["manufacturer"], [made], named)
    api.settle()
    seen = object_event([ITEM], biz_step="storing", at=T0 + DAY, location=factory)
    capture_described(api, rival, [seen], described({factory: ("Sweatshop", "", "")}, "Counterfeit lamp"))
    api.settle()

    html = page(api)
    assert "<h1>Lamp</h1>" in html and "at Bright factory (Shenzhen, CN)" in html
    assert "Counterfeit lamp" not in html and "Sweatshop" not in html
    assert "reported by Rival Electronics" in html and f"at <code>{factory}</code>" in html
    assert 'class="alert"' not in html


@BOTH_DATABASES
def test_only_its_signer_may_withdraw_an_event(request: pytest.FixtureRequest, service: str) -> None:
    api, parties = service_of(request, service)
    rival = new_rival(api)
    journey(api, parties)
    shipped = object_event([PALLET], biz_step="shipping", at=T0 + DAY, destination=CARRIER_PARTY)
    declared = {
        **shipped,
        "errorDeclaration": {"declarationTime": "2026-11-20T10:00:00Z", "reason": "did_not_occur"},
    }

    refused = api.capture(rival, [declared])
    assert refused.status_code == 400
    assert "only its signer or an auditor may withdraw it" in refused.json()["detail"]
    assert "Shenzhen Bright" in refused.json()["detail"]

    withdrawn = api.capture(parties["manufacturer"], [declared])
    assert withdrawn.status_code == 202 and withdrawn.json()["eventCount"] == 1
    api.settle()
    found = trace(api)
    assert found["verdict"] == "verified", found["reasons"]
    (original,) = [
        e
        for e in found["events"]
        if e["statement"] == "fact"
        and e["event"].get("bizStep") == "shipping"
        and e["signer"] == parties["manufacturer"]["address"]
    ]
    assert original["withdrawnBy"] == [parties["manufacturer"]["address"]]
    (withdrawal,) = [e for e in found["events"] if e["statement"] == "withdrawal"]
    assert withdrawal["verification"]["withdrawalValid"]
    assert "Withdrawn as erroneous by Shenzhen Bright on 2026-11-20: did not occur" in page(api)
    assert bundle_verifies(api) == []


# ---------------------------------------------------------------- nobody takes an event's id first


@BOTH_DATABASES
def test_nobody_can_take_an_events_id_before_its_author_captures_it(
    request: pytest.FixtureRequest, service: str
) -> None:
    """A rival who knows a document partners exchanged sends its events first: as an error
    declaration (refused: there is nothing to withdraw), then as plain events (its own
    observations). The author's capture still records every event as its own, and the
    shipment it carries reaches the receiver."""
    api, parties = service_of(request, service)
    rival, maker = new_rival(api), parties["manufacturer"]
    assert api.capture(maker, [commissioning()]).status_code == 202
    packed = aggregation_event(PALLET, [ITEM], at=T0 + DAY / 4)
    shipped = object_event([PALLET], biz_step="shipping", at=T0 + DAY, destination=CARRIER_PARTY)
    declared = {**shipped, "errorDeclaration": {"declarationTime": "2026-10-02T10:00:00Z"}}

    squatting = api.capture(rival, [declared])
    assert squatting.status_code == 400 and "no event" in squatting.json()["detail"]
    assert api.capture(rival, [shipped]).status_code == 202  # an observation of its own
    api.settle()

    authored = api.capture(maker, [packed, shipped])
    assert authored.status_code == 202 and authored.json()["eventCount"] == 2
    api.settle()
    state = api.services.registry.product_of(subject_id(PALLET))
    assert state.pending_receiver == parties["carrier"]["address"]
    received = api.capture(
        parties["carrier"], [object_event([PALLET], biz_step="receiving", at=T0 + 2 * DAY)]
    )
    assert received.status_code == 202, received.text
    api.settle()
    assert api.services.registry.product_of(subject_id(PALLET)).custodian == parties["carrier"]["address"]
    found = trace(api)
    assert found["verdict"] == "verified", found["reasons"]
    statements = {(e["signer"], e["event"]["bizStep"]): e["statement"] for e in found["events"]}
    assert statements[(maker["address"], "shipping")] == "fact"
    assert statements[(rival["address"], "shipping")] == "observation"


# ---------------------------------------------------------------- the indexer attaches only our logs


def _queued_ship(api: Api, parties: dict[str, dict[str, Any]]) -> ChainRecord:
    """The maker's shipment of the pallet, signed and queued but not sent yet."""
    maker = parties["manufacturer"]
    assert api.capture(maker, [commissioning(), aggregation_event(PALLET, [ITEM], at=T0)]).status_code == 202
    api.settle()
    shipped = object_event([PALLET], biz_step="shipping", at=T0 + DAY, destination=CARRIER_PARTY)
    assert api.capture(maker, [shipped]).status_code == 202
    with api.services.sessions() as session:
        record = session.scalars(select(ChainRecord).where(ChainRecord.kind == Kind.SHIP)).one()
        session.expunge(record)
    return record


def test_a_log_by_another_signer_sharing_a_records_subject_and_head_is_not_taken_for_it(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """Another customs authority, with its own wallet, records an inspection with the queued
    shipment's event hash over the same head, so its log has the subject and head the shipment
    would have had, and is mined first. It is not the shipment: the record must not be confirmed
    with that log, and the trace must not call an unrecorded shipment verified."""
    registry = api.services.registry
    ship = _queued_ship(api, parties)
    customs = Actor.new("customs with its own wallet", registry)
    registry.grant_role(Role.CUSTOMS, customs.address)
    inspection = sign_event(registry, customs, Kind.INSPECT, ship.subject, event_hash=ship.event_hash,
                            prev_head=ship.prev_head, ref=(1).to_bytes(32, "big"))  # fmt: skip
    (foreign,) = registry.record([inspection]).events
    assert foreign.head == ship.head

    api.settle()

    with api.services.sessions() as session:
        # Not on chain: the shipment failed (its job says why) and is no longer held as captured.
        assert session.get(ChainRecord, ship.id) is None
        (job,) = [job for job in session.scalars(select(CaptureJob)) if job.status == "failed"]
        assert "TraceRegistryStaleHead" in job.errors["reason"]  # type: ignore[index]
    assert api.services.registry.product_of(ship.subject).pending_receiver == ZERO_ADDRESS
    shown = [entry["event"].get("bizStep") for entry in trace(api)["events"]]
    assert "shipping" not in shown  # no shipment shown that the chain does not hold


def test_the_records_own_signed_event_relayed_by_someone_else_confirms_it(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """Anyone may relay a signed event. A copy of the queued shipment mined first by another account
    is the shipment itself: the record is confirmed where the chain holds it, not failed with the
    batch whose copy the chain then refused."""
    registry = api.services.registry
    ship = _queued_ship(api, parties)
    with api.services.sessions() as session:
        signed = session.get(ChainRecord, ship.id).signed_event()  # type: ignore[union-attr]
    (relayed,) = registry.record([signed]).events

    api.settle()

    with api.services.sessions() as session:
        record = session.get(ChainRecord, ship.id)
        assert record is not None and record.status == RecordStatus.CONFIRMED
        assert record.tx_hash == "0x" + relayed.transaction_hash.hex()
    assert trace(api)["verdict"] == "verified"
