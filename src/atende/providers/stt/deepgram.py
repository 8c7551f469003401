"""Deepgram streaming recognition (``/v1/listen`` over a WebSocket).

One connection per caller turn, opened when the caller starts speaking: the audio (16 kHz
linear16) goes up as it arrives, so when the turn ends only the last few hundred
milliseconds are left to recognise. ``CloseStream`` then makes Deepgram finish, send its
last final results and a ``Metadata`` message, and close. Between turns nothing is open
and nothing is billed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from atende.providers.errors import ProviderError, kind_for_close, kind_for_status
from atende.providers.speech import SpeechSettings

log = logging.getLogger(__name__)

DEFAULT_URL = "wss://api.deepgram.com"
CLOSE_STREAM = json.dumps({"type": "CloseStream"})


class DeepgramProtocol:
    """Sans-IO: what to connect to, and what Deepgram's messages say of one turn."""

    name = "deepgram"

    def __init__(self, settings: SpeechSettings) -> None:
        self.settings = settings
        self._finals: list[str] = []
        self.error: ProviderError | None = None
        self.done = False  # the Metadata that follows CloseStream arrived

    def url(self) -> str:
        s = self.settings
        parts = urlsplit(s.base_url or DEFAULT_URL)
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        query = {"model": s.model, "encoding": "linear16", "sample_rate": "16000",
                 "channels": "1", "punctuate": "true", "smart_format": "true",
                 "interim_results": "false"}
        if s.language:
            query["language"] = s.language
        path = parts.path.rstrip("/") + "/v1/listen"
        return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))

    def headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"Authorization": f"Token {key}"} if key else {}

    @property
    def transcript(self) -> str:
        return " ".join(t for t in self._finals if t).strip()

    def receive(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            self.error = ProviderError(self.name, "protocol",
                                       f"not JSON: {str(message)[:120]!r}")
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        if kind == "Results" and data.get("is_final"):
            alts = (data.get("channel") or {}).get("alternatives") or [{}]
            text = alts[0].get("transcript") if isinstance(alts[0], dict) else None
            if isinstance(text, str):
                self._finals.append(text.strip())
        elif kind == "Metadata":
            self.done = True
        elif kind == "Error":
            why = data.get("description") or data.get("message") or json.dumps(data)[:200]
            self.error = ProviderError(self.name, "server", str(why))

    def closed(self, code: int | None, reason: str) -> ProviderError | None:
        """The server closed the socket: None if that ends the turn as it should."""
        if self.error is not None:
            return self.error
        if code == 1000 or self.done:
            return None
        why = f"{code} {reason}".strip() if code is not None else "no close frame"
        return ProviderError(self.name, kind_for_close(code, reason),
                             f"the connection closed ({why})")


class DeepgramStream:
    """One turn's connection. Audio fed before the socket is open waits in the queue."""

    def __init__(self, settings: SpeechSettings) -> None:
        self.protocol = DeepgramProtocol(settings)
        self.timeout_s = settings.timeout_s
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def feed(self, pcm16k: bytes) -> None:
        self._audio.put_nowait(pcm16k)

    async def finish(self, turn: bytes) -> str:
        self._audio.put_nowait(None)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._task  # cancelled with the wait (timeout or hang-up)
        except TimeoutError:
            raise ProviderError(self.protocol.name, "timeout",
                                f"no final transcript within {self.timeout_s:g} s of the "
                                "end of the turn") from None

    async def cancel(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task

    async def _run(self) -> str:
        p = self.protocol
        try:
            async with asyncio.timeout(self.timeout_s):
                ws = await connect(p.url(), additional_headers=p.headers(), compression=None,
                                   proxy=None)
        except TimeoutError:
            raise ProviderError(p.name, "timeout",
                                f"could not connect within {self.timeout_s:g} s") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ProviderError(p.name, kind_for_status(status),
                                f"refused the connection with HTTP {status}", status) from None
        except (OSError, InvalidHandshake) as exc:
            raise ProviderError(p.name, "connection", f"could not connect: {exc}") from None
        async with ws:
            reader = asyncio.get_running_loop().create_task(self._read(ws))
            try:
                while (pcm := await self._next_audio()) is not None:
                    await ws.send(pcm)
                await ws.send(CLOSE_STREAM)
            except ConnectionClosed:
                pass  # the reader says why
            try:
                await reader
            finally:
                reader.cancel()
        return p.transcript

    async def _next_audio(self) -> bytes | None:
        """What was fed since the last message (all that queued while the socket opened
        goes up as one), or None once the turn is over."""
        pcm = await self._audio.get()
        if pcm is None:
            return None
        while not self._audio.empty():
            more = self._audio.get_nowait()
            if more is None:
                self._audio.put_nowait(None)  # sent first, then the end
                break
            pcm += more
        return pcm

    async def _read(self, ws: ClientConnection) -> None:
        p = self.protocol
        try:
            while not p.done:  # after Metadata the turn's results are all in
                p.receive(await ws.recv())
                if p.error is not None:
                    raise p.error
        except ConnectionClosed as exc:
            frame = exc.rcvd
            error = p.closed(frame.code if frame else None, frame.reason if frame else "")
            if error is not None:
                raise error from None


class DeepgramSTT:
    """Deepgram streaming recognition: one WebSocket per caller turn, opened at speech onset."""

    name = "deepgram"

    def __init__(self, settings: SpeechSettings) -> None:
        self.settings = settings

    def open(self) -> DeepgramStream:
        return DeepgramStream(self.settings)
