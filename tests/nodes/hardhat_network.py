"""Hardhat Network's `hardhat node`, from the pinned npm package, on a local port for one test session.

Its development accounts come from the same public mnemonic as anvil's ("test test ... junk"), so its
first account's key is ANVIL_DEV_KEY.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tracechain.chain.node import ANVIL_DEV_KEY, node_answers
from tracechain.config import SOURCE_ROOT

HARDHAT_DEV_KEY = ANVIL_DEV_KEY
CONFIG_FOLDER = Path(__file__).parent / "hardhat"
HARDHAT = SOURCE_ROOT / "node_modules" / ".bin" / "hardhat"


class HardhatNetworkNode:
    def __init__(self, port: int, log_file: Path) -> None:
        self.port = port
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HardhatNetworkNode:
        command = [str(HARDHAT), "node", "--hostname", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=CONFIG_FOLDER, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        give_up = time.monotonic() + 60
        while not node_answers(self.url):
            if self._process.poll() is not None or time.monotonic() > give_up:
                self.__exit__()
                raise RuntimeError(f"hardhat node did not start: {self.log_file.read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def __exit__(self, *_: object | TracebackType) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
