"""RTP's sockets on the event loop (`media/ports.py`), on Python's loop and on uvloop's
(what `atende serve` runs): each datagram arrives whole with its sender's address, a send
that cannot go is dropped without an error, and a closed pair frees its ports."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from atende.media.ports import Addr, PortAllocator

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def on_each_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[str], None]:
    @pytest.mark.parametrize("loop", list(LOOPS))
    def run(loop: str) -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(test())
    run.__name__ = test.__name__
    return run


async def _arrivals(host: str, datagrams: list[bytes]) -> tuple[list[tuple[bytes, Addr]],
                                                                 list[tuple[bytes, Addr]], Addr]:
    """Send ``datagrams`` to a fresh pair's RTP port, then the first one to its RTCP
    port; what each port was handed, and the sender's address."""
    rtp: list[tuple[bytes, Addr]] = []
    rtcp: list[tuple[bytes, Addr]] = []
    ports = PortAllocator(32000, 32099)
    port, a, b = ports.open_pair(host, lambda d, addr: rtp.append((d, addr)),
                                 lambda d, addr: rtcp.append((d, addr)))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as peer:
        peer.bind((host, 0))
        for d in datagrams:
            peer.sendto(d, (host, port))
        peer.sendto(datagrams[0], (host, port + 1))
        async with asyncio.timeout(5):
            while len(rtp) < len(datagrams) or not rtcp:
                await asyncio.sleep(0.001)
        sender = peer.getsockname()
    a.close()
    b.close()
    return rtp, rtcp, (sender[0], sender[1])


@on_each_loop
async def test_each_datagram_arrives_whole_with_its_sender() -> None:
    # A burst queued in the socket comes out one by one, none lost or joined; one far
    # larger than any RTP packet is not cut.
    sent = [bytes([i]) * (12 + i) for i in range(20)] + [b"x" * 9000]
    for host in ("127.0.0.1", "::1"):
        rtp, rtcp, sender = await _arrivals(host, sent)
        assert [d for d, _ in rtp] == sent
        assert {addr for _, addr in rtp} == {sender}  # (host, port): IPv6's extras left off
        assert rtcp == [(sent[0], sender)]


@on_each_loop
async def test_a_send_that_cannot_go_is_dropped_quietly() -> None:
    ports = PortAllocator(32100, 32199)
    _, rtp, rtcp = ports.open_pair("127.0.0.1", lambda d, a: None, lambda d, a: None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        rtp._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        for _ in range(2000):  # far more than either buffer holds: no error, no queue
            rtp.sendto(b"\x80" * 1200, sink.getsockname())
        rtp.sendto(b"x", ("127.0.0.1", 9))  # nobody there (discard port)
        rtp.sendto(b"x" * 70000, sink.getsockname())  # too long for UDP at all
        received = 0
        sink.setblocking(False)
        try:
            while True:
                sink.recv(2048)
                received += 1
        except BlockingIOError:
            pass
    assert 0 < received < 2000
    rtp.close()
    rtcp.close()


@on_each_loop
async def test_a_closed_pair_frees_its_ports_and_hears_nothing_more() -> None:
    heard: list[bytes] = []
    ports = PortAllocator(32200, 32203)  # room for one pair only
    port, rtp, rtcp = ports.open_pair("127.0.0.1", lambda d, a: heard.append(d),
                                      lambda d, a: heard.append(d))
    with pytest.raises(OSError, match="no free RTP port"):
        ports.open_pair("127.0.0.1", lambda d, a: None, lambda d, a: None)
    rtp.close()
    rtcp.close()
    rtp.close()  # twice is harmless
    ports.release(port)
    again, rtp2, rtcp2 = ports.open_pair("127.0.0.1", lambda d, a: None, lambda d, a: None)
    assert again == port
    rtp2.close()
    rtcp2.close()
    assert heard == []
