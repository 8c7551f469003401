"""The channel-edge resampler: each 20 ms frame gives its exact share of output at once,
frames join as if the stream were one buffer, speech-band tones pass, and what would alias
into the phone band is removed."""

from __future__ import annotations

import numpy as np
import pytest

from atende.media.resample import StreamResampler

PAIRS = [(16000, 8000), (8000, 16000), (24000, 16000), (16000, 24000), (48000, 16000)]


def tone(hz: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def stream(rs: StreamResampler, x: np.ndarray, frame_ms: int = 20) -> list[np.ndarray]:
    n = rs.in_rate * frame_ms // 1000
    return [np.frombuffer(rs.process(x[i:i + n].tobytes()), dtype=np.int16)
            for i in range(0, len(x), n)]


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(float) ** 2)) + 1e-9))


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_every_frame_gives_its_share_at_once(a: int, b: int) -> None:
    frames = stream(StreamResampler(a, b), tone(440, a))
    assert {len(f) for f in frames} == {b // 50}  # 20 ms out for each 20 ms in


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_frames_join_like_one_buffer(a: int, b: int) -> None:
    x = tone(700, a)
    whole = np.frombuffer(StreamResampler(a, b).process(x.tobytes()), dtype=np.int16)
    # Odd-sized pieces, too (a vendor's deltas are any size).
    rs = StreamResampler(a, b)
    pieces = np.concatenate([np.frombuffer(rs.process(x[i:i + 97].tobytes()), np.int16)
                             for i in range(0, len(x), 97)])
    assert np.array_equal(np.concatenate(stream(StreamResampler(a, b), x)), whole)
    assert np.array_equal(pieces, whole)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_speech_band_passes_with_little_delay(a: int, b: int) -> None:
    x = tone(1000, a)
    y = np.concatenate(stream(StreamResampler(a, b), x))
    assert abs(rms_db(y[b // 10:]) - rms_db(x)) < 0.2
    # Delay: where the output lines up with the input resampled exactly.
    ref = tone(1000, b)
    lags = [float(np.dot(y[b // 10:b // 2], ref[b // 10 - d:b // 2 - d])) for d in range(40)]
    delay_ms = int(np.argmax(lags)) * 1000 / b
    assert delay_ms < 2.5, delay_ms


def test_what_would_alias_is_removed() -> None:
    # 6 kHz at 16 kHz would fold to 2 kHz at 8 kHz, in the middle of the phone band.
    y = np.concatenate(stream(StreamResampler(16000, 8000), tone(6000, 16000)))
    assert rms_db(y[800:]) < rms_db(tone(6000, 16000)) - 60


def test_flush_gives_the_tail_and_reset_forgets() -> None:
    rs = StreamResampler(24000, 16000)
    x = tone(500, 24000, 0.1)
    body = rs.process(x.tobytes())
    tail = rs.flush()
    assert 0 < len(tail) and len(body) + len(tail) >= 2 * 1600
    # After a reset nothing of the old audio leaks into the next stretch.
    rs.process(x.tobytes())
    rs.reset()
    assert not np.any(np.frombuffer(rs.process(bytes(960)), np.int16))


@pytest.mark.parametrize(("a", "b"), [(16000, 8000), (8000, 16000)])
def test_streams_resampled_together_equal_each_alone(a: int, b: int) -> None:
    rng = np.random.default_rng(7)
    alone = [StreamResampler(a, b) for _ in range(5)]
    together = [StreamResampler(a, b) for _ in range(5)]
    n = a // 50
    for _ in range(30):  # the history carries from frame to frame, per stream
        x = rng.normal(0, 8000, (5, n)).astype(np.int16)
        want = np.stack([np.frombuffer(rs.process(row.tobytes()), dtype=np.int16)
                         for rs, row in zip(alone, x, strict=True)])
        assert all(rs.frame_key(2 * n) == together[0].frame_key(2 * n) and rs.on_boundary
                   for rs in together)
        got = StreamResampler.process_many(together, x)
        assert np.abs(got.astype(int) - want).max() <= 1


def test_only_whole_frames_on_an_output_boundary_go_together() -> None:
    rs = StreamResampler(16000, 8000)
    assert rs.frame_key(640) == (1, 2, 320) and rs.on_boundary
    rs.process(bytes(2 * 97))  # an odd piece: the next output is mid-way into a chunk
    assert not rs.on_boundary
    assert StreamResampler(48000, 16000).frame_key(1920) is None  # its matrix is too big
    assert StreamResampler(16000, 16000).frame_key(640) is None  # nothing to do
