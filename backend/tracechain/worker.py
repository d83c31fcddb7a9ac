"""`tracechain work`: the submitter, indexer and settler in a process of their own, beside `serve`.

In one process, the service's HTTP handling and capture share one interpreter lock with the workers
that send, index and settle, so the service uses one core however many the machine has. Run apart,
each gets its own. The two share the PostgreSQL database, whose advisory locks keep the relayer's
nonces and the subjects' heads consistent between them (`store.db.SharedLock`); `serve` migrates
the database and deploys the contracts, and the worker waits until it has. One process per database
runs the workers: a second `work` refuses to start.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import ExitStack

from rich.console import Console

from tracechain.chain.connect import open_chain
from tracechain.config import ChainMode, Settings
from tracechain.errors import ChainError, ConfigurationError, NotDeployedYet
from tracechain.services import Services


def run_worker(settings: Settings, console: Console, wait: float) -> None:
    """Until SIGTERM or Ctrl-C; waits up to `wait` seconds for `serve`'s node and contracts."""
    settings.require_secrets()
    if settings.chain is ChainMode.TESTER:
        raise ConfigurationError(
            "the in-process chain (chain=tester) lives inside serve: keep the workers there "
            "(TRACECHAIN_RUN_WORKERS=true)"
        )
    if not settings.effective_database_url.startswith("postgresql"):
        raise ConfigurationError(
            "a worker process needs PostgreSQL (TRACECHAIN_DATABASE_URL=postgresql://...): a SQLite "
            "database serves one process, so keep the workers in serve (TRACECHAIN_RUN_WORKERS=true)"
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ExitStack() as running:
        services = _when_serve_is_ready(settings, console, wait, running)
        running.callback(services.stop)
        services.start_workers()
        console.print(
            f"submitter, indexer{' and settler' if services.settlement else ''} running for registry "
            f"{services.registry.address} on chain {services.chain.chain_id}; Ctrl-C or SIGTERM stops them"
        )
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass


def _when_serve_is_ready(settings: Settings, console: Console, wait: float, running: ExitStack) -> Services:
    """The worker's services, once `serve`'s node answers and its contracts are deployed."""
    deadline = time.monotonic() + wait
    with console.status("waiting for `tracechain serve`") as status:
        while True:
            with ExitStack() as attempt:
                try:
                    chain = attempt.enter_context(open_chain(settings, start_node=False))
                    services = Services.start(settings, chain, deploys=False)
                except (NotDeployedYet, ChainError) as exc:
                    if time.monotonic() > deadline:
                        waited = f"{exc} after {wait:.0f} s: is `tracechain serve` running?"
                        raise NotDeployedYet(waited) from exc
                    status.update(f"waiting for `tracechain serve`: {exc}")
                else:
                    running.enter_context(attempt.pop_all())  # the chain stays open while it works
                    return services
            time.sleep(1)
