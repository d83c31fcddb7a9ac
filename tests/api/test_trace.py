"""The consumer trace: the full journey, verified, and any edited row turns the verdict to tampered."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select, update

from tracechain.epcis.builders import aggregation_event, object_event, sensor_event
from tracechain.stamps import VerificationStamps
from tracechain.store import queries
from tracechain.store.models import ChainRecord, Event, EventEpc, Participant
from tracechain.trace import build_trace

from .conftest import Api, document
from .test_capture import ITEM, OTHER_ITEM, PALLET, T0, commissioning, journey

DIGITAL_LINK = "/01/06901234678901/21/1001"  # ITEM as a GS1 Digital Link path


@pytest.fixture
def traced(api: Api, parties: dict[str, dict[str, Any]]) -> Api:
    journey(api, parties)
    return api


def test_trace_shows_the_item_and_its_pallet_events_all_verified(traced: Api) -> None:
    trace = traced.client.get(f"/trace/{ITEM}").json()
    assert trace["verdict"] == "verified", trace["reasons"]
    assert trace["originVerified"] is True
    assert trace["units"] == [PALLET]
    relations = [(e["event"]["bizStep"], e["relation"]) for e in trace["events"]]
    assert relations == [
        ("commissioning", "self"),
        ("packing", "self"),
        ("shipping", "packed in"),
        ("receiving", "packed in"),
        ("inspecting", "packed in"),
        ("shipping", "packed in"),
        ("receiving", "packed in"),
        ("retail_selling", "self"),
    ]
    for entry in trace["events"]:
        checks = entry["verification"]
        assert checks["status"] == "verified"
        assert all(
            checks[name]
            for name in (
                "signatureValid",
                "signerHoldsRole",
                "contentHashMatches",
                "headMatches",
                "custodyContinuous",
                "confirmed",
            )
        )
        assert all(record["block"] is not None for record in checks["records"])


def test_digital_link_paths_and_encoded_links_answer_the_same_trace(traced: Api) -> None:
    by_urn = traced.client.get(f"/trace/{ITEM}").json()
    by_path = traced.client.get(DIGITAL_LINK).json()
    by_link = traced.client.get("/trace/" + quote("https://id.gs1.org" + DIGITAL_LINK, safe="")).json()
    assert by_urn["epc"] == by_path["epc"] == by_link["epc"] == ITEM
    assert [e["eventID"] for e in by_path["events"]] == [e["eventID"] for e in by_urn["events"]]


def test_trace_is_pending_until_the_records_are_confirmed(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    api.capture(parties["manufacturer"], [commissioning()])
    assert api.client.get(f"/trace/{ITEM}").json()["verdict"] == "pending"
    api.settle()
    assert api.client.get(f"/trace/{ITEM}").json()["verdict"] == "verified"


def test_unknown_product_is_a_404_problem(api: Api) -> None:
    response = api.client.get("/trace/urn:epc:id:sgtin:6901234.067890.99999")
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


def test_an_invalid_identifier_is_a_400_naming_it(api: Api) -> None:
    response = api.client.get("/01/06901234678907/21/1001")  # wrong check digit
    assert response.status_code == 400
    assert "06901234678907" in response.json()["detail"]


BLEND = "urn:epc:id:sgtin:6901234.067890.2001"


def test_a_transformed_product_traces_its_ingredients_and_their_units(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    day = timedelta(days=1)
    response = api.capture(
        parties["manufacturer"],
        [
            commissioning(ITEM),
            commissioning(OTHER_ITEM),
            aggregation_event(PALLET, [ITEM], at=T0 + day / 4),
            object_event([PALLET], biz_step="storing", at=T0 + day / 2),
            aggregation_event(PALLET, [ITEM], at=T0 + day * 3 / 4, action="DELETE", biz_step="unpacking"),
            {
                "type": "TransformationEvent",
                "eventTime": (T0 + day).isoformat(),
                "eventTimeZoneOffset": "+00:00",
                "inputEPCList": [ITEM, OTHER_ITEM],
                "outputEPCList": [BLEND],
                "bizStep": "commissioning",
            },
        ],
    )
    assert response.status_code == 202, response.text
    api.settle()
    trace = api.client.get(f"/trace/{BLEND}").json()
    assert trace["verdict"] == "verified", trace["reasons"]
    assert trace["ingredients"] == [ITEM, OTHER_ITEM]
    assert trace["units"] == [PALLET]
    relations = [(e["event"]["type"], e["via"], e["relation"]) for e in trace["events"]]
    assert relations == [
        ("ObjectEvent", ITEM, "ingredient"),
        ("ObjectEvent", OTHER_ITEM, "ingredient"),
        ("AggregationEvent", ITEM, "ingredient"),
        ("ObjectEvent", PALLET, "packed in"),
        ("AggregationEvent", ITEM, "ingredient"),
        ("TransformationEvent", BLEND, "self"),
    ]
    with api.services.sessions() as session:  # one query reaches them all, no reading level by level
        assert set(queries.trace_closure(session, BLEND, 16)) == {BLEND, ITEM, OTHER_ITEM, PALLET}
        assert set(queries.trace_closure(session, BLEND, 1)) == {BLEND, ITEM, OTHER_ITEM}


def test_units_are_followed_by_the_signed_records_even_when_the_stored_roles_disagree(traced: Api) -> None:
    """The closure query finds the pallet by its `parent` role; the walk finds it by the record's
    signed ref. With the role edited away the pallet's events are still read and shown."""
    with traced.services.sessions() as session, session.begin():
        session.execute(update(EventEpc).where(EventEpc.role == "parent").values(role="child"))
    trace = traced.client.get(f"/trace/{ITEM}").json()
    assert trace["units"] == [PALLET]
    assert [e["relation"] for e in trace["events"]].count("packed in") == 5
    assert trace["verdict"] == "verified", trace["reasons"]


