"""A local server that speaks ElevenLabs Conversational AI's WebSocket protocol, for tests.

Like the real one: the key comes in ``xi-api-key`` and the agent in ``agent_id``; the
first client message is ``conversation_initiation_client_data``, answered with the audio
formats; the agent says its ``first_message`` (``agent_response`` then ``audio`` events
sharing one event id); it pings and expects pongs; its VAD sends ``interruption`` with the
event id of the reply the caller spoke over (while the audio it sent would still be
playing), then the caller's transcript and the next reply; a ``user_message`` gets the next
reply with no transcript (as the agent's own reprompt); tools are ``client_tool_call``s;
an agent that ends the call closes the socket normally (1000) after its goodbye, once its
tool calls have their results."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from atende.media import g711
from atende.media.resample import resample
from tests.peers.realtime import Connection, FakeServer, Reply, StreamState


@dataclass
class _State(StreamState):
    event_id: int = 0  # the server's event counter
    speaking: int | None = None  # event id of the reply the caller would be hearing
    speaking_until: float = 0.0  # time.monotonic() when its audio would have played out
    waiting: set[str] = field(default_factory=set)  # client tool calls without a result
    ending: bool = False  # hang up once every tool call has its result


class FakeElevenLabs(FakeServer):
    def __init__(self, replies: list[Reply], agent_id: str = "agent_test",
                 input_format: str = "pcm_16000", output_format: str = "pcm_16000",
                 refuse_override: bool = False, end_after: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(replies, **kwargs)
        self.agent_id = agent_id
        self.input_format = input_format
        self.output_format = output_format
        self.refuse_override = refuse_override  # as an agent whose overrides are locked
        self.end_after = end_after  # the agent hangs up after this reply (1-based)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _check(self, conn: ServerConnection, request: Request) -> Response | None:
        if (refused := self._refused(conn)) is not None:
            return refused
        if request.headers.get("xi-api-key") != self.api_key:
            return conn.respond(HTTPStatus.UNAUTHORIZED, "invalid api key\n")
        if request.path != f"/v1/convai/conversation?agent_id={self.agent_id}":
            return conn.respond(HTTPStatus.NOT_FOUND, "no such agent\n")
        return None

    async def _session(self, ws: ServerConnection) -> None:
        rec = self._connection(ws)
        state = _State()
        try:
            first = json.loads(await ws.recv())
            rec.events.append(first)
            if first.get("type") != "conversation_initiation_client_data":
                await ws.close(1008, "expected conversation_initiation_client_data")
                return
            if self.refuse_override:
                await ws.close(1008, "Override for field 'prompt' is not allowed by config.")
                return
            await _send(ws, {"type": "conversation_initiation_metadata",
                             "conversation_initiation_metadata_event": {
                                 "conversation_id": "conv_1",
                                 "user_input_audio_format": self.input_format,
                                 "agent_output_audio_format": self.output_format}})
            await _send(ws, {"type": "ping", "ping_event": {"event_id": 1, "ping_ms": None}})
            agent = first["conversation_config_override"]["agent"]
            if agent.get("first_message"):
                await self._reply(ws, rec, state)
            async for message in ws:
                ev = json.loads(message)
                if "user_audio_chunk" in ev:
                    raw = base64.b64decode(ev["user_audio_chunk"])
                    rec.audio_bytes += len(raw)
                    await self._listen(ws, rec, state, raw)
                    continue
                rec.events.append(ev)
                if ev.get("type") == "user_message":  # answered, with no transcript
                    await self._reply(ws, rec, state)
                elif ev.get("type") == "client_tool_result":
                    state.waiting.discard(ev["tool_call_id"])
                    if state.ending and not state.waiting:
                        await ws.close(1000, "")
        except ConnectionClosed:
            pass

    def _decode(self, raw: bytes) -> tuple[np.ndarray, int]:
        if self.input_format == "ulaw_8000":
            return g711.decode(raw, "PCMU"), 8000
        return np.frombuffer(raw, dtype=np.int16), int(self.input_format.split("_")[1])

    def _encode(self, pcm16k: bytes) -> bytes:
        if self.output_format == "ulaw_8000":
            pcm = resample(pcm16k, 16000, 8000)
            return g711.encode(np.frombuffer(pcm, dtype=np.int16), "PCMU")
        return resample(pcm16k, 16000, int(self.output_format.split("_")[1]))

    async def _listen(self, ws: ServerConnection, rec: Connection, state: _State,
                      raw: bytes) -> None:
        pcm, rate = self._decode(raw)
        verdict = self._hear(rec, state.vad, pcm, rate)
        if verdict == "started" and state.speaking is not None and \
                time.monotonic() < state.speaking_until:
            state.cancel.set()
            await _send(ws, {"type": "interruption",
                             "interruption_event": {"event_id": state.speaking}})
            state.speaking = None
        elif verdict == "stopped":
            state.event_id += 1
            heard = self.heard.pop(0) if self.heard else ""
            await _send(ws, {"type": "user_transcript", "user_transcription_event": {
                "user_transcript": heard, "event_id": state.event_id}})
            await self._reply(ws, rec, state)

    async def _stream(self, ws: ServerConnection, rec: Connection, state: _State,
                      reply: Reply) -> None:
        rec.replies_sent += 1
        n = rec.replies_sent
        state.event_id += 1
        eid = state.speaking = state.event_id
        await _send(ws, {"type": "agent_response", "agent_response_event": {
            "agent_response": reply.text, "event_id": eid}})
        ms = len(reply.pcm) * 1000 // 32000
        state.speaking_until = time.monotonic() + ms / 1000
        state.cut = False
        chunks = self._chunks(self._encode(reply.pcm), ms)
        async for chunk in self._paced(rec, state, chunks, reply.stall_s):
            await _send(ws, {"type": "audio", "audio_event": {
                "audio_base_64": base64.b64encode(chunk).decode(), "event_id": eid}})
        for i, (name, args) in enumerate(reply.calls):
            state.waiting.add(f"tool_{n}_{i}")
            await _send(ws, {"type": "client_tool_call", "client_tool_call": {
                "tool_name": name, "tool_call_id": f"tool_{n}_{i}", "parameters": args}})
        if self.end_after == n:
            state.ending = True
            if not state.waiting:
                await ws.close(1000, "")
        elif self.drop_after == n:
            await ws.close(1011, "internal error")


async def _send(ws: ServerConnection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))
