"""asyncio UDP, TCP and TLS transports for SIP: bytes in and out, nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from atende.channels.sip.tls import client_context
from atende.sip.message import FramingError, SipParseError, StreamFramer
from atende.sip.transaction import Address

log = logging.getLogger(__name__)

OnData = Callable[[bytes, Address], None]
OnError = Callable[[Address, str], None]
STREAM_TRANSPORTS = ("tcp", "tls")


@dataclass(frozen=True)
class StreamLimits:
    """What a TCP or TLS connection someone opens to us may cost (issue 16.4): hundreds of
    idle or slowloris connections stayed open. Connections we open (to a PBX) are ours and
    are kept."""

    idle_s: float = 120.0  # no byte for this long: closed (keep-alive pings count)
    message_s: float = 10.0  # a message started must be complete within this
    per_address: int = 64  # open connections from one address
    sweep_s: float = 2.0


async def resolve(host: str, port: int) -> list[str]:
    """Addresses of ``host`` (A/AAAA; SRV/NAPTR are not looked up). Raises OSError."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"no address for {host!r}")
    return [str(info[4][0]) for info in infos]


def address(transport: str, ip: str, port: int) -> Address:
    """An Address, with transports we do not speak (sctp, ws…) mapped to udp."""
    t = transport.lower()
    return (t if t in STREAM_TRANSPORTS else "udp", ip, port)


# Linux's receive timestamps (socket(7)): each datagram carries the time the kernel
# queued it, as a struct timespec (two longs on 64-bit Linux). Python's socket module does
# not name them.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@ll")
READS_PER_WAKE = 64  # datagrams read in one go, so the loop's other work cannot starve SIP
# The kernel's receive buffer for the SIP socket. Its default (rmem_default, 208 KiB)
# holds only about 150 datagrams (each costs its buffer's size, not its length): at 250
# calls/s a moment's stall dropped ACKs and BYEs, and calls whose caller had hung up
# stayed up for 32 s. The kernel caps this at net.core.rmem_max (docs/performance.md).
RECEIVE_BUFFER = 4 << 20
MAX_UNSENT = 4096  # datagrams held while the kernel's send buffer is full


class _UdpSocket:
    """SIP's UDP socket, read until empty (up to READS_PER_WAKE a wake-up) rather than one
    datagram per turn of the loop as asyncio's datagram transport does: with hundreds of
    RTP sockets ready in every turn, one SIP message a turn fell behind at 100 calls/s, and
    the backlog waited in the kernel where no overload control could see it. Where the
    kernel stamps datagrams (Linux), how long each waited is reported (``on_wait``)."""

    def __init__(self, sock: socket.socket, on_data: OnData,
                 on_wait: Callable[[float], None] | None) -> None:
        self.sock = sock
        self.on_data = on_data
        self.on_wait = on_wait
        self._loop = asyncio.get_running_loop()
        self._unsent: deque[tuple[bytes, tuple[str, int]]] = deque()
        self._stamped = False
        if on_wait is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self._stamped = True
            except OSError:
                pass  # not Linux: no stamps, no waits to report
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        waited = 0.0
        for _ in range(READS_PER_WAKE):
            try:
                data, ancillary, _flags, addr = self.sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.debug("UDP error: %s", exc)  # ICMP port unreachable and the like
                continue
            for level, kind, raw in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and \
                        len(raw) >= TIMESPEC.size:
                    sec, nsec = TIMESPEC.unpack_from(raw)
                    waited = max(waited, time.time() - (sec + nsec / 1e9))
            self.on_data(data, ("udp", str(addr[0]), int(addr[1])))
        if self._stamped and self.on_wait is not None:
            self.on_wait(waited)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self._unsent:
            try:
                self.sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self.sock.fileno(), self._writable)
            except OSError as exc:
                log.debug("UDP send to %s:%s failed: %s", addr[0], addr[1], exc)
                return
        if len(self._unsent) < MAX_UNSENT:  # beyond, lost as on the wire: SIP resends
            self._unsent.append((data, addr))

    def _writable(self) -> None:
        while self._unsent:
            data, addr = self._unsent[0]
            try:
                self.sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("UDP send to %s:%s failed: %s", addr[0], addr[1], exc)
            self._unsent.popleft()
        self._loop.remove_writer(self.sock.fileno())

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
            self._loop.remove_writer(self.sock.fileno())
            self.sock.close()


