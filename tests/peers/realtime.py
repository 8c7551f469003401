"""A local server that speaks OpenAI Realtime's WebSocket protocol (GA event names), for
tests: it checks the bearer key and the session settings, listens to the audio with a simple
energy VAD (as the real server's ``server_vad`` would: ``speech_started``/``speech_stopped``,
then a transcript and a reply), answers each response with the test's next scripted reply,
and records what the client sent. It runs on its own thread and event loop, so in-process
sessions and a separate atende process can both use it."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from atende.media import g711
from atende.media.resample import resample
from tests.peers.wsserver import WsServer


@dataclass
class Reply:
    """What the model says (its transcript and 16 kHz audio) and the tools it calls."""

    text: str = ""
    pcm: bytes = b""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stall_s: float = 0.0  # the vendor stops sending this long halfway (a slow network)


@dataclass
class Connection:
    """What one client connection did."""

    headers: Headers
    path: str
    events: list[dict[str, Any]] = field(default_factory=list)  # without audio payloads
    audio_bytes: int = 0  # of input_audio_buffer.append, decoded from base64
    speech_started: list[float] = field(default_factory=list)  # time.monotonic()
    interrupted: list[float] = field(default_factory=list)  # when the server said so
    replies_sent: int = 0
    late_deltas: int = 0  # audio sent after the caller started speaking over it

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


class FakeServer(WsServer):
    """A vendor's server on its own thread and loop: what every dialect shares (scripted
    replies, transcripts of the caller's turns, refusals, pacing, an energy VAD)."""

    CHUNK_MS = 100

    def __init__(self, replies: list[Reply], heard: list[str] | None = None,
                 api_key: str = "sk-test", refuse: int | None = None,
                 drop_after: int | None = None, fail_reply: int | None = None,
                 threshold: float = 600.0, pace_s: float = 0.0, late: int = 2) -> None:
        super().__init__()
        self.replies = list(replies)
        self.heard = list(heard or [])  # transcripts of the caller's turns, in order
        self.api_key = api_key
        self.refuse = refuse  # answer the handshake with this HTTP status
        self.drop_after = drop_after  # close the socket after this many replies
        self.fail_reply = fail_reply  # this reply (1-based) ends as a failed response
        self.threshold = threshold
        # pace_s: seconds between audio deltas (0: all at once). A reply being streamed is
        # cancelled when the caller starts speaking, after ``late`` more deltas (in flight).
        self.pace_s = pace_s
        self.late = late
        self.connections: list[Connection] = []

    @property
    def last(self) -> Connection:
        return self.connections[-1]

    def _connection(self, ws: ServerConnection) -> Connection:
        """The record of a client that just connected."""
        assert ws.request is not None
        rec = Connection(ws.request.headers, ws.request.path)
        self.connections.append(rec)
        return rec

    def _chunks(self, wire: bytes, ms: int) -> list[bytes]:
        """``wire`` (``ms`` long) cut into pieces of about CHUNK_MS, on sample bounds."""
        step = len(wire) * self.CHUNK_MS // max(1, ms)
        step = max(2, step - step % 2)
        return [wire[i:i + step] for i in range(0, len(wire), step)]

    async def _reply(self, ws: ServerConnection, rec: Connection, state: StreamState
                     ) -> None:
        """Stream the next scripted reply (in the background when paced, so that the
        caller can be heard speaking over it)."""
        if not self.replies:
            await self._no_reply(ws)
            return
        state.cancel.clear()
        stream = self._stream(ws, rec, state, self.replies.pop(0))
        if self.pace_s:
            state.tasks.add(asyncio.get_running_loop().create_task(stream))
        else:
            await stream

    async def _no_reply(self, ws: ServerConnection) -> None:
        pass

    async def _stream(self, ws: ServerConnection, rec: Connection, state: Any,
                      reply: Reply) -> None:
        raise NotImplementedError

    async def _paced(self, rec: Connection, state: StreamState, chunks: list[bytes],
                     stall_s: float = 0.0) -> AsyncIterator[bytes]:
        """``chunks`` to send, one every ``pace_s`` (and a pause of ``stall_s`` halfway);
        once the caller spoke over them, only the ``late`` ones already on their way (then
        ``state.cut`` is set)."""
        late = None
        for i, chunk in enumerate(chunks):
            if stall_s and i == len(chunks) // 2:
                await asyncio.sleep(stall_s)
            if self.pace_s and state.cancel.is_set():
                late = self.late if late is None else late - 1
                if late <= 0:
                    state.cut = True
                    return
                rec.late_deltas += 1
            yield chunk
            if self.pace_s:
                await asyncio.sleep(self.pace_s)

    def _hear(self, rec: Connection, vad: EnergyVad, pcm: np.ndarray, rate: int
              ) -> str | None:
        """The VAD's verdict on a frame: "started", "stopped" or None."""
        verdict = vad.feed(pcm, rate, self.threshold)
        if verdict == "started":
            rec.speech_started.append(time.monotonic())
        return verdict


