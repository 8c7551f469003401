"""The WebRTC channel's edges: the addresses offered to browsers, and audio converted
between aiortc's frames and atende's 20 ms frames."""

from __future__ import annotations

import re
from collections.abc import Iterator

import aioice.ice
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from av.audio.frame import AudioFrame

from atende.channels.webrtc.audio import Incoming, outgoing
from atende.channels.webrtc.ice import offer_addresses
from atende.media.audio import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE


@pytest.fixture
def restore_ice() -> Iterator[None]:
    before = aioice.ice.get_host_addresses
    yield
    aioice.ice.get_host_addresses = before


async def test_only_the_chosen_addresses_are_offered(restore_ice: None) -> None:
    offer_addresses(["127.0.0.1"])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        candidates = re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ (\w+)",
                                pc.localDescription.sdp)
    finally:
        await pc.close()
    assert candidates and set(candidates) == {("127.0.0.1", "host")}  # no STUN asked


def test_no_address_given_keeps_aiortcs_own_choice(restore_ice: None) -> None:
    offer_addresses([])
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)
    with pytest.raises(ValueError):
        offer_addresses(["not-an-address"])


def tone(rate: int, seconds: float, layout: str = "mono") -> AudioFrame:
    t = np.arange(int(rate * seconds)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    if layout == "stereo":
        samples = np.repeat(samples, 2)
    frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = rate
    return frame


def test_a_browsers_48k_stereo_becomes_20ms_frames_at_16k() -> None:
    incoming = Incoming()
    frames = incoming.frames(tone(48000, 0.1, "stereo"))  # what Opus decodes to
    frames += incoming.frames(tone(48000, 0.1, "stereo"))
    assert all(len(f) == FRAME_BYTES for f in frames)
    assert 8 <= len(frames) <= 10  # 200 ms, less what the resampler still holds
    pcm = np.frombuffer(b"".join(frames[2:]), dtype=np.int16)
    spectrum = np.abs(np.fft.rfft(pcm))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(pcm)
    assert abs(peak_hz - 440) < 20 and np.abs(pcm).max() > 5000


def test_outgoing_frames_carry_20ms_at_16k_with_their_time() -> None:
    pcm = (np.ones(FRAME_SAMPLES) * 1234).astype(np.int16).tobytes()
    frame = outgoing(pcm, 320 * 7)
    assert frame.samples == FRAME_SAMPLES and frame.sample_rate == SAMPLE_RATE
    assert frame.pts == 2240 and float(frame.time_base) == 1 / SAMPLE_RATE
    assert bytes(frame.planes[0])[:FRAME_BYTES] == pcm