def _tamper(api: Api, statement: Any) -> dict[str, Any]:
    with api.services.sessions() as session, session.begin():
        session.execute(statement)
    trace: dict[str, Any] = api.admin("GET", f"/trace/{ITEM}").json()  # the operator's view names ids
    return trace


def _first_event_id(api: Api) -> str:
    with api.services.sessions() as session:
        return str(session.scalars(select(Event.event_id).order_by(Event.event_time)).first())


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda e: {"body": {**e.body, "eventTime": "2026-10-01T09:00:00+00:00"}}, id="body"),
        pytest.param(lambda e: {"biz_step": "receiving"}, id="biz_step"),
        pytest.param(lambda e: {"event_type": "AggregationEvent"}, id="event_type"),
        pytest.param(lambda e: {"signer": "0x" + "00" * 19 + "01"}, id="signer"),
        pytest.param(lambda e: {"disclosure_seed": b"\x05" * 32}, id="disclosure_seed"),
        # The hash id leaves recordTime out; the commitment to the fields does not.
        pytest.param(
            lambda e: {"body": {**e.body, "recordTime": "2026-10-01T09:00:00.000Z"}},
            id="a field the hash id leaves out",
        ),
    ],
)
def test_editing_an_event_row_turns_the_verdict_to_tampered(traced: Api, edit: Any) -> None:
    event_id = _first_event_id(traced)
    with traced.services.sessions() as session:
        event = session.scalars(select(Event).where(Event.event_id == event_id)).one()
        values = edit(event)
    trace = _tamper(traced, update(Event).where(Event.event_id == event_id).values(**values))
    assert trace["verdict"] == "tampered"
    assert any(event_id in reason for reason in trace["reasons"])


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"event_hash": b"\x01" * 32}, id="event_hash"),
        pytest.param({"head": b"\x02" * 32}, id="head"),
        pytest.param({"prev_head": b"\x03" * 32}, id="prev_head"),
        pytest.param({"r": b"\x04" * 32}, id="signature"),
        pytest.param({"counterpart": "0x" + "00" * 19 + "02"}, id="counterpart"),
        pytest.param({"time": 1}, id="time"),
    ],
)
def test_editing_a_chain_record_turns_the_verdict_to_tampered(traced: Api, values: dict[str, Any]) -> None:
    with traced.services.sessions() as session:
        record_id = session.scalars(select(ChainRecord.id).order_by(ChainRecord.id)).first()
    trace = _tamper(traced, update(ChainRecord).where(ChainRecord.id == record_id).values(**values))
    assert trace["verdict"] == "tampered"


