"""The `tracechain` command."""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console

from tracechain.config import Settings
from tracechain.errors import TracechainError

app = typer.Typer(
    help="Supply-chain traceability on an EVM chain.",
    no_args_is_help=True,
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
    console.print("Ctrl-C stops it and saves the state.")
    signal.signal(signal.SIGTERM, lambda *_: anvil.stop())
    try:
        anvil.wait()
    except KeyboardInterrupt:
        anvil.stop()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    import uvicorn

    from tracechain.api.app import create_app

    settings = Settings()
    settings.require_secrets()
    uvicorn.run(create_app(settings), host=host, port=port)


@app.command()
def demo() -> None:
    """Record a product's journey from Shenzhen to Amsterdam and print its verified history."""
    from tracechain.demo import run_demo

    if not run_demo(Settings(), console):
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except TracechainError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(2)
