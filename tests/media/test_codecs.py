"""G.711, the jitter buffer, RFC 4733 DTMF."""

from __future__ import annotations

import random

import numpy as np

from atende.media import g711
from atende.media.dtmf import DtmfReceiver, EventPayload, dtmf_payloads
from atende.media.jitter import JitterBuffer


def test_g711_known_values_and_round_trip() -> None:
    zero = np.zeros(1, dtype=np.int16)
    assert g711.encode(zero, "PCMU") == b"\xff"
    assert g711.encode(zero, "PCMA") == b"\xd5"
    t = np.linspace(0, 1, 8000, endpoint=False)
    sine = (np.sin(2 * np.pi * 440 * t) * 16000).astype(np.int16)
    for codec in ("PCMU", "PCMA"):
        back = g711.decode(g711.encode(sine, codec), codec).astype(np.float64)
        err = back - sine
        snr = 10 * np.log10(np.sum(sine.astype(np.float64) ** 2) / np.sum(err**2))
        assert snr > 30, codec  # G.711 gives ~38 dB on a loud tone
        assert np.all(np.sign(back[np.abs(sine) > 100]) == np.sign(sine[np.abs(sine) > 100]))
    extremes = np.array([-32768, 32767], dtype=np.int16)
    assert np.all(np.abs(g711.decode(g711.encode(extremes, "PCMU"), "PCMU")) > 30000)


def test_jitter_buffer_reorders_conceals_and_drops() -> None:
    jb = JitterBuffer(depth=2)
    assert jb.push(10, b"a") == [b"a"]  # in order: no delay
    assert jb.push(12, b"c") == []  # 11 missing: wait
    assert jb.push(11, b"b") == [b"b", b"c"]  # reordered packet arrives in time
    assert jb.push(11, b"b") == [] and jb.late == 1
    assert jb.push(14, b"e") == []
    assert jb.push(15, b"f") == []
    assert jb.push(16, b"g") == [None, b"e", b"f", b"g"]  # 13 declared lost
    assert jb.lost == 1
    assert jb.push(13, b"d") == [] and jb.late == 2
    assert jb.push(17, b"h") == [b"h"]
    assert jb.push(17, b"h") == [] and jb.duplicates == 0 and jb.late == 3


def test_jitter_buffer_sequence_wrap() -> None:
    jb = JitterBuffer()
    assert jb.push(65535, b"a") == [b"a"]
    assert jb.push(0, b"b") == [b"b"]


def test_dtmf_one_event_per_key_even_with_three_end_packets() -> None:
    rx = DtmfReceiver()
    events = []
    for payload, _ in dtmf_payloads("5", 200):
        events += rx.on_packet(8000, payload)
    assert [(e.digit, e.duration_ms) for e in events] == [("5", 200)]


def test_dtmf_lost_end_is_reported_when_next_key_starts() -> None:
    rx = DtmfReceiver()
    assert rx.on_packet(1000, EventPayload(11, False, 10, 160).encode()) == []
    assert rx.on_packet(1000, EventPayload(11, False, 10, 320).encode()) == []
    out = rx.on_packet(5000, EventPayload(10, False, 10, 160).encode())
    assert [e.digit for e in out] == ["#"]
    out = rx.on_packet(5000, EventPayload(10, True, 10, 800).encode())
    assert [(e.digit, e.duration_ms) for e in out] == [("*", 100)]


def test_stray_and_malformed_events_press_no_key() -> None:
    """Issue 16.5: an RTP fuzz made 49 key presses out of lone packets."""
    rng = random.Random(7)
    rx = DtmfReceiver()
    pressed = []
    for _ in range(20000):  # random events, flags and durations, each at its own time
        pressed += rx.on_packet(rng.getrandbits(32), rng.randbytes(4))
    assert pressed == []
    # Packets of one event that disagree: another key half-way, a duration that goes
    # back, an event that is no key, a zero duration.
    for ts, packets in enumerate([[(5, False, 160), (7, True, 800)],
                                  [(5, False, 800), (5, True, 160)],
                                  [(99, False, 160), (99, True, 800)],
                                  [(5, False, 0), (5, True, 0)]]):
        for event, end, duration in packets:
            pressed += rx.on_packet(100 + ts, EventPayload(event, end, 10, duration).encode())
    assert pressed == []
    # A real press still gets through, end packets triplicated or all lost.
    for payload, _ in dtmf_payloads("9", 120):
        pressed += rx.on_packet(900, payload)
    for payload, _ in dtmf_payloads("1", 120)[:-3]:
        pressed += rx.on_packet(1900, payload)
    pressed += rx.on_packet(2900, EventPayload(2, False, 10, 160).encode())
    assert [e.digit for e in pressed] == ["9", "1"]


def test_dtmf_payloads_shape() -> None:
    pk = dtmf_payloads("#", 100)
    assert pk[0][1] is True and all(not m for _, m in pk[1:])
    parsed = [EventPayload.parse(p) for p, _ in pk]
    assert [p.end for p in parsed] == [False] * 4 + [True] * 3
    assert parsed[-1].duration == 800 and all(p.event == 11 for p in parsed)
