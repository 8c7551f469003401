"""mod_audio_stream's side of a call, over a WebSocket (seed 003's port 8085): FreeSWITCH
connects to ``/stream/{secretary_uuid}/{call_uuid}/{caller_id}``, sends the metadata as one
text frame (when there is some), then the caller's audio as binary frames of raw 16-bit
little-endian PCM; atende answers with ``streamAudio`` text frames that the module writes
to a file and announces with ``mod_audio_stream::play`` (../shared/PROTOCOLS.md, B)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from atende.channels.secretary import UUID

log = logging.getLogger(__name__)

_CALLER = re.compile(r"[0-9A-Za-z+*#._-]{0,64}")
RATES = (8000, 16000)  # what the dialplan asks for ("8k", "16k") and mod_sndfile plays raw
MAX_FRAME_BYTES = 64 * 1024
TAG = "atendePiece"  # our key in streamAudio's data, echoed in mod_audio_stream::play


@dataclass(frozen=True)
class StreamTarget:
    """Who a stream is for: the secretary, the FreeSWITCH call, the caller's number."""

    secretary: str
    call_uuid: str
    caller_id: str


def parse_path(path: str) -> StreamTarget:
    """The target of ``/stream/{secretary_uuid}/{call_uuid}/{caller_id}``; ValueError
    saying what is wrong."""
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) != 4 or parts[0] != "stream":
        raise ValueError(f"not /stream/<secretary>/<call>/<caller>: {path[:80]!r}")
    _, secretary, call_uuid, caller = parts
    if not UUID.fullmatch(secretary):
        raise ValueError(f"the secretary is not a UUID: {secretary[:40]!r}")
    if not UUID.fullmatch(call_uuid):
        raise ValueError(f"the call is not a UUID: {call_uuid[:40]!r}")
    if not _CALLER.fullmatch(caller):
        raise ValueError(f"not a caller id: {caller[:40]!r}")
    return StreamTarget(secretary.lower(), call_uuid.lower(), caller)


def stream_audio(pcm: bytes, rate: int, tag: str | None = None) -> str:
    """The text frame that has FreeSWITCH write ``pcm`` (16-bit little-endian mono at
    ``rate``) to a file and announce it for playing. ``tag`` comes back in the announcement
    (the module copies the ``data`` object into it), so the file is known for sure."""
    if rate not in RATES:
        raise ValueError(f"raw audio is played at {RATES}, not {rate}")
    data: dict[str, object] = {"audioDataType": "raw", "sampleRate": rate}
    if tag is not None:
        data[TAG] = tag
    data["audioData"] = base64.b64encode(pcm).decode()
    return json.dumps({"type": "streamAudio", "data": data})


class AudioStream:
    """One call's stream as the controller sees it: its target, its metadata, the caller's
    audio frames, and the way to send replies back."""

    def __init__(self, target: StreamTarget, ws: ServerConnection, metadata: str | None
                 ) -> None:
        self.target = target
        self._ws = ws
        self.metadata = metadata  # the text frame sent before the audio, if any

    async def send_audio(self, pcm: bytes, rate: int, tag: str | None = None) -> None:
        """ConnectionError when the stream is gone."""
        try:
            await self._ws.send(stream_audio(pcm, rate, tag))
        except ConnectionClosed as exc:
            raise ConnectionError(f"the audio stream closed ({exc})") from exc

    async def close(self, reason: str) -> None:
        """End the stream (FreeSWITCH then stops streaming this call)."""
        await self._ws.close(1000, reason[:120])


OnStream = Callable[[AudioStream, "asyncio.Queue[bytes | None]"], Coroutine[Any, Any, None]]


class AudioStreamServer:
    """The WebSocket server mod_audio_stream connects to. A path that names no call is
    refused at the handshake (404); each accepted stream goes to ``on_stream`` with a queue
    of the caller's audio frames (None: the stream ended)."""

    def __init__(self, on_stream: OnStream) -> None:
        self.on_stream = on_stream
        self._server: Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await serve(self._session, host, port, process_request=self._check,
                                   max_size=MAX_FRAME_BYTES, compression=None)
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check(self, ws: ServerConnection, request: Request) -> Response | None:
        try:
            parse_path(request.path)
        except ValueError as exc:
            log.warning("audio stream from %s refused: %s", ws.remote_address, exc)
            return ws.respond(404, f"{exc}\n")
        return None

    async def _session(self, ws: ServerConnection) -> None:
        target = parse_path(ws.request.path if ws.request else "")
        frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        controller: asyncio.Task[None] | None = None
        try:
            # The metadata, if any, comes first; audio may come without it.
            first = await ws.recv()
            metadata = first if isinstance(first, str) else None
            if isinstance(first, bytes):
                self._audio(target, first, frames)
            controller = asyncio.get_running_loop().create_task(
                self.on_stream(AudioStream(target, ws, metadata), frames))
            async for message in ws:
                if isinstance(message, str):
                    log.info("call %s: a text frame amid the audio, ignored",
                             target.call_uuid)
                else:
                    self._audio(target, message, frames)
        except ConnectionClosed:
            pass
        finally:
            frames.put_nowait(None)
            if controller is not None:
                await asyncio.gather(controller, return_exceptions=True)

    @staticmethod
    def _audio(target: StreamTarget, frame: bytes, frames: asyncio.Queue[bytes | None]
               ) -> None:
        if len(frame) % 2:
            log.warning("call %s: an odd-sized audio frame (%d bytes), dropped",
                        target.call_uuid, len(frame))
        else:
            frames.put_nowait(frame)
