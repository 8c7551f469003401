"""A call's reply latency as the dashboard draws it: the p50/p95 of its replies and, for
each reply, the waterfall from the end of the caller's speech to the reply's first audio
on the wire: first the time no stage accounts for (mostly waiting to be sure the caller's
turn has ended; also queueing and sending), then recognition → model → synthesis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from atende.api.schemas import TurnOut
from atende.calls.stats import percentile

# (name in words, the turn's field, css class): in the order they happen
STAGES = (("recognition", "stt_ms", "stt"), ("model", "llm_ms", "llm"),
          ("synthesis", "tts_ms", "tts"))
REST = ("turn end and the rest", "rest")


def latency_figures(turns: Sequence[TurnOut]) -> dict[str, int | None]:
    """The call's reply latency percentiles (end of the caller's speech → first reply
    audio), in ms."""
    values = [t.latency_ms for t in turns if t.latency_ms is not None]
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "turns": len(values)}


@dataclass(frozen=True)
class Segment:
    """One stage of a reply's latency, placed on the waterfall's scale (0–1)."""

    name: str
    css: str
    ms: int
    start: float
    width: float


@dataclass(frozen=True)
class Reply:
    """A reply's row in the waterfall."""

    seq: int
    text: str
    total_ms: int
    segments: list[Segment]


def waterfall(turns: Sequence[TurnOut]) -> tuple[list[Reply], int]:
    """Each reply with a latency, its stages laid end to end on one scale for the call
    (the slowest reply spans it all); and that scale's length in ms. A stage a provider
    does not report (a realtime model hears, thinks and speaks as one) is left out, and
    its time falls in the rest."""
    rows: list[tuple[TurnOut, list[tuple[str, str, int]], int]] = []
    for t in turns:
        if t.speaker != "assistant" or t.latency_ms is None:
            continue
        parts = [(name, css, int(getattr(t, field)))
                 for name, field, css in STAGES if getattr(t, field)]
        known = sum(ms for _, _, ms in parts)
        if t.latency_ms > known:
            # Mostly the wait for the end of the turn, which comes before recognition
            parts.insert(0, (REST[0], REST[1], t.latency_ms - known))
        rows.append((t, parts, max(t.latency_ms, known)))
    scale = max((total for _, _, total in rows), default=0)
    out = []
    for t, parts, total in rows:
        segments, at = [], 0
        for name, css, ms in parts:
            segments.append(Segment(name, css, ms, at / scale, ms / scale))
            at += ms
        out.append(Reply(t.seq, t.text, total, segments))
    return out, scale
