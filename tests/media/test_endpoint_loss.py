"""A lost packet on a real endpoint: an Opus one is made good from the FEC of the packet
after it, so the caller's audio has no hole; the stream keeps its length either way."""

from __future__ import annotations

import asyncio
import socket

import numpy as np

from atende.media.codecs import codec_for
from atende.media.endpoint import RtpEndpoint
from atende.media.ports import PortAllocator
from atende.media.rtp import RtpSender
from atende.sip.sdp import Codec, NegotiatedAudio
from tests.media.test_codecs import _voice

LOST = 30


async def _received(packets: list[bytes], skip: int | None) -> tuple[list[bytes], int]:
    """Send ``packets`` (but ``skip``) as the peer; the 16 kHz frames the endpoint gave
    the call, and how many losses it recovered."""
    frames: list[bytes] = []
    endpoint = RtpEndpoint(PortAllocator(31200, 31300), "test", lambda n, t: None,
                           lambda frame, at: frames.append(frame), lambda ev, at: None)
    port = endpoint.open("127.0.0.1")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    try:
        endpoint.configure(NegotiatedAudio(Codec("OPUS", 111, 48000), "127.0.0.1",
                                           peer.getsockname()[1], None, 20, "sendrecv"))
        sender = RtpSender(111, ssrc=4242)
        for i, payload in enumerate(packets):
            pkt = sender.packet(payload, 960)
            if i != skip:
                peer.sendto(pkt.encode(), ("127.0.0.1", port))
            await asyncio.sleep(0.002)
        async with asyncio.timeout(5):
            while len(frames) < len(packets) - 3:  # (the last few wait in the buffer)
                await asyncio.sleep(0.01)
        return frames, getattr(endpoint.codec, "recovered", 0)
    finally:
        peer.close()
        endpoint.close()


async def test_a_lost_opus_packet_leaves_no_hole_in_the_callers_audio() -> None:
    voice = _voice(1.0)
    sender = codec_for("OPUS")
    packets = [sender.encode(voice[i:i + 320].tobytes()) for i in range(0, len(voice), 320)]
    whole, _ = await _received(packets, None)
    holed, recovered = await _received(packets, LOST)
    assert recovered == 1
    assert len(holed) == len(whole)  # the lost 20 ms is there, in its place
    lost = np.frombuffer(holed[LOST], np.int16).astype(float)
    meant = np.frombuffer(whole[LOST], np.int16).astype(float)
    assert np.abs(lost).max() > 1000  # not silence
    assert np.corrcoef(lost, meant)[0, 1] > 0.8
