"""`tracechain demo`: one product's journey from Shenzhen to a shop in the Netherlands, through the
same HTTP API a user would call, ending with its verified history and the consumer page's address.

The demo serves the real app in this process (chain and database from the settings, the background
submitter and indexer running), creates the four parties through the admin API and captures each
step as an EPCIS 2.0 document. Everything is kept: `tracechain serve` afterwards shows the product,
and a second run adds another one. The parties' API keys are kept in the data folder, as a
participant would keep its own.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tracechain.api.app import create_app
from tracechain.api.services import DEMO_ADMIN_TOKEN
from tracechain.config import Settings
from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.identifiers import digital_link
from tracechain.epcis.mapping import describe
from tracechain.errors import TracechainError

SHENZHEN = timezone(timedelta(hours=8))
SERVE_PORT = 8000  # where `tracechain serve` listens by default: the printed address works there
JOB_TIMEOUT = 120.0


class DemoFailed(TracechainError):
    """A step of the demo was refused or did not complete."""


@dataclass(frozen=True)
class DemoParty:
    name: str
    roles: list[str]
    party_id: str  # PGLN: how EPCIS documents name it
    location: str  # SGLN of where it acts
    country: str


MANUFACTURER = DemoParty(
    "Shenzhen Bright Electronics",
    ["manufacturer"],
    "urn:epc:id:pgln:6901234.00000",
    "urn:epc:id:sgln:6901234.00001.0",
    "CN",
)
CARRIER = DemoParty(
    "Blue Water Ocean Lines",
    ["carrier"],
    "urn:epc:id:pgln:5790001.00000",
    "urn:epc:id:sgln:5790001.00001.0",
    "DK",
)
CUSTOMS = DemoParty(
    "EU Customs Rotterdam",
    ["customs"],
    "urn:epc:id:pgln:8712345.00009",
    "urn:epc:id:sgln:8712345.00009.0",
    "NL",
)
RETAILER = DemoParty(
    "Amsterdam Home Retail",
    ["retailer"],
    "urn:epc:id:pgln:8712345.00002",
    "urn:epc:id:sgln:8712345.00002.0",
    "NL",
)
PARTIES = (MANUFACTURER, CARRIER, CUSTOMS, RETAILER)


def journey(item: str, pallet: str, start: datetime) -> list[tuple[DemoParty, list[dict[str, Any]]]]:
    """Who captures which EPCIS events, in order."""
    day = timedelta(days=1)
    departed, arrived = start + 2 * day, start + 30 * day
    return [
        (
            MANUFACTURER,
            [
                object_event(
                    [item],
                    biz_step="commissioning",
                    action="ADD",
                    disposition="active",
                    at=start,
                    location=MANUFACTURER.location,
                ),
                aggregation_event(
                    pallet, [item], at=start + timedelta(hours=3), location=MANUFACTURER.location
                ),
            ],
        ),
        (
            MANUFACTURER,
            [
                object_event(
                    [pallet],
                    biz_step="shipping",
                    disposition="in_transit",
                    at=start + day,
                    location=MANUFACTURER.location,
                    destination=CARRIER.party_id,
                )
            ],
        ),
        (
            CARRIER,
            [
                object_event(
                    [pallet],
                    biz_step="receiving",
                    disposition="in_progress",
                    at=departed,
                    location=CARRIER.location,
                )
            ],
        ),
        (
            CUSTOMS,
            [
                object_event(
                    [pallet],
                    biz_step="inspecting",
                    disposition="conformant",
                    at=arrived,
                    location=CUSTOMS.location,
                )
            ],
        ),
        (
            CARRIER,
            [
                object_event(
                    [pallet],
                    biz_step="shipping",
                    disposition="in_transit",
                    at=arrived + day,
                    location=CUSTOMS.location,
                    destination=RETAILER.party_id,
                )
            ],
        ),
        (
            RETAILER,
            [
                object_event(
                    [pallet],
                    biz_step="receiving",
                    disposition="in_progress",
                    at=arrived + 2 * day,
                    location=RETAILER.location,
                )
            ],
        ),
        (
            RETAILER,
            [
                object_event(
                    [item],
                    biz_step="retail_selling",
                    disposition="retail_sold",
                    at=arrived + 5 * day,
                    location=RETAILER.location,
                )
            ],
        ),
    ]


def run_demo(settings: Settings, console: Console) -> bool:
    """Record the journey through the API and print its verified history; True when verified."""
    if settings.admin_token is None:
        settings = settings.model_copy(update={"demo_mode": True})
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else DEMO_ADMIN_TOKEN
    run = int(time.time())
    item = f"urn:epc:id:sgtin:6901234.067890.{run}"
    pallet = f"urn:epc:id:sscc:6901234.{run % 10**10:010d}"
    start = datetime.fromtimestamp(run, SHENZHEN).replace(microsecond=0) - timedelta(days=40)

    with _served(settings) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        console.print(f"tracechain is serving the demo at {base_url} (chain: {settings.chain.value})")
        keys = _participants(client, admin_token, settings)
        steps = journey(item, pallet, start)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("capturing the journey", total=len(steps) + 1)
            jobs = []
            for party, events in steps:
                jobs.append((keys[party.name], _capture(client, keys[party.name], events)))
                progress.advance(task)
            progress.update(task, description="waiting for the chain")
            for key, location in jobs:
                _wait_for(client, key, location)
            progress.advance(task)
        trace = client.get(f"/trace/{item}").json()
        participants = client.get("/participants", headers=_bearer(admin_token)).json()

    _print_history(console, trace, {p["address"]: p["name"] for p in participants})
    link = digital_link(item, f"http://127.0.0.1:{SERVE_PORT}")
    serve = "make serve" if settings.demo_mode else "tracechain serve"
    console.print(f"Consumer page: run [bold]{serve}[/] and open {link}")
    return bool(trace["verdict"] == "verified")


@contextmanager
def _served(settings: Settings) -> Iterator[str]:
    """The real app over HTTP on a local port, its workers running, for as long as the block runs."""
    port = SERVE_PORT if _free(SERVE_PORT) else _any_free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="tracechain-demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive():
            raise DemoFailed("the service did not start; see the messages above")
        if time.monotonic() > deadline:
            raise DemoFailed("the service did not start within 60 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _any_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _participants(client: httpx.Client, admin_token: str, settings: Settings) -> dict[str, str]:
    """Each party's API key: the one kept from an earlier run if the service still knows it."""
    path = settings.data_dir / "demo-api-keys.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    keys = {}
    for party in PARTIES:
        key = kept.get(party.name)
        if key and client.get("/participants/me", headers=_bearer(key)).status_code == 200:
            keys[party.name] = key
            continue
        response = client.post(
            "/participants",
            headers=_bearer(admin_token),
            json={
                "name": party.name,
                "roles": party.roles,
                "partyId": party.party_id,
                "country": party.country,
            },
        )
        if response.status_code != 201:
            raise DemoFailed(f"creating {party.name} failed: {response.text}")
        keys[party.name] = response.json()["apiKey"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keys, indent=2) + "\n")
    path.chmod(0o600)
    return keys


