"""Named queries (`/queries`) and their webhook subscriptions, delivered to a real HTTP receiver on
127.0.0.1 by the deliverer the test drives."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from starlette.websockets import WebSocketDisconnect

from tracechain.epcis.builders import object_event
from tracechain.store.models import Delivery, DeliveryStatus, NamedQuery
from tracechain.store.queries import deliveries_of

from ..webhook_receiver import Receiver, running_receiver
from .conftest import Api
from .test_capture import T0, commissioning

TOKEN = "subscriber-secret-0123456789abcdef"
A, B, C = (f"urn:epc:id:sgtin:6901234.067890.{n}" for n in (3001, 3002, 3003))
RETRY_BASE_S = 0.2


@pytest.fixture
def hooks(api: Api) -> Api:
    """The api, delivering to 127.0.0.1 (as tests must) and retrying after RETRY_BASE_S, doubled."""
    api.services.settings.webhook_allow_private = True
    api.services.deliverer.allow_private = True
    api.services.deliverer.retry_base_s = RETRY_BASE_S
    return api


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def deliver_until(
    api: Api, receiver: Receiver, done: Callable[[list[Any]], bool], timeout: float = 20
) -> None:
    """Run the deliverer's rounds until the receiver has what `done` asks for."""
    deadline = time.monotonic() + timeout
    while not done(list(receiver.received)):
        assert time.monotonic() < deadline, f"only {len(receiver.received)} POSTs after {timeout} s"
        api.services.deliverer.run_once()
        time.sleep(0.02)


def deliver_round(api: Api) -> None:
    api.services.deliverer.run_once()


def name_query(api: Api, who: dict[str, Any], name: str, query: dict[str, Any]) -> Any:
    return api.client.post("/queries", json={"name": name, "query": query}, headers=api.as_participant(who))


def subscribe(api: Api, who: dict[str, Any], name: str, **body: Any) -> Any:
    return api.client.post(f"/queries/{name}/subscriptions", json=body, headers=api.as_participant(who))


def times_of(events: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(event["eventTime"]) for event in events]


def at(hour: int) -> Any:
    return T0 + timedelta(hours=hour)


def delivery_rows(api: Api, subscription_id: str) -> list[Delivery]:
    with api.services.sessions() as session:
        return deliveries_of(session, subscription_id)


# ---------------------------------------------------------------- named queries


