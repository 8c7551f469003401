"""Local servers that speak the cloud speech vendors' wire protocols, for tests: Deepgram's
streaming ``/v1/listen`` WebSocket (this file), and answers for the HTTP ones (OpenAI
transcription, ElevenLabs and OpenAI speech) on ``tests.peers.vendor.VendorServer``.

The voices answer with a pure tone, a tenth of a second per word, so that a test can tell
by pitch what the phone heard: the cloud voice (its tone) or the local one (speech)."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import io
import json
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response

from tests.peers.audio import Tone
from tests.peers.vendor import Answer, Audio, Request, Status
from tests.peers.wsserver import WsServer


@dataclass
class Listen:
    """What one client connection to the fake Deepgram did."""

    headers: Headers
    query: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    first_audio_at: float | None = None  # time.monotonic()
    close_stream_at: float | None = None
    transcript: str | None = None  # what it was answered


class FakeDeepgram(WsServer):
    """Answers each turn (each connection that ends with CloseStream) with the next of
    ``transcripts``, as two final results (and an interim one that must be ignored), then
    Metadata and a normal close. ``fail``: ``error`` sends an Error message and closes with
    1011 instead; ``silent`` never answers the CloseStream."""

    def __init__(self, transcripts: list[str], api_key: str = "dg-test",
                 refuse: int | None = None, fail: str | None = None) -> None:
        super().__init__()
        self.transcripts = list(transcripts)
        self.api_key = api_key
        self.refuse = refuse
        self.fail = fail
        self.connections: list[Listen] = []

    @property
    def closed_turns(self) -> list[Listen]:
        return [c for c in self.connections if c.close_stream_at is not None]

    def _check(self, conn: ServerConnection, request: WsRequest) -> Response | None:
        refused = self._refused(conn)
        if refused is not None:
            return refused
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return conn.respond(401, "Invalid credentials.\n")
        if urlsplit(request.path).path != "/v1/listen":
            return conn.respond(404, "no such path\n")
        return None

    async def _session(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        rec = Listen(ws.request.headers, query)
        self.connections.append(rec)
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    if rec.first_audio_at is None:
                        rec.first_audio_at = time.monotonic()
                    rec.audio += message
                    continue
                if json.loads(message).get("type") != "CloseStream":
                    continue
                rec.close_stream_at = time.monotonic()
                await self._answer(ws, rec)
                return
        except ConnectionClosed:
            pass

    async def _answer(self, ws: ServerConnection, rec: Listen) -> None:
        if self.fail == "silent":
            await asyncio.sleep(30)
            return
        if self.fail == "error":
            await ws.send(json.dumps({"type": "Error", "description": "the test failed it",
                                      "message": "NET-0001"}))
            await ws.close(1011, "NET-0001")
            return
        text = self.transcripts.pop(0) if self.transcripts else ""
        rec.transcript = text
        words = text.split()
        half = len(words) // 2
        duration = len(rec.audio) / 32000
        await ws.send(json.dumps(_results("interim words to ignore", False, duration)))
        for part in (words[:half], words[half:]):
            await ws.send(json.dumps(_results(" ".join(part), True, duration)))
        await ws.send(json.dumps({"type": "Metadata", "request_id": "test",
                                  "duration": duration, "channels": 1}))
        await ws.close(1000)


def _results(text: str, final: bool, duration: float) -> dict[str, Any]:
    return {"type": "Results", "channel_index": [0, 1], "duration": duration, "start": 0.0,
            "is_final": final, "speech_final": final, "from_finalize": final,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.99,
                                          "words": []}]}}


def tone_for(text: str, hz: float, rate: int) -> bytes:
    """The fake voices' audio for ``text``: a tenth of a second of tone per word."""
    return Tone(hz, 0.1 * len(text.split()), dbfs=-10.0).pcm(rate)


def elevenlabs_voice(hz: float = 500.0, gap_s: float = 0.02, **audio: Any
                     ) -> Callable[[Request], Answer]:
    """ElevenLabs' streaming endpoint: the tone for the body's text at 16 kHz, in chunks."""
    def answer(req: Request) -> Answer:
        if not req.path.startswith("/v1/text-to-speech/") or "/stream" not in req.path:
            return Status(404, json.dumps({"detail": {"message": "no such path"}}))
        return Audio(tone_for(req.json["text"], hz, 16000), gap_s=gap_s, **audio)
    return answer


def openai_voice(hz: float = 700.0, gap_s: float = 0.02) -> Callable[[Request], Answer]:
    """OpenAI's /audio/speech with response_format pcm: the tone at 24 kHz."""
    def answer(req: Request) -> Answer:
        if req.json.get("response_format") != "pcm":
            return Status(400, json.dumps({"error": {"message": "pcm expected"}}))
        return Audio(tone_for(req.json["input"], hz, 24000), gap_s=gap_s)
    return answer


def form_parts(req: Request) -> dict[str, bytes]:
    """The fields of a multipart/form-data request body, by name."""
    head = f"Content-Type: {req.headers['content-type']}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + req.body)
    out: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        out[str(name)] = payload if isinstance(payload, bytes) else b""
    return out


def wav_pcm(data: bytes) -> tuple[bytes, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


def dominant_hz(pcm: bytes, rate: int = 16000) -> float:
    """The strongest frequency in ``pcm``."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])
