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


def _voice(seconds: float, rate: int = 16000) -> np.ndarray:
    """A voiced sound whose pitch glides and whose loudness pulses, so a lost packet is
    not guessable from the ones before it."""
    t = np.arange(int(seconds * rate)) / rate
    phase = np.cumsum(2 * np.pi * (150 + 100 * np.sin(2 * np.pi * 1.3 * t)) / rate)
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.abs(np.sin(2 * np.pi * 3 * t))
    return (wave / np.abs(wave).max() * 12000).astype(np.int16)


def _fit(a: bytes, b: np.ndarray) -> float:
    return float(np.corrcoef(np.frombuffer(a, np.int16).astype(float), b.astype(float))[0, 1])


def test_a_lost_opus_packet_is_recovered_from_the_next_ones_fec() -> None:
    sender = codec_for("OPUS")
    voice = _voice(1.0)
    packets = [sender.encode(voice[i:i + 320].tobytes()) for i in range(0, len(voice), 320)]
    reference = codec_for("OPUS")
    heard = [np.frombuffer(reference.decode(p), np.int16) for p in packets]
    lost = 30
    receiver, guesser = codec_for("OPUS"), codec_for("OPUS")
    for p in packets[:lost]:
        receiver.decode(p)
        guesser.decode(p)
    # From the FEC the next packet carries (our encoder puts it in): the same sound.
    recovered = receiver.conceal(packets[lost + 1], 960)
    assert len(recovered) == 2 * 960
    assert _fit(recovered, heard[lost]) > 0.9
    assert _fit(receiver.decode(packets[lost + 1]), heard[lost + 1]) > 0.9
    # With no packet after it yet, the decoder can only extrapolate, and misses.
    guess = guesser.conceal(None, 960)
    assert len(guess) == 2 * 960 and _fit(guess, heard[lost]) < 0.7


def test_other_codecs_conceal_a_loss_with_silence() -> None:
    for name in ("PCMU", "PCMA", "G722"):
        assert codec_for(name).conceal(b"\xff" * 160, 160) == bytes(320)


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_rows_at_once_equal_one_at_a_time(name: str) -> None:
    from atende.media import g711

    pcm = np.random.default_rng(3).integers(-32768, 32767, (6, 160)).astype(np.int16)
    rows = g711.encode_rows(pcm, name)
    assert [r.tobytes() for r in rows] == [g711.encode(p, name) for p in pcm]
    back = g711.decode_rows(rows, name)
    assert all(np.array_equal(b, g711.decode(r.tobytes(), name))
               for b, r in zip(back, rows, strict=True))


def test_g711_encodes_every_sample_by_the_standards_formula() -> None:
    """The tables are looked up by the sample's bits: all 65,536 samples, against the
    segment formulas, and the ends of the scale against G.711's own codes."""
    from atende.media import g711

    every = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    ulaw, alaw = g711.encode_rows(every, "PCMU"), g711.encode_rows(every, "PCMA")
    assert ulaw.tolist() == [g711._ulaw_encode_one(int(x)) for x in every]
    assert alaw.tolist() == [g711._alaw_encode_one(int(x)) for x in every]
    ends = np.array([0, -1, 32767, -32768], dtype=np.int16)
    assert g711.encode(ends, "PCMU") == bytes([0xFF, 0x7F, 0x80, 0x00])
    assert g711.encode(ends, "PCMA") == bytes([0xD5, 0x55, 0xAA, 0x2A])
    assert g711.decode(bytes([0xFF, 0x80]), "PCMU").tolist() == [0, 32124]
