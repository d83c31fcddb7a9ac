"""Webhook subscriptions to named queries (EPCIS REST `/queries/{name}/subscriptions`): cron-like
schedules, destinations, signatures, and the deliverer that empties the outbox.

Never lost, never doubled. The indexer feeds each event, once, into `event_confirmations` in the
transaction that confirms its last record. The deliverer reads the feed after each subscription's
cursor, puts the matching events (as the subscriber may see them) into one delivery of the outbox
and moves the cursor past them in one transaction: an event is in exactly one delivery of a
subscription. A delivery is POSTed until its receiver answers 2xx, after exponential back-off on a
failure, non-2xx or timeout. A process killed while a POST is in flight sends it again after the
restart: the same bytes under the same delivery id (the `Idempotency-Key` header, and
`tracechain:deliveryID` inside the signed body), so "exactly once" means each event in exactly one
distinct delivery id, and a receiver dedupes on that id. Duplicates cannot be ruled out by the
sender: the receiver may have acted on a POST whose answer never arrived.

A subscription delivers what its owner may see at the time its delivery is built (`visibility`),
with the query's filters matching only what it is shown. For tracechain an event is "recorded" once
it is confirmed on chain: a stream delivers events as they are confirmed, a scheduled run those
confirmed since the run before (an event with nothing to record on chain is final as captured).

Known limits: deliveries are sent one at a time by one thread, so a receiver that answers slowly
(up to TRACECHAIN_WEBHOOK_TIMEOUT_S per read) delays the others; a destination's name is checked
against non-public addresses before each attempt but resolved again by the HTTP client (a name
that rebinds in between is not caught); a delivery, once built, is sent as built even if its
owner's rights change before it is taken.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tracechain.epcis.query import EventQuery, parse_event_query
from tracechain.errors import TracechainError
from tracechain.store import queries
from tracechain.store.db import transaction
from tracechain.store.models import (
    Delivery,
    DeliveryStatus,
    Event,
    NamedQuery,
    Participant,
    Subscription,
)
from tracechain.supervision import one_line
from tracechain.visibility import ADMIN, Viewer

log = logging.getLogger(__name__)

ROUND_WAIT_S = 2.0
"""How long a round of sending waits for its deliveries; those still being sent go on without it."""
OWNERS_SHARE = 0.25
"""The most of the deliverer's sending threads one owner's subscriptions may hold at once."""
_T = TypeVar("_T")

ADMIN_OWNER = "admin"
"""`NamedQuery.owner` of the admin's queries (a participant's are its id)."""
FEED_CHUNK = 500
"""Feed rows read at once; at most as many events go in one delivery."""
MAX_SUBSCRIPTIONS_PER_OWNER = 50
"""Each subscription is a worker's round of matching and a POST per delivery: a participant may
not make the service flood an endpoint of its choice with hundreds of copies."""
SIGNATURE_SCHEME = "sha256"
DELIVERY_ID_HEADER = "Idempotency-Key"


class InvalidSubscription(TracechainError, ValueError):
    """A subscription the service cannot honour: which field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class QueryNameTaken(TracechainError):
    """The owner has a named query of that name already."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"you already have a query named {name!r}; delete it first or pick another name")


class TooManySubscriptions(TracechainError):
    """The owner's named queries have as many subscriptions as one owner may."""

    def __init__(self, owned: int, allowed: int) -> None:
        self.owned, self.allowed = owned, allowed
        super().__init__(f"you have {owned}; delete one first (at most {allowed})")


# ---------------------------------------------------------------- schedules

_FIELDS = {  # name: (lowest, highest)
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "dayOfMonth": (1, 31),
    "month": (1, 12),
    "dayOfWeek": (1, 7),  # 1 is Monday, 7 Sunday
}
_HORIZON_DAYS = 366 * 5
"""A schedule that fires not once in five years (31 February) is refused."""


