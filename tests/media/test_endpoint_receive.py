"""An endpoint reads the usual RTP packet (version 2, no CSRC, extension or padding) on a
short path of its own: every other form of the same stream must be heard alike. Two real
endpoints on loopback get the same audio and key press, one as plain packets, the other
with CSRCs, a header extension and padding on each, and RTCP on the RTP port
(RFC 5761) among them."""

from __future__ import annotations

import asyncio
import socket
import struct

import numpy as np

from atende.media import g711
from atende.media.dtmf import DtmfEvent, dtmf_payloads
from atende.media.endpoint import RtpEndpoint
from atende.media.ports import PortAllocator
from atende.media.rtcp import RtcpState
from atende.media.rtp import ReceiverStats, RtpSender
from atende.sip.sdp import Codec, NegotiatedAudio

PACKETS = 20


def dressed(plain: bytes) -> bytes:
    """``plain`` (a usual packet) with two CSRCs, a one-word header extension and three
    octets of padding: the same packet to any receiver."""
    b0, b1 = plain[0], plain[1]
    assert b0 == 0x80
    head = bytes([b0 | 0x20 | 0x10 | 2, b1]) + plain[2:12]
    csrcs = struct.pack("!II", 7, 8)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"
    return head + csrcs + extension + plain[12:] + b"\x00\x00\x03"


async def _hear(dress: bool) -> tuple[list[bytes], list[str], ReceiverStats, int]:
    frames: list[bytes] = []
    keys: list[DtmfEvent] = []
    ep = RtpEndpoint(PortAllocator(31500, 31599), "t", lambda n, t: None,
                     lambda frame, at: frames.append(frame), lambda ev, at: keys.append(ev))
    port = ep.open("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        ep.configure(NegotiatedAudio(Codec("PCMU", 0), "127.0.0.1", peer.getsockname()[1],
                                     101, 20, "sendrecv"))
        ep.start()
        voice = (6000 * np.sin(np.arange(PACKETS * 160) * 0.07)).astype(np.int16)
        sender = RtpSender(0, ssrc=99)
        report = RtcpState("peer").build(RtpSender(0, ssrc=99), ReceiverStats(), 0.0,
                                         1000.0, sent_anything=True)
        packets = [sender.packet(g711.encode(voice[k * 160:(k + 1) * 160], "PCMU"),
                                 160).encode() for k in range(PACKETS)]
        for payload, marker in dtmf_payloads("5", 100):
            packets.append(sender.packet(payload, 0, payload_type=101, marker=marker,
                                         advance=False).encode())
        for k, packet in enumerate(packets):
            peer.sendto(dressed(packet) if dress else packet, ("127.0.0.1", port))
            if k == 5:
                peer.sendto(report, ("127.0.0.1", port))  # RTCP on the RTP port
            await asyncio.sleep(0.002)
        async with asyncio.timeout(5):
            while len(frames) < PACKETS or not keys:
                await asyncio.sleep(0.005)
    ep.close()
    return frames, [k.digit for k in keys], ep.stats, ep.rtcp.reports_received


async def test_every_form_of_a_packet_is_heard_as_the_usual_one() -> None:
    plain = await _hear(dress=False)
    other = await _hear(dress=True)
    assert len(plain[0]) == PACKETS and plain[0] == other[0]  # the same audio, whole
    assert plain[1] == other[1] == ["5"]
    for stats in (plain[2], other[2]):
        assert stats.ssrc == 99 and stats.received == PACKETS + len(dtmf_payloads("5", 100))
        assert stats.expected == stats.received and stats.lost == 0
    assert plain[3] >= 1 and other[3] >= 1  # the report on the RTP port was read as one


def numbered(ssrc: int, sequence: int) -> RtpSender:
    sender = RtpSender(0, ssrc=ssrc)
    sender.sequence = sequence
    return sender


async def test_a_new_remote_address_is_latched_anew() -> None:
    """Latching connects the RTP socket to the peer; a re-INVITE that moves the media
    elsewhere must let the new address in (and keep the old one out). The new source
    numbers its packets from its own start, here behind the old one's: still heard."""
    frames: list[bytes] = []
    ep = RtpEndpoint(PortAllocator(31600, 31699), "t", lambda n, t: None,
                     lambda frame, at: frames.append(frame), lambda ev, at: None)
    port = ep.open("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))

        async def feed(sock: socket.socket, sender: RtpSender, count: int) -> None:
            for _ in range(count):
                sock.sendto(sender.packet(bytes(160), 160).encode(), ("127.0.0.1", port))
                await asyncio.sleep(0.003)

        ep.configure(NegotiatedAudio(Codec("PCMU", 0), "127.0.0.1", first.getsockname()[1],
                                     None, 20, "sendrecv"))
        ep.start()
        await feed(first, numbered(1, 30000), 5)
        async with asyncio.timeout(5):
            while len(frames) < 5:
                await asyncio.sleep(0.005)
        await feed(second, RtpSender(0, ssrc=2), 3)  # not the peer: nothing heard
        await asyncio.sleep(0.05)
        assert len(frames) == 5 and ep.remote == first.getsockname()
        ep.configure(NegotiatedAudio(Codec("PCMU", 0), "127.0.0.1",
                                     second.getsockname()[1], None, 20, "sendrecv"))
        await feed(second, numbered(3, 20000), 5)
        await feed(first, RtpSender(0, ssrc=4), 3)  # the old address: out now
        async with asyncio.timeout(5):
            while len(frames) < 10:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert len(frames) == 10 and ep.remote == second.getsockname()
        assert ep.stats.ssrc == 3
    ep.close()


async def test_a_new_stream_from_the_peer_numbers_afresh() -> None:
    """The caller's side restarts its stream (a new SSRC, as after a transfer at the
    PBX) with sequence numbers behind the old ones: heard, not dropped as late."""
    frames: list[bytes] = []
    ep = RtpEndpoint(PortAllocator(31700, 31799), "t", lambda n, t: None,
                     lambda frame, at: frames.append(frame), lambda ev, at: None)
    port = ep.open("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        ep.configure(NegotiatedAudio(Codec("PCMU", 0), "127.0.0.1", peer.getsockname()[1],
                                     None, 20, "sendrecv"))
        ep.start()
        for sender in (numbered(1, 40000), numbered(2, 39000)):
            for _ in range(4):
                peer.sendto(sender.packet(bytes(160), 160).encode(), ("127.0.0.1", port))
                await asyncio.sleep(0.003)
        async with asyncio.timeout(5):
            while len(frames) < 8:
                await asyncio.sleep(0.005)
        assert ep.jitter.late == 0
    ep.close()
