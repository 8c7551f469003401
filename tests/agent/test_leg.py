"""The channel-neutral outbound audio queue of a call leg."""

from __future__ import annotations

from atende.channels.leg import FRAME_BYTES, OutboundAudio, PlayoutDone, PlayoutStarted


def test_marks_report_start_and_end_of_playout() -> None:
    out = OutboundAudio()
    out.play(b"\x01\x00" * 480, "a")  # 30 ms
    out.play(b"\x02\x00" * 160, "b")  # 10 ms
    data, events = out.read(FRAME_BYTES, 1.0)
    assert data is not None and len(data) == FRAME_BYTES
    assert events == [PlayoutStarted("a", 1.0)]
    data, events = out.read(FRAME_BYTES, 1.02)
    assert events == [PlayoutDone("a", 1.02, 30, False), PlayoutStarted("b", 1.02),
                      PlayoutDone("b", 1.02, 10, False)]
    assert data == b"\x01\x00" * 160 + b"\x02\x00" * 160
    assert out.read(FRAME_BYTES, 1.04) == (None, [])


def test_clear_reports_what_was_played() -> None:
    out = OutboundAudio()
    out.play(bytes(FRAME_BYTES * 10), "x")
    out.read(FRAME_BYTES, 0.0)
    out.read(FRAME_BYTES, 0.02)
    assert out.clear(0.03) == [PlayoutDone("x", 0.03, 40, True)]
    assert not out.busy


def test_short_tail_is_padded_with_silence() -> None:
    out = OutboundAudio()
    out.play(b"\x05\x00" * 10)
    data, _ = out.read(FRAME_BYTES, 0.0)
    assert data == b"\x05\x00" * 10 + bytes(FRAME_BYTES - 20)
