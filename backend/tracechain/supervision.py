"""How the background workers (submitter, indexer, settler) run, fail, recover and show they live.

A worker round that fails (the node away, the database restarting, another chain) is retried: the
log says so once, with the reason in one line, says again every minute while it lasts, and says
when it is over and how long it took; tracebacks only at DEBUG. A heartbeat row per worker in the
database tells `GET /ready` (in `serve`, whichever process runs the workers) that it lives, how it
fares and how far the indexer is.

On PostgreSQL one process per database runs the workers, holding an advisory lock on a connection
of its own (`store.db.claim`). If that connection is lost (a database restart), so is the lock, and
another process may take it: the workers then pause at once and try to take it back; they go on
only if they get it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from tracechain.store import queries
from tracechain.store.db import SharedLock, claim, ping, transaction

log = logging.getLogger("tracechain.workers")

REMIND_EVERY_S = 60.0
"""While a worker keeps failing, how often the log says so again."""
BEAT_EVERY_S = 2.0
"""How often the heartbeat is written and the workers' lock checked."""
STALE_AFTER_S = 15.0
"""A heartbeat older than this: the worker, or the process running it, is not working."""


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


@dataclass
class WorkerState:
    """How one worker fares: failing since when, how often, why."""

    name: str
    failing_since: float | None = None
    failures: int = 0
    error: str | None = None
    reminded_at: float = 0.0
    last_ok: float = field(default_factory=time.monotonic)

    def succeeded(self) -> None:
        if self.failing_since is not None:
            log.warning(
                "%s: working again after %.1f s (%d failed rounds)",
                self.name,
                time.monotonic() - self.failing_since,
                self.failures,
            )
        self.failing_since, self.failures, self.error = None, 0, None
        self.last_ok = time.monotonic()

    def failed(self, exc: Exception) -> None:
        now, reason = time.monotonic(), one_line(exc)
        log.debug("%s round failed", self.name, exc_info=exc)
        if self.failing_since is None:
            self.failing_since, self.reminded_at = now, now
            log.warning("%s: %s; retrying", self.name, reason)
        elif reason != self.error:
            log.warning("%s: now %s; retrying", self.name, reason)
        elif now - self.reminded_at > REMIND_EVERY_S:
            self.reminded_at = now
            log.warning(
                "%s: still failing after %.0f s (%d rounds): %s",
                self.name,
                now - self.failing_since,
                self.failures + 1,
                reason,
            )
        self.failures += 1
        self.error = reason


class Supervisor:
    """Runs the workers in threads, beats their hearts into the database and keeps their lock."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        workers: list[tuple[str, Callable[[], int]]],
        poll_interval: float,
        indexed_block: Callable[[], int | None] = lambda: None,
        retry_interval: float = 1.0,
    ) -> None:
        self.engine, self.sessions, self.poll_interval = engine, sessions, poll_interval
        self.retry_interval = max(poll_interval, retry_interval)
        """How long a failing worker waits before its next round."""
        self.workers = workers
        self.states = {name: WorkerState(name) for name, _ in workers}
        self.indexed_block = indexed_block
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while the workers' lock is not ours
        self._claim: Connection | None = None
        self._held_elsewhere = False
        self._threads: list[threading.Thread] = []

    def start(self) -> bool:
        """Start the workers; False (and nothing started) if another process holds their lock."""
        if self.engine.dialect.name == "postgresql":
            self._claim = claim(self.engine, SharedLock.WORKERS)
            if self._claim is None:
                return False
        self._running.set()
        for name, step in self.workers:
            self._spawn(f"tracechain-{name}", self._loop, name, step)
        self._spawn("tracechain-heartbeat", self._beat)
        return True

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake paused loops so they see the stop
        for thread in self._threads:
            thread.join(timeout=10)
        if self._claim is not None:
            self._claim.close()  # ends its session: another process may run the workers now

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _loop(self, name: str, step: Callable[[], int]) -> None:
        state = self.states[name]
        while not self._stop.is_set():
            self._running.wait()
            if self._stop.is_set():
                return
            try:
                busy = step()
            except Exception as exc:  # a worker outlives a node restart or a database hiccup
                state.failed(exc)
                busy = 0
            else:
                state.succeeded()
            if not busy:
                self._stop.wait(
                    self.poll_interval if state.failing_since is None else max(self.poll_interval, 1.0)
                )

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_EVERY_S):
            self._keep_lock()
            try:
                with transaction(self.sessions) as session:
                    for name, state in self.states.items():
                        queries.beat(
                            session, name, self.process, datetime.now(UTC), state.error,
                            self.indexed_block() if name == "indexer" else None,
                        )  # fmt: skip
            except Exception as exc:  # the database is away: the workers' own rounds say so
                log.debug("heartbeat not written: %s", one_line(exc))

    def _keep_lock(self) -> None:
        """The lock lives as long as its connection: if that is gone, pause, and go on only once
        the lock is taken back (another process may have taken it meanwhile: then wait for it)."""
        if self.engine.dialect.name != "postgresql":
            return
        if self._claim is not None:
            try:
                ping(self._claim)
                return
            except Exception as exc:
                log.error(
                    "lost the workers' lock with its database connection (%s); pausing them", one_line(exc)
                )
                self._running.clear()
                with contextlib.suppress(Exception):  # already gone with its connection
                    self._claim.close()
                self._claim = None
        try:
            self._claim = claim(self.engine, SharedLock.WORKERS)
        except Exception:  # the database is still away
            return
        if self._claim is None:
            if not self._held_elsewhere:
                log.error("another process runs the workers now; these wait until it stops")
                self._held_elsewhere = True
            return
        self._held_elsewhere = False
        self._running.set()
        log.warning("took the workers' lock back; the workers go on")
