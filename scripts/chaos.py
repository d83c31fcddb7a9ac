"""`make chaos`: the faults a deployment meets, on purpose, against real processes on 127.0.0.1.

One anvil node and one PostgreSQL database of its own (reached through a TCP proxy this script
runs, so the database can be cut off), `tracechain serve` and `tracechain work` as processes, and
clients posting EPCIS documents over HTTP that retry what is not accepted (503, a refused
connection), as clients do. Each scenario sends documents of commissioning events, injects its
fault while they flow, and then counts:

- accepted: documents (events) the service answered 202 for, after retries;
- recorded once: accepted events the chain logged exactly once;
- lost: accepted events the chain never logged (nor their jobs said why);
- duplicated: accepted events logged more than once;
- stuck: capture jobs neither succeeded nor failed with a reason by the end;
- refused: jobs that failed with a reason (only where the scenario causes one on purpose);
- recovery: seconds from the fault's end until every document accepted before it is confirmed. A
  killed process's fault ends when its replacement runs (restarting it is the orchestrator's part:
  about 5 s of Python imports here), a node's when it answers again, a cut's when it is over.

Scenarios: kill -9 of serve and of work mid-stream; the node crashing (kill -9) and coming back
from its last saved state; reorganisations of depth 1-5 with confirmations 0 and 3; the database
cut off for 10 s; a poisoned batch (an event written to the chain directly, staling one queued
record); a signed event copied out of a pending batch and mined first; an own-key capture never
signed; 200 concurrent clients against the best of 4 and 16. It prints a table per scenario and,
last, one JSON line. `--quick` is the short version `make test` runs (tests/test_chaos.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from stack import (
    Service,
    bearer,
    create_participant,
    document,
    free_port,
    service_settings,
    temporary_database,
)

from tracechain.chain.connect import rpc_chain
from tracechain.chain.eip712 import EventSigner
from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode, find_anvil_binary
from tracechain.chain.registry import TraceRegistry
from tracechain.chain.trace_event import Kind, TraceEvent, subject_id
from tracechain.config import Settings
from tracechain.epcis.builders import object_event, sensor_event
from tracechain.epcis.event_hash import event_hash_ids
from tracechain.keys import KeyVault
from tracechain.store.db import make_engine, session_factory
from tracechain.store.models import ChainRecord, Event, Participant, RecordStatus

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
BYSTANDER = Account.create()
"""Not the relayer (its nonces are the outbox's): the account that writes what the service does not."""
RECOVERY_TARGET_S = 10.0
DEADLINE_S = 180.0
_started = time.monotonic()


def progress(message: str) -> None:
    console.print(f"[dim]{time.monotonic() - _started:7.1f} s[/]  {message}", soft_wrap=True)


# ---------------------------------------------------------------- the database, behind a proxy


class DatabaseProxy:
    """A TCP proxy to PostgreSQL that can cut every connection and refuse new ones for a while."""

    def __init__(self, upstream_port: int = 5432) -> None:
        self.port, self.upstream_port = free_port(), upstream_port
        self.loop = asyncio.new_event_loop()
        self._refusing_until = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self._run, daemon=True, name="db-proxy").start()
        deadline = time.monotonic() + 10
        while not self._listening():
            assert time.monotonic() < deadline, "the database proxy did not start"
            time.sleep(0.05)

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refusing_until:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def cut(self, seconds: float) -> None:
        """Drop every open connection and refuse new ones for `seconds`."""
        self._refusing_until = time.monotonic() + seconds

        def close_all() -> None:
            for writer in list(self._writers):
                writer.close()

        self.loop.call_soon_threadsafe(close_all)


# ---------------------------------------------------------------- clients


@dataclass
class Sent:
    """One document a client sent until the service accepted it."""

    body: bytes
    event_ids: list[str]
    location: str | None = None
    accepted_at: float | None = None
    attempts: int = 0
    unexpected: list[int] = field(default_factory=list)
    """Status codes that are neither acceptance nor a deliberate 503 (nor a refused connection)."""


