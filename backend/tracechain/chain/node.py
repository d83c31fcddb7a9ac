"""The managed node: an anvil process tracechain starts, persists in its data folder and stops."""

from __future__ import annotations

import platform
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from web3 import HTTPProvider, Web3

from tracechain.config import SOURCE_ROOT, Settings
from tracechain.errors import NodeStartError

# The well-known first account of anvil's default mnemonic ("test test ... junk"): funded on every
# local anvil, public to the world, so it pays for transactions on local chains only.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

_NPM_PLATFORMS = {
    ("Linux", "x86_64"): "linux-amd64",
    ("Linux", "aarch64"): "linux-arm64",
    ("Darwin", "arm64"): "darwin-arm64",
    ("Darwin", "x86_64"): "darwin-amd64",
}


def find_anvil_binary(settings: Settings) -> Path:
    """The anvil binary: the one in settings, else the pinned npm package's, else one on PATH."""
    if settings.anvil_binary:
        return settings.anvil_binary
    suffix = _NPM_PLATFORMS.get((platform.system(), platform.machine()))
    if suffix:
        candidate = SOURCE_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{suffix}" / "bin" / "anvil"
        if candidate.is_file():
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise NodeStartError(
        "no anvil binary: run `make install` (it installs the npm package @foundry-rs/anvil), "
        "set TRACECHAIN_ANVIL_BINARY, or choose another chain with TRACECHAIN_CHAIN"
    )


def node_answers(url: str) -> bool:
    try:
        return Web3(HTTPProvider(url, request_kwargs={"timeout": 1})).is_connected()
    except Exception:  # any failure to answer means "not there"
        return False


class AnvilNode:
    """One anvil process. With a state file it loads the chain at start and saves it every second
    and on stop, so a restart keeps every block, receipt and log."""

    def __init__(
        self,
        binary: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8545,
        chain_id: int = 31337,
        state_file: Path | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.binary = binary
        self.host = host
        self.port = port
        self.chain_id = chain_id
        self.state_file = state_file
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AnvilNode:
        return cls(
            find_anvil_binary(settings),
            host=settings.anvil_host,
            port=settings.anvil_port,
            chain_id=settings.chain_id,
            state_file=settings.anvil_state_file,
            log_file=settings.data_dir / "anvil.log",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process id of the node started here (None if not started here): the benchmark
        counts its CPU time."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        command = [
            str(self.binary),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--hardfork",
            "prague",
        ]
        if self.state_file:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            command += [
                "--state",
                str(self.state_file),
                "--state-interval",
                "1",
            ]
        return command

    def start(self, timeout: float = 30.0) -> None:
        if node_answers(self.url):
            raise NodeStartError(f"something already answers at {self.url}; stop it or choose another port")
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise NodeStartError(f"cannot run anvil at {self.binary}: {exc.strerror}") from exc
        finally:
            if not isinstance(log, int):
                log.close()  # the child holds its own copy of the descriptor
        deadline = time.monotonic() + timeout
        while not node_answers(self.url):
            if self._process.poll() is not None:
                raise NodeStartError(
                    f"anvil exited with code {self._process.returncode}; see {self.log_file}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise NodeStartError(f"anvil did not answer at {self.url} within {timeout:.0f} s")
            time.sleep(0.05)

    def wait(self) -> int:
        """Block until the process ends (for `tracechain node`)."""
        assert self._process is not None, "start() first"
        return self._process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully, so anvil writes its state file one last time."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> AnvilNode:
        self.start()
        return self

    def __exit__(self, *_: object | TracebackType) -> None:
        self.stop()
