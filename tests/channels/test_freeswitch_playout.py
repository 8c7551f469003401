"""The FreeSWITCH channel's playout, sans-IO: audio shipped in pieces ahead of playback, and
what the caller heard told from the playbacks' start and end, with the clock passed in."""

from __future__ import annotations

from atende.channels.freeswitch.playout import (
    BYTES_PER_S,
    Action,
    Break,
    Heard,
    Playout,
    Ship,
    Stalled,
)
from atende.channels.leg import PlayoutDone, PlayoutStarted


def ms(n: int) -> bytes:
    return bytes(BYTES_PER_S * n // 1000)


def ships(actions: list[Action]) -> list[Ship]:
    return [a for a in actions if isinstance(a, Ship)]


def marks(actions: list[Action]) -> list[tuple[str, str, float]]:
    out = []
    for a in actions:
        if isinstance(a, PlayoutStarted):
            out.append(("start", a.mark, round(a.at, 3)))
        elif isinstance(a, PlayoutDone):
            out.append(("done" if not a.interrupted else f"cut@{a.played_ms}", a.mark,
                        round(a.at, 3)))
    return out


def test_the_first_audio_ships_at_once_the_rest_before_the_queue_runs_dry() -> None:
    p = Playout(lead_s=0.3, max_piece_s=1.0)
    first = ships(p.play(ms(100), "a", True, now=0.0))
    assert [len(s.piece.pcm) for s in first] == [ms(100).__len__()]
    # More comes while the first piece waits for its file: held back, the queue is not dry.
    assert ships(p.play(ms(400), "a", True, now=0.01)) == []
    assert p.file_ready(first[0].piece.id) is first[0].piece
    started = p.started(first[0].piece.id, now=0.05)
    assert marks(started) == [("start", "a", 0.05)]
    # 100 ms shipped, 0 heard: within the lead, so what waits goes at once.
    assert [len(s.piece.pcm) for s in ships(started)] == [len(ms(400))]
    assert p.deadline() is None  # the segment is open: its end is unknown


def test_a_segment_is_done_when_its_last_byte_is_heard_across_pieces() -> None:
    p = Playout(lead_s=0.3, max_piece_s=1.0)
    a = ships(p.play(ms(200), "s1", True, now=0.0))[0].piece
    p.started(a.id, now=0.0)
    b = ships(p.play(ms(300), "s1", False, now=0.05))[0].piece  # within the lead: shipped
    assert marks(p.tick(0.1)) == []
    assert marks(p.finished(a.id, now=0.2)) == []
    assert len(ships(p.tick(0.2))) == 0
    p.started(b.id, now=0.21)
    deadline = p.deadline()
    assert deadline is not None and abs(deadline - 0.51) < 1e-6
    assert marks(p.tick(0.51)) == [("done", "s1", 0.51)]
    heard = p.finished(b.id, now=0.52)
    assert [h.at for h in heard if isinstance(h, Heard)] == [0.21]
    assert not p.busy


def test_segments_inside_one_piece_start_and_end_at_their_own_offsets() -> None:
    p = Playout(lead_s=0.3, max_piece_s=2.0)
    for i in range(3):  # a realtime model's chunks, each its own mark, before FS plays
        p.play(ms(100), f"r:{i}", False, now=0.0)
    pieces = [s.piece for s in ships(p.play(b"", None, False, now=0.0))] or None
    assert pieces is None  # nothing new to ship: the first chunk went with the first play
    got = p.started("atende-1", now=1.0)
    got += p.started("atende-2", now=1.1)  # the first (100 ms) ended unreported
    got += p.tick(1.3)
    assert marks(got) == [("start", "r:0", 1.0), ("done", "r:0", 1.1),
                          ("start", "r:1", 1.1), ("done", "r:1", 1.2),
                          ("start", "r:2", 1.2), ("done", "r:2", 1.3)]


def test_long_audio_ships_in_pieces_the_last_one_when_the_queue_runs_low() -> None:
    p = Playout(lead_s=0.3, max_piece_s=1.0)
    shipped = ships(p.play(ms(2500), "long", False, now=0.0))
    assert [len(s.piece.pcm) for s in shipped] == [len(ms(1000))] * 2
    first, second = (s.piece for s in shipped)
    p.started(first.id, now=1.0)
    p.finished(first.id, now=2.0)
    p.started(second.id, now=2.0)
    assert p.deadline() == 2.7  # 300 ms before the second piece ends
    assert ships(p.tick(2.69)) == []
    [last] = ships(p.tick(2.7))
    assert len(last.piece.pcm) == len(ms(500)) and last.piece.start == second.end


def test_barge_in_stops_the_playing_piece_and_drops_what_is_queued() -> None:
    p = Playout(lead_s=0.3, max_piece_s=1.0)
    first, second = (s.piece for s in ships(p.play(ms(2500), "long", False, now=0.0)))
    p.started(first.id, now=1.0)
    cut = p.clear(now=1.25)
    assert marks(cut) == [("cut@250", "long", 1.25)]
    assert Break() in cut
    assert [(len(h.pcm), h.at) for h in cut if isinstance(h, Heard)] == [(len(ms(250)), 1.0)]
    # The second piece's file comes after the cut: it is not played; late ends are ignored.
    assert p.file_ready(second.id) is None and p.was_cut(second.id)
    assert p.finished(first.id, now=1.27) == []
    assert not p.busy and p.clear(now=3.0) == []  # nothing left to stop
    # The next reply starts afresh.
    again = ships(p.play(ms(100), "next", False, now=3.0))
    assert len(again) == 1 and again[0].piece.start == second.end


def test_a_segment_heard_before_it_was_closed_ends_when_it_is_closed() -> None:
    p = Playout()
    a = ships(p.play(ms(100), "s", True, now=0.0))[0].piece
    p.started(a.id, now=0.0)
    assert marks(p.finished(a.id, now=0.1)) == []  # more of it may come
    assert marks(p.play(b"", "s", False, now=0.5)) == [("done", "s", 0.5)]


def test_a_segment_cut_before_it_played_is_reported_with_nothing_heard() -> None:
    p = Playout()
    p.play(ms(100), "x", False, now=0.0)
    assert marks(p.clear(now=0.01)) == [("cut@0", "x", 0.01)]


def test_a_piece_freeswitch_never_starts_is_dropped_after_the_stall_time() -> None:
    p = Playout(stall_s=3.0)
    first = ships(p.play(ms(500), "r", False, now=0.0))[0].piece
    assert p.deadline() == 3.0
    assert p.tick(2.9) == []
    dropped = p.tick(3.0)
    assert Stalled(first.id, 3.0) in dropped and marks(dropped) == [("cut@0", "r", 3.0)]
    assert not p.busy and p.deadline() is None
    # A piece that plays, then one that never starts after it: waited for from its turn.
    a, b = (s.piece for s in ships(p.play(ms(2000), "s", False, now=10.0)))
    p.started(a.id, now=10.0)
    p.finished(a.id, now=11.0)
    assert p.deadline() == 14.0 and p.tick(13.9) == []
    assert any(isinstance(x, Stalled) and x.piece_id == b.id for x in p.tick(14.0))