@dataclass(frozen=True)
class Schedule:
    """A QuerySchedule (EPCIS 2.0 §8.2.5.3, cron-like): each field a list of numbers and
    `[low-high]` ranges, separated by commas. An omitted field matches every value, but an omitted
    `second` means second 0: a schedule fires at most once a minute unless it names seconds."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    @classmethod
    def parse(cls, given: Mapping[str, Any]) -> Schedule:
        unknown = sorted(set(given) - set(_FIELDS))
        if unknown:
            raise InvalidSubscription(
                f"schedule.{unknown[0]}", f"not a schedule field ({', '.join(_FIELDS)})"
            )
        values = {}
        for name, (low, high) in _FIELDS.items():
            if name in given and given[name] is not None:
                values[name] = _schedule_values(name, given[name], low, high)
            else:
                values[name] = frozenset({0}) if name == "second" else frozenset(range(low, high + 1))
        schedule = cls(
            values["second"],
            values["minute"],
            values["hour"],
            values["dayOfMonth"],
            values["month"],
            values["dayOfWeek"],
        )
        if schedule.next_after(datetime.now(UTC)) is None:
            raise InvalidSubscription("schedule", "never fires (no such day)")
        return schedule

    def next_after(self, moment: datetime) -> datetime | None:
        """The first time after `moment` (UTC, to the second) the schedule fires."""
        moment = moment.astimezone(UTC).replace(microsecond=0)
        day = moment.date()
        for _ in range(_HORIZON_DAYS):
            if (
                day.month in self.months
                and day.day in self.days_of_month
                and day.isoweekday() in self.days_of_week
            ):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        for second in sorted(self.seconds):
                            at = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
                            if at > moment:
                                return at
            day += timedelta(days=1)
        return None


def _schedule_values(name: str, value: Any, low: int, high: int) -> frozenset[int]:
    """Numbers and `[low-high]` ranges separated by commas (the binding's pattern), and the cron
    forms its examples use: `*`, and `start/step` (`"0/30"`: seconds 0 and 30)."""
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    found: set[int] = set()
    for element in text.split(","):
        element = element.strip()
        base, _, step_text = element.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                first, last = low, high
            elif base.startswith("[") and base.endswith("]"):
                first, last = (int(part) for part in base[1:-1].split("-"))
            else:
                first = int(base)
                last = high if step_text else first
        except ValueError:
            raise InvalidSubscription(
                f"schedule.{name}",
                f"{value!r} is not numbers and [low-high] ranges separated by commas",
            ) from None
        if not low <= first <= last <= high or step < 1:
            raise InvalidSubscription(f"schedule.{name}", f"{element} is outside {low} to {high}")
        found.update(range(first, last + 1, step))
    return frozenset(found)


# ---------------------------------------------------------------- destinations and signatures


def check_destination(dest: str, allow_private: bool) -> None:
    """Refuse what is not an http(s) URL, and, unless allowed, one whose host is or resolves to a
    non-public address (SSRF: a webhook must not reach into the service's own network)."""
    try:
        parts = urlsplit(dest)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError as exc:
        raise InvalidSubscription("dest", f"not a URL: {exc}") from None
    if parts.scheme not in {"http", "https"} or not host:
        raise InvalidSubscription("dest", "must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidSubscription(
            "dest", "must not carry credentials: the signature authenticates the sender"
        )
    if parts.fragment:
        raise InvalidSubscription("dest", "must not have a #fragment")
    if not allow_private:
        for address in _addresses_of(host):
            if not all(a.is_global and not a.is_multicast for a in _reached_through(address)):
                raise InvalidSubscription(
                    "dest",
                    f"{host} is a non-public address ({address}); webhooks go to public hosts only "
                    "(TRACECHAIN_WEBHOOK_ALLOW_PRIVATE)",
                )


_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


def _reached_through(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The address and every IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64): Python
    counts `64:ff9b::7f00:1` as global, yet on a NAT64 network it reaches 127.0.0.1."""
    reached: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        reached += [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
        reached += list(address.teredo or ())
        if address in _NAT64:
            reached.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return reached


def _addresses_of(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise InvalidSubscription("dest", f"{host} does not resolve: {exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]


def signature_of(body: bytes, token: str) -> str:
    """The GS1-Signature header: HMAC-SHA256 over the exact body bytes, keyed with the subscriber's
    signatureToken, as `sha256=<lowercase hex>` (the binding leaves the scheme to the service)."""
    digest = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


# ---------------------------------------------------------------- owners and queries


def viewer_of_owner(session: Session, owner: str) -> Viewer | None:
    """Whose view a named query answers with; None if its owner is gone."""
    if owner == ADMIN_OWNER:
        return ADMIN
    participant = session.get(Participant, owner)
    if participant is None:
        return None
    return Viewer(participant.id, participant.address, participant.party_id)


def stored_query(named: NamedQuery) -> EventQuery:
    return parse_event_query([(name, value) for name, value in named.params])


def name_query(
    session: Session, owner: str, name: str, params: list[tuple[str, str]], query: dict[str, Any]
) -> NamedQuery:
    """Store the owner's query (its parameters, and the query object as given) under `name`.
    Raises QueryNameTaken if the owner has a query of that name, one stored at the same moment
    included."""
    if queries.named_query(session, owner, name) is not None:
        raise QueryNameTaken(name)
    named = NamedQuery(
        id=str(uuid.uuid4()),
        owner=owner,
        name=name,
        params=[list(pair) for pair in params],
        query=query,
        created_at=datetime.now(UTC),
    )
    if not queries.add_named_query(session, named):
        raise QueryNameTaken(name)
    return named


def new_subscription(
    session: Session,
    named: NamedQuery,
    dest: str,
    *,
    signature_token: str | None,
    stream: bool | None,
    schedule: dict[str, Any] | None,
    report_if_empty: bool,
    initial_record_time: datetime | None,
    allow_private: bool,
) -> Subscription:
    """A subscription to the named query: a stream (`stream` true) or a `schedule`, not both.
    Without `initial_record_time` it delivers the events confirmed from now on; with it, the feed
    from its start, leaving out events recorded before that time. Raises InvalidSubscription, or
    TooManySubscriptions when the query's owner has MAX_SUBSCRIPTIONS_PER_OWNER already."""
    now = datetime.now(UTC)
    if stream is True and schedule is not None:
        raise InvalidSubscription("stream", "stream and schedule are mutually exclusive")
    if stream is not True and schedule is None:
        raise InvalidSubscription("stream", "set stream to true, or give a schedule")
    parsed = Schedule.parse(schedule) if schedule is not None else None
    if initial_record_time is not None and initial_record_time.tzinfo is None:
        raise InvalidSubscription("initialRecordTime", "needs a time zone offset (Z or +hh:mm)")
    check_destination(dest, allow_private)
    owned = sum(
        len(queries.subscriptions_of(session, q.id))
        for q in queries.named_queries(session, named.owner, None, 10_000)
    )
    if owned >= MAX_SUBSCRIPTIONS_PER_OWNER:
        raise TooManySubscriptions(owned, MAX_SUBSCRIPTIONS_PER_OWNER)
    cursor = 0 if initial_record_time is not None else queries.last_confirmation_seq(session)
    subscription = Subscription(
        id=str(uuid.uuid4()),
        query_id=named.id,
        dest=dest,
        signature_token=signature_token,
        stream=parsed is None,
        schedule=schedule,
        report_if_empty=report_if_empty,
        initial_record_time=initial_record_time,
        cursor=cursor,
        next_run_at=parsed.next_after(now) if parsed is not None else None,
        created_at=now,
    )
    session.add(subscription)
    session.flush()
    return subscription


# ---------------------------------------------------------------- the deliverer

DocumentOf = Callable[[Session, Viewer, list[Event]], dict[str, Any]]


class Deliverer:
    """Builds deliveries from the feed and sends the outbox: a worker (`supervision.Supervisor`)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        document_of: DocumentOf,
        *,
        allow_private: bool,
        timeout_s: float,
        retry_base_s: float,
        retry_max_s: float,
        sends_at_once: int = 20,
    ) -> None:
        self.sessions = sessions
        self.document_of = document_of
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.sends_at_once = sends_at_once
        self._said: set[str] = set()
        # Redirects are not followed: one could lead from a public host to a private one.
        self.client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=sends_at_once, max_keepalive_connections=sends_at_once),
        )
        self._senders = ThreadPoolExecutor(sends_at_once, thread_name_prefix="deliver")
        self._in_flight: dict[int, str] = {}
        """Deliveries being sent, some perhaps still from an earlier round (`send_due`), and whose
        subscriptions they are for."""
        self._flight_guard = threading.Lock()

    def run_once(self) -> int:
        """One round: build the deliveries due, then send those due. Returns how much it did."""
        return self.build_streamed() + self.build_scheduled() + self.send_due()

    def backoff(self, attempts: int) -> timedelta:
        # The exponent stops growing long after the cap is reached: a receiver down for months
        # must not overflow the float and stop every delivery.
        return timedelta(
            seconds=min(self.retry_base_s * 2 ** min(max(attempts - 1, 0), 40), self.retry_max_s)
        )

    # -------------------------------------------------------------- building

    def build_streamed(self) -> int:
        with self.sessions() as session:
            waiting = [s.id for s in queries.streaming_subscriptions_to_feed(session, limit=100)]
        return sum(self._isolated(f"subscription {i}", self._build_streamed, i) for i in waiting)

    def _build_streamed(self, subscription_id: str) -> int:
        built = 0
        with transaction(self.sessions) as session:
            subscription = session.get(Subscription, subscription_id, with_for_update=True)
            if subscription is None:  # deleted meanwhile
                return 0
            for _ in range(20):  # a bounded round: a long unmatched feed is read over several
                chunk = queries.confirmations_after(session, subscription.cursor, FEED_CHUNK)
                if not chunk:
                    break
                delivered = self._build(session, subscription, [row for _, row in chunk], False)
                subscription.cursor = chunk[-1][0]
                built += delivered
                if delivered or len(chunk) < FEED_CHUNK:
                    break  # one delivery waiting per subscription
        return built

    def build_scheduled(self) -> int:
        now = datetime.now(UTC)
        with self.sessions() as session:
            due = [s.id for s in queries.scheduled_subscriptions_due(session, now, limit=100)]
        return sum(
            self._isolated(f"subscription {i}", lambda i: self._build_scheduled(i, now), i) for i in due
        )

    def _build_scheduled(self, subscription_id: str, now: datetime) -> bool:
        with transaction(self.sessions) as session:
            subscription = session.get(Subscription, subscription_id, with_for_update=True)
            if subscription is None or subscription.schedule is None:
                return False
            any_built = False
            while chunk := queries.confirmations_after(session, subscription.cursor, FEED_CHUNK):
                any_built |= self._build(session, subscription, [row for _, row in chunk], False)
                subscription.cursor = chunk[-1][0]
            if not any_built and subscription.report_if_empty:
                any_built = self._build(session, subscription, [], True)
            subscription.next_run_at = Schedule.parse(subscription.schedule).next_after(now)
            return any_built

    def _build(self, session: Session, subscription: Subscription, row_ids: list[int], empty: bool) -> bool:
        """A delivery of the events among `row_ids` that match and the owner may see; none if no
        event does, unless `empty` (reportIfEmpty). Whether one was built."""
        named = session.get(NamedQuery, subscription.query_id)
        viewer = viewer_of_owner(session, named.owner) if named is not None else None
        if named is None or viewer is None:
            return False
        matched = [
            event
            for event in queries.matching_events(session, viewer, stored_query(named), among=row_ids)
            if subscription.initial_record_time is None
            or event.record_time >= subscription.initial_record_time
        ]
        if not matched and not empty:
            return False
        delivery_id = str(uuid.uuid4())
        document = self.document_of(session, viewer, matched)
        document["tracechain:deliveryID"] = delivery_id
        results = document["epcisBody"]["queryResults"]
        results["queryName"], results["subscriptionID"] = named.name, subscription.id
        now = datetime.now(UTC)
        session.add(
            Delivery(
                id=delivery_id,
                subscription_id=subscription.id,
                body=json.dumps(document, separators=(",", ":")).encode(),
                event_count=len(matched),
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        return True

    # -------------------------------------------------------------- sending

    def send_due(self) -> int:
        """Each subscription's oldest delivery due, side by side, and the round waits for them at
        most ROUND_WAIT_S: a receiver that holds its POSTs open until the timeout (a tarpit, or one
        that hangs) delays only its own subscriptions' deliveries, not every other subscriber's,
        nor the next round. A delivery still being sent is left alone until it is done (it is its
        subscription's oldest, so that subscription sends nothing else meanwhile, and its
        deliveries reach its receiver in order). No owner's subscriptions hold more than
        OWNERS_SHARE of the sending threads: one with many subscriptions to a tarpit must leave
        threads for everyone else. Returns how many were sent within the round."""
        with self._flight_guard:
            busy = dict(self._in_flight)
        if len(busy) >= self.sends_at_once:
            return 0
        # Enough candidates that one owner's (a delivery due per subscription at most) cannot
        # crowd out everyone else's.
        candidates = len(busy) + MAX_SUBSCRIPTIONS_PER_OWNER + self.sends_at_once
        with self.sessions() as session:
            due = [
                d.seq
                for d in queries.deliveries_due(session, datetime.now(UTC), candidates)
                if d.seq not in busy
            ]
            owners = queries.owners_of_deliveries(session, due)
        per_owner = Counter(busy.values())
        share = max(1, int(self.sends_at_once * OWNERS_SHARE))
        sending: dict[int, str] = {}
        for seq in due:
            if len(busy) + len(sending) >= self.sends_at_once:
                break
            owner = owners.get(seq, "")
            if per_owner[owner] < share:
                per_owner[owner] += 1
                sending[seq] = owner
        with self._flight_guard:
            self._in_flight.update(sending)
        futures = [self._senders.submit(self._send_in_flight, seq) for seq in sending]
        done, _ = wait(futures, timeout=ROUND_WAIT_S)
        return sum(future.result() for future in done)

    def _send_in_flight(self, seq: int) -> int:
        try:
            return self._isolated(f"delivery {seq}", self._send, seq)
        except DBAPIError as exc:
            # The round that sent it may have returned: said here, once; the delivery is due again.
            self._say(f"delivery {seq}: the database failed: {type(exc).__name__}")
            raise
        finally:
            with self._flight_guard:
                self._in_flight.pop(seq, None)

    def _isolated(self, what: str, act: Callable[[_T], bool | int], item: _T) -> int:
        """`act(item)`, and 0 if it fails for a reason of its own: one subscription or delivery
        that cannot be built or sent must not hold back every other. The database failing is no
        such reason: that propagates, for the supervisor to say once and retry."""
        try:
            return int(act(item))
        except DBAPIError:
            raise
        except Exception as exc:
            self._say(f"{what}: {type(exc).__name__}: {exc}")
            return 0

    def _say(self, said: str) -> None:
        if said not in self._said:  # once, not a line a round
            self._said.add(said)
            log.warning("%s (left for now; the others go on)", said)

    def _send(self, seq: int) -> bool:
        # The attempt is counted and the next one scheduled before the POST goes out: a process
        # killed mid-POST resends after the back-off, not in a loop of crashes.
        now = datetime.now(UTC)
        with transaction(self.sessions) as session:
            delivery = session.get(Delivery, seq, with_for_update=True)
            if (
                delivery is None
                or delivery.status != DeliveryStatus.PENDING
                or delivery.next_attempt_at > now
            ):
                return False
            subscription = session.get(Subscription, delivery.subscription_id)
            if subscription is None:
                return False
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.next_attempt_at = now + self.backoff(delivery.attempts)
            attempt = (delivery.id, delivery.body, subscription.dest, subscription.signature_token)
        delivery_id, body, dest, token = attempt
        error = self._post(delivery_id, body, dest, token)
        with transaction(self.sessions) as session:
            delivery = session.get(Delivery, seq)
            if delivery is None:  # its subscription was deleted meanwhile
                return True
            if error is None:
                delivery.status, delivery.delivered_at, delivery.last_error = (
                    DeliveryStatus.DELIVERED,
                    datetime.now(UTC),
                    None,
                )
                subscription = session.get(Subscription, delivery.subscription_id)
                if subscription is not None:
                    subscription.last_notified_at = delivery.delivered_at
            else:
                delivery.last_error = error
                log.info(
                    "delivery %s to %s failed (attempt %d): %s", delivery_id, dest, delivery.attempts, error
                )
        return True

    def _post(self, delivery_id: str, body: bytes, dest: str, token: str | None) -> str | None:
        """None if `dest` took the delivery (2xx), else why not."""
        headers = {"Content-Type": "application/json", DELIVERY_ID_HEADER: delivery_id}
        if token:
            headers["GS1-Signature"] = signature_of(body, token)
        try:
            # Checked again at each attempt: a name may resolve elsewhere now than when subscribed.
            check_destination(dest, self.allow_private)
            # Streamed and closed unread: only the status counts, and a receiver must not make
            # the service read a body of its choosing.
            with self.client.stream("POST", dest, content=body, headers=headers) as response:
                status = response.status_code
        except InvalidSubscription as exc:
            return str(exc)
        except httpx.HTTPError as exc:
            return one_line(exc)
        return None if 200 <= status < 300 else f"HTTP {status}"

    def close(self) -> None:
        self._senders.shutdown(wait=True, cancel_futures=True)
        self.client.close()
