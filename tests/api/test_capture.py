"""Capture through the HTTP API: accepted, signed, recorded on chain, idempotent, or rejected whole."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from tracechain.capture import intake as capture_intake
from tracechain.chain.registry import Role
from tracechain.chain.trace_event import ZERO_ADDRESS, subject_id
from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.epcis.event_hash import EPCIS_CONTEXT, event_hash_ids
from tracechain.epcis.identifiers import canonical_epc
from tracechain.store.models import ApiKey, Batch, ChainRecord, Event, Participant

from .conftest import Api, document

ITEM = "urn:epc:id:sgtin:6901234.067890.1001"
OTHER_ITEM = "urn:epc:id:sgtin:6901234.067890.1002"
PALLET = "urn:epc:id:sscc:6901234.0000000001"
T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def commissioning(epc: str = ITEM, at: datetime = T0) -> dict[str, Any]:
    return object_event([epc], biz_step="commissioning", action="ADD", disposition="active", at=at)


def count(api: Api, model: type) -> int:
    with api.services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_creating_a_participant_needs_the_admin_token(api: Api) -> None:
    response = api.client.post(
        "/participants",
        json={"name": "x", "roles": ["carrier"], "country": "NL"},
        headers={"Authorization": "Bearer not-the-token"},
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Unauthorized"
    assert count(api, Participant) == 0


def test_a_created_participant_holds_its_roles_on_chain_and_its_key_only_encrypted(api: Api) -> None:
    created = api.create_participant("Carrier", ["carrier", "auditor"], "urn:epc:id:pgln:5790001.00000")
    api.settle()
    registry = api.services.registry
    assert registry.has_role(Role.CARRIER, created["address"])
    assert registry.has_role(Role.AUDITOR, created["address"])
    assert not registry.has_role(Role.MANUFACTURER, created["address"])
    with api.services.sessions() as session:
        row = session.get(Participant, created["id"])
        assert row is not None and row.encrypted_key is not None
        keys = session.scalars(select(ApiKey).where(ApiKey.participant_id == row.id)).all()
        assert [key.scope for key in keys] == ["capture"]
        assert created["apiKey"] not in {keys[0].key_hash, keys[0].id, row.id}
    me = api.client.get("/participants/me", headers=api.as_participant(created))
    assert me.json()["address"] == created["address"] and "apiKey" not in me.json()


def test_participant_input_errors_name_the_field(api: Api) -> None:
    response = api.admin(
        "POST", "/participants", json={"name": "x", "roles": ["pilot"], "country": "Netherlands"}
    )
    assert response.status_code == 422
    locations = {error["location"] for error in response.json()["errors"]}
    assert {"body.roles.0", "body.country"} <= locations
    assert count(api, Participant) == 0


def test_capture_answers_202_and_the_job_succeeds_once_recorded_on_chain(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    response = api.capture(parties["manufacturer"], [commissioning()])
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/capture/{job['captureID']}"
    assert job["running"] and not job["success"] and job["eventCount"] == 1

    api.settle()

    done = api.client.get(
        response.headers["Location"], headers=api.as_participant(parties["manufacturer"])
    ).json()
    assert done["success"] and not done["running"] and done["finishedAt"]
    state = api.services.registry.product_of(subject_id(ITEM))
    assert state.manufacturer == parties["manufacturer"]["address"]
    with api.services.sessions() as session:
        (record,) = session.scalars(select(ChainRecord)).all()
        assert record.status == "confirmed" and record.block_number is not None
        assert state.head == record.head


def test_event_ids_are_the_reference_cbv_hashes(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    events = [commissioning(), commissioning(OTHER_ITEM)]
    api.capture(parties["manufacturer"], events)
    expected = event_hash_ids(document(events))
    with api.services.sessions() as session:
        assert sorted(session.scalars(select(Event.event_id))) == sorted(expected)


def test_capturing_the_same_event_twice_records_it_once(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    first = api.capture(parties["manufacturer"], [commissioning()])
    api.settle()
    second = api.capture(parties["manufacturer"], [commissioning(), commissioning(OTHER_ITEM)])
    api.settle()
    assert first.status_code == second.status_code == 202
    assert second.json()["eventCount"] == 1  # only the new one
    assert count(api, Event) == 2
    assert len(api.services.registry.recorded_events()) == 2


def inspection(epc: str = ITEM) -> dict[str, Any]:
    return object_event([epc], biz_step="inspecting", at=T0 + timedelta(hours=1))


@pytest.mark.parametrize("service", ["sqlite_api", "real_api"], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize(
    "event",
    [commissioning, inspection],
    ids=["refused by custody (commissioned twice)", "refused by the insert (the same event id)"],
)
def test_an_event_stored_by_a_concurrent_capture_is_recorded_once(
    service: str,
    event: Callable[[str], dict[str, Any]],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Which events are stored already is read before the capture lock. When a capture of the same
    event commits in between, the event is taken for new and refused, and the capture runs again
    reading it inside the lock: the document is accepted, the event recorded once."""
    api: Api = request.getfixturevalue(service)
    maker = api.create_participant("Maker", ["manufacturer"], "urn:epc:id:pgln:6901234.00000", "CN")
    if event is inspection:
        api.capture(maker, [commissioning(), commissioning(OTHER_ITEM)])
    api.settle()
    before = count(api, Event)
    stored_events, overtaken = capture_intake._stored_events, []

    def overtaken_once(*arguments: Any) -> Any:
        stored = stored_events(*arguments)
        if not overtaken:  # between this capture's read and its lock, another stores the same event
            overtaken.append(None)
            overtaken[0] = api.capture(maker, [event(ITEM)])
        return stored

    monkeypatch.setattr(capture_intake, "_stored_events", overtaken_once)
    response = api.capture(maker, [event(ITEM), event(OTHER_ITEM)])
    assert overtaken and overtaken[0].status_code == response.status_code == 202, response.text
    assert response.json()["eventCount"] == 1  # only the event the other capture had not stored
    api.settle()
    assert count(api, Event) == before + 2
    assert len(api.services.registry.recorded_events()) == before + 2