class _StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection (the TLS layer is asyncio's, below this protocol)."""

    def __init__(self, owner: SipTransport, kind: str, accepted: bool) -> None:
        self.owner = owner
        self.kind = kind
        self.accepted = accepted  # opened by the peer (limited), not by us
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.last_data = 0.0  # event-loop time
        self.partial_since: float | None = None  # a message begun and not yet complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = (self.kind, str(host), int(port))
        self.last_data = asyncio.get_running_loop().time()
        if self.accepted and self.owner.accepted_from(self.peer[1]) >= \
                self.owner.limits.per_address:
            log.warning("%s connection from %s refused: %d already open from there",
                        self.kind.upper(), self.peer[1], self.owner.limits.per_address)
            self.transport.abort()
            return
        self.owner.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        now = asyncio.get_running_loop().time()
        self.last_data = now
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            log.info("closing %s connection from %s:%s: %s", self.kind.upper(), self.peer[1],
                     self.peer[2], exc.reason)
            if isinstance(exc, FramingError):
                self.owner.on_data(exc.head, self.peer)  # its 400, written before the close
            self.transport.close()
            return
        if self.framer.pending():
            self.partial_since = self.partial_since or now
        else:
            self.partial_since = None
        for m in messages:
            if m == StreamFramer.PING:
                self.transport.write(b"\r\n")  # RFC 5626 keep-alive pong
            else:
                self.owner.on_data(m, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        for key in [k for k, c in self.owner.connections.items() if c is self]:
            del self.owner.connections[key]


class SipTransport:
    """One UDP socket and one TCP listener on the same address and port, and optionally a
    TLS listener on a port of its own."""

    def __init__(self, on_data: OnData, on_error: OnError | None = None,
                 limits: StreamLimits = StreamLimits(),
                 on_wait: Callable[[float], None] | None = None) -> None:
        self.on_data = on_data
        self.on_error = on_error
        self.on_wait = on_wait  # how long UDP messages waited to be read (overload)
        self.udp: _UdpSocket | None = None
        self.servers: list[asyncio.Server] = []
        self.connections: dict[Address, _StreamConnection] = {}
        self.limits = limits
        self._sweeper: asyncio.Task[None] | None = None
        self.port = 0
        self.tls_port: int | None = None
        # How to open TLS connections to a peer: its name (SNI and the certificate check)
        # and whether the certificate must be trusted, by (ip, port).
        self.tls_peers: dict[tuple[str, int], tuple[str, bool]] = {}
        self._connecting: dict[Address, list[bytes]] = {}

    async def start(self, host: str, port: int, tls_port: int | None = None,
                    tls_server: ssl.SSLContext | None = None) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(20):
            info = (await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM))[0]
            sock = socket.socket(info[0], socket.SOCK_DGRAM)
            try:
                sock.bind(info[4])
            except OSError:
                sock.close()
                raise
            udp = _UdpSocket(sock, self.on_data, self.on_wait)
            self.udp = udp
            self.port = int(sock.getsockname()[1])
            try:
                self.servers.append(await loop.create_server(
                    lambda: _StreamConnection(self, "tcp", accepted=True), host, self.port,
                    reuse_address=True))
                break
            except OSError:
                udp.close()
                # Any port (0): the one UDP got may be taken for TCP; try another.
                if port != 0 or attempt == 19:
                    raise
        if tls_port is not None and tls_server is not None:
            server = await loop.create_server(lambda: _StreamConnection(self, "tls", True), host,
                                              tls_port, ssl=tls_server, reuse_address=True,
                                              ssl_handshake_timeout=10)
            self.servers.append(server)
            # (uvloop's ``sockets`` is a list where asyncio's is the tuple typeshed
            # declares; compiled, this module checks declared types, so it reads Any.)
            self.tls_port = int(cast(Any, server).sockets[0].getsockname()[1])
        self._sweeper = loop.create_task(self._sweep())

    def accepted_from(self, ip: str) -> int:
        return sum(1 for c in self.connections.values() if c.accepted and c.peer is not None
                   and c.peer[1] == ip)

    async def _sweep(self) -> None:
        """Close the connections opened to us that sit idle, or that started a message
        and do not finish it (slowloris)."""
        loop = asyncio.get_running_loop()
        lim = self.limits
        while True:
            await asyncio.sleep(lim.sweep_s)
            now = loop.time()
            for conn in list(self.connections.values()):
                if not conn.accepted or conn.transport is None or conn.peer is None:
                    continue
                if now - conn.last_data > lim.idle_s:
                    why = f"idle for {lim.idle_s:.0f} s"
                elif conn.partial_since is not None and now - conn.partial_since > \
                        lim.message_s:
                    why = f"a message unfinished after {lim.message_s:.0f} s"
                else:
                    continue
                log.info("closing %s connection from %s:%s: %s", conn.kind.upper(),
                         conn.peer[1], conn.peer[2], why)
                conn.transport.abort()

    def set_tls_peer(self, ip: str, port: int, server_name: str, verify: bool) -> None:
        self.tls_peers[(ip, port)] = (server_name, verify)

    def send(self, data: bytes, address: Address) -> None:
        if address[0] == "udp":
            if self.udp is not None:
                self.udp.sendto(data, (address[1], address[2]))
            return
        conn = self.connections.get(address)
        if conn is not None and conn.transport is not None:
            conn.transport.write(data)
            return
        waiting = self._connecting.get(address)
        if waiting is not None:  # a connection is being opened: go out on it
            waiting.append(data)
            return
        self._connecting[address] = [data]
        asyncio.get_running_loop().create_task(self._connect_and_send(address))

    async def _connect_and_send(self, address: Address) -> None:
        loop = asyncio.get_running_loop()
        kind, host, port = address
        ctx: ssl.SSLContext | None = None
        name: str | None = None
        if kind == "tls":
            name, verify = self.tls_peers.get((host, port), (host, True))
            ctx = client_context(verify)
        try:
            _, proto = await loop.create_connection(
                lambda: _StreamConnection(self, kind, accepted=False), host, port, ssl=ctx,
                server_hostname=name, ssl_handshake_timeout=10 if ctx else None)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            self._connecting.pop(address, None)
            reason = _describe(kind, exc)
            log.info("%s connection to %s:%s failed: %s", kind.upper(), host, port, reason)
            if self.on_error is not None:
                self.on_error(address, reason)
            return
        assert proto.transport is not None
        # Requests we send over a connection we opened are answered on it; key it by the
        # address we dialled so later sends find it.
        self.connections[address] = proto
        for data in self._connecting.pop(address, []):
            proto.transport.write(data)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.udp is not None:
            self.udp.close()
        for conn in list(self.connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        for server in self.servers:
            server.close()
            await server.wait_closed()


def _describe(kind: str, exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"{kind.upper()} connection timed out"
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"{kind.upper()} connection failed: {detail}"
