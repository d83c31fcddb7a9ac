"""The app factory: `create_app(settings)` builds the service; tests build their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager

from fastapi import FastAPI

from tracechain import __version__
from tracechain.api import problems
from tracechain.api.routes import (
    capture,
    events,
    orders,
    participants,
    products,
    settlement,
    shipments,
    signing,
    trace,
)
from tracechain.api.services import Services
from tracechain.chain.connect import Chain, open_chain
from tracechain.config import Settings


def create_app(settings: Settings, *, chain: Chain | None = None, run_workers: bool = True) -> FastAPI:
    """The service on the chain the settings choose, or on `chain` when one is given (tests).

    With `run_workers`, the submitter and the indexer run in background threads; without, the
    caller drives them (`app.state.services.settle()`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with _services(settings, chain) as services:
            app.state.services = services
            if run_workers:
                services.start_workers()
            yield

    app = FastAPI(
        title="tracechain",
        version=__version__,
        summary="Supply-chain events in GS1 EPCIS 2.0, signed by who performed them and recorded on chain.",
        lifespan=lifespan,
    )
    problems.install(app)
    for module in (participants, capture, products, shipments, events, trace, orders, settlement, signing):
        app.include_router(module.router)
    return app


@contextmanager
def _services(settings: Settings, chain: Chain | None) -> Iterator[Services]:
    with ExitStack() as stack:
        if chain is None:
            chain = stack.enter_context(open_chain(settings))
        services = Services.start(settings, chain)
        stack.callback(services.stop)
        yield services