def test_a_schema_invalid_document_is_rejected_naming_the_field_and_nothing_is_written(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    broken = commissioning(OTHER_ITEM)
    del broken["eventTime"]
    response = api.capture(parties["manufacturer"], [commissioning(), broken])
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert any(
        "eventList[1]" in e["location"] and "eventTime" in e["reason"] + e["location"]
        for e in response.json()["errors"]
    )
    assert count(api, Event) == 0 and count(api, ChainRecord) == 0


def test_a_custody_violation_rejects_the_whole_document(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    api.capture(parties["manufacturer"], [commissioning()])
    api.settle()
    # The carrier ships goods it never received, alongside a harmless observation.
    shipping = object_event(
        [ITEM], biz_step="shipping", at=T0 + timedelta(days=1), destination="urn:epc:id:pgln:8712345.00002"
    )
    observing = object_event([ITEM], biz_step="inspecting", at=T0 + timedelta(days=1))
    response = api.capture(parties["carrier"], [observing, shipping])
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["location"] == "epcisBody.eventList[1]"
    assert "TraceRegistryNotCustodian" in error["reason"] and ITEM in error["reason"]
    assert count(api, Event) == 1


def test_a_participant_without_the_role_is_refused(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    response = api.capture(parties["carrier"], [commissioning()])
    assert response.status_code == 400
    assert "TraceRegistryMissingRole" in response.json()["errors"][0]["reason"]
    assert count(api, Event) == 0


def test_shipping_to_a_party_outside_tracechain_is_recorded_without_moving_custody(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    api.capture(parties["manufacturer"], [commissioning()])
    shipping = object_event(
        [ITEM], biz_step="shipping", at=T0 + timedelta(days=1), destination="urn:epc:id:pgln:0000001.00000"
    )
    response = api.capture(parties["manufacturer"], [shipping])
    api.settle()
    assert response.status_code == 202
    state = api.services.registry.product_of(subject_id(ITEM))
    assert state.pending_receiver == ZERO_ADDRESS and state.custodian == parties["manufacturer"]["address"]
    assert [e.kind.name for e in api.services.registry.recorded_events()] == ["COMMISSION", "OBSERVE"]


def test_unknown_api_key_is_refused(api: Api) -> None:
    response = api.client.post(
        "/capture", json=document([commissioning()]), headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401 and response.json()["detail"] == "unknown or revoked API key"


def test_a_whole_journey_is_recorded_with_custody_on_chain(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    journey(api, parties)
    registry = api.services.registry
    assert registry.product_of(subject_id(ITEM)).status.name == "SOLD"
    assert registry.product_of(subject_id(PALLET)).custodian == parties["retailer"]["address"]
    assert registry.product_of(subject_id(PALLET)).cleared
    with api.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Batch).where(Batch.status != "mined")) == 0


def journey(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    """Commission, pack, ship to the carrier, load, clear customs, deliver, receive, sell."""
    day = timedelta(days=1)
    carrier, retailer = "urn:epc:id:pgln:5790001.00000", "urn:epc:id:pgln:8712345.00002"
    steps = [
        ("manufacturer", [commissioning(), aggregation_event(PALLET, [ITEM], at=T0 + day / 4)]),
        ("manufacturer", [object_event([PALLET], biz_step="shipping", at=T0 + day, destination=carrier)]),
        ("carrier", [object_event([PALLET], biz_step="receiving", at=T0 + 2 * day)]),
        (
            "customs",
            [object_event([PALLET], biz_step="inspecting", disposition="conformant", at=T0 + 30 * day)],
        ),
        ("carrier", [object_event([PALLET], biz_step="shipping", at=T0 + 31 * day, destination=retailer)]),
        ("retailer", [object_event([PALLET], biz_step="receiving", at=T0 + 32 * day)]),
        (
            "retailer",
            [object_event([ITEM], biz_step="retail_selling", disposition="retail_sold", at=T0 + 35 * day)],
        ),
    ]
    for party, events in steps:
        response = api.capture(parties[party], events)
        assert response.status_code == 202, response.text
    api.settle()


def test_a_reading_that_names_no_product_completes_recorded_against_its_place(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """A sensor reading at a dock names no goods: its job completes, its record an observation of
    the place; an event naming neither goods nor a GS1 place completes with nothing to record."""
    dock = "urn:epc:id:sgln:5790001.00001.0"
    reading = {**object_event([], biz_step="sensor_reporting", at=T0, location=dock), "epcList": []}
    unplaced = {**object_event([], biz_step="sensor_reporting", at=T0 + timedelta(hours=1)), "epcList": []}
    carrier = parties["carrier"]
    placed = api.capture(carrier, [reading])
    nowhere = api.capture(carrier, [unplaced])
    assert placed.status_code == nowhere.status_code == 202, placed.text + nowhere.text

    def status(response: Any) -> str:
        job = api.client.get(f"/capture/{response.json()['captureID']}", headers=api.as_participant(carrier))
        return str(job.json()["status"])

    assert status(nowhere) == "succeeded"  # nothing to wait for
    api.settle()
    assert status(placed) == "succeeded"
    with api.services.sessions() as session:
        place = subject_id(canonical_epc(dock))
        records = session.scalars(select(ChainRecord).where(ChainRecord.subject == place)).all()
        assert [(r.kind, r.status, r.signer) for r in records] == [(0, "confirmed", carrier["address"])]


# ---------------------------------------------------------------- POST /events, GET /capture


def test_one_event_posted_to_events_is_captured_as_a_document_holding_it(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    event = {"@context": [EPCIS_CONTEXT], **commissioning()}
    response = api.client.post("/events", json=event, headers=maker)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/capture/{response.json()['captureID']}"
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"
    api.settle()
    job = api.client.get(response.headers["Location"], headers=maker).json()
    assert job["success"] and job["eventCount"] == 1
    (hash_id,) = event_hash_ids(document([commissioning()]))
    found = api.client.get("/events/" + quote(hash_id, safe=""), headers=maker)
    assert found.status_code == 200
    assert api.services.registry.product_of(subject_id(ITEM)).custodian == parties["manufacturer"]["address"]
    # Sent again, it is the same event: nothing new to record.
    again = api.client.post("/events", json=event, headers=maker)
    assert again.status_code == 202 and count(api, Event) == 1


def test_events_refuses_a_document_and_what_is_no_event_naming_where_to_send_it(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = api.as_participant(parties["manufacturer"])
    for body, told in (
        (document([commissioning()]), "send an EPCISDocument to /capture"),
        ([commissioning()], "one EPCIS event"),
        ({"epcList": [ITEM]}, "one EPCIS event"),
    ):
        response = api.client.post("/events", json=body, headers=maker)
        assert response.status_code == 400, body
        assert told in response.json()["detail"]
    invalid = {**commissioning(), "action": "SOMETIMES"}
    response = api.client.post("/events", json=invalid, headers=maker)
    assert response.status_code == 400 and response.json()["title"] == "EPCIS document rejected"
    reader = api.client.post("/events", json=commissioning(), headers={"GS1-EPCIS-Version": "1.2", **maker})
    assert reader.status_code == 406 and reader.json()["parameters"] == ["GS1-EPCIS-Version"]
    assert count(api, Event) == 0


def test_capture_lists_the_callers_own_jobs_in_pages_and_the_admin_all(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker, carrier = parties["manufacturer"], parties["carrier"]
    own = [
        api.capture(maker, [commissioning(f"urn:epc:id:sgtin:6901234.067890.{n}")]).json()["captureID"]
        for n in range(3)
    ]
    theirs = api.capture(carrier, [object_event([PALLET], biz_step="receiving", at=T0)]).json()["captureID"]
    api.settle()
    seen: list[dict[str, Any]] = []
    url: str | None = "/capture?perPage=2"
    while url is not None:
        response = api.client.get(url, headers=api.as_participant(maker))
        assert response.status_code == 200, response.text
        seen += response.json()
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert [job["captureID"] for job in seen] == own
    assert all(job["success"] and not job["running"] for job in seen)
    single = api.client.get(f"/capture/{own[0]}", headers=api.as_participant(maker)).json()
    assert seen[0] == single  # each as GET /capture/{id} answers it
    everyone = {job["captureID"] for job in api.admin("GET", "/capture?perPage=1000").json()}
    assert {*own, theirs} <= everyone
    assert api.admin("GET", f"/capture/{theirs}").json()["captureID"] == theirs
    assert api.client.get(f"/capture/{theirs}", headers=api.as_participant(maker)).status_code == 404
    carriers = api.client.get("/capture", headers=api.as_participant(carrier)).json()
    assert [job["captureID"] for job in carriers] == [theirs]
    assert api.client.get("/capture").status_code == 401
    assert (
        api.client.get("/capture?nextPageToken=nonsense", headers=api.as_participant(maker)).status_code
        == 400
    )


def test_a_declared_event_id_naming_another_event_is_refused(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """An event ID is unique across all events (EPCIS 2.0 REST binding): a rival declaring another's
    eventID for an event of its own would answer for that event."""
    declared = "urn:uuid:4d7f2c1e-8b3a-4f6e-9c2d-1a2b3c4d5e6f"
    maker, carrier = parties["manufacturer"], parties["carrier"]
    assert api.capture(maker, [commissioning() | {"eventID": declared}]).status_code == 202
    api.settle()

    response = api.capture(carrier, [inspection() | {"eventID": declared}])
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [
        {"location": "epcisBody.eventList[0].eventID", "reason": f"{declared} already names another event"}
    ]
    # two events of one document declaring one id: the second is refused
    twin = {"eventID": "urn:uuid:9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"}
    response = api.capture(maker, [inspection() | twin, inspection(OTHER_ITEM) | twin])
    assert [e["location"] for e in response.json()["errors"]] == ["epcisBody.eventList[1].eventID"]
    assert count(api, Event) == 1
    # the same event sent again under its id is no conflict: captured once
    again = api.capture(maker, [commissioning() | {"eventID": declared}])
    assert again.status_code == 202 and count(api, Event) == 1


def test_a_declared_id_that_is_anothers_hash_id_never_finds_in_its_place(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """Refusing it would tell the rival that an event it may not see exists; instead the hash id
    finds only the event it is the hash of, wherever the rival's event is looked for."""
    maker, carrier = parties["manufacturer"], parties["carrier"]
    api.capture(maker, [commissioning()])
    api.settle()
    with api.services.sessions() as session:
        (hash_id,) = session.scalars(select(Event.event_id)).all()
    assert api.capture(carrier, [inspection() | {"eventID": hash_id}]).status_code == 202
    api.settle()
    for response in (
        api.admin("GET", "/events/" + quote(hash_id, safe="")),
        api.admin("GET", "/events", params={"EQ_eventID": hash_id}),
    ):
        served = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert [event["bizStep"] for event in served] == ["commissioning"]