def commissioning_documents(prefix: str, documents: int, events: int) -> list[Sent]:
    at = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    sent = []
    for d in range(documents):
        body = document(
            [
                object_event(
                    [f"urn:epc:id:sgtin:6901234.067890.{prefix}{d}-{e}"],
                    biz_step="commissioning",
                    action="ADD",
                    disposition="active",
                    at=at + timedelta(seconds=e),
                )
                for e in range(events)
            ]
        )
        sent.append(Sent(body, event_hash_ids(json.loads(body))))
    return sent


def send_all(base_url: str, key: str, sent: list[Sent], clients: int, deadline: float = DEADLINE_S) -> None:
    """`clients` threads post the documents, each retrying until 202 (a retried document answers
    with its original job), backing off as Retry-After says."""

    def one(item: Sent) -> None:
        stop = time.monotonic() + deadline
        with httpx.Client(base_url=base_url, timeout=60) as client:
            while time.monotonic() < stop:
                item.attempts += 1
                try:
                    response = client.post(
                        "/capture",
                        content=item.body,
                        headers={**bearer(key), "Content-Type": "application/json"},
                    )
                except httpx.TransportError:
                    time.sleep(0.5)  # the service is away (killed, restarting)
                    continue
                if response.status_code == 202:
                    item.location, item.accepted_at = response.headers["Location"], time.monotonic()
                    return
                if response.status_code not in (503, 409):
                    item.unexpected.append(response.status_code)
                # Jittered, as well-behaved clients retry: 200 clients told "1 s" would otherwise
                # come back as one wave and leave the service idle in between.
                time.sleep(float(response.headers.get("Retry-After", "1")) * random.uniform(0.5, 1.5))

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, sent))


FINISHED = ("succeeded", "failed")


def job_statuses(
    base_url: str, key: str, sent: list[Sent], known: dict[str, str] | None = None
) -> dict[str, str]:
    """Each accepted document's job status; those `known` to have finished are not asked again."""
    statuses = {location: status for location, status in (known or {}).items() if status in FINISHED}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for item in sent:
            if item.location and item.location not in statuses:
                try:
                    statuses[item.location] = client.get(item.location, headers=bearer(key)).json()["status"]
                except (httpx.TransportError, ValueError, KeyError):
                    statuses[item.location] = "unknown"
    return statuses


def wait_until_settled(base_url: str, key: str, sent: list[Sent], fault_end: float | None) -> float | None:
    """Until every accepted document's job succeeded or failed; returns the recovery time: from the
    fault's end until every document accepted before it was confirmed."""
    before = [
        item
        for item in sent
        if item.accepted_at is not None and fault_end is not None and item.accepted_at <= fault_end
    ]
    recovered_at: float | None = None
    deadline = time.monotonic() + DEADLINE_S
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        statuses = job_statuses(base_url, key, sent, statuses)
        if recovered_at is None and all(statuses.get(item.location or "") == "succeeded" for item in before):
            recovered_at = time.monotonic()
        if all(status in FINISHED for status in statuses.values()):
            break
        time.sleep(0.25)
    if fault_end is None or recovered_at is None:
        return None
    return max(0.0, recovered_at - fault_end)


# ---------------------------------------------------------------- one scenario's figures


