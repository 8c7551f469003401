"""Two endpoints of a bridge with one codec: packets from one peer reach the other peer
undecoded, as the second endpoint's own stream (its SSRC, its sequence, timestamps in its
timeline), on real loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import socket

from atende.media.endpoint import RtpEndpoint
from atende.media.ports import PortAllocator
from atende.media.rtp import RtpPacket, RtpSender
from atende.sip.sdp import Codec, NegotiatedAudio


def endpoint() -> RtpEndpoint:
    return RtpEndpoint(PortAllocator(31200, 31300), "test", lambda n, t: None,
                       lambda frame, at: None, lambda ev, at: None)


def peer() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    return s


async def received(sock: socket.socket, count: int) -> list[RtpPacket]:
    loop = asyncio.get_running_loop()
    return [RtpPacket.parse(await loop.run_in_executor(None, sock.recv, 2048))
            for _ in range(count)]


async def test_packets_cross_undecoded_as_the_other_endpoints_stream() -> None:
    a, b = endpoint(), endpoint()
    caller, callee = peer(), peer()
    try:
        a_port = a.open("127.0.0.1")
        b.open("127.0.0.1")
        for ep, far in ((a, caller), (b, callee)):
            ep.configure(NegotiatedAudio(Codec("PCMU", 0), "127.0.0.1",
                                         far.getsockname()[1], None, 20, "sendrecv"))
        a.relay_to(b)  # b is not started: nothing of its own pacing gets in the way
        first, second = RtpSender(0, ssrc=0xAAAA), RtpSender(0, ssrc=0xBBBB)
        payloads = [bytes([i]) * 160 for i in range(6)]
        for p in payloads[:3]:
            caller.sendto(first.packet(p, 160).encode(), ("127.0.0.1", a_port))
            await asyncio.sleep(0.005)
        for p in payloads[3:]:  # the caller's side changed source (a transfer, say)
            caller.sendto(second.packet(p, 160).encode(), ("127.0.0.1", a_port))
            await asyncio.sleep(0.005)
        got = await received(callee, 6)
    finally:
        caller.close()
        callee.close()
        a.close()
        b.close()
    assert [g.payload for g in got] == payloads  # not decoded, not re-encoded
    assert {g.ssrc for g in got} == {b.sender.ssrc}
    assert [(g.sequence - got[0].sequence) & 0xFFFF for g in got] == list(range(6))
    steps = [(y.timestamp - x.timestamp) & 0xFFFFFFFF for x, y in itertools.pairwise(got)]
    assert steps == [160] * 5  # one timeline, across the change of source
    assert [g.marker for g in got] == [True, False, False, True, False, False]