@dataclass
class EnergyVad:
    """40 ms of energy starts speech; ``silence_ms`` of quiet ends it."""

    silence_ms: int = 500
    audio_ms: int = 0
    voiced_ms: int = 0
    quiet_ms: int = 0
    speaking: bool = False

    def feed(self, pcm: np.ndarray, rate: int, threshold: float) -> str | None:
        voiced = bool(pcm.size) and float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) \
            > threshold
        ms = pcm.size * 1000 // rate
        self.audio_ms += ms
        if voiced:
            self.voiced_ms += ms
            self.quiet_ms = 0
        else:
            self.quiet_ms += ms
            if not self.speaking:
                self.voiced_ms = 0
        if not self.speaking and self.voiced_ms >= 40:
            self.speaking = True
            return "started"
        if self.speaking and self.quiet_ms >= self.silence_ms:
            self.speaking = False
            self.voiced_ms = 0
            return "stopped"
        return None


@dataclass
class StreamState:
    """Per connection: the VAD, and the replies being streamed."""

    vad: EnergyVad = field(default_factory=EnergyVad)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)  # the caller spoke
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # paced replies
    cut: bool = False  # the last reply stopped because the caller spoke over it


class FakeRealtime(FakeServer):
    """OpenAI Realtime."""

    def _check(self, conn: ServerConnection, request: Request) -> Response | None:
        if (refused := self._refused(conn)) is not None:
            return refused
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return conn.respond(HTTPStatus.UNAUTHORIZED, "bad key\n")
        if not request.path.startswith("/v1/realtime?model="):
            return conn.respond(HTTPStatus.NOT_FOUND, "no such path\n")
        return None

    async def _session(self, ws: ServerConnection) -> None:
        rec = self._connection(ws)
        state = _State()
        await _send(ws, {"type": "session.created", "session": {"type": "realtime"}})
        try:
            async for message in ws:
                ev = json.loads(message)
                if ev["type"] == "input_audio_buffer.append":
                    pcm = state.decode(ev["audio"])
                    rec.audio_bytes += len(base64.b64decode(ev["audio"]))
                    await self._listen(ws, rec, state, pcm)
                    continue
                rec.events.append(ev)
                await self._client_event(ws, rec, state, ev)
        except ConnectionClosed:
            pass

    async def _client_event(self, ws: ServerConnection, rec: Connection, state: _State,
                            ev: dict[str, Any]) -> None:
        kind = ev["type"]
        if kind == "session.update":
            session = ev["session"]
            fmt = session["audio"]["input"]["format"]
            state.codec = fmt["type"].removeprefix("audio/")
            state.vad.silence_ms = session["audio"]["input"]["turn_detection"][
                "silence_duration_ms"]
            await _send(ws, {"type": "session.updated", "session": session})
        elif kind == "response.create":
            await self._reply(ws, rec, state)
        elif kind == "response.cancel" and any(not t.done() for t in state.tasks):
            state.cancel.set()
        elif kind == "response.cancel":
            # Like the real server: a cancel with nothing in progress is an error event.
            await _send(ws, {"type": "error", "error": {
                "type": "invalid_request_error", "code": "response_cancel_not_active",
                "message": "Cancellation failed: no active response found"}})
        elif kind == "conversation.item.truncate":
            length = state.items.get(ev["item_id"])
            if length is None or ev["audio_end_ms"] > length:
                await _send(ws, {"type": "error", "error": {
                    "type": "invalid_request_error", "code": "invalid_value",
                    "message": f"audio_end_ms {ev['audio_end_ms']} is past the audio"}})
            else:
                await _send(ws, {"type": "conversation.item.truncated",
                                 "item_id": ev["item_id"], "content_index": 0,
                                 "audio_end_ms": ev["audio_end_ms"]})

    async def _listen(self, ws: ServerConnection, rec: Connection, state: _State,
                      pcm: np.ndarray) -> None:
        """Server VAD: ``speech_started``, then on silence ``speech_stopped``, the
        transcript and a reply."""
        verdict = self._hear(rec, state.vad, pcm, state.rate)
        if verdict == "started":
            state.cancel.set()
            await _send(ws, {"type": "input_audio_buffer.speech_started",
                             "audio_start_ms": state.vad.audio_ms - 40, "item_id": "in"})
        elif verdict == "stopped":
            await _send(ws, {"type": "input_audio_buffer.speech_stopped",
                             "audio_end_ms": state.vad.audio_ms, "item_id": "in"})
            await _send(ws, {"type": "input_audio_buffer.committed", "item_id": "in"})
            heard = self.heard.pop(0) if self.heard else ""
            await _send(ws, {"type": "conversation.item.input_audio_transcription.completed",
                             "item_id": "in", "content_index": 0, "transcript": heard})
            await self._reply(ws, rec, state)

    async def _stream(self, ws: ServerConnection, rec: Connection, state: _State,
                      reply: Reply) -> None:
        rec.replies_sent += 1
        n = rec.replies_sent
        rid, item = f"resp_{n}", f"item_{n}"
        status = "completed"
        await _send(ws, {"type": "response.created", "response": {"id": rid,
                                                                    "status": "in_progress"}})
        if reply.pcm:
            state.items[item] = len(reply.pcm) * 1000 // 32000
            state.cut = False
            chunks = self._chunks(state.encode(reply.pcm), state.items[item])
            async for chunk in self._paced(rec, state, chunks):
                await _send(ws, {"type": "response.output_audio.delta", "response_id": rid,
                                 "item_id": item, "output_index": 0, "content_index": 0,
                                 "delta": base64.b64encode(chunk).decode()})
            status = "cancelled" if state.cut else status
            await _send(ws, {"type": "response.output_audio.done", "item_id": item})
            await _send(ws, {"type": "response.output_audio_transcript.done",
                             "response_id": rid, "item_id": item, "output_index": 0,
                             "content_index": 0, "transcript": reply.text})
        for i, (name, args) in enumerate(reply.calls):
            await _send(ws, {"type": "response.function_call_arguments.done",
                             "response_id": rid, "item_id": f"fc_{n}_{i}",
                             "output_index": i + 1, "call_id": f"call_{n}_{i}",
                             "name": name, "arguments": json.dumps(args)})
        if self.fail_reply == n:
            await _send(ws, {"type": "response.done", "response": {
                "id": rid, "status": "failed", "status_details": {"type": "failed", "error": {
                    "type": "server_error", "message": "The server had an error"}}}})
        else:
            await _send(ws, {"type": "response.done", "response": {"id": rid,
                                                                    "status": status}})
        if self.drop_after == n:
            await ws.close(1011, "internal error")


@dataclass
class _State(StreamState):
    codec: str = "pcm"
    items: dict[str, int] = field(default_factory=dict)  # item → audio length in ms

    @property
    def rate(self) -> int:
        return 24000 if self.codec == "pcm" else 8000

    def decode(self, b64: str) -> np.ndarray:
        raw = base64.b64decode(b64)
        if self.codec == "pcm":
            return np.frombuffer(raw, dtype=np.int16)
        return g711.decode(raw, self.codec.upper())

    def encode(self, pcm16k: bytes) -> bytes:
        pcm = resample(pcm16k, 16000, self.rate)
        if self.codec == "pcm":
            return pcm
        return g711.encode(np.frombuffer(pcm, dtype=np.int16), self.codec.upper())


async def _send(ws: ServerConnection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))
