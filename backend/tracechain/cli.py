"""The `tracechain` command."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tracechain.config import Settings
from tracechain.errors import ChainError, TracechainError

app = typer.Typer(
    help=(
        "Supply-chain traceability on an EVM chain. Settings come from TRACECHAIN_* environment "
        "variables or a .env file (README: Settings), e.g. TRACECHAIN_DATABASE_URL, TRACECHAIN_RPC_URL, "
        "TRACECHAIN_ADMIN_TOKEN."
    ),
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped or in CI, rich would wrap tables at 80 columns; a terminal gets its own width.
console = Console(width=None if sys.stdout.isatty() else 120)


@app.command()
def compile(
    check: bool = typer.Option(
        False, "--check", help="Exit 1 if the shipped artifacts differ from the sources."
    ),
) -> None:
    """Compile contracts/ into the artifacts shipped inside the package."""
    from tracechain.chain.compiler import ARTIFACTS_DIR, compile_contracts, stale_artifacts, write_artifacts

    settings = Settings()
    with console.status("compiling contracts"):
        compiled = compile_contracts(settings.solc_binary)
    stale = stale_artifacts(compiled)
    if check:
        if stale:
            console.print(f"[red]stale artifacts:[/] {', '.join(stale)}; run `tracechain compile`")
            raise typer.Exit(1)
        console.print("artifacts are up to date")
        return
    write_artifacts(compiled)
    console.print(f"wrote {len(compiled.files)} files to {ARTIFACTS_DIR}" + ("" if stale else " (unchanged)"))


@app.command()
def node() -> None:
    """Run the managed anvil node in the foreground, its state kept in the data folder."""
    from tracechain.chain.node import AnvilNode

    settings = Settings()
    anvil = AnvilNode.from_settings(settings)
    anvil.start()
    console.print(f"anvil listening at {anvil.url} (chain id {anvil.chain_id}), state in {anvil.state_file}")
    console.print("Ctrl-C (or SIGTERM) stops it and saves the state.")

    def interrupt(*_: object) -> None:
        # Stopping here, inside wait(), would wait for the process under the lock wait() holds.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        anvil.wait()
    except KeyboardInterrupt:
        anvil.stop()
        console.print(f"stopped; state saved in {anvil.state_file}")


@app.command()
def serve(
    host: str | None = typer.Option(
        None, help="Interface to listen on [default: TRACECHAIN_HOST or 127.0.0.1]."
    ),
    port: int | None = typer.Option(None, help="Port to listen on [default: TRACECHAIN_PORT or 8000]."),
    log_level: str = typer.Option("info", help="uvicorn's: warning leaves out a line per request."),
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    import uvicorn

    from tracechain.api.app import create_app, started_services

    settings = Settings()
    settings.require_secrets()
    host, port = host or settings.host, port or settings.port
    with console.status("starting: database, node, contracts"), started_services(settings) as services:
        service = create_app(settings, run_workers=settings.run_workers, services=services)
        console.print(f"serving at http://{host}:{port} (API docs at /docs and /redoc)")
        uvicorn.run(service, host=host, port=port, log_level=log_level)


@app.command()
def work(
    wait: float = typer.Option(120, help="Seconds to wait for `serve` to start the node and deploy."),
) -> None:
    """Run the submitter, indexer and settler, for a `serve` started with TRACECHAIN_RUN_WORKERS=false."""
    from tracechain.worker import run_worker

    run_worker(Settings(), console, wait)


@app.command()
def verify(
    bundle: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A proof bundle (GET /trace/{epc}/proof).")
    ],
    rpc: Annotated[
        str | None,
        typer.Option(help="JSON-RPC URL of a node of the bundle's chain (default: the managed node)."),
    ] = None,
) -> None:
    """Check a proof bundle against the chain, trusting nothing else; exit 0 only if all of it holds."""
    import json

    from rich.table import Table

    from tracechain.chain.connect import node_at
    from tracechain.verification import verify_bundle

    settings = Settings()
    url = rpc or settings.rpc_url or f"http://{settings.anvil_host}:{settings.anvil_port}"
    try:
        w3 = node_at(url, timeout_s=30)
    except ChainError:
        console.print(f"[red]no node answers at {url}[/]")
        raise typer.Exit(2) from None
    try:
        claims = json.loads(bundle.read_text())
    except json.JSONDecodeError as exc:
        console.print(f"[red]{bundle} is not JSON: {exc}[/]")
        raise typer.Exit(1) from exc
    result = verify_bundle(claims, w3)
    partial = claims.get("disclosure") == "partial"
    table = Table(title=f"Proof of {claims.get('epc', '?')}" + (" (partial disclosure)" if partial else ""))
    columns = ("#", "event", "subject", "kind", "block", "result")
    for column in (*columns, "withheld fields") if partial else columns:
        table.add_column(column)
    for number, check in enumerate(result.records, 1):
        verdict = "[green]verified[/]" if not check.problems else "[red]" + "; ".join(check.problems) + "[/]"
        if check.notes:
            verdict += "".join(f"\n[yellow]{note}[/]" for note in check.notes)
        row = [str(number), check.biz_step, check.subject_epc, check.kind, str(check.block), verdict]
        if partial:
            row.append(", ".join(check.withheld) or "none")
        table.add_row(*row)
    console.print(table)
    if partial:
        console.print(
            "A partial bundle: each withheld field is proven to be part of what was signed and "
            "recorded, its value not shown."
        )
    for problem in result.problems:
        console.print(f"[red]{problem}[/]")
    console.print("[bold green]verified[/]" if result.verified else "[bold red]NOT verified[/]")
    if not result.verified:
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Record a product's journey from Shenzhen to Amsterdam and print its verified history."""
    from tracechain.demo import run_demo

    if not run_demo(Settings(), console):
        raise typer.Exit(1)


_DEBUG = False


@app.callback(invoke_without_command=True)
def _options(
    context: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error, not only its line."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    global _DEBUG
    _DEBUG = debug
    if version:
        from tracechain import __version__

        console.print(f"tracechain {__version__}")
        raise typer.Exit()
    if context.invoked_subcommand is None:
        console.print(context.get_help())
        raise typer.Exit()


def main() -> None:
    """Every failure to start or run is one line on stderr (`--debug` for the traceback)."""
    try:
        app()
    except Exception as exc:
        if _DEBUG:
            raise
        console.print(f"[red]error:[/] {_explained(exc)}", highlight=False)
        console.print("(run with --debug for the traceback)", style="dim")
        sys.exit(2)


def _explained(exc: Exception) -> str:
    """What went wrong, in one line, naming the setting or the service at fault where known."""
    from pydantic import ValidationError
    from requests.exceptions import ConnectionError as NodeConnectionError
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, TracechainError):
        return str(exc)
    if isinstance(exc, ValidationError):
        wrong = [f"TRACECHAIN_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
        return "settings: " + "; ".join(wrong)
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return f"the database did not answer ({reason}): check TRACECHAIN_DATABASE_URL"
    if isinstance(exc, NodeConnectionError):
        return "the node did not answer: check TRACECHAIN_RPC_URL (or that the managed node started)"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
