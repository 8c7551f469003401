"""A WebSocket server on its own thread and event loop, for the fake cloud vendors: in-process
sessions (on the test's loop) and a separate atende process can both reach it."""

from __future__ import annotations

import asyncio
import threading
from http import HTTPStatus
from typing import Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response


class WsServer:
    """Subclasses answer the handshake (``_check``) and run each connection (``_session``).
    ``refuse``: answer every handshake with that HTTP status."""

    refuse: int | None = None

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        async def start() -> Server:
            return await serve(self._session, "127.0.0.1", 0, process_request=self._check,
                               compression=None)
        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(5)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop listening now; the loop stops once open connections have closed (their
        clients may be on the test's loop, which is blocked here)."""
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()
            self._loop.stop()
        asyncio.run_coroutine_threadsafe(stop(), self._loop)

    def _check(self, conn: ServerConnection, request: Request) -> Response | None:
        raise NotImplementedError

    async def _session(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    def _refused(self, conn: ServerConnection) -> Response | None:
        if self.refuse is not None:
            return conn.respond(HTTPStatus(self.refuse), "refused by the test\n")
        return None
