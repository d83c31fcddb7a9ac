"""A real webhook receiver on 127.0.0.1 for subscription tests: an HTTP server in a thread that
records every POST (headers, body, when) and answers with the statuses it is told to."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """time.monotonic() when it arrived."""

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def delivery_id(self) -> str:
        return self.headers["idempotency-key"]

    @property
    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        return found

    def signed_with(self, token: str) -> bool:
        """Whether its GS1-Signature is HMAC-SHA256 of its body under `token`."""
        expected = "sha256=" + hmac.new(token.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("gs1-signature", ""), expected)


@dataclass
class Receiver:
    """What arrived, in order. `answers` are the statuses of the next POSTs (then 200);
    `delay_s` holds each answer back (a slow receiver); `held`, while it is not set, holds every
    answer back (a tarpit, until the test lets go)."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    held: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, request: BaseHTTPRequestHandler, body: bytes) -> int:
        with self.lock:
            headers = {name.lower(): value for name, value in request.headers.items()}
            self.received.append(Received(request.path, headers, body, time.monotonic()))
            return self.answers.pop(0) if self.answers else 200

    def accepted(self) -> list[Received]:
        """Each delivery id once: what a receiver deduping on it has acted on (its 2xx answers
        are not known here, so the first copy of each id stands for it)."""
        seen: dict[str, Received] = {}
        with self.lock:
            for received in self.received:
                seen.setdefault(received.delivery_id, received)
        return list(seen.values())

    def wait_for(self, done: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                now = list(self.received)
            if done(now):
                return now
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver still waiting after {timeout} s; got {len(now)} POSTs")
            time.sleep(0.05)


@contextmanager
def running_receiver(path: str = "/hook") -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.take(self, body)
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            if receiver.held is not None:
                receiver.held.wait(timeout=120)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}{path}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
