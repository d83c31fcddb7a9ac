"""`make bench`: tracechain's ingest speed, gas and trace latency, measured in one run.

Everything runs in this process tree against a real anvil node (started here on a free port) and a
PostgreSQL database made for the run and dropped after it:

1. naive: one `record([one signed event])` transaction per event, each estimated, sent and waited
   for, as a public dApp records events;
2. ingest: the service runs as a deployment runs it, `tracechain serve` in its own process, and
   is driven over real HTTP (httpx) as participants drive it: EPCIS documents of commissioning
   events POSTed to /capture by several concurrent clients, timed from the first request until
   every capture job has succeeded, i.e. every event was validated, hashed, checked, signed, stored,
   sent, mined and confirmed in the read model. Three ways: batched mode with the workers inside
   `serve`; batched mode with them in a `tracechain work` process beside it; Merkle mode the same;
   then as many participants load it: 200 concurrent clients of 20 manufacturers (asyncio tasks,
   a light client), documents of 50 events, every answer other than 202 counted as an error
   (503s are retried after Retry-After, as clients do) and so is every failed job;
3. gas per event, read from receipts: alone, in a batch of 100 (commissionings, observations, a
   realistic journey of 100 products), and in Merkle mode;
4. trace latency: GET /trace/{epc} of an item with 50 events across 3 levels of packing
   (item -> case -> pallet -> container), with the read model filled by synthetic products up to
   1k, 100k and 1M stored events;
5. the demo's wall time (`tracechain demo`, a fresh data folder and its own anvil);
6. a big document: 50,000 events, ~110 MB of EPCIS 2.0 JSON generated to a file, POSTed to
   `tracechain serve` and timed until its job succeeded, with the service's peak memory
   (`--big-document-baseline` also captures it read whole, as before it was streamed).

It prints progress, a table, and last one JSON line with the figures. `--quick` is a small run for
`make test`, so the benchmark cannot rot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from hexbytes import HexBytes
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select, text
from stack import (
    ADMIN_TOKEN,
    answers,
    bearer,
    create_participant,
    document,
    free_port,
    service_environment,
    temporary_database,
    tracechain_command,
)
from stack import service_settings as stack_settings

from tracechain.api.app import create_app
from tracechain.chain.connect import Chain, rpc_chain
from tracechain.chain.deployments import ensure_anchorer
from tracechain.chain.eip712 import EventSigner
from tracechain.chain.merkle import MerkleTree, leaf_of
from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode, find_anvil_binary
from tracechain.chain.registry import Role, TraceRegistry
from tracechain.chain.trace_event import (
    OBSERVATION_KINDS,
    Kind,
    SignedEvent,
    TraceEvent,
    chain_of,
    next_head,
    subject_id,
)
from tracechain.config import Settings
from tracechain.demo.big_document import factory_events, write_document
from tracechain.epcis.builders import aggregation_event, object_event, sensor_event
from tracechain.services import Services
from tracechain.store import synthetic
from tracechain.store.db import make_engine, session_factory
from tracechain.store.models import Batch, Participant

SHENZHEN = timezone(timedelta(hours=8))
JOB_TIMEOUT = 600.0
FILL_CHUNK = 100_000
SET_INDEXES_ASIDE_FROM = 500_000
"""Events to add above which a fill drops the tables' indexes and makes them again after it."""
MERKLE_BATCH = 1_000
"""Events per anchor in Merkle mode (TRACECHAIN_BATCH_SIZE): one anchor costs the same whatever it holds."""

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


@dataclass(frozen=True)
class Plan:
    naive_events: int
    documents: int
    events_per_document: int
    clients: int
    trace_sizes: tuple[int, ...]
    trace_requests: int
    many: ManyClients
    cold_sizes: tuple[int, ...] = ()
    """Stored events at which products nobody traced before are traced (`cold_traces`)."""
    cold_products: int = 0
    """Distinct products traced once each at each of `cold_sizes`."""


@dataclass(frozen=True)
class ManyClients:
    """The ingest run under many concurrent clients: `clients` spread over `participants`, each
    client posting `documents // clients` documents of `events_per_document` events."""

    clients: int
    participants: int
    documents: int
    events_per_document: int
    serves: int = 1
    """`tracechain serve` processes on the one PostgreSQL database, the clients dealt among them."""


FULL = Plan(
    200, 200, 100, 4, (1_000, 100_000, 1_000_000), 200, ManyClients(200, 20, 400, 50),
    (1_000, 1_000_000, 10_000_000), 40,
)  # fmt: skip
QUICK = Plan(30, 10, 100, 4, (1_000,), 50, ManyClients(20, 4, 20, 20), (1_000,), 20)


