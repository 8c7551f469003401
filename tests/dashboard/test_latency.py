"""The reply latency the call page draws: percentiles by nearest rank, and each reply's
stages laid end to end on the call's scale."""

from __future__ import annotations

from datetime import UTC, datetime

from atende.api.schemas import TurnOut
from atende.dashboard.latency import latency_figures, waterfall

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def turn(seq: int, latency: int | None, stt: int | None = None, llm: int | None = None,
         tts: int | None = None, speaker: str = "assistant") -> TurnOut:
    return TurnOut(seq=seq, speaker=speaker, text=f"t{seq}", intent=None, started_at=T0,
                   ended_at=T0, interrupted=False, latency_ms=latency, stt_ms=stt,
                   llm_ms=llm, tts_ms=tts, played_ms=None)


def test_percentiles_by_nearest_rank() -> None:
    turns = [turn(i, ms) for i, ms in enumerate([900, 100, 500, None, 300])]
    assert latency_figures(turns) == {"p50": 300, "p95": 900, "turns": 4}
    assert latency_figures([]) == {"p50": None, "p95": None, "turns": 0}


def test_stages_end_to_end_on_one_scale() -> None:
    replies, scale = waterfall([turn(1, None), turn(2, 800, stt=200, tts=100),
                                turn(3, None, speaker="caller"),
                                # a realtime model reports no stage: all of it is the rest
                                turn(4, 400),
                                # stages that add up to more than the latency measured
                                turn(5, 500, stt=300, llm=300)])
    assert scale == 800 and [r.seq for r in replies] == [2, 4, 5]
    first, realtime, over = replies
    assert [(s.name, s.ms, s.start, s.width) for s in first.segments] == [
        ("turn end and the rest", 500, 0.0, 0.625), ("recognition", 200, 0.625, 0.25),
        ("synthesis", 100, 0.875, 0.125)]
    assert [(s.css, s.width) for s in realtime.segments] == [("rest", 0.5)]
    assert over.total_ms == 600 and [s.css for s in over.segments] == ["stt", "llm"]
    assert waterfall([turn(1, None)]) == ([], 0)