def test_deleting_an_event_breaks_the_head_chain(traced: Api) -> None:
    with traced.services.sessions() as session, session.begin():
        shipping = session.scalars(select(Event).where(Event.biz_step == "shipping")).first()
        assert shipping is not None
        session.delete(shipping)
    trace = traced.client.get(f"/trace/{ITEM}").json()
    assert trace["verdict"] == "tampered"
    assert any("missing" in reason for reason in trace["reasons"])


def test_a_signer_stripped_of_its_participant_roles_is_reported(traced: Api) -> None:
    trace = _tamper(
        traced, update(Participant).where(Participant.name == "EU Customs Rotterdam").values(roles=[])
    )
    assert trace["verdict"] == "tampered"
    assert any("holds no participant role" in reason for reason in trace["reasons"])


def _checks(api: Api) -> list[tuple[str, bool, list[str]]]:
    """Each traced event's id, whether its verification stamps held, and its problems."""
    with api.services.sessions() as session:
        trace = build_trace(session, ITEM, api.services.registry.domain, api.services.stamps)
    return [(entry.event.event_id, entry.check.stamped, entry.check.problems) for entry in trace.entries]


def test_a_fresh_capture_is_traced_on_its_verification_stamps(traced: Api) -> None:
    """Capture stamped every record it signed: the trace finds each stamp holding (so it skips the
    hash id, commitment and signature checks) and the verdict is the same as from scratch."""
    checks = _checks(traced)
    assert len(checks) == 8  # the journey's events
    assert all(stamped and not problems for _, stamped, problems in checks), checks
    with traced.services.sessions() as session:
        from_scratch = build_trace(session, ITEM, traced.services.registry.domain)
    assert from_scratch.verdict == "verified"
    assert not any(entry.check.stamped for entry in from_scratch.entries)


