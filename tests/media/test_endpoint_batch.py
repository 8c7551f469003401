"""Calls on one event loop are decoded, resampled and encoded together (the pacer's
ticks): each call still hears exactly its own caller and sends exactly its own audio,
as it would alone. Real endpoints on loopback, a peer socket per call."""

from __future__ import annotations

import asyncio
import socket
from itertools import pairwise

import numpy as np
import pytest

from atende.media import g711
from atende.media.audio import FRAME_BYTES
from atende.media.endpoint import RtpEndpoint
from atende.media.ports import PortAllocator
from atende.media.resample import StreamResampler
from atende.media.rtp import RtpPacket, RtpSender
from atende.sip.sdp import Codec, NegotiatedAudio

CALLS = 4
PACKETS = 30


def tone(hz: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def snr_db(got: np.ndarray, want: np.ndarray) -> float:
    noise = got.astype(float) - want.astype(float)
    return float(10 * np.log10(np.sum(want.astype(float) ** 2) / (np.sum(noise ** 2) + 1e-9)))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_calls_handled_together_hear_and_send_what_each_would_alone(host: str) -> None:
    loop = asyncio.get_running_loop()
    codecs = ["PCMU", "PCMA", "PCMU", "PCMA"]  # two groups of two
    heard: list[list[bytes]] = [[] for _ in range(CALLS)]
    pulled: list[list[bytes]] = [[] for _ in range(CALLS)]
    outgoing = [tone(300 + 200 * i, 16000, 2.0).tobytes() for i in range(CALLS)]

    def puller(i: int):  # type: ignore[no-untyped-def]
        def pull(nbytes: int, at: float) -> bytes:
            start = sum(len(p) for p in pulled[i])
            pcm = outgoing[i][start:start + nbytes]
            pulled[i].append(pcm)
            return pcm
        return pull

    ports = PortAllocator(31300, 31400)
    endpoints, peers = [], []
    try:
        for i in range(CALLS):
            ep = RtpEndpoint(ports, f"c{i}", puller(i),
                             lambda frame, at, i=i: heard[i].append(frame),
                             lambda ev, at: None)
            ep.open(host)
            peer = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                 socket.SOCK_DGRAM)
            peer.bind((host, 0))
            peer.setblocking(False)
            pt = 0 if codecs[i] == "PCMU" else 8
            ep.configure(NegotiatedAudio(Codec(codecs[i], pt), host,
                                         peer.getsockname()[1], 101, 20, "sendrecv"))
            endpoints.append(ep)
            peers.append(peer)
        for ep in endpoints:
            ep.start()
        # Each caller sends its own tone, 20 ms a packet, all at once.
        incoming = [tone(450 + 250 * i, 8000, PACKETS * 0.02) for i in range(CALLS)]
        payloads = [[g711.encode(x[k * 160:(k + 1) * 160], codecs[i]) for k in range(PACKETS)]
                    for i, x in enumerate(incoming)]
        senders = [RtpSender(0 if c == "PCMU" else 8, ssrc=1000 + i)
                   for i, c in enumerate(codecs)]
        for k in range(PACKETS):
            for i in range(CALLS):
                peers[i].sendto(senders[i].packet(payloads[i][k], 160).encode(),
                                (host, endpoints[i].port))
            await asyncio.sleep(0.02)
        deadline = loop.time() + 5
        while (any(len(h) < PACKETS for h in heard)) and loop.time() < deadline:
            await asyncio.sleep(0.02)
    finally:
        for ep in endpoints:
            ep.close()
    received: list[list[RtpPacket]] = [[] for _ in range(CALLS)]
    for i, peer in enumerate(peers):
        while True:
            try:
                received[i].append(RtpPacket.parse(peer.recv(2048)))
            except BlockingIOError:
                break
        peer.close()

    for i in range(CALLS):
        # Heard: the caller's packets decoded and brought to 16 kHz, as one stream.
        assert len(heard[i]) == PACKETS and all(len(f) == FRAME_BYTES for f in heard[i])
        decoded = np.concatenate([g711.decode(p, codecs[i]) for p in payloads[i]])
        alone = np.frombuffer(StreamResampler(8000, 16000).process(decoded.tobytes()),
                              dtype=np.int16)
        got = np.frombuffer(b"".join(heard[i]), dtype=np.int16)
        assert int(np.abs(got.astype(int) - alone).max()) <= 1, i
        # Sent: every pulled frame, in order, resampled and encoded with its own codec.
        rtp = received[i]
        assert len(rtp) == len(pulled[i]) >= 10
        assert [p.sequence for p in rtp] == [(rtp[0].sequence + k) & 0xFFFF
                                             for k in range(len(rtp))]
        assert {(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in pairwise(rtp)} == {160}
        sent = np.concatenate([g711.decode(p.payload, codecs[i]) for p in rtp])
        want = np.frombuffer(StreamResampler(16000, 8000).process(b"".join(pulled[i])),
                             dtype=np.int16)
        assert snr_db(sent, g711.decode(g711.encode(want, codecs[i]), codecs[i])) > 40, i
        # And it is this call's tone, not another's: its own frequency dominates.
        spectrum = np.abs(np.fft.rfft(sent.astype(float)))
        peak_hz = np.argmax(spectrum) * 8000 / len(sent)
        assert abs(peak_hz - (300 + 200 * i)) < 15, (i, peak_hz)