@dataclass
class Outcome:
    name: str
    accepted_documents: int = 0
    accepted_events: int = 0
    recorded_once: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    refused: int = 0
    expected_refused: int = 0
    recovery_s: float | None = None
    unexpected_5xx: int = 0
    events_per_s: float | None = None
    note: str = ""

    @property
    def correct(self) -> bool:
        """Nothing lost, doubled or stuck, no unexpected 5xx, and only the refusals caused on purpose."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.stuck == 0
            and self.unexpected_5xx == 0
            and self.refused == self.expected_refused
        )

    @property
    def ok(self) -> bool:
        return self.correct and (self.recovery_s is None or self.recovery_s <= RECOVERY_TARGET_S)


def count(
    name: str,
    stack: Stack,
    key: str,
    sent: list[Sent],
    fault_end: float | None,
    first_block: int,
    expected_refused: int = 0,
) -> Outcome:
    recovery = wait_until_settled(stack.base_url, key, sent, fault_end)
    statuses = job_statuses(stack.base_url, key, sent)
    logged = Counter(log.event_hash for log in stack.registry.recorded_events(from_block=first_block))
    recorded_as = _event_hashes(stack)
    outcome = Outcome(name, recovery_s=recovery, expected_refused=expected_refused)
    failed_jobs = {location for location, status in statuses.items() if status == "failed"}
    for item in sent:
        outcome.unexpected_5xx += sum(1 for code in item.unexpected if code >= 500)
        if item.location is None:
            continue
        outcome.accepted_documents += 1
        outcome.accepted_events += len(item.event_ids)
        for event_id in item.event_ids:
            times = sum(logged[event_hash] for event_hash in recorded_as.get(event_id, ()))
            if times == 1:
                outcome.recorded_once += 1
            elif times > 1:
                outcome.duplicated += 1
            elif item.location not in failed_jobs:
                outcome.lost += 1
    outcome.stuck = sum(1 for status in statuses.values() if status not in FINISHED)
    outcome.refused = len(failed_jobs)
    return outcome


# ---------------------------------------------------------------- the stack


class Stack:
    """anvil (state saved every second), PostgreSQL behind the proxy, serve and work."""

    def __init__(self, workdir: Path, database_url: str, proxy: DatabaseProxy, **settings: Any) -> None:
        self.workdir = workdir
        self.node = AnvilNode(
            find_anvil_binary(Settings()),
            port=free_port(),
            state_file=workdir / "anvil-state.json",
            log_file=workdir / "anvil.log",
        )
        self.node.start()
        self.chain = rpc_chain(self.node.url, ANVIL_DEV_KEY)
        proxied = database_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        self.settings = service_settings(self.node, proxied, workdir / "data", **settings)
        self.database_url = database_url
        self.service = Service(self.settings, workdir)
        self.service.start()
        self.base_url = self.service.base_url
        self.registry = TraceRegistry(self.chain, self._registry_address())
        # A chain makes blocks whether or not anyone sends (anvil mines only on a transaction), so
        # that records reach their confirmations after the last document too.
        self._producing = threading.Event()
        self.mining = threading.Lock()
        """Held while a reorganisation is staged, so that no block is produced in the middle of it."""
        threading.Thread(target=self._produce_blocks, daemon=True, name="blocks").start()
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            made = create_participant(
                client,
                "Chaos Maker",
                ["manufacturer"],
                f"urn:epc:id:pgln:6901234.{free_port() % 100000:05d}",
                "CN",
            )
        self.maker_key, self.maker = made["apiKey"], made

    def _registry_address(self) -> str:
        engine = make_engine(self.database_url)
        try:
            from tracechain.store import queries

            with session_factory(engine)() as session:
                identity = queries.chain_identity(session)
                assert identity is not None
                return identity.registry
        finally:
            engine.dispose()

    def restart_service(self, **settings: Any) -> None:
        self.service.stop()
        self.settings = self.settings.model_copy(update=settings)
        self.service = Service(self.settings, self.workdir)
        self.service.start()
        self.base_url = self.service.base_url

    def _produce_blocks(self) -> None:
        while not self._producing.wait(1.0):
            with self.mining, contextlib.suppress(Exception):  # the node is down on purpose (node crash)
                self.rpc("evm_mine")

    def stop(self) -> None:
        self._producing.set()
        self.service.stop()
        self.node.stop()

    def block(self) -> int:
        return int(self.chain.w3.eth.block_number)

    def rpc(self, method: str, *params: Any) -> Any:
        return self.chain.w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]


# ---------------------------------------------------------------- scenarios


def _load(
    stack: Stack, prefix: str, documents: int, events: int, clients: int
) -> tuple[list[Sent], threading.Thread]:
    sent = commissioning_documents(prefix, documents, events)
    thread = threading.Thread(
        target=send_all, args=(stack.base_url, stack.maker_key, sent, clients), daemon=True
    )
    thread.start()
    return sent, thread


def _while_loading(
    stack: Stack, prefix: str, fault: Callable[[], None], documents: int = 40, events: int = 20
) -> tuple[list[Sent], float]:
    sent, thread = _load(stack, prefix, documents, events, clients=4)
    time.sleep(1.5)  # the stream is flowing
    fault()
    fault_end = time.monotonic()
    thread.join()
    return sent, fault_end


def kill_serve(stack: Stack, prefix: str) -> Outcome:
    first = stack.block()

    def fault() -> None:
        stack.service.serve.kill()
        time.sleep(1)
        stack.service.start_serve()  # the fault ends when a new serve answers

    sent, end = _while_loading(stack, prefix, fault)
    return count("kill -9 serve", stack, stack.maker_key, sent, end, first)


def kill_work(stack: Stack, prefix: str) -> Outcome:
    first = stack.block()

    def fault() -> None:
        stack.service.work.kill()
        time.sleep(1)
        stack.service.start_work()  # the fault ends when a new worker runs (an orchestrator restarts it)

    sent, end = _while_loading(stack, prefix, fault)
    return count("kill -9 work", stack, stack.maker_key, sent, end, first)


def node_crash(stack: Stack, prefix: str) -> Outcome:
    """anvil killed -9: the blocks since its last save (up to a second) are gone when it restarts."""
    first = stack.block()

    def fault() -> None:
        assert stack.node._process is not None
        stack.node._process.kill()
        stack.node._process.wait()
        time.sleep(1)
        stack.node.start()

    sent, end = _while_loading(stack, prefix, fault)
    return count(
        "node crash (kill -9, unsaved blocks lost)",
        stack,
        stack.maker_key,
        sent,
        end,
        min(first, stack.block()),
    )


def reorganisation(stack: Stack, prefix: str, depth: int) -> Outcome:
    """`depth` blocks holding what the pool had are mined, then replaced by `depth + 1` empty ones.
    Automine is off meanwhile: anvil mining a transaction while it reverts leaves a block whose
    receipt it serves but whose state it dropped, which no real chain does."""
    first = stack.block()
    unmined = 0

    def fault() -> None:
        nonlocal unmined
        with stack.mining:
            stack.rpc("evm_setAutomine", False)
            try:
                time.sleep(0.5)  # transactions gather in the pool, as between two blocks
                snapshot = stack.rpc("evm_snapshot")
                stack.rpc("anvil_mine", depth)
                tip = stack.block()
                unmined = sum(stack.chain.w3.eth.get_block_transaction_count(tip - i) for i in range(depth))
                time.sleep(0.5)  # the workers see the doomed blocks
                stack.rpc("evm_revert", snapshot)
                stack.rpc("anvil_mine", depth + 1)
            finally:
                stack.rpc("evm_setAutomine", True)

    sent, end = _while_loading(stack, prefix, fault)
    outcome = count(
        f"reorganisation, depth {depth}, confirmations {stack.settings.confirmations}",
        stack,
        stack.maker_key,
        sent,
        end,
        max(first - 1, 0),
    )
    outcome.note = f"{unmined} transaction(s) un-mined"
    return outcome


def database_cut(stack: Stack, prefix: str, proxy: DatabaseProxy) -> Outcome:
    first = stack.block()

    def fault() -> None:
        proxy.cut(10)
        time.sleep(10)

    sent, end = _while_loading(stack, prefix, fault)
    return count("database cut off for 10 s", stack, stack.maker_key, sent, end, first)


def poisoned_batch(stack: Stack, prefix: str) -> Outcome:
    """The item's maker writes an event on the item's chain of facts directly; the service's next
    fact of that item, signed over the head the write replaced, is refused alone: its job fails
    saying why, everything else flows, and the same document sent again afterwards is recorded."""
    first = stack.block()
    poisoned = f"urn:epc:id:sgtin:6901234.067890.{prefix}poisoned"
    made = _single(
        object_event([poisoned], biz_step="commissioning", action="ADD", at=datetime(2026, 11, 1, tzinfo=UTC))
    )
    send_all(stack.base_url, stack.maker_key, [made], 1)
    wait_until_settled(stack.base_url, stack.maker_key, [made], None)
    subject = subject_id(poisoned)
    maker = EventSigner(_maker_key(stack), stack.registry.domain)
    head = stack.registry.head_of(subject)
    direct = maker.sign(TraceEvent(subject, Kind.EXCURSION, os.urandom(32), time=1, prev_head=head))
    _relay_from_another_account(stack, stack.registry.record_calldata([direct]))
    # A fact the service signs over the replaced head: an excursion its holder's sensor reports.
    at = datetime(2026, 11, 2, tzinfo=UTC)
    alarm = _single(
        sensor_event([poisoned], at=at, measurement="Temperature", value=31, uom="CEL", maximum=8)
    )
    sent, thread = _load(stack, prefix, 20, 20, clients=4)
    send_all(stack.base_url, stack.maker_key, [alarm], 1)
    thread.join()
    outcome = count(
        "poisoned batch (a direct chain write)", stack, stack.maker_key, [*sent, alarm], None, first, 1
    )
    # Its subject re-read from the chain, the same document is recorded when sent again.
    again = _single(alarm.body)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        send_all(stack.base_url, stack.maker_key, [again], 1, deadline=30)
        wait_until_settled(stack.base_url, stack.maker_key, [again], None)
        if job_statuses(stack.base_url, stack.maker_key, [again]) == {again.location: "succeeded"}:
            break
        again = _single(alarm.body)
    statuses = job_statuses(stack.base_url, stack.maker_key, [again])
    outcome.note = "sent again after: " + ",".join(statuses.values())
    if statuses != {again.location: "succeeded"}:
        outcome.stuck += 1
    return outcome


def _single(event_or_body: dict[str, Any] | bytes) -> Sent:
    body = event_or_body if isinstance(event_or_body, bytes) else document([event_or_body])
    return Sent(body, event_hash_ids(json.loads(body)))


def copied_event(stack: Stack, prefix: str) -> Outcome:
    """Automine off: the service broadcasts a batch; an account with no role copies one signed event
    out of it and gets it mined first (a higher fee). Nothing is lost or refused."""
    first = stack.block()
    stack.rpc("evm_setAutomine", False)
    try:
        sent, thread = _load(stack, prefix, 10, 20, clients=2)
        record = _wait_for_sent_record(stack)
        _relay_from_another_account(stack, stack.registry.record_calldata([record]), priority=True)
        stack.rpc("evm_mine")
    finally:
        stack.rpc("evm_setAutomine", True)
    thread.join()
    return count("signed event copied out of a pending batch", stack, stack.maker_key, sent, None, first)


def unsigned_capture(stack: Stack, prefix: str) -> Outcome:
    """An own-key participant captures and never signs: others' events flow; its job expires."""
    first = stack.block()
    wallet = Account.create()
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        own = create_participant(
            client,
            "Never Signs",
            ["manufacturer"],
            f"urn:epc:id:pgln:6901239.{free_port() % 100000:05d}",
            "CN",
            address=wallet.address,
        )
    unsigned = commissioning_documents(prefix + "u", 1, 3)
    send_all(stack.base_url, own["apiKey"], unsigned, 1)
    sent, thread = _load(stack, prefix, 20, 20, clients=4)
    thread.join()
    outcome = count("own-key capture never signed", stack, stack.maker_key, sent, None, first)
    timeout = stack.settings.signature_timeout_hours * 3600
    deadline = time.monotonic() + timeout + 30
    while time.monotonic() < deadline and job_statuses(stack.base_url, own["apiKey"], unsigned) != {
        unsigned[0].location: "failed"
    }:
        time.sleep(0.5)
    expired = job_statuses(stack.base_url, own["apiKey"], unsigned)
    outcome.note = f"unsigned job: {','.join(expired.values())} (timeout {timeout:.0f} s)"
    if list(expired.values()) != ["failed"]:
        outcome.stuck += 1
    return outcome


