"""The app factory: `create_app(settings)` builds the service; tests build their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager

from fastapi import FastAPI

from tracechain import __version__
from tracechain.api import docs_pages, problems
from tracechain.api.routes import (
    capture,
    discovery,
    events,
    grants,
    health,
    orders,
    participants,
    products,
    queries,
    settlement,
    shipments,
    signing,
    trace,
)
from tracechain.chain.connect import Chain, open_chain
from tracechain.config import Settings
from tracechain.services import Services


def create_app(
    settings: Settings,
    *,
    chain: Chain | None = None,
    run_workers: bool = True,
    services: Services | None = None,
) -> FastAPI:
    """The service on the chain the settings choose, or on `chain` when one is given (tests), or
    on `services` already started (`tracechain serve` starts them first, so that a failure to
    start is its own one-line error, not a server's traceback).

    With `run_workers`, the submitter and the indexer run in background threads; without, the
    caller drives them (`app.state.services.settle()`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            running = services or stack.enter_context(started_services(settings, chain))
            app.state.services = running
            if run_workers:
                running.start_workers()
            yield

    app = FastAPI(
        title="tracechain",
        version=__version__,
        summary="Supply-chain events in GS1 EPCIS 2.0, signed by who performed them and recorded on chain.",
        lifespan=lifespan,
        docs_url=None,  # docs_pages serves them, from this server rather than a CDN
        redoc_url=None,
    )
    problems.install(app)
    docs_pages.install(app)
    for module in (
        participants,
        grants,
        capture,
        products,
        shipments,
        events,
        queries,
        discovery,
        trace,
        orders,
        settlement,
        signing,
        health,
    ):
        app.include_router(module.router)
    return app


@contextmanager
def started_services(settings: Settings, chain: Chain | None = None) -> Iterator[Services]:
    """Services on `chain`, or on the chain the settings choose (opened here), until the block ends."""
    with ExitStack() as stack:
        if chain is None:
            chain = stack.enter_context(open_chain(settings))
        services = Services.start(settings, chain)
        stack.callback(services.stop)
        yield services