@dataclass
class Results:
    naive_events_per_s: float | None = None
    batched_events_per_s: float | None = None
    merkle_events_per_s: float | None = None
    gas_single: int | None = None
    gas_per_event_batched: int | None = None
    gas_per_event_merkle: float | None = None
    gas_per_event_journey: int | None = None
    gas_per_event_observation: int | None = None
    trace_p50_ms: dict[int, float] = field(default_factory=dict)
    trace_p95_ms: dict[int, float] = field(default_factory=dict)
    trace_cold_ms: float | None = None
    trace_cold_p50_ms: dict[int, float] = field(default_factory=dict)
    trace_cold_p95_ms: dict[int, float] = field(default_factory=dict)
    trace_cold_stored: dict[int, int] = field(default_factory=dict)
    """The events stored when each cold size was measured (the smallest holds at least the
    products captured for it)."""
    demo_s: float | None = None
    many_clients: ManyClientsRun | None = None
    big_documents: list[BigDocumentRun] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        speedup = (
            self.batched_events_per_s / self.naive_events_per_s
            if self.batched_events_per_s and self.naive_events_per_s
            else None
        )
        return {
            "naive_events_per_s": _round(self.naive_events_per_s),
            "batched_events_per_s": _round(self.batched_events_per_s),
            "merkle_events_per_s": _round(self.merkle_events_per_s),
            "speedup_vs_naive": _round(speedup),
            "gas_single": self.gas_single,
            "gas_per_event_batched": self.gas_per_event_batched,
            "gas_per_event_merkle": self.gas_per_event_merkle,
            "gas_per_event_journey": self.gas_per_event_journey,
            "gas_per_event_observation": self.gas_per_event_observation,
            "trace_p95_ms_1k": _round(self.trace_p95_ms.get(1_000)),
            "trace_p95_ms_100k": _round(self.trace_p95_ms.get(100_000)),
            "trace_p95_ms_1m": _round(self.trace_p95_ms.get(1_000_000)),
            "trace_cold_p95_ms_1k": _round(self.trace_cold_p95_ms.get(1_000)),
            "trace_cold_p95_ms_1m": _round(self.trace_cold_p95_ms.get(1_000_000)),
            "trace_cold_p95_ms_10m": _round(self.trace_cold_p95_ms.get(10_000_000)),
            "demo_s": _round(self.demo_s),
            **many_clients_figures(self.many_clients),
            **big_document_figures(self.big_documents),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


_started = time.monotonic()


def progress(message: str) -> None:
    console.print(f"[dim]{time.monotonic() - _started:7.1f} s[/]  {message}", soft_wrap=True)


# ---------------------------------------------------------------- the service over HTTP


def service_settings(node: AnvilNode, database_url: str, data_dir: Path, mode: str | None) -> Settings:
    if mode is None:
        return stack_settings(node, database_url, data_dir)
    if mode == "merkle":
        return stack_settings(node, database_url, data_dir, recording_mode=mode, batch_size=MERKLE_BATCH)
    return stack_settings(node, database_url, data_dir, recording_mode=mode)


@contextmanager
def service_processes(
    settings: Settings, split: bool, serves: int = 1
) -> Iterator[tuple[list[str], dict[str, list[int]]]]:
    """`tracechain serve` on a free port as a deployment runs it (`serves` of them, on ports of
    their own, sharing the database), and with `split`, its workers in a `tracechain work` process
    beside it (TRACECHAIN_RUN_WORKERS=false). Yields the serve processes' base URLs and the
    process ids by name."""
    environment = service_environment(settings, run_workers=not split)
    ports = [free_port() for _ in range(serves)]
    base_urls = [f"http://127.0.0.1:{port}" for port in ports]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for number, (port, base_url) in enumerate(zip(ports, base_urls, strict=True)):
            # Only the first runs the workers (unless split): one process per database may.
            serving = environment if number == 0 else service_environment(settings, run_workers=False)
            command = tracechain_command("serve", "--port", str(port), "--log-level", "warning")
            processes.append(subprocess.Popen(command, env=serving, stdout=subprocess.DEVNULL))
            deadline = time.monotonic() + 60
            while not answers(base_url):  # the first deploys before the others and work start
                if processes[-1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tracechain serve did not start (exit code {processes[-1].poll()})")
                time.sleep(0.1)
        pids = {"serve": [p.pid for p in processes]}
        if split:
            work = subprocess.Popen(tracechain_command("work"), env=environment, stdout=subprocess.DEVNULL)
            processes.append(work)
            pids["work"] = [processes[-1].pid]
        yield base_urls, pids
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU time each of these processes used so far (Linux /proc; gone ones left out)."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
        used[pid] = ticks / os.sysconf("SC_CLK_TCK")
    return used


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two `cpu_seconds` by the processes alive at the second (all of it
    for those started in between, such as PostgreSQL backends of connections opened meanwhile)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def postgres_pids(engine: Engine) -> list[int]:
    """The PostgreSQL backends connected to the engine's database (the service's connections)."""
    with engine.connect() as connection:
        query = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [int(pid) for pid in connection.scalars(query)]


@contextmanager
def served(settings: Settings, chain: Chain) -> Iterator[tuple[str, Services]]:
    """The real app under uvicorn on a free port, its submitter and indexer running."""
    app = create_app(settings, chain=chain)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="bench-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.state.services
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def post_capture(client: httpx.Client, key: str, body: bytes) -> str:
    response = client.post(
        "/capture", content=body, headers={**bearer(key), "Content-Type": "application/json"}
    )
    if response.status_code != 202:
        raise RuntimeError(f"capture refused ({response.status_code}): {response.text[:500]}")
    return str(response.headers["Location"])


def wait_for_jobs(client: httpx.Client, key: str, locations: list[str], timeout: float = JOB_TIMEOUT) -> None:
    """Until every capture job has succeeded: all its records confirmed in the read model."""
    waiting = list(locations)
    deadline = time.monotonic() + timeout
    while waiting:
        job = client.get(waiting[0], headers=bearer(key)).json()
        if job["status"] == "failed":
            raise RuntimeError(f"capture job {waiting[0]} failed: {job['errors']}")
        if job["success"]:
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} capture jobs still pending after {timeout:.0f} s")
        time.sleep(0.05)


# ---------------------------------------------------------------- 1. naive


def naive(chain: Chain, count: int, results: Results) -> None:
    """One transaction per event, each estimated, signed, sent and waited for."""
    registry = TraceRegistry.deploy(chain)
    maker = EventSigner(os.urandom(32), registry.domain)
    registry.grant_role(Role.MANUFACTURER, maker.address)
    gas = []
    started = time.perf_counter()
    for serial in range(count):
        event = TraceEvent(
            subject=subject_id(f"urn:epc:id:sgtin:6901234.067892.n{serial}"),
            kind=Kind.COMMISSION,
            event_hash=subject_id(f"naive event {serial}"),
            time=1_767_225_600 + serial,
        )
        gas.append(registry.record([maker.sign(event)]).gas_used)
    elapsed = time.perf_counter() - started
    results.naive_events_per_s = count / elapsed
    results.gas_single = int(statistics.median(gas))
    progress(f"naive: {count} events in {elapsed:.1f} s = {count / elapsed:.1f} events/s")


def batched_gas(chain: Chain, results: Results, table_rows: list[tuple[str, str, str]]) -> None:
    """Gas per event of one record() of 100 commissionings, then 100 observations of them."""
    registry = TraceRegistry.deploy(chain)
    maker = EventSigner(os.urandom(32), registry.domain)
    registry.grant_role(Role.MANUFACTURER, maker.address)
    commissions = [
        TraceEvent(
            subject=subject_id(f"urn:epc:id:sgtin:6901234.067893.g{serial}"),
            kind=Kind.COMMISSION,
            event_hash=subject_id(f"gas event {serial}"),
            time=1_767_225_600,
        )
        for serial in range(100)
    ]
    signed: list[SignedEvent] = [maker.sign(event) for event in commissions]
    commission_gas = registry.record(signed).gas_used // 100

    def observations(round_: int, heads: list[bytes]) -> list[TraceEvent]:
        """An observation of each subject by the maker, on its own chain of the subject."""
        return [
            TraceEvent(
                subject=event.subject,
                kind=Kind.OBSERVE,
                event_hash=subject_id(f"observation {round_}.{index}"),
                time=1_767_225_601,
                prev_head=head,
            )
            for index, (event, head) in enumerate(zip(commissions, heads, strict=True))
        ]

    first = observations(1, [bytes(32)] * 100)  # each starts the maker's chain of its subject
    first_gas = registry.record([maker.sign(event) for event in first]).gas_used // 100
    again = observations(2, [next_head(event.prev_head, event.event_hash) for event in first])
    observe_gas = registry.record([maker.sign(event) for event in again]).gas_used // 100
    results.gas_per_event_batched = commission_gas
    results.gas_per_event_observation = observe_gas
    table_rows.append(("gas/event, batch of 100 commissionings", f"{commission_gas:,}", "≤ 10,000"))
    table_rows.append(("gas/event, batch of 100 observations", f"{observe_gas:,}", "≤ 10,000"))
    table_rows.append(("gas/event, batch of 100 first observations by a reporter", f"{first_gas:,}", ""))
    progress(
        f"gas per event in a batch of 100: commission {commission_gas:,}, observe {observe_gas:,} "
        f"({first_gas:,} for a reporter's first of a subject)"
    )


def merkle_gas(chain: Chain, results: Results, table_rows: list[tuple[str, str, str]]) -> None:
    """Gas per event of one anchor() of the root of 1,000 signed commissionings."""
    registry = TraceRegistry.deploy(chain)
    maker = EventSigner(os.urandom(32), registry.domain)
    registry.grant_role(Role.MANUFACTURER, maker.address)
    ensure_anchorer(registry)
    leaves = [
        leaf_of(
            registry.domain.separator,
            maker.sign(
                TraceEvent(
                    subject=subject_id(f"urn:epc:id:sgtin:6901234.067894.m{serial}"),
                    kind=Kind.COMMISSION,
                    event_hash=subject_id(f"merkle event {serial}"),
                    time=1_767_225_600,
                )
            ),
        )
        for serial in range(MERKLE_BATCH)
    ]
    gas = int(registry.anchor(MerkleTree.build(leaves).root, MERKLE_BATCH)["gasUsed"])
    results.gas_per_event_merkle = round(gas / MERKLE_BATCH, 1)
    per_event = f"{gas / MERKLE_BATCH:,.1f}"
    table_rows.append((f"gas/event, Merkle anchor of {MERKLE_BATCH:,}", per_event, "≤ 500"))
    progress(f"gas per event, one anchor of {MERKLE_BATCH:,}: {gas / MERKLE_BATCH:.1f}")


# ---------------------------------------------------------------- 3b. gas of a realistic journey

JOURNEY_PRODUCTS = 100
JOURNEY_CASES = 10
JOURNEY_SENSOR_READINGS = 24


class _JourneySigner:
    """Signs each party's events over the heads the ones before them left, as capture does."""

    def __init__(self) -> None:
        self.heads: dict[bytes, bytes] = {}
        self.serial = 0

    def sign(self, party: EventSigner, kind: Kind, subject: bytes, **fields: Any) -> SignedEvent:
        chain = chain_of(subject, kind, party.address)
        self.serial += 1
        event = TraceEvent(
            subject=subject,
            kind=kind,
            event_hash=subject_id(f"journey event {self.serial}"),
            time=1_767_225_600 + self.serial,
            prev_head=self.heads.get(chain, bytes(32)),
            **fields,
        )
        self.heads[chain] = next_head(event.prev_head, event.event_hash)
        return party.sign(event)


def _journey(chain: Chain) -> tuple[TraceRegistry, list[SignedEvent]]:
    """A new registry, its three parties, and the signed events of 100 products' journey in order.

    The maker commissions 100 items, packs them 10 to a case and the cases onto a pallet, ships the
    pallet to a carrier, who receives it, logs 24 temperature readings of it (observations with sensor
    data) and ships it to a shop; the shop receives it, scans every item onto the shelf (an
    observation each) and sells each: 438 events.
    """
    registry = TraceRegistry.deploy(chain)
    maker, carrier, shop = (EventSigner(os.urandom(32), registry.domain) for _ in range(3))
    registry.grant_role(Role.MANUFACTURER, maker.address)
    registry.grant_role(Role.CARRIER, carrier.address)
    registry.grant_role(Role.RETAILER, shop.address)
    journey = _JourneySigner()
    items = [subject_id(f"urn:epc:id:sgtin:6901234.067895.j{serial}") for serial in range(JOURNEY_PRODUCTS)]
    cases = [subject_id(f"urn:epc:id:sscc:6901234.{serial:010d}") for serial in range(JOURNEY_CASES)]
    pallet = subject_id("urn:epc:id:sscc:6901234.9999999999")
    per_case = JOURNEY_PRODUCTS // JOURNEY_CASES
    events = [journey.sign(maker, Kind.COMMISSION, item) for item in items]
    events += [
        journey.sign(maker, Kind.AGGREGATE, item, ref=cases[index // per_case])
        for index, item in enumerate(items)
    ]
    events += [journey.sign(maker, Kind.AGGREGATE, case, ref=pallet) for case in cases]
    events.append(journey.sign(maker, Kind.SHIP, pallet, counterpart=carrier.address))
    events.append(journey.sign(carrier, Kind.RECEIVE, pallet))
    events += [journey.sign(carrier, Kind.OBSERVE, pallet) for _ in range(JOURNEY_SENSOR_READINGS)]
    events.append(journey.sign(carrier, Kind.SHIP, pallet, counterpart=shop.address))
    events.append(journey.sign(shop, Kind.RECEIVE, pallet))
    events += [journey.sign(shop, Kind.OBSERVE, item) for item in items]
    events += [journey.sign(shop, Kind.SELL, item) for item in items]
    return registry, events


def _recorded_gas(registry: TraceRegistry, events: list[SignedEvent]) -> int:
    """Gas of record()ing `events` in order, in batches of 100 as the submitter sends them."""
    return sum(registry.record(events[start : start + 100]).gas_used for start in range(0, len(events), 100))


def journey_gas(chain: Chain, results: Results, table_rows: list[tuple[str, str, str]]) -> None:
    """Gas per event of 100 products' journey (`_journey`), every event through record() (the
    batched mode); and with the observations anchored in one Merkle root and the rest recorded, as
    the hybrid mode sends them (README, "Recording modes")."""
    registry, events = _journey(chain)
    per_event = _recorded_gas(registry, events) // len(events)
    results.gas_per_event_journey = per_event

    registry, events = _journey(chain)
    ensure_anchorer(registry)
    observations = [signed for signed in events if signed.event.kind in OBSERVATION_KINDS]
    facts = [signed for signed in events if signed.event.kind not in OBSERVATION_KINDS]
    root = MerkleTree.build([leaf_of(registry.domain.separator, signed) for signed in observations]).root
    anchored = int(registry.anchor(root, len(observations))["gasUsed"])
    hybrid = (_recorded_gas(registry, facts) + anchored) // len(events)

    label = f"journey of {JOURNEY_PRODUCTS} products ({len(events)} events)"
    table_rows.append((f"gas/event, {label}", f"{per_event:,}", "≤ 20,000"))
    table_rows.append((f"gas/event, {label}, observations anchored (hybrid mode)", f"{hybrid:,}", ""))
    progress(f"gas per event, a {label}: {per_event:,}; {hybrid:,} with its observations anchored")


# ---------------------------------------------------------------- 2. ingest through the API


@dataclass
class IngestRun:
    label: str
    events: int
    accepted_s: float
    confirmed_s: float
    gas_per_event: int
    transactions: int
    cpu_ms_per_event: dict[str, float]
    """CPU milliseconds per event of each process: serve, work (if split), anvil, postgres."""


def ingest(node: AnvilNode, chain: Chain, plan: Plan, mode: str | None, split: bool, run: str) -> IngestRun:
    """Commissioning documents POSTed by concurrent clients until all are confirmed."""
    with (
        temporary_database("tracechain_bench") as database_url,
        tempfile.TemporaryDirectory() as data_dir,
        service_processes(service_settings(node, database_url, Path(data_dir), mode), split) as (
            [base_url],
            pids,
        ),
        httpx.Client(base_url=base_url, timeout=120) as admin,
    ):
        engine = make_engine(database_url)
        sessions = session_factory(engine)
        label = f"{mode or 'batched'}, {'serve + work' if split else 'serve alone'}"
        key = create_participant(
            admin, "Shenzhen Bright Electronics", ["manufacturer"], "urn:epc:id:pgln:6901234.00000", "CN"
        )["apiKey"]
        bodies = [
            commissioning_document("6901234", f"{run}{d}", d, plan.events_per_document)
            for d in range(plan.documents + 1)
        ]
        # One document first, outside the timing: connections, caches and the role grant settle.
        wait_for_jobs(admin, key, [post_capture(admin, key, bodies[0])])
        bodies = bodies[1:]
        with sessions() as session:
            batches_before = {b.id for b in session.scalars(select(Batch))}

        locations: list[str] = []
        lock = threading.Lock()

        def client_loop(share: list[bytes]) -> None:
            with httpx.Client(base_url=base_url, timeout=120) as client:
                for body in share:
                    location = post_capture(client, key, body)
                    with lock:
                        locations.append(location)

        threads = [
            threading.Thread(target=client_loop, args=(bodies[i :: plan.clients],))
            for i in range(plan.clients)
        ]
        pids = {**pids, "anvil": [node.pid] if node.pid else [], "postgres": postgres_pids(engine)}
        cpu_before = {name: cpu_seconds(ids) for name, ids in pids.items()}
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        accepted = time.perf_counter() - started
        events = len(bodies) * plan.events_per_document
        if len(locations) != len(bodies):
            raise RuntimeError(f"{len(bodies) - len(locations)} documents were not accepted")
        progress(f"{label}: {events:,} events accepted in {accepted:.1f} s; waiting for the chain")
        wait_for_jobs(admin, key, locations)
        confirmed = time.perf_counter() - started
        pids["postgres"] = sorted({*pids["postgres"], *postgres_pids(engine)})
        cpu_ms = {
            name: cpu_used(cpu_before[name], cpu_seconds(ids)) * 1000 / events for name, ids in pids.items()
        }
        progress(f"{label}: CPU ms per event: " + ", ".join(f"{n} {ms:.2f}" for n, ms in cpu_ms.items()))

        with sessions() as session:
            batches = [b for b in session.scalars(select(Batch)) if b.id not in batches_before]
        engine.dispose()
        gas = sum(int(chain.w3.eth.get_transaction_receipt(HexBytes(b.tx_hash))["gasUsed"]) for b in batches)
        progress(
            f"{label}: {events:,} events confirmed in {confirmed:.1f} s = "
            f"{events / confirmed:,.0f} events/s, {len(batches)} transactions, {gas // events:,} gas/event"
        )
        return IngestRun(label, events, accepted, confirmed, gas // events, len(batches), cpu_ms)


# ---------------------------------------------------------------- 2b. ingest under many clients


@dataclass
class ManyClientsRun:
    clients: int
    participants: int
    events: int
    accepted_s: float
    confirmed_s: float
    errors: int
    """Answers to a POST other than 202 (503s included, though each is retried) and failed jobs."""
    refused: dict[int | str, int]
    """How many POSTs were answered with each status other than 202, or failed (by the error)."""
    failed_jobs: int
    cpu_ms_per_event: dict[str, float]

    @property
    def events_per_s(self) -> float:
        return self.events / self.confirmed_s


def many_clients_figures(run: ManyClientsRun | None) -> dict[str, Any]:
    """The JSON figures of a run with 200 clients (`--quick` runs fewer: its figures are left out)."""
    measured = run is not None and run.clients == 200
    return {
        "ingest_events_per_s_200_clients": _round(run.events_per_s) if run and measured else None,
        "ingest_errors_200_clients": run.errors if run and measured else None,
    }


def many_clients_documents(many: ManyClients, run: str) -> list[tuple[int, bytes]]:
    """Commissioning documents, each with the index of the manufacturer that captures it (each
    commissions products of its own company prefix, 69012nn): one per manufacturer to warm up, then
    `many.documents` to measure."""
    documents = []
    for d in range(many.participants + many.documents):  # one of each manufacturer to warm up first
        maker = d % many.participants
        documents.append(
            (maker, commissioning_document(f"69012{maker:02d}", f"{run}{d}", d, many.events_per_document))
        )
    return documents


def commissioning_document(company_prefix: str, serials: str, number: int, events: int) -> bytes:
    """The `number`th document of `events` commissioning events of the company's products, serials
    `<serials>x<e>`, at its factory, a second apart and after the documents before it."""
    start = datetime(2026, 1, 5, 8, tzinfo=SHENZHEN)
    return document(
        [
            object_event(
                [f"urn:epc:id:sgtin:{company_prefix}.067890.{serials}x{e}"],
                biz_step="commissioning",
                action="ADD",
                disposition="active",
                at=start + timedelta(seconds=number * events + e),
                location=f"urn:epc:id:sgln:{company_prefix}.00001.0",
            )
            for e in range(events)
        ]
    )


async def post_as_clients(
    base_urls: list[str], keys: list[str], documents: list[tuple[int, bytes]], clients: int
) -> tuple[list[str], dict[int | str, int]]:
    """`clients` concurrent clients (asyncio tasks of one thread, so that the client costs little of
    the cores the service runs on), each posting the documents dealt to it one after the other, as
    their manufacturer (with as many clients as documents per manufacturer or more, each client
    posts for one manufacturer only). A 503 or 409 is retried after Retry-After
    (jittered, as well-behaved clients retry); any other refusal is counted and not retried.
    A connection that fails is retried too. The clients are dealt among `base_urls` (several
    serve processes). Returns the accepted documents' job locations and the count of each refusal."""
    shares: list[list[tuple[int, bytes]]] = [documents[c::clients] for c in range(clients)]
    locations: list[str] = []
    refused: dict[int | str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=120, limits=limits))
            for url in base_urls
        ]

        async def client(number: int) -> None:
            http = servers[number % len(servers)]
            for maker, body in shares[number]:
                headers = {**bearer(keys[maker]), "Content-Type": "application/json"}
                while True:
                    try:
                        response = await http.post("/capture", content=body, headers=headers)
                    except httpx.TransportError as exc:  # sent again: a retry answers with its job
                        refused[type(exc).__name__] = refused.get(type(exc).__name__, 0) + 1
                        await asyncio.sleep(random.uniform(0.5, 1.5))
                        continue
                    if response.status_code == 202:
                        locations.append(str(response.headers["Location"]))
                        break
                    refused[response.status_code] = refused.get(response.status_code, 0) + 1
                    if response.status_code not in (503, 409):
                        break
                    retry_after = float(response.headers.get("Retry-After", "1"))
                    await asyncio.sleep(retry_after * random.uniform(0.5, 1.5))

        await asyncio.gather(*(client(number) for number in range(clients)))
    return locations, refused


def jobs_failed(client: httpx.Client, locations: list[str]) -> int:
    """Until every capture job has finished (the admin reads anyone's); how many failed."""
    waiting = list(locations)
    failed = 0
    deadline = time.monotonic() + JOB_TIMEOUT
    while waiting:
        job = client.get(waiting[0], headers=bearer(ADMIN_TOKEN)).json()
        if job["status"] == "failed" or job["success"]:
            failed += job["status"] == "failed"
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} capture jobs still pending after {JOB_TIMEOUT:.0f} s")
        time.sleep(0.05)
    return failed


def ingest_many_clients(node: AnvilNode, many: ManyClients, run: str, **settings: Any) -> ManyClientsRun:
    """Commissioning documents POSTed at once by `many.clients` clients of `many.participants`
    manufacturers to `serve` + `work` (batched mode), timed from the first POST until every capture
    job has finished."""
    with (
        temporary_database("tracechain_bench") as database_url,
        tempfile.TemporaryDirectory() as data_dir,
        service_processes(
            stack_settings(node, database_url, Path(data_dir), **settings), split=True, serves=many.serves
        ) as (base_urls, pids),
        httpx.Client(base_url=base_urls[0], timeout=120) as admin,
    ):
        engine = make_engine(database_url)
        keys = [
            create_participant(
                admin, f"Manufacturer {m}", ["manufacturer"], f"urn:epc:id:pgln:69012{m:02d}.00000", "CN"
            )["apiKey"]
            for m in range(many.participants)
        ]
        documents = many_clients_documents(many, run)
        # One document of each manufacturer first, outside the timing: connections, caches and
        # the role grants settle.
        warm_up, documents = documents[: many.participants], documents[many.participants :]
        wait_for_jobs(admin, ADMIN_TOKEN, [post_capture(admin, keys[maker], body) for maker, body in warm_up])
        pids = {**pids, "anvil": [node.pid] if node.pid else [], "postgres": postgres_pids(engine)}
        cpu_before = {name: cpu_seconds(ids) for name, ids in pids.items()}
        started = time.perf_counter()
        locations, refused = asyncio.run(post_as_clients(base_urls, keys, documents, many.clients))
        accepted = time.perf_counter() - started
        events = len(locations) * many.events_per_document
        label = f"{many.clients} clients of {many.participants} manufacturers" + (
            f", {many.serves} serve processes" if many.serves > 1 else ""
        )
        progress(
            f"{label}: {events:,} events accepted in {accepted:.1f} s"
            + (f" (refused: {refused})" if refused else "")
            + "; waiting for the chain"
        )
        failed = jobs_failed(admin, locations)
        confirmed = time.perf_counter() - started
        pids["postgres"] = sorted({*pids["postgres"], *postgres_pids(engine)})
        cpu_ms = {
            name: cpu_used(cpu_before[name], cpu_seconds(ids)) * 1000 / max(events, 1)
            for name, ids in pids.items()
        }
        engine.dispose()
        errors = sum(refused.values()) + failed
        result = ManyClientsRun(
            many.clients, many.participants, events, accepted, confirmed, errors, refused, failed, cpu_ms
        )
        progress(
            f"{label}: {events:,} events confirmed in {confirmed:.1f} s = {result.events_per_s:,.0f} "
            f"events/s, {errors} errors ({failed} failed jobs); CPU ms per event: "
            + ", ".join(f"{n} {ms:.2f}" for n, ms in cpu_ms.items())
        )
        return result


def many_clients_row(table: Table, run: ManyClientsRun | None, naive_rate: float) -> None:
    if run is None:
        return
    table.add_row(
        f"batched, serve + work, {run.clients} clients of {run.participants} manufacturers "
        f"({run.errors} errors)",
        f"{run.events:,}",
        f"{run.events_per_s:,.0f}",
        f"{run.events_per_s / naive_rate:,.1f}x" if naive_rate else "-",
        "",
        "",
        "≥ 2,000 events/s, 0 errors, ≥ 25x naive",
    )


def client_levels(node: AnvilNode, many: ManyClients, levels: list[int], run: str) -> None:
    """The same documents sent by each number of clients, one after the other (for profiling)."""
    for clients in levels:
        ingest_many_clients(node, replace(many, clients=clients), f"l{clients}{run}")


# ---------------------------------------------------------------- 4. trace latency


def product_journey(
    item: str, case: str, pallet: str, container: str
) -> list[tuple[str, list[dict[str, Any]]]]:
    """50 events naming the item or a unit it travels in, by who captures them, in order."""
    made = datetime(2026, 1, 5, 8, tzinfo=SHENZHEN)
    factory, port, border, shop = (
        "urn:epc:id:sgln:6901234.00001.0",
        "urn:epc:id:sgln:5790001.00001.0",
        "urn:epc:id:sgln:8712345.00009.0",
        "urn:epc:id:sgln:8712345.00002.0",
    )
    hour = timedelta(hours=1)
    at = iter(made + n * hour for n in range(100))
    manufacturer = [
        object_event(
            [item],
            biz_step="commissioning",
            action="ADD",
            disposition="active",
            at=next(at),
            location=factory,
        ),
        *[object_event([item], biz_step="inspecting", at=next(at), location=factory) for _ in range(4)],
        aggregation_event(case, [item], at=next(at), location=factory),
        *[object_event([case], biz_step="storing", at=next(at), location=factory) for _ in range(4)],
        aggregation_event(pallet, [case], at=next(at), location=factory),
        *[object_event([pallet], biz_step="storing", at=next(at), location=factory) for _ in range(4)],
        aggregation_event(container, [pallet], at=next(at), location=factory),
        object_event([container], biz_step="loading", at=next(at), location=factory),
        object_event(
            [container],
            biz_step="shipping",
            disposition="in_transit",
            at=next(at),
            location=factory,
            destination="urn:epc:id:pgln:5790001.00000",
        ),
    ]  # 18
    carrier = [
        object_event(
            [container], biz_step="receiving", disposition="in_progress", at=next(at), location=port
        ),
        *[
            sensor_event(
                [container],
                at=next(at),
                measurement="gs1:Temperature",
                value=4.0 + n % 3,
                uom="CEL",
                minimum=2,
                maximum=8,
                location=port,
            )
            for n in range(24)
        ],
    ]  # 43
    customs = [
        object_event(
            [container], biz_step="inspecting", disposition="conformant", at=next(at), location=border
        )
    ]  # 44
    carrier_delivers = [
        object_event(
            [container],
            biz_step="shipping",
            disposition="in_transit",
            at=next(at),
            location=border,
            destination="urn:epc:id:pgln:8712345.00002",
        ),
    ]  # 45
    retailer = [
        object_event(
            [container], biz_step="receiving", disposition="in_progress", at=next(at), location=shop
        ),
        *[object_event([item], biz_step="storing", at=next(at), location=shop) for _ in range(4)],
    ]  # 50
    return [
        ("manufacturer", manufacturer),
        ("carrier", carrier),
        ("customs", customs),
        ("carrier", carrier_delivers),
        ("retailer", retailer),
    ]


def trace_latency(node: AnvilNode, chain: Chain, plan: Plan, results: Results) -> None:
    """Warm: one product traced again and again at each of `plan.trace_sizes`; cold: distinct
    products each traced once at each of `plan.cold_sizes` (`cold_traces`)."""
    with (
        temporary_database("tracechain_bench") as database_url,
        tempfile.TemporaryDirectory() as data_dir,
        served(service_settings(node, database_url, Path(data_dir), None), chain) as (base_url, services),
        httpx.Client(base_url=base_url, timeout=120) as client,
    ):
        keys = {
            "manufacturer": create_participant(
                client, "Shenzhen Bright", ["manufacturer"], "urn:epc:id:pgln:6901234.00000", "CN"
            )["apiKey"],
            "carrier": create_participant(
                client, "Blue Water Lines", ["carrier"], "urn:epc:id:pgln:5790001.00000", "DK"
            )["apiKey"],
            "customs": create_participant(
                client, "EU Customs Rotterdam", ["customs"], "urn:epc:id:pgln:8712345.00009", "NL"
            )["apiKey"],
            "retailer": create_participant(
                client, "Amsterdam Retail", ["retailer"], "urn:epc:id:pgln:8712345.00002", "NL"
            )["apiKey"],
        }
        item = "urn:epc:id:sgtin:6901234.067890.T1"
        journey = product_journey(
            item,
            "urn:epc:id:sscc:6901234.0000000001",
            "urn:epc:id:sscc:6901234.0000000002",
            "urn:epc:id:sscc:6901234.0000000003",
        )
        for who, events in journey:
            wait_for_jobs(client, keys[who], [post_capture(client, keys[who], document(events))])
        begun = time.perf_counter()
        trace = client.get(f"/trace/{item}").json()
        results.trace_cold_ms = (time.perf_counter() - begun) * 1000  # nothing memoised yet
        if trace["verdict"] != "verified" or len(trace["events"]) != 50:
            raise RuntimeError(f"the traced item has {len(trace['events'])} events, {trace['verdict']}")
        progress(f"trace: {item} has 50 verified events across item, case, pallet and container")

        with services.sessions() as session:
            signer = session.scalars(select(Participant).order_by(Participant.created_at)).first()
        assert signer is not None
        synthetic_added = 0
        cold_batches = iter(range(len(plan.cold_sizes)))
        for size in sorted({*plan.trace_sizes, *plan.cold_sizes}):
            cold_items = (
                capture_cold_products(client, keys, next(cold_batches), plan.cold_products)
                if size in plan.cold_sizes
                else []
            )
            fill_started = time.perf_counter()
            stored = synthetic.event_count(services.engine)
            big = size - stored >= SET_INDEXES_ASIDE_FROM
            with synthetic.indexes_set_aside(services.engine) if big else nullcontext():
                while stored < size:
                    # Whole synthetic products (five events each), numbered on from the last fill.
                    count = -(-min(size - stored, FILL_CHUNK) // synthetic.EVENTS_PER_PRODUCT) * 5
                    synthetic.add_synthetic_events(
                        services.engine, synthetic_added, synthetic_added + count - 1, signer
                    )
                    synthetic_added += count
                    stored += count
                    progress(f"trace: {stored:,} stored events")
            if big:
                progress(
                    f"trace: indexes and constraints made again ({time.perf_counter() - fill_started:.1f} s)"
                )
            synthetic.vacuum(services.engine)
            stored = synthetic.event_count(services.engine)
            progress(f"trace: filled to {stored:,} events in {time.perf_counter() - fill_started:.1f} s")
            if cold_items:
                cold_traces(client, cold_items, size, stored, results)
            if size in plan.trace_sizes:
                warm_traces(client, item, size, plan.trace_requests, results)


def warm_traces(client: httpx.Client, item: str, size: int, requests: int, results: Results) -> None:
    """The same product traced `requests` times after 10 warm-up ones (its checks memoised)."""
    for _ in range(10):
        client.get(f"/trace/{item}").raise_for_status()
    timings = []
    for _ in range(requests):
        begun = time.perf_counter()
        response = client.get(f"/trace/{item}")
        timings.append((time.perf_counter() - begun) * 1000)
        response.raise_for_status()
    p50, p95 = _percentiles(timings)
    results.trace_p50_ms[size], results.trace_p95_ms[size] = p50, p95
    progress(f"trace at {size:,} stored events: p50 {p50:.1f} ms, p95 {p95:.1f} ms")


def _percentiles(timings: list[float]) -> tuple[float, float]:
    """p50 and p95 of `timings` (nearest rank)."""
    ordered = sorted(timings)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


# ---------------------------------------------------------------- 4b. cold traces
# A consumer's scan is almost always the first trace of its product: nothing of it is memoised.


def capture_cold_products(client: httpx.Client, keys: dict[str, str], batch: int, count: int) -> list[str]:
    """`count` products, each with the 50-event journey of `product_journey` in units of its own,
    captured through the service (each party's part of every journey in one document) and confirmed.
    `batch` keeps each call's identifiers apart from the others'. Returns the items."""
    items = []
    parts: list[tuple[str, list[dict[str, Any]]]] = []  # each party's part of the journey, in order
    for n in range(count):
        serial = batch * 10_000 + n
        item = f"urn:epc:id:sgtin:6901234.067895.C{serial}"
        journey = product_journey(
            item,
            f"urn:epc:id:sscc:6901234.1{serial:09d}",
            f"urn:epc:id:sscc:6901234.2{serial:09d}",
            f"urn:epc:id:sscc:6901234.3{serial:09d}",
        )
        if not parts:
            parts = [(who, []) for who, _ in journey]
        for (_, part), (_, events) in zip(parts, journey, strict=True):
            part.extend(events)
        items.append(item)
    started = time.perf_counter()
    for who, events in parts:
        wait_for_jobs(client, keys[who], [post_capture(client, keys[who], document(events))])
    progress(
        f"cold trace: {count} products of 50 events captured and confirmed in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return items


def cold_traces(client: httpx.Client, items: list[str], size: int, stored: int, results: Results) -> None:
    """Each of `items` traced exactly once, checked whole (verified, 50 events)."""
    timings = []
    for item in items:
        begun = time.perf_counter()
        response = client.get(f"/trace/{item}")
        timings.append((time.perf_counter() - begun) * 1000)
        trace = response.raise_for_status().json()
        if trace["verdict"] != "verified" or len(trace["events"]) != 50:
            raise RuntimeError(f"{item} has {len(trace['events'])} events, {trace['verdict']}")
    p50, p95 = _percentiles(timings)
    results.trace_cold_p50_ms[size], results.trace_cold_p95_ms[size] = p50, p95
    results.trace_cold_stored[size] = stored
    progress(
        f"cold trace at {stored:,} stored events: {len(items)} products once each, "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )


# ---------------------------------------------------------------- 5. the demo


def demo_wall_time(results: Results) -> None:
    command = tracechain_command("demo")
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "TRACECHAIN_DATA_DIR": data_dir,
            "TRACECHAIN_ANVIL_PORT": str(free_port()),
            "TRACECHAIN_DEMO_MODE": "true",
        }
        started = time.perf_counter()
        finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"tracechain demo failed:\n{finished.stdout}\n{finished.stderr}")
    results.demo_s = elapsed
    progress(f"demo: {elapsed:.1f} s")


# ---------------------------------------------------------------- 6. a big document (issue 16)

BIG_DOCUMENT_EVENTS = 50_000
"""About 110 MB of EPCIS 2.0 JSON (`tracechain.demo.big_document`: ~2.2 KB an event)."""
QUICK_BIG_DOCUMENT_EVENTS = 1_500
"""About 3.3 MB: streamed all the same (the quick run lowers the streaming threshold)."""
BIG_DOCUMENT_TARGET = "≤ 30 s, peak RSS ≤ 300 MB"
BIG_DOCUMENT_TIMEOUT = 1_800.0
"""Seconds: ~90,000 chain records to send and confirm, minutes on a busy machine."""


@dataclass(frozen=True)
class BigDocumentRun:
    label: str
    events: int
    megabytes: float
    accepted_s: float
    """From the first byte sent until the answer (the body uploaded, spooled and outlined)."""
    stored_s: float
    """Until every event was stored and its records queued (the job no longer `capturing`)."""
    confirmed_s: float
    """Until the capture job succeeded: every event stored and every record confirmed on chain."""
    peak_mb: dict[str, float]
    """Each service process's peak resident memory over its life (VmHWM): serve, work."""

    @property
    def streamed(self) -> bool:
        return self.label.startswith("streamed")


def big_document(node: AnvilNode, events: int, streamed: bool, quick: bool, run: str) -> BigDocumentRun:
    """One document of `events` POSTed by one client to `tracechain serve` (workers in `tracechain
    work`), timed until its job succeeded, with the service's peak memory. `streamed`: the body
    over the streaming threshold, as configured by default (else the threshold above the body,
    i.e. the document read whole, as before issue 16)."""
    label = "streamed" if streamed else "read whole (before)"
    with (
        temporary_database("tracechain_bench") as database_url,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        path = Path(data_dir) / "document.json"
        with path.open("wb") as out:
            write_document(
                out,
                factory_events(
                    events, lot=int(run[1:]) % 1000, start=datetime(2026, 1, 5, 8, tzinfo=SHENZHEN)
                ),
            )
        size = path.stat().st_size
        stream_from = (1_000_000 if quick else Settings().capture_stream_from_bytes) if streamed else size + 1
        settings = replace_settings(
            service_settings(node, database_url, Path(data_dir), None),
            capture_stream_from_bytes=stream_from,
            capture_max_events=max(events, Settings().capture_max_events),
            capture_max_bytes=max(size, Settings().capture_max_bytes),
        )
        with (
            service_processes(settings, split=True) as ([base_url], pids),
            httpx.Client(base_url=base_url, timeout=JOB_TIMEOUT) as client,
        ):
            key = create_participant(
                client, "Shenzhen Bright Electronics", ["manufacturer"], "urn:epc:id:pgln:6901234.00000", "CN"
            )["apiKey"]
            wait_for_jobs(client, key, [post_capture(client, key, _one_event_document())])
            progress(f"big document, {label}: {events:,} events, {size / 1e6:,.1f} MB")
            started = time.perf_counter()
            with path.open("rb") as body:
                response = client.post(
                    "/capture",
                    content=body,
                    headers={**bearer(key), "Content-Type": "application/json", "Content-Length": str(size)},
                )
            if response.status_code != 202:
                raise RuntimeError(f"capture refused ({response.status_code}): {response.text[:500]}")
            accepted = time.perf_counter() - started
            location = str(response.headers["Location"])
            deadline = time.monotonic() + BIG_DOCUMENT_TIMEOUT
            while client.get(location, headers=bearer(key)).json()["status"] == "capturing":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the big document still capturing after {BIG_DOCUMENT_TIMEOUT:.0f} s")
                time.sleep(0.05)
            stored = time.perf_counter() - started
            wait_for_jobs(client, key, [location], BIG_DOCUMENT_TIMEOUT)
            confirmed = time.perf_counter() - started
            peaks = {name: peak_rss_mb(ids) for name, ids in pids.items()}
    progress(
        f"big document, {label}: answered in {accepted:.1f} s, stored in {stored:.1f} s, "
        f"confirmed in {confirmed:.1f} s; peak RSS "
        + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in peaks.items())
    )
    return BigDocumentRun(label, events, size / 1e6, accepted, stored, confirmed, peaks)


def big_documents(
    node: AnvilNode, quick: bool, baseline: bool, run: str, results: Results, events: int | None = None
) -> None:
    events = events or (QUICK_BIG_DOCUMENT_EVENTS if quick else BIG_DOCUMENT_EVENTS)
    if baseline:
        results.big_documents.append(big_document(node, events, False, quick, f"w{run}"))
    results.big_documents.append(big_document(node, events, True, quick, f"s{run}"))


def _one_event_document() -> bytes:
    """A small document first, outside the timing: connections, caches and the role grant settle."""
    return document(
        [
            object_event(
                ["urn:epc:id:sgtin:6901234.067890.warmup"],
                biz_step="commissioning",
                action="ADD",
                at=datetime(2026, 1, 5, 7, tzinfo=SHENZHEN),
            )
        ]
    )


def replace_settings(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(update=values)


def peak_rss_mb(pids: list[int]) -> float:
    """The largest resident memory these processes reached (VmHWM), summed, in MB."""
    peak_kb = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        peak_kb += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0
        )
    return peak_kb / 1024


def big_document_figures(runs: list[BigDocumentRun]) -> dict[str, float | None]:
    """The streamed run's time and the peak memory of `serve`, the process that reads the document
    (`work` never sees it: it sends and indexes records, whatever document they came from)."""
    streamed = next((run for run in runs if run.streamed), None)
    return {
        "big_document_s": _round(streamed.confirmed_s) if streamed else None,
        "big_document_peak_mb": _round(streamed.peak_mb["serve"]) if streamed else None,
    }


def big_document_table(runs: list[BigDocumentRun]) -> Table:
    table = Table(title="A big EPCIS document: POSTed, stored and confirmed on chain")
    columns = ("path", "events", "MB", "answered", "stored", "confirmed", "peak RSS serve · work", "target")
    for column in columns:
        table.add_column(column, justify="left" if column in ("path", "target") else "right")
    for run in runs:
        table.add_row(
            run.label,
            f"{run.events:,}",
            f"{run.megabytes:,.0f}",
            f"{run.accepted_s:.1f} s",
            f"{run.stored_s:.1f} s",
            f"{run.confirmed_s:.1f} s",
            " · ".join(f"{mb:,.0f}" for mb in run.peak_mb.values()) + " MB",
            BIG_DOCUMENT_TARGET if run.streamed else "",
        )
    return table


# ---------------------------------------------------------------- the report


def report(results: Results, plan: Plan, runs: list[IngestRun], gas_rows: list[tuple[str, str, str]]) -> None:
    figures = results.figures()
    ingest = Table(title="Ingest: events recorded and confirmed on chain")
    for column in ("path", "events", "events/s", "vs naive", "tx", "gas/event", "target"):
        ingest.add_column(column, justify="right" if column not in ("path", "target") else "left")
    naive_rate = results.naive_events_per_s or 0.0
    ingest.add_row(
        "naive: one transaction per event",
        str(plan.naive_events),
        f"{naive_rate:,.1f}",
        "1x",
        str(plan.naive_events),
        f"{results.gas_single:,}",
        "",
    )
    targets = {"batched, serve + work": "≥ 1,000/s and ≥ 20x naive", "merkle, serve + work": "gas ≤ 500"}
    for run in runs:
        rate = run.events / run.confirmed_s
        ingest.add_row(
            f"{run.label}: HTTP capture → confirmed",
            f"{run.events:,}",
            f"{rate:,.0f}",
            f"{rate / naive_rate:,.1f}x" if naive_rate else "-",
            str(run.transactions),
            f"{run.gas_per_event:,}",
            targets.get(run.label, ""),
        )
    many_clients_row(ingest, results.many_clients, naive_rate)
    console.print(ingest)

    other = Table(title="Gas, trace latency, demo")
    other.add_column("figure")
    other.add_column("measured", justify="right")
    other.add_column("target")
    other.add_row("gas, one event alone (commissioning)", f"{results.gas_single:,}", "")
    for row in gas_rows:
        other.add_row(*row)
    if results.gas_per_event_merkle is None:
        other.add_row("gas/event, Merkle mode", "n/a", "≤ 500")
    for row in trace_rows(results):
        other.add_row(*row)
    if results.demo_s is not None:
        other.add_row("tracechain demo, wall time", f"{results.demo_s:.1f} s", "≤ 60 s")
    console.print(other)
    if results.big_documents:
        console.print(big_document_table(results.big_documents))
    console.print(
        f"[dim]{os.cpu_count()} cores ({_cpu_model()}); ingest: `tracechain serve` processes (and "
        "`tracechain work`), "
        f"driven over real HTTP by {plan.clients} clients, "
        f"{plan.events_per_document} events per document[/]"
    )
    print(json.dumps(figures), flush=True)


def trace_rows(results: Results) -> list[tuple[str, str, str]]:
    """The trace latency rows of the figures table: warm, then cold, then the bench product's first."""
    rows = [
        (
            f"trace p50 / p95 at {size:,} stored events",
            f"{results.trace_p50_ms[size]:.1f} / {results.trace_p95_ms[size]:.1f} ms",
            "p95 ≤ 25 ms and ≤ 2x the 1k figure",
        )
        for size in sorted(results.trace_p95_ms)
    ]
    smallest_cold = min(results.trace_cold_stored.values(), default=0)
    for size in sorted(results.trace_cold_p95_ms):
        stored = results.trace_cold_stored[size]
        rows.append(
            (
                f"cold trace p50 / p95 at {stored:,} stored events (distinct products, each traced once)",
                f"{results.trace_cold_p50_ms[size]:.1f} / {results.trace_cold_p95_ms[size]:.1f} ms",
                "cold p95 ≤ 20 ms"
                + (f" and ≤ 1.5x its {smallest_cold:,} figure" if stored > smallest_cold else ""),
            )
        )
    if results.trace_cold_ms is not None:
        rows.append(("trace, first request (nothing memoised)", f"{results.trace_cold_ms:.1f} ms", ""))
    return rows


def report_traces(results: Results) -> None:
    """The trace rows alone, for `--only-trace` and `--only-cold-trace`."""
    table = Table(title="Trace latency")
    for column in ("figure", "measured", "target"):
        table.add_column(column, justify="right" if column == "measured" else "left")
    for row in trace_rows(results):
        table.add_row(*row)
    console.print(table)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a small run (for make test)")
    parser.add_argument("--skip-demo", action="store_true", help="leave out the demo's wall time")
    parser.add_argument("--documents", type=int, help="documents of 100 events per ingest run")
    parser.add_argument("--only-ingest", action="store_true", help="naive and ingest only (for profiling)")
    parser.add_argument("--only-trace", action="store_true", help="trace latency only (for profiling)")
    parser.add_argument(
        "--only-clients",
        help="only the many-clients ingest run, once per number of clients given (e.g. 4,50,200)",
    )
    parser.add_argument(
        "--only-cold-trace",
        action="store_true",
        help="cold traces only: distinct products each traced once (for profiling)",
    )
    parser.add_argument(
        "--cold-sizes", help="stored events at which cold traces are measured, e.g. 1000,1000000"
    )
    parser.add_argument(
        "--serve-processes",
        type=int,
        default=1,
        help="serve processes on the one database for the many-clients run, the clients dealt among them",
    )
    parser.add_argument("--cold-products", type=int, help="distinct products traced once at each cold size")
    parser.add_argument(
        "--only-big-document", action="store_true", help="the big document only (for profiling)"
    )
    parser.add_argument(
        "--big-document-baseline",
        action="store_true",
        help="also capture the big document read whole, as before streaming (minutes, GBs of memory)",
    )
    parser.add_argument("--big-document-events", type=int, help="events in the big document")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.documents:
        plan = replace(plan, documents=args.documents)
    if args.cold_sizes:
        plan = replace(plan, cold_sizes=tuple(int(size) for size in args.cold_sizes.split(",")))
    if args.cold_products:
        plan = replace(plan, cold_products=args.cold_products)
    if args.only_cold_trace:
        plan = replace(plan, trace_sizes=())
    if args.serve_processes > 1:
        plan = replace(plan, many=replace(plan.many, serves=args.serve_processes))
    results = Results()
    run = f"{int(time.time()) % 100_000}"
    gas_rows: list[tuple[str, str, str]] = []
    with AnvilNode(find_anvil_binary(Settings()), port=free_port()) as node:
        chain = rpc_chain(node.url, ANVIL_DEV_KEY)
        if args.only_trace or args.only_cold_trace:
            trace_latency(node, chain, plan, results)
            report_traces(results)
            return 0
        if args.only_clients:
            client_levels(node, plan.many, [int(n) for n in args.only_clients.split(",")], run)
            return 0
        if args.only_big_document:
            big_documents(
                node, args.quick, args.big_document_baseline, run, results, args.big_document_events
            )
            console.print(big_document_table(results.big_documents))
            print(json.dumps(big_document_figures(results.big_documents)), flush=True)
            return 0
        progress(f"anvil at {node.url}; naive baseline, {plan.naive_events} events")
        naive(chain, plan.naive_events, results)
        batched_gas(chain, results, gas_rows)
        journey_gas(chain, results, gas_rows)
        progress(f"ingest: {plan.documents} documents x {plan.events_per_document} events, three ways")
        runs = [
            ingest(node, chain, plan, "batched", split=False, run=f"a{run}"),
            ingest(node, chain, plan, "batched", split=True, run=f"b{run}"),
        ]
        merkle_gas(chain, results, gas_rows)
        runs.append(ingest(node, chain, plan, "merkle", split=True, run=f"m{run}"))
        results.batched_events_per_s = runs[1].events / runs[1].confirmed_s
        results.merkle_events_per_s = runs[2].events / runs[2].confirmed_s
        progress(f"ingest: {plan.many.clients} concurrent clients")
        results.many_clients = ingest_many_clients(node, plan.many, f"c{run}")
        if args.only_ingest:
            return 0
        trace_latency(node, chain, plan, results)
        big_documents(node, args.quick, args.big_document_baseline, run, results, args.big_document_events)
    if not args.skip_demo:
        demo_wall_time(results)
    report(results, plan, runs, gas_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
