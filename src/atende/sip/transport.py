"""asyncio UDP and TCP transports for SIP: bytes in and out, nothing else."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

from atende.sip.errors import SipParseError
from atende.sip.message import StreamFramer
from atende.sip.transaction import Address

log = logging.getLogger(__name__)

OnData = Callable[[bytes, Address], None]


async def resolve(host: str, port: int) -> list[str]:
    """Addresses of ``host`` (A/AAAA; SRV/NAPTR are not looked up). Raises OSError."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"no address for {host!r}")
    return [str(info[4][0]) for info in infos]


def address(transport: str, ip: str, port: int) -> Address:
    """An Address, with transports we do not speak (tls) mapped to udp."""
    t = transport.lower()
    return (t if t in ("udp", "tcp") else "udp", ip, port)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_data: OnData) -> None:
        self.on_data = on_data
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.on_data(data, ("udp", str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)  # ICMP port unreachable and the like


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = ("tcp", str(host), int(port))
        self.owner.tcp_connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            log.info("closing TCP connection from %s:%s: %s", self.peer[1], self.peer[2],
                     exc.reason)
            self.transport.close()
            return
        for m in messages:
            if m == StreamFramer.PING:
                self.transport.write(b"\r\n")  # RFC 5626 keep-alive pong
            else:
                self.owner.on_data(m, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.owner.tcp_connections.pop(self.peer, None)


class SipTransport:
    """One UDP socket and one TCP listener on the same address and port."""

    def __init__(self, on_data: OnData) -> None:
        self.on_data = on_data
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp_server: asyncio.Server | None = None
        self.tcp_connections: dict[Address, _TcpConnection] = {}
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self.on_data), local_addr=(host, port)
        )
        self.udp = udp
        self.port = int(udp.get_extra_info("sockname")[1])
        self.tcp_server = await loop.create_server(
            lambda: _TcpConnection(self), host, self.port, reuse_address=True
        )

    def send(self, data: bytes, address: Address) -> None:
        if address[0] == "udp":
            if self.udp is not None:
                self.udp.sendto(data, (address[1], address[2]))
            return
        conn = self.tcp_connections.get(address)
        if conn is not None and conn.transport is not None:
            conn.transport.write(data)
            return
        asyncio.get_running_loop().create_task(self._connect_and_send(data, address))

    async def _connect_and_send(self, data: bytes, address: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await loop.create_connection(
                lambda: _TcpConnection(self), address[1], address[2]
            )
        except OSError as exc:
            log.info("TCP connect to %s:%s failed: %s", address[1], address[2], exc)
            return
        assert proto.transport is not None
        # Requests we send over a connection we opened are answered on it; key it by the
        # address we dialled so later sends find it.
        self.tcp_connections[address] = proto
        proto.transport.write(data)

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        for conn in list(self.tcp_connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        if self.tcp_server is not None:
            self.tcp_server.close()
            await self.tcp_server.wait_closed()
