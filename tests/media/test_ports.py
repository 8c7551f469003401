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


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():
            await asyncio.sleep(0.001)


async def _connected(host: str) -> None:
    heard: list[tuple[bytes, Addr]] = []
    ports = PortAllocator(32300, 32399)
    port, rtp, rtcp = ports.open_pair(host, lambda d, a: heard.append((d, a)),
                                      lambda d, a: None)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as peer, \
            socket.socket(family, socket.SOCK_DGRAM) as stranger:
        peer.bind((host, 0))
        stranger.bind((host, 0))
        peer.settimeout(5)
        me = (host, port)
        at_peer = peer.getsockname()[:2]
        at_stranger = stranger.getsockname()[:2]
        stranger.sendto(b"early", me)  # before the connect: heard, as the stranger's
        rtp.connect(at_peer)
        stranger.sendto(b"stray", me)  # after it: the kernel drops it
        peer.sendto(b"one", me)
        await _until(lambda: len(heard) >= 2)
        assert heard == [(b"early", at_stranger), (b"one", at_peer)]
        rtp.sendto(b"back", at_peer)  # to the peer, without its address
        data, source = peer.recvfrom(100)
        assert (data, source[:2]) == (b"back", me)
        rtp.sendto(b"elsewhere", at_stranger)  # and anyone else, with it
        stranger.settimeout(5)
        assert stranger.recv(100) == b"elsewhere"
        rtp.disconnect()
        stranger.sendto(b"again", me)
        await _until(lambda: len(heard) >= 3)
        assert heard[2] == (b"again", at_stranger)
    rtp.close()
    rtcp.close()


@on_each_loop
async def test_a_connected_port_hears_its_peer_only_until_it_lets_go() -> None:
    for host in ("127.0.0.1", "::1"):
        await _connected(host)


@on_each_loop
async def test_what_was_queued_before_the_connect_keeps_its_sender() -> None:
    # The loop does not run between the sends and the connect: every datagram is still
    # in the socket, from two senders, when the port connects to one of them.
    heard: list[tuple[bytes, Addr]] = []
    ports = PortAllocator(32400, 32499)
    port, rtp, rtcp = ports.open_pair("127.0.0.1", lambda d, a: heard.append((d, a)),
                                      lambda d, a: None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        peer.bind(("127.0.0.1", 0))
        stranger.bind(("127.0.0.1", 0))
        for i in range(10):
            (peer if i % 2 else stranger).sendto(bytes([i]), ("127.0.0.1", port))
        rtp.connect(peer.getsockname())
        await _until(lambda: len(heard) >= 10)
        assert heard == [(bytes([i]), (peer if i % 2 else stranger).getsockname())
                         for i in range(10)]
    rtp.close()
    rtcp.close()
