"""Two-channel recordings: each side lands where its time says, gaps become silence, bursts
are kept, and the file is a valid stereo WAV even when written in pieces."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from atende.media.recording import ASSISTANT, CALLER, StereoTimeline, WavRecorder

RATE = 16000
FRAME = 320  # samples in 20 ms


def frame(value: int) -> bytes:
    return np.full(FRAME, value, dtype=np.int16).tobytes()


def sides(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    both = np.frombuffer(data, dtype=np.int16).reshape(-1, 2)
    return both[:, 0], both[:, 1]


def test_sides_stay_in_step_and_gaps_become_silence() -> None:
    t = StereoTimeline(100.0)
    for i in range(50):  # one second of the assistant, paced
        t.add(ASSISTANT, frame(2), 100.0 + i * 0.02)
    for i in range(10):  # the caller's first 200 ms …
        t.add(CALLER, frame(1), 100.0 + i * 0.02)
    for i in range(25, 50):  # … then nothing for 300 ms (a gap), then the rest
        t.add(CALLER, frame(1), 100.0 + i * 0.02)
    left, right = sides(t.take(final=True))
    assert len(left) == len(right) == 50 * FRAME
    assert (right == 2).all()
    assert (left[: 10 * FRAME] == 1).all()
    assert (left[10 * FRAME: 25 * FRAME] == 0).all()  # the gap, in its place
    assert (left[25 * FRAME:] == 1).all()


def test_jitter_is_not_a_gap_and_bursts_are_kept() -> None:
    t = StereoTimeline(0.0)
    times = [0.0, 0.02, 0.07, 0.075, 0.08, 0.10]  # late, then a burst of three
    for i, at in enumerate(times):
        t.add(CALLER, frame(i + 1), at)
        t.add(ASSISTANT, frame(9), i * 0.02)
    left, _ = sides(t.take(final=True))
    assert list(left[::FRAME]) == [1, 2, 3, 4, 5, 6]  # nothing inserted, nothing lost


def test_a_quiet_side_does_not_hold_the_other_in_memory() -> None:
    t = StereoTimeline(0.0)
    t.add(CALLER, frame(1), 0.0)
    for i in range(100):  # two seconds of the assistant while the caller is on hold
        t.add(ASSISTANT, frame(2), i * 0.02)
    released = t.take()
    assert len(released) // 4 > 90 * FRAME  # released without waiting for the caller
    left, right = sides(released)
    assert (left[:FRAME] == 1).all() and (left[FRAME:] == 0).all() and (right == 2).all()


def test_the_file_is_a_stereo_wav_written_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "call.wav"
    rec = WavRecorder(path, 0.0)
    seconds = 5  # more than one flush
    for i in range(seconds * 50):
        rec.add(CALLER, frame(1000), i * 0.02)
        rec.add(ASSISTANT, frame(-1000), i * 0.02)
    assert path.stat().st_size > 100_000  # written as it goes
    rec.close()
    rec.close()  # twice is harmless
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, RATE)
        assert w.getnframes() == seconds * RATE
        left, right = sides(w.readframes(w.getnframes()))
    assert (left == 1000).all() and (right == -1000).all()