def many_clients(stack: Stack, prefix: str, clients: int, documents: int, events: int) -> Outcome:
    first = stack.block()
    sent = commissioning_documents(prefix, documents, events)
    started = time.monotonic()
    send_all(stack.base_url, stack.maker_key, sent, clients)
    wait_until_settled(stack.base_url, stack.maker_key, sent, None)
    elapsed = time.monotonic() - started
    outcome = count(f"{clients} concurrent clients", stack, stack.maker_key, sent, None, first)
    outcome.events_per_s = outcome.recorded_once / elapsed
    outcome.note = f"{sum(item.attempts for item in sent) - len(sent)} retries"
    return outcome


def _event_hashes(stack: Stack) -> dict[str, set[bytes]]:
    """What the chain records for each stored event: the commitment to its fields, which its random
    seed makes differ from any other capture's, so an event stored twice would be logged under two."""
    engine = make_engine(stack.database_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(Event.event_id, ChainRecord.event_hash).join(
                    ChainRecord, ChainRecord.event_row_id == Event.id
                )
            )
            found: dict[str, set[bytes]] = {}
            for event_id, event_hash in rows:
                found.setdefault(event_id, set()).add(bytes(event_hash))
            return found
    finally:
        engine.dispose()


def _maker_key(stack: Stack) -> bytes:
    engine = make_engine(stack.database_url)
    try:
        with session_factory(engine)() as session:
            row = session.scalars(select(Participant).where(Participant.id == stack.maker["id"])).one()
            secret = stack.settings.master_secret
            assert row.encrypted_key is not None and secret is not None
            return KeyVault(secret.get_secret_value()).decrypt(row.encrypted_key, row.address)
    finally:
        engine.dispose()


