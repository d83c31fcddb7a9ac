"""The `tracechain` command as a user meets it: a failure to start is one line naming what to fix,
the traceback only with --debug; --version and --help say what it is and where settings come from."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tracechain import __version__

from .conftest import free_port

TRACECHAIN = str(Path(sys.executable).parent / "tracechain")


def run(*arguments: str, cwd: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACECHAIN_")} | environment
    return subprocess.run(
        [TRACECHAIN, *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_version_and_help_name_the_settings_variables(tmp_path: Path) -> None:
    assert run("--version", cwd=tmp_path).stdout.strip() == f"tracechain {__version__}"
    assert "TRACECHAIN_" in " ".join(run("--help", cwd=tmp_path).stdout.split())


@pytest.mark.parametrize(
    ("environment", "said"),
    [
        pytest.param(
            {"TRACECHAIN_CONFIRMATIONS": "three"},
            "settings: TRACECHAIN_CONFIRMATIONS: Input should be a valid integer",
            id="a setting that is wrong",
        ),
        pytest.param(
            {
                "TRACECHAIN_DEMO_MODE": "true",
                "TRACECHAIN_CHAIN": "tester",
                "TRACECHAIN_DATABASE_URL": f"postgresql://root@127.0.0.1:{free_port()}/none",
            },
            "the database did not answer",
            id="no database",
        ),
        pytest.param({}, "TRACECHAIN_MASTER_SECRET must be set", id="no secrets"),
    ],
)
def test_a_failure_to_start_is_one_line_naming_what_to_fix(
    tmp_path: Path, environment: dict[str, str], said: str
) -> None:
    failed = run("serve", cwd=tmp_path, **environment)

    assert failed.returncode == 2
    lines = [line for line in failed.stdout.splitlines() + failed.stderr.splitlines() if line.strip()]
    assert said in " ".join(" ".join(lines).split())
    assert "Traceback" not in failed.stdout + failed.stderr
    assert len(lines) <= 4  # the error (wrapped at most once or twice) and the hint


def test_serve_listens_on_the_port_the_setting_names(tmp_path: Path) -> None:
    port = free_port()
    environment = {"TRACECHAIN_PORT": str(port), "TRACECHAIN_DEMO_MODE": "true", "TRACECHAIN_CHAIN": "tester"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACECHAIN_")} | environment
    serving = subprocess.Popen(
        [TRACECHAIN, "serve", "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert serving.poll() is None, "serve stopped"
            assert time.monotonic() < deadline, "serve did not answer on TRACECHAIN_PORT"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        serving.terminate()
        printed, _ = serving.communicate(timeout=30)
    assert f"serving at http://127.0.0.1:{port}" in printed


def test_verify_without_a_node_says_so_in_one_line(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text("{}")
    url = f"http://127.0.0.1:{free_port()}"
    failed = run("verify", str(bundle), "--rpc", url, cwd=tmp_path)
    assert failed.returncode == 2
    assert failed.stdout.strip() == f"no node answers at {url}" and not failed.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    failed = run("--debug", "serve", cwd=tmp_path, TRACECHAIN_CONFIRMATIONS="three")
    assert failed.returncode != 0 and "Traceback" in failed.stderr


@pytest.mark.anvil
def test_node_stops_on_sigterm_and_keeps_its_chain(tmp_path: Path) -> None:
    """A process manager stops services with SIGTERM: the node used to hang on it."""
    port = free_port()
    environment = {"TRACECHAIN_ANVIL_PORT": str(port), "TRACECHAIN_DATA_DIR": str(tmp_path / "data")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACECHAIN_")} | environment
    url = f"http://127.0.0.1:{port}"

    def rpc(method: str, *params: object) -> object:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        return httpx.post(url, json=body, timeout=5).json()["result"]

    def started() -> subprocess.Popen[str]:
        node = subprocess.Popen(
            [TRACECHAIN, "node"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while True:
            assert node.poll() is None and time.monotonic() < deadline, "the node did not start"
            try:
                rpc("eth_blockNumber")
                return node
            except httpx.TransportError:
                time.sleep(0.2)

    node = started()
    rpc("anvil_mine", hex(7))
    node.send_signal(signal.SIGTERM)
    printed, _ = node.communicate(timeout=30)  # a hang fails here
    assert node.returncode == 0 and "state saved" in printed

    node = started()
    try:
        assert int(str(rpc("eth_blockNumber")), 16) >= 7  # the chain came back from the state file
    finally:
        node.send_signal(signal.SIGTERM)
        node.communicate(timeout=30)
