"""A local server that speaks Gemini Live's ``BidiGenerateContent`` WebSocket protocol, for
tests.

Like the real one: it sends JSON in binary frames; the first client message must be
``setup``, answered with ``setupComplete``; a bad key closes the socket with 1007 and the
reason; the model speaks when given a ``clientContent`` turn or when its VAD hears the
caller finish (input transcription arrives in pieces); audio comes down as 24 kHz PCM in
``serverContent.modelTurn`` parts, with the output transcription, then ``turnComplete``;
speech over the model gets ``interrupted``, after the audio already on its way; tools are
``toolCall``s, and after the ``toolResponse`` the model carries on (the next scripted
reply)."""

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

from atende.media.resample import resample
from atende.providers.realtime.gemini import PATH
from tests.peers.realtime import Connection, FakeServer, Reply, StreamState


@dataclass
class _State(StreamState):
    speaking_until: float = 0.0  # time.monotonic() when the model's audio has played out
    waiting: set[str] = field(default_factory=set)  # tool calls without a response yet


class FakeGemini(FakeServer):
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _check(self, conn: ServerConnection, request: Request) -> Response | None:
        if (refused := self._refused(conn)) is not None:
            return refused
        if request.path != PATH:
            return conn.respond(HTTPStatus.NOT_FOUND, "no such method\n")
        return None

    async def _session(self, ws: ServerConnection) -> None:
        rec = self._connection(ws)
        state = _State()
        try:
            first = json.loads(await ws.recv())
            rec.events.append(first)
            if "setup" not in first:
                await ws.close(1007, "Invalid JSON payload: setup must be sent first")
                return
            if rec.headers.get("x-goog-api-key") != self.api_key:
                await ws.close(1007, "API key not valid. Please pass a valid API key.")
                return
            detection = first["setup"]["realtimeInputConfig"]["automaticActivityDetection"]
            state.vad.silence_ms = detection["silenceDurationMs"]
            await _send(ws, {"setupComplete": {}})
            async for message in ws:
                msg = json.loads(message)
                audio = msg.get("realtimeInput", {}).get("audio")
                if audio is not None:
                    raw = base64.b64decode(audio["data"])
                    rec.audio_bytes += len(raw)
                    await self._listen(ws, rec, state, np.frombuffer(raw, dtype=np.int16),
                                       int(audio["mimeType"].split("rate=")[1]))
                    continue
                rec.events.append(msg)
                if "clientContent" in msg and msg["clientContent"].get("turnComplete"):
                    await self._reply(ws, rec, state)
                elif "toolResponse" in msg:
                    for r in msg["toolResponse"]["functionResponses"]:
                        state.waiting.discard(r["id"])
                    if not state.waiting:
                        await self._reply(ws, rec, state)
        except ConnectionClosed:
            pass

    @staticmethod
    def of_kind(conn: Connection, key: str) -> list[dict[str, Any]]:
        return [e[key] for e in conn.events if key in e]

    async def _listen(self, ws: ServerConnection, rec: Connection, state: _State,
                      pcm: np.ndarray, rate: int) -> None:
        verdict = self._hear(rec, state.vad, pcm, rate)
        if verdict == "started" and time.monotonic() < state.speaking_until:
            state.speaking_until = 0.0
            if any(not t.done() for t in state.tasks):
                state.cancel.set()  # the stream says it, after what is already in flight
            else:
                rec.interrupted.append(time.monotonic())
                await _send(ws, {"serverContent": {"interrupted": True}})
        elif verdict == "stopped":
            heard = self.heard.pop(0) if self.heard else ""
            half = len(heard) // 2
            for piece in (heard[:half], heard[half:]):  # transcripts come in pieces
                if piece:
                    await _send(ws, {"serverContent": {"inputTranscription": {
                        "text": piece}}})
            await self._reply(ws, rec, state)

    async def _no_reply(self, ws: ServerConnection) -> None:
        await _send(ws, {"serverContent": {"turnComplete": True}})

    async def _stream(self, ws: ServerConnection, rec: Connection, state: _State,
                      reply: Reply) -> None:
        rec.replies_sent += 1
        n = rec.replies_sent
        ms = len(reply.pcm) * 1000 // 32000
        state.speaking_until = time.monotonic() + ms / 1000
        words = reply.text.split(" ")
        chunks = self._chunks(resample(reply.pcm, 16000, 24000), ms)
        state.cut = False
        i = 0
        async for chunk in self._paced(rec, state, chunks):
            content: dict[str, Any] = {"modelTurn": {"parts": [{"inlineData": {
                "mimeType": "audio/pcm;rate=24000",
                "data": base64.b64encode(chunk).decode()}}]}}
            if i < len(words):  # the transcript trickles in with the audio
                content["outputTranscription"] = {
                    "text": words[i] + (" " if i + 1 < len(words) else "")}
            await _send(ws, {"serverContent": content})
            i += 1
        if state.cut:
            # Generation stopped: nothing of this turn comes after this.
            rec.interrupted.append(time.monotonic())
            await _send(ws, {"serverContent": {"interrupted": True}})
            return
        if len(words) > len(chunks):
            await _send(ws, {"serverContent": {"outputTranscription": {
                "text": " ".join(words[len(chunks):])}}})
        if reply.calls:
            calls = [{"id": f"fc_{n}_{i}", "name": name, "args": args}
                     for i, (name, args) in enumerate(reply.calls)]
            state.waiting = {c["id"] for c in calls}
            await _send(ws, {"toolCall": {"functionCalls": calls}})
            return  # the turn goes on after the responses
        await _send(ws, {"serverContent": {"generationComplete": True}})
        await _send(ws, {"serverContent": {"turnComplete": True}})
        if self.drop_after == n:
            await ws.close(1011, "Internal error encountered.")


async def _send(ws: ServerConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message).encode())  # Gemini's frames are binary
