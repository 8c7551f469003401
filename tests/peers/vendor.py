"""A local HTTP server that answers like a cloud AI vendor, for tests: each request is
recorded and answered by a function of the test's choosing, with exact wire bytes (an event
stream sent in pieces, an error status, a stream cut in the middle, or silence)."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.peers.net import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stream:
    """``text/event-stream``: each item of ``events`` is one event's exact text (e.g.
    ``'data: {...}\\n\\n'``), written as its own chunk ``gap_s`` apart. ``cut_after``
    closes the connection after that many events, mid-reply."""

    events: list[str]
    gap_s: float = 0.0
    cut_after: int | None = None


@dataclass
class Audio:
    """Raw audio as a streamed voice sends it: ``pcm`` in chunks of ``chunk`` bytes (odd
    sizes split samples between chunks, as real streams do), ``gap_s`` apart.
    ``cut_after`` closes the connection after that many chunks."""

    pcm: bytes
    chunk: int = 3201
    gap_s: float = 0.0
    cut_after: int | None = None
    content_type: str = "audio/pcm"

    def pieces(self) -> list[bytes]:
        return [self.pcm[i:i + self.chunk] for i in range(0, len(self.pcm), self.chunk)]


@dataclass
class Status:
    code: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Silence:
    """Accept the request and send nothing for ``seconds``."""

    seconds: float


Answer = Stream | Audio | Status | Silence


def data_events(*objects: Any, done: bool = False) -> list[str]:
    """``data: <json>`` events, and OpenAI's closing ``data: [DONE]`` if ``done``."""
    out = [f"data: {json.dumps(o)}\n\n" for o in objects]
    return out + (["data: [DONE]\n\n"] if done else [])


def named_events(*pairs: tuple[str, Any]) -> list[str]:
    return [f"event: {name}\ndata: {json.dumps(obj)}\n\n" for name, obj in pairs]


class VendorServer:
    def __init__(self, answer: Callable[[Request], Answer]) -> None:
        self.answer = answer
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Request] = []
        self.finished_at: list[float] = []  # time.monotonic() each streamed answer ended
        self.abandoned = 0  # streamed answers the client stopped reading (hung up on)
        self._lock = threading.Lock()
        vendor = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                vendor._serve(self.request, self.rfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler,
                                                       bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True

    def __enter__(self) -> VendorServer:
        self._server.server_bind()
        self._server.server_activate()
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, sock: socket.socket, rfile: Any) -> None:
        while True:  # keep-alive: clients reuse the connection for the next turn
            line = rfile.readline()
            if not line:
                return
            method, path, _ = line.decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (h := rfile.readline().decode().rstrip("\r\n")):
                name, _, value = h.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = rfile.read(int(headers.get("content-length", "0")))
            req = Request(method, path, headers, body)
            with self._lock:
                self.requests.append(req)
            if not self._reply(sock, self.answer(req)):
                return

    def _reply(self, sock: socket.socket, answer: Answer) -> bool:
        """Send ``answer``; False when the connection is not to be used again."""
        if isinstance(answer, Silence):
            time.sleep(answer.seconds)
            return False
        if isinstance(answer, Status):
            body = answer.body.encode()
            extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
            sock.sendall(f"HTTP/1.1 {answer.code} X\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
            return True
        if isinstance(answer, Audio):
            ctype, pieces = answer.content_type, answer.pieces()
        else:
            ctype, pieces = "text/event-stream", [e.encode() for e in answer.events]
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n"
                     "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
                     .encode())
        for i, data in enumerate(pieces):
            if answer.cut_after is not None and i >= answer.cut_after:
                sock.shutdown(socket.SHUT_RDWR)
                return False
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            except OSError:
                with self._lock:
                    self.abandoned += 1
                return False  # the client went away (it was interrupted)
            if answer.gap_s:
                time.sleep(answer.gap_s)
        sock.sendall(b"0\r\n\r\n")
        with self._lock:
            self.finished_at.append(time.monotonic())
        return True


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of OpenAI's stream."""
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "test-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def openai_reply(text: str, *calls: tuple[str, dict[str, Any]], gap_s: float = 0.0,
                 words_per_chunk: int = 3) -> Stream:
    """A streamed chat completion as OpenAI sends it: ``text`` a few words per chunk, then
    each tool call (id ``call_<name>``) whole, the finish reason and ``[DONE]``."""
    words = text.split(" ") if text else []
    parts = [openai_chunk({"content": " ".join(words[i:i + words_per_chunk]) + " "})
             for i in range(0, len(words), words_per_chunk)]
    parts += [openai_chunk({"tool_calls": [{
        "index": i, "id": f"call_{name}", "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)}}]})
        for i, (name, args) in enumerate(calls)]
    parts.append(openai_chunk({}, "tool_calls" if calls else "stop"))
    return Stream(data_events(*parts, done=True), gap_s=gap_s)
