"""Drives a Registration (sans-IO) over the user agent: sends its requests, feeds back the
responses and the time, and sleeps until the next refresh or retry."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from atende.channels.sip.ua import UserAgent
from atende.sip.message import Request
from atende.sip.register import Registration, RegState
from atende.sip.transaction import Address

log = logging.getLogger(__name__)
UNREGISTER_TIMEOUT = 10.0


class RegistrationAgent:
    """Runs one Registration over the user agent: sends its requests, feeds back the responses
    and wakes it for refreshes and retries."""

    def __init__(self, ua: UserAgent, registration: Registration, address: Address) -> None:
        self.ua = ua
        self.reg = registration
        self.address = address
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _exchange(self, req: Request | None) -> None:
        """Send a request and every immediate follow-up (challenge answers)."""
        while req is not None:
            resp = await self.ua.request(req, self.address)
            before = (self.reg.state, self.reg.reason)
            req = self.reg.on_response(resp, self.ua.now())
            if (self.reg.state, self.reg.reason) != before:
                self._log()
            async with self._changed:
                self._changed.notify_all()

    def _log(self) -> None:
        # The reason never contains the password: it is built from status codes only.
        level = logging.WARNING if self.reg.state == RegState.FAILED else logging.INFO
        log.log(level, "registration of %s@%s: %s (%s)", self.reg.user, self.reg.domain,
                self.reg.state.value, self.reg.reason)

    async def _run(self) -> None:
        try:
            await self._exchange(self.reg.start(self.ua.now()))
            while not self._stopping:
                deadline = self.reg.next_deadline()
                self._wake.clear()
                timeout = None if deadline is None else max(0.0, deadline - self.ua.now())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                if self._stopping:
                    break
                await self._exchange(self.reg.due(self.ua.now()))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("registration of %s@%s crashed", self.reg.user, self.reg.domain)

    async def wait_for(self, state: RegState) -> None:
        """Until the registration reaches ``state`` (wrap in asyncio.timeout)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.reg.state == state)

    async def stop(self) -> None:
        """Unregister (when registered) and stop refreshing."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        try:
            async with asyncio.timeout(UNREGISTER_TIMEOUT):
                await self._exchange(self.reg.stop(self.ua.now()))
        except TimeoutError:
            log.warning("unregistering %s@%s got no answer", self.reg.user, self.reg.domain)
