"""The WebSocket under a realtime protocol: connects, sends what the protocol queues, and
turns what arrives into the protocol's events. Failures become ``ProviderError`` while
connecting and a fatal ``Failed`` event afterwards, so the session can fall back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from atende.providers.errors import ProviderError, kind_for_status
from atende.providers.realtime.base import (
    Ended,
    Failed,
    Ready,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeProtocol,
)

log = logging.getLogger(__name__)


class RealtimeConnection:
    """The WebSocket to a realtime speech vendor for one call: runs its sans-IO protocol over
    the socket and reports failures as ProviderErrors."""

    def __init__(self, protocol: RealtimeProtocol, timeout_s: float = 10.0) -> None:
        self.protocol = protocol
        self.timeout_s = timeout_s
        self._ws: ClientConnection | None = None
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._early: list[RealtimeEvent] = []  # arrived while waiting to be ready

    async def open(self, config: RealtimeConfig) -> None:
        """Connect, send the session settings and wait until the vendor is ready."""
        p = self.protocol
        p.start(config)
        try:
            async with asyncio.timeout(self.timeout_s):
                self._ws = await connect(p.url(), additional_headers=p.headers(),
                                         compression=None, max_size=2**24, proxy=None)
                self._writer = asyncio.get_running_loop().create_task(self._write())
                self.flush()
                await self._until_ready()
        except ProviderError:  # the vendor refused the session once connected
            await self.close()
            raise
        except TimeoutError:
            await self.close()
            raise ProviderError(p.name, "timeout", f"not ready within {self.timeout_s:g} s"
                                ) from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ProviderError(p.name, kind_for_status(status),
                                f"refused the connection with HTTP {status}", status) from None
        except (OSError, InvalidHandshake) as exc:
            await self.close()
            raise ProviderError(p.name, "connection", f"could not connect: {exc}") from None

    async def _until_ready(self) -> None:
        assert self._ws is not None
        while True:
            try:
                message = await self._ws.recv()
            except ConnectionClosed as exc:
                closed = self._closed(exc)
                kind = closed.kind if isinstance(closed, Failed) else "connection"
                raise ProviderError(self.protocol.name, kind,
                                    f"closed before it was ready ({_why(exc)})") from None
            for ev in self._receive(message):
                if isinstance(ev, Ready):
                    return
                if isinstance(ev, Failed) and ev.fatal:
                    raise ProviderError(self.protocol.name, ev.kind, ev.message)
                self._early.append(ev)

    def _receive(self, message: str | bytes) -> list[RealtimeEvent]:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        events = self.protocol.receive(text)
        if self.protocol.outbox:
            self.flush()  # e.g. a pong
        return events

    def flush(self) -> None:
        """Send what the protocol has queued (soon, in order, from one writer)."""
        self._wake.set()

    async def _write(self) -> None:
        assert self._ws is not None
        outbox = self.protocol.outbox
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while outbox:
                    await self._ws.send(outbox.pop(0))
        except ConnectionClosed:
            pass  # the reader reports it

    async def events(self) -> AsyncGenerator[RealtimeEvent, None]:
        """Everything the vendor says, until the connection ends (with a fatal Failed)."""
        assert self._ws is not None
        for ev in self._early:
            yield ev
        self._early.clear()
        try:
            while True:
                for ev in self._receive(await self._ws.recv()):
                    yield ev
        except ConnectionClosed as exc:
            yield self._closed(exc)

    def _closed(self, exc: ConnectionClosed) -> Ended | Failed:
        frame = exc.rcvd
        return self.protocol.closed(frame.code if frame else None,
                                    frame.reason if frame else "")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
        if self._ws is not None:
            await self._ws.close()


def _why(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    return f"{frame.code} {frame.reason}".strip() if frame is not None else "no close frame"