def _capture(client: httpx.Client, key: str, events: list[dict[str, Any]]) -> str:
    document = {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {"eventList": events},
    }
    response = client.post("/capture", json=document, headers=_bearer(key))
    if response.status_code != 202:
        raise DemoFailed(f"capture refused: {response.text}")
    return str(response.headers["Location"])


def _wait_for(client: httpx.Client, key: str, location: str) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        job = client.get(location, headers=_bearer(key)).json()
        if job["success"]:
            return
        if job["status"] == "failed":
            raise DemoFailed(f"capture job {location} failed: {job['errors']}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"capture job {location} still {job['status']} after {JOB_TIMEOUT:.0f} s")
        time.sleep(0.1)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _print_history(console: Console, trace: dict[str, Any], names: dict[str, str]) -> None:
    table = Table(title=f"History of {trace['epc']}")
    for column in ("when (UTC)", "what", "unit", "by", "block", "verified"):
        table.add_column(column)
    for entry in trace["events"]:
        event, checks = entry["event"], entry["verification"]
        when = datetime.fromisoformat(event["eventTime"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        blocks = sorted({r["block"] for r in checks["records"] if r["block"] is not None})
        verdict = "[green]yes[/]" if checks["status"] == "verified" else f"[red]{checks['status']}[/]"
        unit = "item" if entry["relation"] == "self" else "pallet"
        by = names.get(entry["signer"], entry["signer"])
        table.add_row(when, describe(event), unit, by, ", ".join(map(str, blocks)), verdict)
    console.print(table)
    colour = "green" if trace["verdict"] == "verified" else "red"
    console.print(f"{len(trace['events'])} events; verdict: [bold {colour}]{trace['verdict']}[/]")
    for reason in trace["reasons"]:
        console.print(f"[red]{reason}[/]")
