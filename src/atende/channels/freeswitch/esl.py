"""asyncio side of the Event Socket: the outbound-mode server FreeSWITCH connects to once
per call (the dialplan's ``socket host:port async full``), and the connection to one
controlled channel. Parsing and command writing are the sans-IO esl/ package."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from atende.esl import commands
from atende.esl.message import EslError, EslEvent, EslMessage, EslReader

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0  # FreeSWITCH gives us 25 s to send our first command
REPLY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ChannelData:
    """What FreeSWITCH tells of the channel it hands over (the ``connect`` reply)."""

    uuid: str
    caller_id_number: str
    caller_id_name: str
    destination: str
    variables: dict[str, str] = field(repr=False)  # variable_* without the prefix

    @classmethod
    def of(cls, headers: dict[str, str]) -> ChannelData:
        """EslError when the reply names no channel."""
        uuid = headers.get("Unique-ID") or headers.get("Channel-Unique-ID") or ""
        if not uuid:
            raise EslError("the connect reply names no channel (no Unique-ID)")
        return cls(uuid=uuid,
                   caller_id_number=headers.get("Caller-Caller-ID-Number", ""),
                   caller_id_name=headers.get("Caller-Caller-ID-Name", ""),
                   destination=headers.get("Caller-Destination-Number", ""),
                   variables={k[9:]: v for k, v in headers.items()
                              if k.startswith("variable_")})


class EslChannel:
    """One FreeSWITCH channel under our control over its outbound socket: commands answered
    in the order they were sent, the channel's events as they come, and its end."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 data: ChannelData, esl: EslReader) -> None:
        self._reader, self._writer = reader, writer
        self.data = data
        self.events: asyncio.Queue[EslEvent] = asyncio.Queue()
        self.ended = asyncio.Event()  # the socket closed, or FreeSWITCH said disconnect
        self.said_disconnect = False  # FreeSWITCH ended it (not a broken or closed socket)
        self._replies: deque[asyncio.Future[EslMessage]] = deque()
        self._esl = esl  # the reader that read the connect reply: it may hold more
        self._pump: asyncio.Task[None] | None = None

    def start(self, pending: list[EslMessage]) -> None:
        for msg in pending:
            self._route(msg)
        self._pump = asyncio.get_running_loop().create_task(self._read())

    async def send(self, command: bytes) -> EslMessage:
        """Send a command and wait for its reply (command/reply or api/response).
        ConnectionError when the channel's socket is gone."""
        if self.ended.is_set():
            raise ConnectionError(f"channel {self.data.uuid} has ended")
        reply: asyncio.Future[EslMessage] = asyncio.get_running_loop().create_future()
        self._replies.append(reply)
        self._writer.write(command)
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            return await reply

    async def _read(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                for msg in self._esl.feed(data):
                    self._route(msg)
        except (EslError, ConnectionError) as exc:
            log.warning("channel %s: event socket broken: %s", self.data.uuid, exc)
        finally:
            self._end()

    def _route(self, msg: EslMessage) -> None:
        kind = msg.content_type
        if kind in ("command/reply", "api/response"):
            if self._replies:
                self._replies.popleft().set_result(msg)
            return
        if kind == "text/disconnect-notice":
            log.info("channel %s: FreeSWITCH says disconnect (%s)", self.data.uuid,
                     msg.headers.get("Content-Disposition", "?"))
            self.said_disconnect = True
            self.ended.set()
            return
        event = msg.event()
        if event is not None:
            self.events.put_nowait(event)

    def _end(self) -> None:
        self.ended.set()
        while self._replies:
            reply = self._replies.popleft()
            if not reply.done():
                reply.set_exception(ConnectionError(f"channel {self.data.uuid} has ended"))

    async def close(self) -> None:
        """Let go of the channel: the socket is closed (FreeSWITCH hangs up a channel whose
        controller leaves, unless told otherwise)."""
        self._writer.close()
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)
        self._end()


OnChannel = Callable[[EslChannel], Awaitable[None]]


class EslOutboundServer:
    """Listens where the dialplan's ``socket`` sends calls; for each, sends ``connect``,
    subscribes to the channel's events and mod_audio_stream's, lingers for the last events
    after the hangup, and hands the channel to ``on_channel`` (which owns it until it
    returns; the socket is closed then)."""

    EVENTS = ("mod_audio_stream::connect", "mod_audio_stream::disconnect",
              "mod_audio_stream::error", "mod_audio_stream::json", "mod_audio_stream::play")

    def __init__(self, on_channel: OnChannel,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.on_channel = on_channel
        self.connect_timeout_s = connect_timeout_s
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        peer = writer.get_extra_info("peername")
        esl = EslReader()
        try:
            writer.write(commands.connect())
            async with asyncio.timeout(self.connect_timeout_s):
                reply, rest = await _first(reader, esl)
            data = ChannelData.of(reply.headers)
        except (TimeoutError, EslError, ConnectionError) as exc:
            log.warning("event socket from %s: no channel handed over (%s)", peer, exc)
            writer.close()
            return
        channel = EslChannel(reader, writer, data, esl)
        channel.start(rest)
        try:
            for command in (commands.linger(), commands.myevents(),
                            commands.events([], self.EVENTS)):
                if not (await channel.send(command)).ok:
                    line = command.split(b"\n")[0].decode()
                    raise EslError(f"FreeSWITCH refused {line!r}")
            await self.on_channel(channel)
        except (EslError, ConnectionError, TimeoutError) as exc:
            log.warning("channel %s: %s", data.uuid, exc)
        except Exception:
            log.exception("channel %s: its controller failed", data.uuid)
        finally:
            await channel.close()


async def _first(reader: asyncio.StreamReader, esl: EslReader
                 ) -> tuple[EslMessage, list[EslMessage]]:
    """The reply to ``connect`` and whatever came with it."""
    while True:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("FreeSWITCH closed the socket before the channel data")
        got = esl.feed(data)
        if got:
            return got[0], got[1:]
