"""atende's lasting connection to FreeSWITCH's event socket (inbound mode, seed 003's
ESL_HOST/ESL_PORT/ESL_PASSWORD): authenticated once, kept open, reconnected with backoff
when FreeSWITCH restarts; API commands (``originate`` …) go over it, and its state is what
/health reports."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from dataclasses import dataclass

from atende.esl import commands
from atende.esl.message import EslError, EslMessage, EslReader

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 15.0
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class EslUnavailable(ConnectionError):
    """FreeSWITCH's event socket is not connected (the reason says why)."""


@dataclass(frozen=True)
class EslState:
    """Whether the event socket is up, and in words why not."""

    connected: bool
    detail: str  # "connected", or what went wrong last


class EslInbound:
    """One connection to FreeSWITCH's event socket, kept up while atende runs."""

    def __init__(self, host: str, port: int, password: str,
                 backoff: tuple[float, ...] = BACKOFF_S) -> None:
        self.host, self.port = host, port
        self._password = password
        self._backoff = backoff
        self._writer: asyncio.StreamWriter | None = None
        self._replies: deque[asyncio.Future[EslMessage]] = deque()
        self._jobs: dict[str, asyncio.Future[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self.state = EslState(False, "not connected yet")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._drop(EslUnavailable("atende is stopping"))

    async def connected(self) -> None:
        """Until the event socket is connected."""
        await self._up.wait()

    # commands ---------------------------------------------------------------------------
    async def send(self, command: bytes) -> EslMessage:
        """A command's reply. EslUnavailable when not connected."""
        writer = self._writer
        if writer is None or not self._up.is_set():
            raise EslUnavailable(f"FreeSWITCH event socket {self.address}: "
                                 f"{self.state.detail}")
        reply: asyncio.Future[EslMessage] = asyncio.get_running_loop().create_future()
        self._replies.append(reply)
        writer.write(command)
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            return await reply

    async def api(self, line: str) -> str:
        """A blocking API command's output."""
        return (await self.send(commands.api(line))).body.decode(errors="replace")

    async def bgapi(self, line: str, wait_s: float) -> str:
        """A background API command's output (from its BACKGROUND_JOB event), for commands
        that take long (``originate`` rings); TimeoutError after ``wait_s``."""
        job = str(uuid.uuid4())
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._jobs[job] = done
        try:
            reply = await self.send(commands.bgapi(line, job))
            if not reply.ok:
                return reply.reply_text
            async with asyncio.timeout(wait_s):
                return await done
        finally:
            self._jobs.pop(job, None)

    # the connection ---------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
                detail = "FreeSWITCH closed the event socket"
            except (OSError, EslError, TimeoutError) as exc:
                detail = str(exc) or type(exc).__name__
            if self.state.connected:
                failures = 0  # it was up: the backoff starts over
            self._drop(EslUnavailable(detail))
            wait = self._backoff[min(failures, len(self._backoff) - 1)]
            failures += 1
            if self.state.detail != detail or failures == 1:
                log.warning("FreeSWITCH event socket %s: %s; retrying in %g s", self.address,
                            detail, wait)
            self.state = EslState(False, detail)
            await asyncio.sleep(wait)

    async def _session(self) -> None:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        esl = EslReader()
        pending: deque[EslMessage] = deque()

        async def next_message() -> EslMessage:
            while not pending:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("FreeSWITCH closed the event socket")
                pending.extend(esl.feed(data))
            return pending.popleft()

        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                greeting = await next_message()
            if greeting.content_type != "auth/request":
                raise EslError(f"not an event socket (it said {greeting.content_type!r})")
            writer.write(commands.auth(self._password))
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                accepted = (await next_message()).ok
            if not accepted:
                raise EslError("the event socket refused the password (ESL_PASSWORD)")
            writer.write(commands.events(["BACKGROUND_JOB"]))
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                subscribed = (await next_message()).ok
            if not subscribed:
                raise EslError("the event socket refused the event subscription")
            self._writer = writer
            self.state = EslState(True, "connected")
            self._up.set()
            log.info("FreeSWITCH event socket %s: connected", self.address)
            while True:
                self._route(await next_message())
        finally:
            self._up.clear()
            self._writer = None
            writer.close()

    def _route(self, msg: EslMessage) -> None:
        if msg.content_type in ("command/reply", "api/response"):
            if self._replies:
                self._replies.popleft().set_result(msg)
            return
        if msg.content_type == "text/disconnect-notice":
            raise ConnectionError("FreeSWITCH is shutting the event socket down")
        event = msg.event()
        job = self._jobs.get(event.headers.get("Job-UUID", "")) if event else None
        if event is not None and job is not None and not job.done():
            job.set_result(event.body)

    def _drop(self, exc: Exception) -> None:
        """Everything waiting on the connection fails with ``exc``."""
        while self._replies:
            reply = self._replies.popleft()
            if not reply.done():
                reply.set_exception(exc)
        for job in self._jobs.values():
            if not job.done():
                job.set_exception(exc)
