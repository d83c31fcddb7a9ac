"""`tracechain.subscriptions` without a service: schedules, destinations, signatures, back-off."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from tracechain.subscriptions import (
    Deliverer,
    InvalidSubscription,
    Schedule,
    check_destination,
    signature_of,
)

MONDAY = datetime(2026, 11, 2, 12, 0, 0, tzinfo=UTC)  # 2 November 2026 is a Monday


@pytest.mark.parametrize(
    ("fields", "after", "expected"),
    [
        ({"hour": "1", "minute": "5"}, MONDAY, datetime(2026, 11, 3, 1, 5, tzinfo=UTC)),
        (
            {"hour": "1", "minute": "5"},
            datetime(2026, 11, 3, 1, 4, 59, tzinfo=UTC),
            datetime(2026, 11, 3, 1, 5, tzinfo=UTC),
        ),
        (
            {"hour": "1", "minute": "5"},
            datetime(2026, 11, 3, 1, 5, tzinfo=UTC),
            datetime(2026, 11, 4, 1, 5, tzinfo=UTC),
        ),
        ({"second": "0/30"}, MONDAY, MONDAY + timedelta(seconds=30)),
        ({"minute": "[10-12],40"}, MONDAY, MONDAY.replace(minute=10)),
        ({"dayOfWeek": "7", "hour": "0", "minute": "0"}, MONDAY, datetime(2026, 11, 8, tzinfo=UTC)),
        ({"dayOfMonth": "1", "month": "1", "hour": 0, "minute": 0}, MONDAY, datetime(2027, 1, 1, tzinfo=UTC)),
        (
            {"dayOfMonth": "29", "month": "2", "hour": "0", "minute": "0"},
            MONDAY,
            datetime(2028, 2, 29, tzinfo=UTC),
        ),
        ({}, MONDAY, MONDAY + timedelta(minutes=1)),  # an omitted second is second 0: once a minute
    ],
)
def test_a_schedule_fires_next_at_the_first_matching_second_after(
    fields: dict[str, object], after: datetime, expected: datetime
) -> None:
    assert Schedule.parse(fields).next_after(after) == expected


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"minute": "60"}, "schedule.minute"),
        ({"hour": "[5-2]"}, "schedule.hour"),
        ({"dayOfWeek": "0"}, "schedule.dayOfWeek"),
        ({"second": "*/0"}, "schedule.second"),
        ({"month": True}, "schedule.month"),
        ({"minute": "1,,2"}, "schedule.minute"),
        ({"year": "2027"}, "schedule.year"),
        ({"dayOfMonth": "31", "month": "4"}, "schedule"),
    ],
)
def test_a_schedule_it_cannot_keep_is_refused_naming_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSubscription) as refused:
        Schedule.parse(fields)
    assert refused.value.field == field


@pytest.mark.parametrize(
    "dest",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo, client 10.0.0.1
    ],
)
def test_non_public_destinations_are_refused_unless_allowed(dest: str) -> None:
    with pytest.raises(InvalidSubscription, match="non-public"):
        check_destination(dest, allow_private=False)
    check_destination(dest, allow_private=True)


@pytest.mark.parametrize(
    "dest",
    [
        "ftp://example.com/x",
        "example.com/hook",
        "https://",
        "https://u:p@example.com/",
        "https://example.com/#x",
    ],
)
def test_what_is_not_an_http_url_without_credentials_is_refused_even_when_private_is_allowed(
    dest: str,
) -> None:
    with pytest.raises(InvalidSubscription) as refused:
        check_destination(dest, allow_private=True)
    assert refused.value.field == "dest"


def test_a_public_address_is_accepted() -> None:
    check_destination("https://93.184.216.34/hook", allow_private=False)


def test_the_signature_is_hmac_sha256_of_the_exact_body_under_the_token() -> None:
    body, token = b'{"type":"EPCISQueryDocument"}', "13df38d8275b13f05704629e5f1cf3d45d6132d5"
    expected = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    assert signature_of(body, token) == f"sha256={expected}"
    assert signature_of(body + b" ", token) != signature_of(body, token)


def test_back_off_doubles_from_its_base_up_to_its_cap() -> None:
    deliverer = Deliverer(
        None,  # type: ignore[arg-type]  # back-off reads no database
        lambda *_: {},
        allow_private=False,
        timeout_s=1,
        retry_base_s=2,
        retry_max_s=60,
    )
    try:
        waits = [deliverer.backoff(attempts).total_seconds() for attempts in range(1, 8)]
        # a receiver down for years: the attempts go on, the wait stays at the cap
        years = deliverer.backoff(100_000).total_seconds()
    finally:
        deliverer.close()
    assert waits == [2, 4, 8, 16, 32, 60, 60]
    assert years == 60
