"""Received audio: packets back in order, losses marked, and each frame given the time it
was sent so a burst after a stall does not move everything after it."""

from __future__ import annotations

import numpy as np

from atende.media.jitter import JitterBuffer, SendClock
from atende.media.recording import ASSISTANT, CALLER, StereoTimeline

FRAME_S = 0.02


def test_reordered_packets_come_out_in_order_and_a_lost_one_is_marked() -> None:
    jb = JitterBuffer(depth=2)
    assert jb.push(10, b"a") == [b"a"]
    assert jb.push(12, b"c") == []  # 11 may still come
    assert jb.push(11, b"b") == [b"b", b"c"]
    assert jb.push(14, b"e") == [] and jb.push(15, b"f") == []
    assert jb.push(16, b"g") == [None, b"e", b"f", b"g"]  # 13 waited for, then given up
    assert jb.lost == 1
    assert jb.push(13, b"d") == [] and jb.late == 1
    assert jb.push(17, b"h") == [b"h"]  # in order again
    assert jb.push(17, b"h") == [] and jb.late == 2  # a copy of what went out is late
    assert jb.push(19, b"j") == [] and jb.push(18, b"i") == [b"i", b"j"]


def test_frames_in_a_burst_keep_the_pace_they_were_sent_at() -> None:
    clock = SendClock(FRAME_S)
    stamps = [clock.stamp(0.0), clock.stamp(0.021), clock.stamp(0.040)]
    # The loop stalls for 100 ms: five frames are read at once.
    stamps += [clock.stamp(0.145) for _ in range(5)]
    assert np.allclose(stamps, [i * FRAME_S for i in range(8)])


def test_an_earlier_arrival_sets_the_pace_and_a_pause_starts_a_new_one() -> None:
    clock = SendClock(FRAME_S)
    assert clock.stamp(1.005) == 1.005  # the first frame was delayed 5 ms
    assert clock.stamp(1.020) == 1.020  # this one was not: it sets the pace
    assert clock.stamp(1.041) == 1.040
    # The sender paused (hold) for two seconds: the next frame is at its arrival.
    assert clock.stamp(3.0) == 3.0
    assert clock.stamp(3.02) == 3.02


def test_a_recording_of_a_stalled_stream_keeps_it_in_step() -> None:
    clock = SendClock(FRAME_S)
    t = StereoTimeline(0.0)
    # 200 ms in step, a 100 ms stall (six frames read at once), then in step again.
    arrivals = ([i * FRAME_S for i in range(10)] + [0.3] * 6
                + [0.32 + i * FRAME_S for i in range(14)])
    for i, at in enumerate(arrivals):
        t.add(CALLER, np.full(320, i + 1, np.int16).tobytes(), clock.stamp(at))
        t.add(ASSISTANT, np.full(320, i + 1, np.int16).tobytes(), i * FRAME_S)
    both = np.frombuffer(t.take(final=True), np.int16).reshape(-1, 2)
    # Frame for frame beside the other side: no silence was put in before the burst.
    assert (both[:, 0] == both[:, 1]).all()
