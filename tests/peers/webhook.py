"""A real HTTP server that receives atende's result webhooks, for tests: it records every
request and answers with the statuses it is told to (then 200)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.peers.net import free_port


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, fail_with: list[int] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[Received] = []
        self.fail_with = list(fail_with or [])  # answered in turn before the 200s
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = receiver.fail_with.pop(0) if receiver.fail_with else 200
                    receiver.received.append(Received(time.time(), dict(self.headers), body,
                                                      status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._handler = Handler
        self._server: ThreadingHTTPServer | None = None  # not listening until start()

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    async def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.received)} webhook(s) received, wanted {count}")
            await asyncio.sleep(0.05)
        return list(self.received)


@contextmanager
def webhook_receiver(fail_with: list[int] | None = None) -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(fail_with)
    r.start()
    try:
        yield r
    finally:
        r.stop()
