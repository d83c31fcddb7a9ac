"""Reads keep answering while a crowd of captures waits for the capture lock: a waiting capture
holds a thread of its own, never one of the server's that a read needs."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from tracechain.epcis.builders import object_event

from ..api.conftest import Api, document
from .conftest import over_http

SERVER_THREADS = 40
"""The threads the server runs blocking routes on (AnyIO's default capacity)."""
CROWD = SERVER_THREADS + 20

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def commissioning(serial: int) -> dict[str, Any]:
    epc = f"urn:epc:id:sgtin:6901234.067890.{7000 + serial}"
    return object_event([epc], biz_step="commissioning", action="ADD", disposition="active", at=T0)


async def _post_crowd(url: str, headers: dict[str, str]) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        posts = [
            http.post("/capture", json=document([commissioning(n)]), headers=headers) for n in range(CROWD)
        ]
        return [response.status_code for response in await asyncio.gather(*posts)]


def test_reads_answer_while_more_captures_wait_for_the_lock_than_the_server_has_threads(
    api: Api, parties: dict[str, dict[str, Any]]
) -> None:
    headers = api.as_participant(parties["manufacturer"])
    services = api.services
    answers: list[int] = []
    with over_http(api.client.app) as url:
        services.capture_lock.acquire()  # another capture holds it: every capture of the crowd waits
        try:
            crowd = threading.Thread(target=lambda: answers.extend(asyncio.run(_post_crowd(url, headers))))
            crowd.start()
            deadline = time.monotonic() + 60
            while services.captures.waiting < SERVER_THREADS:
                assert time.monotonic() < deadline, f"{services.captures.waiting} captures came to wait"
                time.sleep(0.05)
            read = httpx.get(f"{url}/capture", headers=headers, timeout=10)
            assert read.status_code == 200, read.text
            assert read.json() == []  # none of the crowd is captured yet
        finally:
            services.capture_lock.release()
        crowd.join(timeout=120)
    assert answers == [202] * CROWD