def _wait_for_sent_record(stack: Stack) -> Any:
    engine = make_engine(stack.database_url)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            with session_factory(engine)() as session:
                record = session.scalars(
                    select(ChainRecord).where(ChainRecord.status == RecordStatus.SENT).limit(1)
                ).first()
                if record is not None:
                    return record.signed_event()
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise RuntimeError("no batch was broadcast")


def _relay_from_another_account(stack: Stack, data: bytes, priority: bool = False) -> None:
    """Someone else's transaction: not the relayer's (its nonces are the outbox's)."""
    w3, other = stack.chain.w3, BYSTANDER
    if w3.eth.get_balance(other.address) < 10**17:
        stack.rpc("anvil_setBalance", other.address, hex(10**19))
    price = w3.eth.gas_price
    tx = {
        "to": stack.registry.address, "data": data, "gas": 2_000_000, "chainId": stack.chain.chain_id,
        "nonce": w3.eth.get_transaction_count(other.address, "pending"),
        "maxFeePerGas": price * 100 if priority else price * 2,
        "maxPriorityFeePerGas": price * 50 if priority else min(price, 10**9),
    }  # fmt: skip
    sent = w3.eth.send_raw_transaction(other.sign_transaction(tx).raw_transaction)
    if not priority:  # a priority copy is mined by the caller's next block
        w3.eth.wait_for_transaction_receipt(sent, timeout=30)


