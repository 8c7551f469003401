"""A carrier on loopback that rings and never answers: every INVITE gets 100 Trying and
180 Ringing and rings until it is cancelled (200 to the CANCEL, then 487); numbers it
does not have get 404 at once. It keeps the Call-IDs of the INVITEs each number got, so
a test can tell how many times each call was placed, whichever atende node placed it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import defaultdict
from collections.abc import Callable

from atende.sip.message import Request, SipParseError, make_response, parse_message
from tests.peers.sipclient import UdpSocket


class RingingCarrier:
    def __init__(self, has: Callable[[str], bool]) -> None:
        self.has = has  # whether a number (the Request-URI's user) exists
        self.invites: dict[str, set[str]] = defaultdict(set)  # number → Call-IDs
        self.cancelled: set[str] = set()
        self.peak = 0  # the most calls ringing at once
        self._ringing: dict[str, Request] = {}  # Call-ID → the INVITE, while it rings
        self._sock: UdpSocket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.port)

    async def start(self) -> None:
        self._sock = await UdpSocket.open()
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sock is not None:
            self._sock.close()

    async def _serve(self) -> None:
        assert self._sock is not None
        while True:
            data, addr = await self._sock.proto.queue.get()
            try:
                msg = parse_message(data)
            except SipParseError:
                continue
            if isinstance(msg, Request):
                self._answer(msg, addr)

    def _send(self, request: Request, status: int, addr: tuple[str, int],
              tag: str | None = None) -> None:
        assert self._sock is not None
        self._sock.send(make_response(request, status, to_tag=tag).encode(), addr)

    def _answer(self, req: Request, addr: tuple[str, int]) -> None:
        tag = "c" + req.call_id[:8]  # the same for every copy of one call's responses
        if req.method == "INVITE":
            number = req.uri.user or ""
            self.invites[number].add(req.call_id)
            if not self.has(number):
                self._send(req, 404, addr, tag)
                return
            self._ringing[req.call_id] = req
            self.peak = max(self.peak, len(self._ringing))
            self._send(req, 100, addr)
            self._send(req, 180, addr, tag)
        elif req.method == "CANCEL":
            self._send(req, 200, addr, tag)
            invite = self._ringing.pop(req.call_id, None)
            if invite is not None:
                self.cancelled.add(req.call_id)
                self._send(invite, 487, addr, tag)
        elif req.method in ("BYE", "OPTIONS"):
            self._send(req, 200, addr, secrets.token_hex(4))
