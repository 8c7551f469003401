"""The channel-neutral outbound audio queue of a call leg."""

from __future__ import annotations

from atende.channels.leg import OutboundAudio, PlayoutDone, PlayoutStarted
from atende.media.audio import FRAME_BYTES


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


def test_a_segment_streamed_in_pieces_is_one_segment() -> None:
    """Speech streamed as it is synthesised: the pieces of one mark play as one segment,
    silence stands in while the next piece is late, and it is done only once closed."""
    out = OutboundAudio()
    out.play(b"\x01\x00" * 480, "s", more=True)  # 30 ms, more to come
    out.play(b"\x09\x00" * 160, "next")  # queued behind the open segment
    data, events = out.read(FRAME_BYTES, 0.0)
    assert events == [PlayoutStarted("s", 0.0)] and data == b"\x01\x00" * 320
    data, events = out.read(FRAME_BYTES, 0.02)  # 10 ms left, then nothing yet: silence
    assert events == [] and data == b"\x01\x00" * 160 + bytes(320)
    data, events = out.read(FRAME_BYTES, 0.04)
    assert data == bytes(FRAME_BYTES) and events == [] and out.busy  # "next" waits
    out.play(b"\x02\x00" * 320, "s", more=True)
    out.play(b"", "s")  # the end of it
    data, events = out.read(FRAME_BYTES, 0.06)
    assert data == b"\x02\x00" * 320 and events == [PlayoutDone("s", 0.06, 50, False)]
    data, events = out.read(FRAME_BYTES, 0.08)
    assert events == [PlayoutStarted("next", 0.08), PlayoutDone("next", 0.08, 10, False)]
    assert data == b"\x09\x00" * 160 + bytes(320)


def test_clearing_a_streamed_segment_reports_it_once() -> None:
    out = OutboundAudio()
    out.play(b"\x01\x00" * 320, "s", more=True)
    out.read(FRAME_BYTES, 0.0)
    assert out.clear(0.01) == [PlayoutDone("s", 0.01, 20, True)]
    out.play(b"\x01\x00" * 320, "s", more=True)  # a piece still on its way: a new segment
    out.play(b"", "s")
    assert out.pending_bytes == FRAME_BYTES
    out.play(b"", "gone")  # closing what is not queued does nothing
    assert out.pending_bytes == FRAME_BYTES