def _stamp_forged_with_another_key(api: Api, record_id: int) -> bytes:
    """What someone without the master secret could write: a stamp over the row as edited, keyed
    with a key of their own."""
    with api.services.sessions() as session:
        record = session.get(ChainRecord, record_id)
        assert record is not None
        event = record.event
        forger = VerificationStamps(b"\x07" * 32, api.services.registry.domain.separator)
        content = forger.event_content(
            event.event_id, json.dumps(event.body), json.dumps(event.context), event.disclosure_seed, False
        )
        return forger.stamp(content, record.signed_event(), record.head)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param("body", id="the event's content"),
        pytest.param("event_hash", id="the recorded hash"),
        pytest.param("signature", id="the signature"),
        pytest.param("signer", id="the record's signer"),
        pytest.param("head", id="the head"),
        pytest.param("forged stamp", id="the recorded hash, its stamp forged under another key"),
        pytest.param("copied stamp", id="the recorded hash, another record's stamp copied onto it"),
    ],
)
def test_a_row_edited_after_it_was_stamped_is_checked_from_scratch_and_caught(traced: Api, edit: str) -> None:
    with traced.services.sessions() as session:
        first, second = session.scalars(select(ChainRecord).order_by(ChainRecord.id).limit(2)).all()
        assert first.verification_stamp is not None and second.verification_stamp is not None
        record_id, event_row_id, event_id = first.id, first.event_row_id, first.event.event_id
        body, other_stamp = first.event.body, second.verification_stamp
    assert (event_id, True, []) in _checks(traced)
    record = update(ChainRecord).where(ChainRecord.id == record_id)
    statement = {
        "body": update(Event)
        .where(Event.id == event_row_id)
        .values(body={**body, "eventTime": "2026-10-01T09:00:00+00:00"}),
        "event_hash": record.values(event_hash=b"\x01" * 32),
        "signature": record.values(r=b"\x04" * 32),
        "signer": record.values(signer="0x" + "00" * 19 + "01"),
        "head": record.values(head=b"\x02" * 32),
        "forged stamp": record.values(event_hash=b"\x01" * 32),
        "copied stamp": record.values(event_hash=b"\x01" * 32, verification_stamp=other_stamp),
    }[edit]
    with traced.services.sessions() as session, session.begin():
        session.execute(statement)
    if edit == "forged stamp":
        forged = _stamp_forged_with_another_key(traced, record_id)
        with traced.services.sessions() as session, session.begin():
            session.execute(record.values(verification_stamp=forged))
    stamped, problems = next((s, p) for i, s, p in _checks(traced) if i == event_id)
    assert not stamped
    assert problems
    trace = traced.admin("GET", f"/trace/{ITEM}").json()
    assert trace["verdict"] == "tampered"
    assert any(event_id in reason for reason in trace["reasons"])


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_a_browser_gets_the_consumer_page_and_a_program_gets_json(traced: Api) -> None:
    page = traced.client.get(DIGITAL_LINK, headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Verified" in page.text and "Sold" in page.text and "<svg" in page.text
    program = traced.client.get(DIGITAL_LINK, headers={"Accept": "application/json"})
    assert program.headers["content-type"] == "application/json" and program.json()["verdict"] == "verified"
    assert traced.client.get(DIGITAL_LINK).json()["epc"] == ITEM  # no Accept at all: JSON


def test_link_types_are_answered_as_gs1_resolvers_do(traced: Api) -> None:
    pip = traced.client.get(
        DIGITAL_LINK, params={"linkType": "gs1:pip"}, headers={"Accept": "application/json"}
    )
    assert pip.headers["content-type"].startswith("text/html")
    traceability = traced.client.get(
        DIGITAL_LINK, params={"linkType": "gs1:traceability"}, headers={"Accept": BROWSER_ACCEPT}
    )
    assert traceability.json()["verdict"] == "verified"
    linkset = traced.client.get(DIGITAL_LINK, params={"linkType": "linkset"})
    assert linkset.headers["content-type"] == "application/linkset+json"
    (links,) = linkset.json()["linkset"]
    assert links["anchor"].endswith(DIGITAL_LINK)
    assert links["https://gs1.org/voc/pip"][0]["type"] == "text/html"
    assert links["https://gs1.org/voc/traceability"][0]["href"].endswith("linkType=gs1:traceability")


def test_an_unknown_product_gets_a_clear_404_page_in_a_browser(traced: Api) -> None:
    response = traced.client.get("/01/06901234678901/21/99999", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "We do not know this product" in response.text and "Traceback" not in response.text
    bad = traced.client.get("/01/06901234678907/21/1", headers={"Accept": BROWSER_ACCEPT})
    assert bad.status_code == 400 and "check digit" in bad.text


def test_a_recalled_product_shows_the_recall_banner(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    api.capture(parties["manufacturer"], [commissioning()])
    recall = object_event([ITEM], biz_step="holding", disposition="recalled", at=T0 + timedelta(days=1))
    api.capture(parties["manufacturer"], [recall])
    api.settle()
    page = api.client.get(DIGITAL_LINK, headers={"Accept": BROWSER_ACCEPT}).text
    assert "This product has been recalled" in page
    status = page.split('<div class="status">', 1)[1].split("</div>", 1)[0]  # beside the verdict
    assert 'class="alert" role="alert"' in status and "Recalled on 2 Oct 2026" in status


# ---------------------------------------------------------------- names, places and warnings on the page

MAKER_SITE, VESSEL = "urn:epc:id:sgln:6901234.00001.0", "urn:epc:id:sgln:5790001.00001.0"
MDA, VTYPE = "urn:epcglobal:cbv:mda#", "urn:epcglobal:epcis:vtype:"


def described(
    sites: dict[str, tuple[str, str, str]], product: str | None = None, gtin: str = "06901234678901"
) -> dict[str, Any]:
    """An `epcisMasterData` header: sites as id -> (name, city, countryCode), and a product name for
    the GTIN's class (given as a Digital Link, which the store keeps as its EPC class pattern)."""
    locations = [
        {
            "id": site,
            "attributes": [
                {"id": f"{MDA}{key}", "attribute": value}
                for key, value in zip(("name", "city", "countryCode"), fields, strict=True)
                if value
            ],
        }
        for site, fields in sites.items()
    ]
    vocabularies = [
        {"type": "urn:epcglobal:epcis:vtype:BusinessLocation", "vocabularyElementList": locations}
    ]
    if product:
        element = {
            "id": f"https://id.gs1.org/01/{gtin}",
            "attributes": [{"id": "cbvmda:descriptionShort", "attribute": product}],
        }
        vocabularies.append({"type": f"{VTYPE}EPCClass", "vocabularyElementList": [element]})
    return {"epcisMasterData": {"vocabularyList": vocabularies}}


def capture_described(
    api: Api, party: dict[str, Any], events: list[dict[str, Any]], header: dict[str, Any]
) -> None:
    response = api.client.post(
        "/capture", json={**document(events), "epcisHeader": header}, headers=api.as_participant(party)
    )
    assert response.status_code == 202, response.text


def test_the_page_names_the_product_and_places_by_their_owners_and_warns_of_the_excursion(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    """The maker names its product and its factory, the carrier its vessel; the carrier also names
    the maker's product and factory, and that is not shown. The route is where the goods were,
    not the carrier's home country; the excursion is a warning beside the verdict, saying when and
    where."""
    maker, carrier = parties["manufacturer"], parties["carrier"]
    made = object_event([ITEM], biz_step="commissioning", action="ADD", at=T0, location=MAKER_SITE)
    packed = aggregation_event(PALLET, [ITEM], at=T0 + timedelta(hours=1), location=MAKER_SITE)
    shipped = object_event(
        [PALLET], biz_step="shipping", at=T0 + timedelta(days=1), location=MAKER_SITE,
        destination="urn:epc:id:pgln:5790001.00000",
    )  # fmt: skip
    factory = {MAKER_SITE: ("Shenzhen Bright factory", "Shenzhen", "CN")}
    capture_described(api, maker, [made, packed, shipped], described(factory, "Bright desk lamp"))
    loaded = object_event([PALLET], biz_step="receiving", at=T0 + timedelta(days=2), location=VESSEL)
    warm = sensor_event(
        [PALLET], at=datetime(2026, 11, 6, 3, 0, tzinfo=UTC), measurement="Temperature", value=11.5,
        uom="CEL", minimum=2, maximum=8, location=VESSEL,
    )  # fmt: skip
    rivals = {VESSEL: ("MV Blue Horizon (at sea)", "", ""), MAKER_SITE: ("Counterfeit den", "", "")}
    capture_described(api, carrier, [loaded, warm], described(rivals, "Knock-off lamp"))
    api.settle()

    page = api.client.get(DIGITAL_LINK, headers={"Accept": BROWSER_ACCEPT}).text
    assert "<h1>Bright desk lamp</h1>" in page and ITEM in page
    assert "Knock-off lamp" not in page and "Counterfeit den" not in page
    assert "Verified record" in page
    status = page.split('<div class="status">', 1)[1].split("</div>", 1)[0]  # beside the verdict
    assert 'class="alert" role="alert"' in status
    assert "Cold chain broken on 6 Nov 2026 · MV Blue Horizon (at sea)" in status
    assert "11.5 °C — out of the agreed range (reported by Blue Water Lines)" in status
    route = page.split('<ol class="route">', 1)[1].split("</ol>", 1)[0]
    stops = re.findall(r"<strong>(.*?)</strong>(?:<span>(.*?)</span>)?", route)
    assert stops == [("Shenzhen Bright factory", "Shenzhen, CN"), ("MV Blue Horizon (at sea)", "")]
    assert "at Shenzhen Bright factory (Shenzhen, CN)" in page  # the steps name the place too


def test_without_master_data_the_page_shows_identifiers_and_who_held_the_goods(traced: Api) -> None:
    page = traced.client.get(DIGITAL_LINK, headers={"Accept": BROWSER_ACCEPT}).text
    assert f"<h1>{ITEM}</h1>" in page and 'class="alert"' not in page
    route = page.split('<ol class="route">', 1)[1].split("</ol>", 1)[0]
    stops = re.findall(r"<strong>(.*?)</strong>", route)
    assert stops == ["Shenzhen Bright", "Blue Water Lines", "Amsterdam Retail"]
