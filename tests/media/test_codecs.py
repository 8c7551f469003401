"""Each wire codec carries a tone: encoded a packet at a time, decoded again, at the
rate and size it promises (G.711 ours, G.722 and Opus through FFmpeg)."""

from __future__ import annotations

import numpy as np
import pytest

from atende.media.codecs import codec_for

HZ = 700.0


def tone(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * HZ * t)).astype(np.int16)


def strongest_hz(samples: np.ndarray, rate: int) -> float:
    x = samples.astype(np.float64) * np.hanning(len(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(np.abs(np.fft.rfft(x))))])


@pytest.mark.parametrize(("name", "payload_bytes"), [
    ("PCMU", 160), ("PCMA", 160), ("G722", 160), ("OPUS", None)])
def test_a_tone_survives_the_codec(name: str, payload_bytes: int | None) -> None:
    sender, receiver = codec_for(name), codec_for(name)
    frame = sender.encode_rate // 50  # 20 ms
    source = tone(sender.encode_rate, 1.0)
    decoded = bytearray()
    for i in range(50):
        payload = sender.encode(source[i * frame:(i + 1) * frame].tobytes())
        if payload_bytes is not None:
            assert len(payload) == payload_bytes
        else:
            assert 0 < len(payload) < 200  # variable, a few dozen bytes at 24 kbit/s
        decoded += receiver.decode(payload)
    out = np.frombuffer(bytes(decoded), dtype=np.int16)
    assert len(out) == receiver.decode_rate  # a second of audio at its rate
    tail = out[len(out) // 2:]  # past any codec start-up
    assert abs(strongest_hz(tail, receiver.decode_rate) - HZ) < 10
    assert np.sqrt(np.mean(tail.astype(np.float64) ** 2)) > 2000


def test_rtp_clocks_are_the_rfcs() -> None:
    assert codec_for("G722").clock_rate == 8000  # RFC 3551's historical 8 kHz
    assert codec_for("OPUS").clock_rate == 48000  # RFC 7587, whatever it codes
    assert codec_for("OPUS").decode(b"\xff\x00garbage") == b""  # damaged: nothing
    with pytest.raises(ValueError):
        codec_for("G729")
