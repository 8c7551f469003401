"""End-of-turn detection over 20 ms frames."""

from __future__ import annotations

import numpy as np
import pytest

from atende.agent.vad import (
    Endpointer,
    Paused,
    SpeechStarted,
    TurnEnded,
    VadConfig,
    rms_dbfs,
)
from atende.media.audio import FRAME_BYTES, FRAME_SAMPLES

LOUD = (np.random.default_rng(1).normal(0, 4000, FRAME_SAMPLES)).astype(np.int16).tobytes()
QUIET = bytes(FRAME_BYTES)


def energy(frame: bytes) -> bool:
    return rms_dbfs(frame) > -40


def feed(ep: Endpointer, pattern: str, t0: float = 0.0) -> list[tuple[float, object]]:
    """'s' = a voiced frame, '.' = silence; returns (time, event)."""
    out = []
    for i, ch in enumerate(pattern):
        t = t0 + i * 0.02
        out += [(t, ev) for ev in ep.feed(LOUD if ch == "s" else QUIET, t)]
    return out


def test_turn_starts_after_start_ms_and_ends_after_end_ms() -> None:
    ep = Endpointer(VadConfig(start_ms=100, end_ms=200, preroll_ms=100), energy)
    events = feed(ep, "....." + "s" * 30 + "." * 12)
    (t_start, start), (t_end, end) = events
    assert isinstance(start, SpeechStarted) and isinstance(end, TurnEnded)
    assert start.onset_at == pytest.approx(0.10)  # the first voiced frame, not detection time
    assert t_start == pytest.approx(0.18)  # 5 voiced frames later
    assert end.end_at == pytest.approx(0.10 + 29 * 0.02)
    assert t_end == pytest.approx(end.end_at + 10 * 0.02)  # 10 silent frames = 200 ms
    # The turn's audio includes the pre-roll before detection and the trailing silence.
    frames = len(end.audio) // FRAME_BYTES
    assert frames >= 30 + 10


def test_brief_noise_is_not_a_turn() -> None:
    ep = Endpointer(VadConfig(start_ms=100, end_ms=200), energy)
    assert feed(ep, "ss.ss.." + "." * 20) == []  # never 5 voiced in a window


def test_short_turn_is_dropped_after_start() -> None:
    ep = Endpointer(VadConfig(start_ms=60, end_ms=100, min_turn_ms=200), energy)
    events = feed(ep, "sss" + "." * 10)
    assert [type(e) for _, e in events] == [SpeechStarted]  # started (barge-in) but no turn


def test_pauses_shorter_than_end_ms_do_not_split_a_turn() -> None:
    ep = Endpointer(VadConfig(start_ms=60, end_ms=300), energy)
    events = feed(ep, "s" * 20 + "." * 10 + "s" * 20 + "." * 20)
    assert [type(e) for _, e in events] == [SpeechStarted, TurnEnded]


def test_max_turn_length_forces_an_end() -> None:
    ep = Endpointer(VadConfig(start_ms=60, end_ms=300, max_turn_ms=1000), energy)
    events = feed(ep, "s" * 80)
    assert [type(e) for _, e in events][:2] == [SpeechStarted, TurnEnded]


def test_a_pause_is_reported_once_and_a_final_one_ends_the_turn_there() -> None:
    ep = Endpointer(VadConfig(start_ms=60, end_ms=600, pause_ms=200), energy)
    events = feed(ep, "s" * 20 + "." * 10)
    assert [type(e) for _, e in events] == [SpeechStarted, Paused]
    t_pause, pause = events[1]
    assert isinstance(pause, Paused)
    assert t_pause == pytest.approx(pause.end_at + 10 * 0.02)  # 200 ms after the last voice
    assert len(pause.audio) >= 30 * FRAME_BYTES  # the turn so far, the pause included
    ended = ep.end_turn(pause)  # judged final: no 600 ms wait
    assert isinstance(ended, TurnEnded) and ended.end_at == pause.end_at
    assert ended.audio == pause.audio
    assert not ep.in_speech and ep.end_turn(pause) is None  # once
    assert feed(ep, "." * 40, t0=1.0) == []  # and the full silence ends nothing more


def test_a_pause_spoken_over_cannot_end_the_turn() -> None:
    ep = Endpointer(VadConfig(start_ms=60, end_ms=600, pause_ms=200), energy)
    events = feed(ep, "s" * 20 + "." * 10 + "s" * 5 + "." * 5)
    first = events[1][1]
    assert isinstance(first, Paused)
    assert ep.end_turn(first) is None and ep.in_speech  # the caller went on
    events = feed(ep, "." * 30, t0=1.0)  # a second pause, then the full silence
    kinds = [type(e) for _, e in events]
    assert kinds == [Paused, TurnEnded]
    assert events[0][1].seq != first.seq  # type: ignore[union-attr]


def test_a_late_verdict_on_a_pause_of_an_ended_turn_ends_nothing() -> None:
    ep = Endpointer(VadConfig(start_ms=60, end_ms=600, pause_ms=200, min_turn_ms=200),
                    energy)
    events = feed(ep, "s" * 20 + "." * 30)  # paused, then ended by the full silence
    pause = events[1][1]
    assert isinstance(pause, Paused) and isinstance(events[2][1], TurnEnded)
    feed(ep, "sss" + "." * 12, t0=2.0)  # a short new sound: started, never paused
    assert ep.in_speech and ep.end_turn(pause) is None
    assert ep.in_speech  # the new speech goes on, to be a turn or a noise by itself


def test_no_pauses_unless_asked_nor_shorter_than_a_turn() -> None:
    plain = Endpointer(VadConfig(start_ms=60, end_ms=300), energy)
    assert [type(e) for _, e in feed(plain, "s" * 20 + "." * 20)] == [SpeechStarted,
                                                                       TurnEnded]
    short = Endpointer(VadConfig(start_ms=60, end_ms=600, pause_ms=200, min_turn_ms=200),
                       energy)
    assert [type(e) for _, e in feed(short, "sss" + "." * 40)] == [SpeechStarted]


def test_webrtc_classifier_ignores_digital_silence() -> None:
    ep = Endpointer(VadConfig())
    assert all(not ep.classify(QUIET) for _ in range(5))