def test_a_named_query_is_created_read_listed_and_deleted(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = parties["manufacturer"]
    created = name_query(
        api, maker, "commissioned", {"EQ_bizStep": ["commissioning"], "eventType": "ObjectEvent"}
    )
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/queries/commissioned"
    assert created.json()["query"] == {"EQ_bizStep": ["commissioning"], "eventType": "ObjectEvent"}
    for name in ("b-query", "c-query"):
        assert name_query(api, maker, name, {"eventType": "ObjectEvent"}).status_code == 201

    first = api.client.get("/queries", params={"perPage": 2}, headers=api.as_participant(maker))
    assert [q["name"] for q in first.json()] == ["b-query", "c-query"]
    assert 'rel="next"' in first.headers["Link"]
    next_url = first.headers["Link"].split(">")[0].lstrip("<")
    second = api.client.get(next_url, headers=api.as_participant(maker))
    assert [q["name"] for q in second.json()] == ["commissioned"] and "Link" not in second.headers

    got = api.client.get("/queries/commissioned", headers=api.as_participant(maker))
    assert got.status_code == 200 and got.json()["name"] == "commissioned"
    assert api.client.delete("/queries/commissioned", headers=api.as_participant(maker)).status_code == 204
    assert api.client.get("/queries/commissioned", headers=api.as_participant(maker)).status_code == 404


def test_a_query_the_service_cannot_answer_is_refused_at_creation_naming_each_parameter(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    response = name_query(
        api,
        parties["manufacturer"],
        "bad",
        {"EQ_bizStep": "shipping", "MATCH_nothing": "x", "GE_eventTime": "soon"},
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "epcisException:QueryParameterException"
    assert sorted(problem["parameters"]) == ["GE_eventTime", "MATCH_nothing"]
    token = name_query(api, parties["manufacturer"], "paged", {"nextPageToken": "abc"})
    assert token.status_code == 400 and token.json()["parameters"] == ["nextPageToken"]
    for unaddressable in ("no/slash", ".", ".."):  # a URL path resolves . and .. away
        bad_name = name_query(api, parties["manufacturer"], unaddressable, {"eventType": "ObjectEvent"})
        assert bad_name.status_code == 422, unaddressable
    listed = api.client.get("/queries", headers=api.as_participant(parties["manufacturer"]))
    assert listed.json() == []


def test_names_are_per_owner_and_another_owners_query_is_invisible(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker, carrier = parties["manufacturer"], parties["carrier"]
    assert name_query(api, maker, "mine", {"eventType": "ObjectEvent"}).status_code == 201
    again = name_query(api, maker, "mine", {"eventType": "AggregationEvent"})
    assert (
        again.status_code == 409 and again.json()["type"] == "epcisException:ResourceAlreadyExistsException"
    )
    # The carrier neither sees the manufacturer's query nor learns its name is taken.
    for method, path in (
        ("GET", "/queries/mine"),
        ("GET", "/queries/mine/events"),
        ("DELETE", "/queries/mine"),
        ("GET", "/queries/mine/subscriptions"),
    ):
        assert api.client.request(method, path, headers=api.as_participant(carrier)).status_code == 404
    assert api.client.get("/queries", headers=api.as_participant(carrier)).json() == []
    assert name_query(api, carrier, "mine", {"eventType": "AggregationEvent"}).status_code == 201
    assert api.client.get("/queries/mine", headers=api.as_participant(maker)).json()["query"] == {
        "eventType": "ObjectEvent"
    }


def test_a_named_querys_events_are_those_events_answers_page_by_page(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = parties["manufacturer"]
    api.capture(maker, [commissioning(epc, at(i)) for i, epc in enumerate((A, B, C))])
    api.capture(maker, [object_event([A], biz_step="inspecting", at=at(5))])
    api.settle()
    assert name_query(api, maker, "made", {"EQ_bizStep": "commissioning", "perPage": 10}).status_code == 201
    direct = api.client.get(
        "/events", params={"EQ_bizStep": "commissioning"}, headers=api.as_participant(maker)
    )

    pages, url = [], "/queries/made/events?perPage=2"
    while url:
        response = api.client.get(url, headers=api.as_participant(maker))
        assert response.status_code == 200, response.text
        assert response.json()["epcisBody"]["queryResults"]["queryName"] == "made"
        pages.append(times_of(response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]))
        link = response.headers.get("Link")
        url = link.split(">")[0].lstrip("<") if link else ""
        assert "EQ_bizStep" not in url  # the stored query stays stored; the link carries paging only
    assert pages == [
        times_of(direct.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"])[:2],
        [at(2)],
    ]
    refused = api.client.get(
        "/queries/made/events?EQ_bizStep=shipping&stream=true", headers=api.as_participant(maker)
    )
    assert refused.status_code == 400 and sorted(refused.json()["parameters"]) == ["EQ_bizStep", "stream"]


# ---------------------------------------------------------------- subscriptions


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"dest": "URL"}, "body.stream"),
        ({"dest": "URL", "stream": False}, "body.stream"),
        ({"dest": "URL", "stream": True, "schedule": {"minute": "5"}}, "body.stream"),
        ({"dest": "URL", "schedule": {"minute": "61"}}, "body.schedule.minute"),
        ({"dest": "URL", "schedule": {"hour": "every"}}, "body.schedule.hour"),
        ({"dest": "URL", "schedule": {"dayOfMonth": "31", "month": "2"}}, "body.schedule"),
        ({"dest": "URL", "schedule": {"weekday": "1"}}, "body.schedule.weekday"),
        ({"dest": "ftp://127.0.0.1/hook", "stream": True}, "body.dest"),
        ({"dest": "http://user:pw@127.0.0.1/hook", "stream": True}, "body.dest"),
        (
            {"dest": "URL", "stream": True, "initialRecordTime": "2026-10-01T08:00:00"},
            "body.initialRecordTime",
        ),
    ],
)
def test_a_subscription_the_service_cannot_honour_is_a_400_naming_the_field(
    hooks: Api, parties: dict[str, dict[str, Any]], body: dict[str, Any], location: str
) -> None:
    maker = parties["manufacturer"]
    name_query(hooks, maker, "all", {"eventType": "ObjectEvent"})
    body = {**body, "dest": body["dest"].replace("URL", "http://127.0.0.1:9/hook")}
    response = subscribe(hooks, maker, "all", **body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["location"] == location
    assert hooks.client.get("/queries/all/subscriptions", headers=hooks.as_participant(maker)).json() == []


def test_private_destinations_are_refused_unless_allowed_and_read_keys_may_not_subscribe(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker = parties["manufacturer"]
    name_query(api, maker, "all", {"eventType": "ObjectEvent"})
    for dest in (
        "http://127.0.0.1:8000/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        "http://10.0.0.8/",
    ):
        response = subscribe(api, maker, "all", dest=dest, stream=True)
        assert response.status_code == 400 and "non-public" in response.json()["detail"], dest
    key = api.client.post(
        f"/participants/{maker['id']}/keys",
        json={"scope": "read", "label": "dashboard"},
        headers=api.as_participant(maker),
    )
    assert key.status_code == 201, key.text
    reader = {"Authorization": f"Bearer {key.json()['apiKey']}"}
    response = api.client.post(
        "/queries/all/subscriptions",
        json={"dest": "https://example.com/hook", "stream": True},
        headers=reader,
    )
    assert response.status_code == 403


def test_a_stream_delivers_each_matching_event_once_after_it_is_confirmed_signed(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    maker = parties["manufacturer"]
    name_query(hooks, maker, "made", {"EQ_bizStep": "commissioning"})
    created = subscribe(hooks, maker, "made", dest=receiver.url, signatureToken=TOKEN, stream=True)
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert "signatureToken" not in subscription and subscription["stream"] is True
    assert created.headers["Location"] == f"/queries/made/subscriptions/{subscription['subscriptionID']}"

    hooks.capture(maker, [commissioning(A, at(1)), object_event([A], biz_step="inspecting", at=at(2))])
    deliver_round(hooks)
    assert receiver.received == []  # captured, not yet confirmed on chain
    hooks.settle()
    deliver_until(hooks, receiver, lambda got: len(got) >= 1)
    hooks.capture(maker, [commissioning(B, at(3)), commissioning(C, at(4))])
    hooks.settle()
    deliver_until(hooks, receiver, lambda got: len(got) >= 2)
    for _ in range(3):
        deliver_round(hooks)

    assert len(receiver.received) == 2
    delivered = [event for post in receiver.received for event in post.events]
    assert times_of(delivered) == [at(1), at(3), at(4)]
    for post in receiver.received:
        assert post.signed_with(TOKEN)
        assert not post.signed_with(TOKEN + "x")
        results = post.document["epcisBody"]["queryResults"]
        assert (results["queryName"], results["subscriptionID"]) == ("made", subscription["subscriptionID"])
        assert post.document["type"] == "EPCISQueryDocument"
        assert post.document["tracechain:deliveryID"] == post.delivery_id
    assert len({post.delivery_id for post in receiver.received}) == 2
    shown = hooks.client.get(
        f"/queries/made/subscriptions/{subscription['subscriptionID']}", headers=hooks.as_participant(maker)
    ).json()
    assert "lastNotifiedAt" in shown


def test_initial_record_time_delivers_events_confirmed_before_subscribing(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    maker = parties["manufacturer"]
    hooks.capture(maker, [commissioning(A, at(1))])
    hooks.settle()
    name_query(hooks, maker, "made", {"EQ_bizStep": "commissioning"})
    later = subscribe(hooks, maker, "made", dest=receiver.url, stream=True)
    since = subscribe(
        hooks,
        maker,
        "made",
        dest=receiver.url + "?since",
        stream=True,
        initialRecordTime="2000-01-01T00:00:00Z",
    )
    assert later.status_code == since.status_code == 201
    deliver_until(hooks, receiver, lambda got: len(got) >= 1)
    for _ in range(3):
        deliver_round(hooks)
    assert [post.path for post in receiver.received] == ["/hook?since"]
    assert times_of(receiver.received[0].events) == [at(1)]


def test_a_schedule_delivers_what_was_recorded_since_its_last_run(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    maker = parties["manufacturer"]
    name_query(hooks, maker, "made", {"EQ_bizStep": "commissioning"})
    every_second = {"second": "[0-59]"}
    created = subscribe(
        hooks,
        maker,
        "made",
        dest=receiver.url,
        signatureToken=TOKEN,
        schedule=every_second,
        reportIfEmpty=True,
    )
    assert created.status_code == 201, created.text
    assert created.json()["schedule"] == every_second and "stream" not in created.json()

    deliver_until(hooks, receiver, lambda got: len(got) >= 1)  # nothing yet: reportIfEmpty
    assert receiver.received[0].events == [] and receiver.received[0].signed_with(TOKEN)
    hooks.capture(maker, [commissioning(A, at(1)), commissioning(B, at(2))])
    hooks.settle()
    deliver_until(hooks, receiver, lambda got: any(post.events for post in got))
    with_events = [post for post in receiver.received if post.events]
    assert times_of(with_events[0].events) == [at(1), at(2)]
    deliver_until(
        hooks,
        receiver,
        lambda got: got[-1] is not with_events[0] and len(got) > receiver.received.index(with_events[0]) + 1,
    )
    assert receiver.received[-1].events == []  # the next run: nothing new since


def test_a_schedule_without_report_if_empty_stays_silent_when_nothing_matched(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    maker = parties["manufacturer"]
    name_query(hooks, maker, "made", {"EQ_bizStep": "commissioning"})
    subscribe(hooks, maker, "made", dest=receiver.url, schedule={"second": "[0-59]"})
    hooks.capture(maker, [object_event([A], biz_step="inspecting", at=at(1))])
    hooks.settle()
    deadline = time.monotonic() + 2.5  # two runs at least
    while time.monotonic() < deadline:
        deliver_round(hooks)
        time.sleep(0.05)
    assert receiver.received == []


def test_a_failed_delivery_is_retried_with_growing_back_off_under_the_same_id_and_bytes(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    maker = parties["manufacturer"]
    name_query(hooks, maker, "made", {"EQ_bizStep": "commissioning"})
    subscription = subscribe(
        hooks, maker, "made", dest=receiver.url, signatureToken=TOKEN, stream=True
    ).json()
    receiver.answers = [500, 503]
    hooks.capture(maker, [commissioning(A, at(1))])
    hooks.settle()
    deliver_until(hooks, receiver, lambda got: len(got) >= 1)
    [failing] = delivery_rows(hooks, subscription["subscriptionID"])
    assert (failing.status, failing.attempts, failing.last_error) == (DeliveryStatus.PENDING, 1, "HTTP 500")
    assert failing.last_attempt_at is not None
    assert failing.next_attempt_at - failing.last_attempt_at == timedelta(seconds=RETRY_BASE_S)
    deliver_until(hooks, receiver, lambda got: len(got) >= 2)
    [again] = delivery_rows(hooks, subscription["subscriptionID"])
    assert (again.attempts, again.last_error) == (2, "HTTP 503")
    assert again.last_attempt_at is not None and again.last_attempt_at >= failing.next_attempt_at
    assert again.next_attempt_at - again.last_attempt_at == timedelta(seconds=2 * RETRY_BASE_S)
    deliver_until(hooks, receiver, lambda got: len(got) >= 3)
    first, second, third = receiver.received
    assert first.delivery_id == second.delivery_id == third.delivery_id
    assert first.body == second.body == third.body and third.signed_with(TOKEN)
    [done] = delivery_rows(hooks, subscription["subscriptionID"])
    assert (done.status, done.attempts, done.last_error) == (DeliveryStatus.DELIVERED, 3, None)


def test_an_unreachable_receiver_is_retried_and_new_events_wait_behind_its_delivery(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    maker = parties["manufacturer"]
    name_query(hooks, maker, "made", {"EQ_bizStep": "commissioning"})
    dead = "http://127.0.0.1:9/hook"  # the discard port: nothing listens
    subscription = subscribe(hooks, maker, "made", dest=dead, stream=True).json()
    hooks.capture(maker, [commissioning(A, at(1))])
    hooks.settle()
    deliver_round(hooks)
    hooks.capture(maker, [commissioning(B, at(2))])
    hooks.settle()
    deliver_round(hooks)
    [waiting] = delivery_rows(
        hooks, subscription["subscriptionID"]
    )  # B waits in the feed, not a second delivery
    assert waiting.attempts >= 1 and waiting.last_error is not None and "Connect" in waiting.last_error
    assert waiting.event_count == 1


def test_a_subscriber_receives_only_what_it_may_see(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    """The carrier subscribes to every ObjectEvent: it gets the events of the goods shipped to it,
    never those of goods it had no part in."""
    maker, carrier = parties["manufacturer"], parties["carrier"]
    name_query(hooks, carrier, "everything", {"eventType": "ObjectEvent"})
    subscribe(hooks, carrier, "everything", dest=receiver.url, stream=True)
    name_query(hooks, carrier, "hidden", {"MATCH_epc": B})
    subscribe(hooks, carrier, "hidden", dest=receiver.url + "?hidden", stream=True)
    hooks.capture(
        maker,
        [
            commissioning(A, at(1)),
            commissioning(B, at(2)),
            object_event([A], biz_step="shipping", at=at(3), destination=carrier["partyId"]),
        ],
    )
    hooks.settle()
    deliver_until(hooks, receiver, lambda got: len(got) >= 1)
    for _ in range(3):
        deliver_round(hooks)
    assert [post.path for post in receiver.received] == ["/hook"]
    assert times_of(receiver.received[0].events) == [at(1), at(3)]


def test_deleting_a_subscription_or_its_query_stops_delivery(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    maker = parties["manufacturer"]
    headers = hooks.as_participant(maker)
    name_query(hooks, maker, "made", {"EQ_bizStep": "commissioning"})
    name_query(hooks, maker, "also", {"EQ_bizStep": "commissioning"})
    dropped = subscribe(hooks, maker, "made", dest=receiver.url + "?dropped", stream=True).json()
    subscribe(hooks, maker, "also", dest=receiver.url + "?also", stream=True)
    kept = subscribe(hooks, maker, "made", dest=receiver.url + "?kept", stream=True).json()
    receiver.answers = [500, 500, 500]  # the first POSTs fail: their deliveries stay pending
    hooks.capture(maker, [commissioning(A, at(1))])
    hooks.settle()
    deliver_until(hooks, receiver, lambda got: len(got) >= 3)
    path = f"/queries/made/subscriptions/{dropped['subscriptionID']}"
    assert hooks.client.delete(path, headers=headers).status_code == 204
    assert hooks.client.get(path, headers=headers).status_code == 404
    assert delivery_rows(hooks, dropped["subscriptionID"]) == []
    assert hooks.client.delete("/queries/also", headers=headers).status_code == 204
    hooks.capture(maker, [commissioning(B, at(2))])
    hooks.settle()
    deliver_until(hooks, receiver, lambda got: sum(post.path == "/hook?kept" for post in got) >= 3)
    for _ in range(3):
        deliver_round(hooks)
    after_failures = [post.path for post in receiver.received[3:]]
    assert set(after_failures) == {"/hook?kept"}
    listed = hooks.client.get("/queries/made/subscriptions", headers=headers).json()
    assert [s["subscriptionID"] for s in listed] == [kept["subscriptionID"]]


def test_read_keys_may_not_unsubscribe_nor_drop_a_query_with_subscriptions(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    maker = parties["manufacturer"]
    name_query(hooks, maker, "made", {"EQ_bizStep": "commissioning"})
    created = subscribe(hooks, maker, "made", dest=receiver.url, stream=True).json()
    key = hooks.client.post(
        f"/participants/{maker['id']}/keys",
        json={"scope": "read", "label": "dashboard"},
        headers=hooks.as_participant(maker),
    ).json()["apiKey"]
    reader = {"Authorization": f"Bearer {key}"}
    path = f"/queries/made/subscriptions/{created['subscriptionID']}"
    assert hooks.client.delete(path, headers=reader).status_code == 403
    assert hooks.client.delete("/queries/made", headers=reader).status_code == 403
    assert hooks.client.get(path, headers=reader).status_code == 200  # reading it is fine


# ---------------------------------------------------------------- WebSocket subscriptions


def test_a_websocket_stream_sends_newly_confirmed_events_the_caller_may_see(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    maker, carrier = parties["manufacturer"], parties["carrier"]
    name_query(api, carrier, "everything", {"eventType": "ObjectEvent"})
    api.capture(maker, [commissioning(C, at(0))])  # confirmed before the socket opens: not sent
    api.settle()
    url = "/queries/everything/events?stream=true"
    with api.client.websocket_connect(url, headers=api.as_participant(carrier)) as socket:
        api.capture(
            maker,
            [
                commissioning(A, at(1)),
                commissioning(B, at(2)),
                object_event([A, C], biz_step="shipping", at=at(3), destination=carrier["partyId"]),
            ],
        )
        api.settle()
        documents = [socket.receive_json()]
        while sum(len(d["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) for d in documents) < 2:
            documents.append(socket.receive_json())
    events = [e for d in documents for e in d["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]
    assert times_of(events) == [at(1), at(3)]  # never B's commissioning, which the carrier may not see
    assert {d["epcisBody"]["queryResults"]["queryName"] for d in documents} == {"everything"}


@pytest.mark.parametrize(
    "query_string",
    ["", "stream=false", "stream=true&minute=5", "stream=true&EQ_bizStep=shipping", "minute=99"],
)
def test_a_websocket_subscription_it_cannot_honour_is_refused_at_the_handshake(
    api: Api, parties: dict[str, dict[str, Any]], query_string: str
) -> None:
    maker = parties["manufacturer"]
    name_query(api, maker, "made", {"EQ_bizStep": "commissioning"})
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        api.client.websocket_connect(
            f"/queries/made/events?{query_string}", headers=api.as_participant(maker)
        ),
    ):
        pass
    assert refused.value.code == 1008
    with pytest.raises(WebSocketDisconnect), api.client.websocket_connect("/queries/made/events?stream=true"):
        pass  # nobody's query without a key


def test_an_event_with_nothing_to_record_on_chain_is_delivered_as_captured(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    """Naming neither product nor place, it is final as captured: it waits for no confirmation."""
    maker = parties["manufacturer"]
    name_query(hooks, maker, "inspected", {"EQ_bizStep": "inspecting"})
    subscribe(hooks, maker, "inspected", dest=receiver.url, stream=True)
    response = hooks.capture(maker, [object_event([], biz_step="inspecting", at=at(1))])
    assert response.status_code == 202, response.text
    deliver_until(hooks, receiver, lambda got: len(got) >= 1)  # no settle: nothing goes on chain
    assert times_of(receiver.received[0].events) == [at(1)]


def test_a_subscription_that_cannot_be_built_holds_back_no_other(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    """A stored query this version no longer reads (here: edited in the database) fails alone."""
    maker = parties["manufacturer"]
    for name in ("broken", "fine"):
        name_query(hooks, maker, name, {"EQ_bizStep": "commissioning"})
        assert subscribe(hooks, maker, name, dest=receiver.url, stream=True).status_code == 201
    with hooks.services.sessions() as session, session.begin():
        session.execute(
            update(NamedQuery).where(NamedQuery.name == "broken").values(params=[["EQ_noSuchField", "x"]])
        )
    hooks.capture(maker, [commissioning(A, at(1))])
    hooks.settle()
    deliver_until(hooks, receiver, lambda got: len(got) >= 1)
    for _ in range(3):
        deliver_round(hooks)
    (post,) = receiver.received
    assert post.document["epcisBody"]["queryResults"]["queryName"] == "fine"
    assert times_of(post.events) == [at(1)]


def test_a_receiver_that_holds_its_posts_open_holds_back_no_other_subscriber(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    """Subscriptions whose receiver holds every POST open until the timeout (a tarpit, or one that
    hangs): their deliveries, due first, hang while another subscription's goes out, and the
    deliverer's rounds go on without waiting for them, nor sending them again meanwhile."""
    maker = parties["manufacturer"]
    hooks.services.deliverer.client.timeout = httpx.Timeout(120)  # the tarpit holds for as long as it likes
    with running_receiver() as tarpit:
        tarpit.held = threading.Event()
        for n in range(3):
            name_query(hooks, maker, f"held{n}", {})
            assert subscribe(hooks, maker, f"held{n}", dest=tarpit.url, stream=True).status_code == 201
        hooks.capture(maker, [commissioning(A, at(1))])
        hooks.settle()
        hooks.services.deliverer.build_streamed()  # the tarpit's deliveries: due before the other's
        name_query(hooks, maker, "fine", {"EQ_bizStep": "commissioning"})
        assert subscribe(hooks, maker, "fine", dest=receiver.url, stream=True).status_code == 201
        hooks.capture(maker, [commissioning(B, at(2))])
        hooks.settle()
        round_ = threading.Thread(target=hooks.services.deliverer.run_once)
        round_.start()
        try:
            (post,) = receiver.wait_for(lambda got: len(got) >= 1)
            assert times_of(post.events) == [at(2)]
            assert len(tarpit.wait_for(lambda got: len(got) >= 3)) == 3  # all three still hanging
            round_.join(timeout=60)
            assert not round_.is_alive()  # the round is over; the tarpit's POSTs hang on
            hooks.services.deliverer.run_once()
            assert len(tarpit.received) == 3  # nothing sent again while it is being sent
        finally:
            tarpit.held.set()
            round_.join(timeout=60)
        tarpit.wait_for(lambda got: len(got) == 3)


def test_one_owners_subscriptions_to_a_tarpit_leave_sending_threads_for_everyone_else(
    hooks: Api, parties: dict[str, dict[str, Any]], receiver: Receiver
) -> None:
    """A participant with as many tarpit subscriptions as the deliverer has sending threads holds
    only its share of them (a quarter): another owner's delivery still goes out."""
    maker = parties["manufacturer"]
    deliverer = hooks.services.deliverer
    deliverer.sends_at_once = 4  # its share: one thread
    deliverer.client.timeout = httpx.Timeout(120)
    with running_receiver() as tarpit:
        tarpit.held = threading.Event()
        for n in range(4):
            name_query(hooks, maker, f"held{n}", {})
            assert subscribe(hooks, maker, f"held{n}", dest=tarpit.url, stream=True).status_code == 201
        hooks.capture(maker, [commissioning(A, at(1))])
        hooks.settle()
        deliverer.build_streamed()  # the tarpit's four deliveries: due first
        named = hooks.admin("POST", "/queries", json={"name": "all", "query": {}})
        assert named.status_code == 201, named.text
        subscribed = hooks.admin(
            "POST", "/queries/all/subscriptions", json={"dest": receiver.url, "stream": True}
        )
        assert subscribed.status_code == 201, subscribed.text
        hooks.capture(maker, [commissioning(B, at(2))])
        hooks.settle()
        try:
            deliverer.run_once()
            (post,) = receiver.wait_for(lambda got: len(got) >= 1)
            assert times_of(post.events) == [at(2)]
            assert len(tarpit.received) == 1  # the owner's one thread; its other three wait
        finally:
            tarpit.held.set()


def test_a_websocket_closes_once_its_key_is_revoked(api: Api, parties: dict[str, dict[str, Any]]) -> None:
    maker = parties["manufacturer"]
    key = api.client.post(
        f"/participants/{maker['id']}/keys", json={"scope": "read"}, headers=api.as_participant(maker)
    ).json()
    reader = {"Authorization": f"Bearer {key['apiKey']}"}
    name_query(api, maker, "made", {"EQ_bizStep": "commissioning"})
    with api.client.websocket_connect("/queries/made/events?stream=true", headers=reader) as socket:
        api.capture(maker, [commissioning(A, at(1))])
        api.settle()
        assert times_of(socket.receive_json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) == [
            at(1)
        ]
        revoked = api.client.delete(
            f"/participants/{maker['id']}/keys/{key['id']}", headers=api.as_participant(maker)
        )
        assert revoked.status_code == 204
        api.capture(maker, [commissioning(B, at(2))])
        api.settle()
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1008