# ---------------------------------------------------------------- the run


def report(outcomes: list[Outcome]) -> None:
    table = Table(title="Faults, one at a time, against real serve / work / anvil / PostgreSQL processes")
    for column in (
        "scenario",
        "accepted",
        "recorded once",
        "lost",
        "dup",
        "stuck",
        "refused",
        "recovery s",
        "5xx",
        "ok",
        "note",
    ):
        table.add_column(column, justify="left" if column in ("scenario", "note") else "right")
    for o in outcomes:
        table.add_row(
            o.name, f"{o.accepted_documents} ({o.accepted_events:,})", f"{o.recorded_once:,}", str(o.lost),
            str(o.duplicated), str(o.stuck), f"{o.refused}/{o.expected_refused}",
            "-" if o.recovery_s is None else f"{o.recovery_s:.1f}", str(o.unexpected_5xx),
            "[green]yes[/]" if o.ok else "[red]NO[/]", o.note,
        )  # fmt: skip
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short version `make test` runs")
    parser.add_argument("--only", metavar="NAME", help="run only the scenarios whose name contains NAME")
    arguments = parser.parse_args()
    quick = arguments.quick
    outcomes: list[Outcome] = []
    throughput: dict[int, float] = {}
    proxy = DatabaseProxy()
    with (
        tempfile.TemporaryDirectory(prefix="tracechain-chaos-") as folder,
        temporary_database("tracechain_chaos") as url,
    ):
        workdir = Path(folder)
        timeout_hours = 8 / 3600 if quick else 15 / 3600
        progress(
            f"stack: anvil, PostgreSQL (through a proxy), serve and work; confirmations {3 if quick else 0}"
        )
        stack = Stack(
            workdir, url, proxy, confirmations=3 if quick else 0, signature_timeout_hours=timeout_hours
        )
        try:
            plan: list[tuple[str, Callable[[], Outcome]]] = (
                [
                    ("kill work", lambda: kill_work(stack, "kw")),
                    ("reorg 2", lambda: reorganisation(stack, "r2", 2)),
                    ("poisoned", lambda: poisoned_batch(stack, "pb")),
                    ("unsigned", lambda: unsigned_capture(stack, "us")),
                    ("50 clients", lambda: many_clients(stack, "c50", 50, 100, 10)),
                ]
                if quick
                else [
                    ("kill serve", lambda: kill_serve(stack, "ks")),
                    ("kill work", lambda: kill_work(stack, "kw")),
                    ("node crash", lambda: node_crash(stack, "nc")),
                    *((f"reorg {d}", (lambda d=d: reorganisation(stack, f"r{d}a", d))) for d in range(1, 6)),
                    ("database cut", lambda: database_cut(stack, "db", proxy)),
                    ("poisoned", lambda: poisoned_batch(stack, "pb")),
                    ("copied", lambda: copied_event(stack, "cp")),
                    ("unsigned", lambda: unsigned_capture(stack, "us")),
                ]
            )

            def wanted(name: str) -> bool:
                return not arguments.only or arguments.only in name

            plan = [(name, scenario) for name, scenario in plan if wanted(name)]
            for name, scenario in plan:
                progress(f"{name} ...")
                outcomes.append(scenario())
                progress(f"{name}: {'ok' if outcomes[-1].ok else 'NOT ok'} {outcomes[-1]}")
            if not quick:
                for clients in (4, 16, 200):
                    if wanted(f"{clients} clients"):
                        progress(f"{clients} concurrent clients ...")
                        outcome = many_clients(stack, f"c{clients}x", clients, 200, 20)  # the same work each
                        throughput[clients] = outcome.events_per_s or 0.0
                        outcomes.append(outcome)
                depths = [d for d in range(1, 6) if wanted(f"reorg {d}")]
                if depths:
                    progress("confirmations 3: serve and work restarted")
                    stack.restart_service(confirmations=3)
                for d in depths:
                    progress(f"reorg {d}, confirmations 3 ...")
                    outcomes.append(reorganisation(stack, f"r{d}b", d))
        finally:
            stack.stop()
    report(outcomes)
    best = max((throughput.get(c, 0.0) for c in (4, 16)), default=0.0)
    ratio = throughput[200] / best if 200 in throughput and best else None
    figures = {
        "scenarios": len(outcomes),
        "all_correct": all(o.correct for o in outcomes),
        "all_ok": all(o.ok for o in outcomes) and (ratio is None or ratio >= 0.9),
        "lost": sum(o.lost for o in outcomes),
        "duplicated": sum(o.duplicated for o in outcomes),
        "stuck": sum(o.stuck for o in outcomes),
        "max_recovery_s": max((o.recovery_s for o in outcomes if o.recovery_s is not None), default=None),
        "unexpected_5xx": sum(o.unexpected_5xx for o in outcomes),
        "throughput_200_clients_vs_best": None if ratio is None else round(ratio, 2),
        "events_per_s": {str(c): round(v, 1) for c, v in throughput.items()},
    }
    print(json.dumps(figures), flush=True)  # one line, never wrapped: tests/test_chaos.py reads it
    return 0 if figures["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
