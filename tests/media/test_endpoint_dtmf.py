"""Key presses reach the call only from the caller's own stream (issue 16.5): a real
endpoint on loopback, fed by a peer socket and a stranger."""

from __future__ import annotations

import asyncio
import socket

from atende.media.dtmf import DtmfEvent, dtmf_payloads
from atende.media.endpoint import RtpEndpoint
from atende.media.ports import PortAllocator
from atende.media.rtp import RtpSender
from atende.sip.sdp import Codec, NegotiatedAudio


async def test_keys_come_from_the_latched_peer_and_its_own_stream() -> None:
    keys: list[str] = []

    def on_dtmf(ev: DtmfEvent, at: float) -> None:
        keys.append(ev.digit)

    endpoint = RtpEndpoint(PortAllocator(31000, 31100), "test", lambda n, t: None,
                           lambda frame, at: None, on_dtmf)
    port = endpoint.open("127.0.0.1")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    stranger.bind(("127.0.0.1", 0))
    try:
        endpoint.configure(NegotiatedAudio(Codec("PCMU", 0), "127.0.0.1",
                                           peer.getsockname()[1], 101, 20, "sendrecv"))
        audio, other = RtpSender(0, ssrc=1111), RtpSender(101, ssrc=2222)
        own_keys = RtpSender(101, ssrc=1111)

        async def send(sock: socket.socket, sender: RtpSender, digit: str, ts: int) -> None:
            for payload, marker in dtmf_payloads(digit, 100):
                pkt = sender.packet(payload, 0, payload_type=101, marker=marker)
                pkt.timestamp = ts
                sock.sendto(pkt.encode(), ("127.0.0.1", port))
                await asyncio.sleep(0.005)

        for _ in range(3):  # the caller's audio: it latches the endpoint to the peer
            peer.sendto(audio.packet(bytes(160), 160).encode(), ("127.0.0.1", port))
            await asyncio.sleep(0.01)
        await send(stranger, own_keys, "1", 8000)  # another address: ignored
        await send(peer, other, "2", 16000)  # the peer, but not its audio stream
        await send(peer, own_keys, "3", 24000)  # the caller's key
        await asyncio.sleep(0.1)
        assert keys == ["3"]
    finally:
        peer.close()
        stranger.close()
        endpoint.close()


async def test_keys_on_an_opus_call_count_its_48_khz_clock() -> None:
    keys: list[DtmfEvent] = []
    endpoint = RtpEndpoint(PortAllocator(31100, 31200), "test", lambda n, t: None,
                           lambda frame, at: None, lambda ev, at: keys.append(ev))
    port = endpoint.open("127.0.0.1")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    try:
        endpoint.configure(NegotiatedAudio(Codec("OPUS", 111, 48000), "127.0.0.1",
                                           peer.getsockname()[1], 110, 20, "sendrecv",
                                           dtmf_clock=48000))
        sender = RtpSender(110, ssrc=3333)
        for payload, marker in dtmf_payloads("5", 120, clock_rate=48000):
            pkt = sender.packet(payload, 0, payload_type=110, marker=marker)
            pkt.timestamp = 96000
            peer.sendto(pkt.encode(), ("127.0.0.1", port))
            await asyncio.sleep(0.005)
        async with asyncio.timeout(2):
            while not keys:
                await asyncio.sleep(0.01)
        assert keys[0].digit == "5" and 110 <= keys[0].duration_ms <= 130, keys
    finally:
        peer.close()
        endpoint.close()
