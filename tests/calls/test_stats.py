"""The statistics' sums, on rows made up to cover each rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from atende.calls.stats import tally
from atende.store.db import CallRow

T0 = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 July in Lisbon (summer time)


def row(source: str | None, outcome: str | None, answered_s: float | None = None,
        task: bool = True, attempts: int = 1, over: bool = True, at: datetime = T0,
        assistant: str | None = "a1", hook: str | None = None,
        latencies: tuple[int, ...] = ()) -> CallRow:
    answer = at + timedelta(seconds=5) if answered_s is not None else None
    end = None if not over else (answer + timedelta(seconds=answered_s) if answer and
                                 answered_s is not None else at + timedelta(seconds=30))
    return CallRow("inbound" if source is None else "outbound", source, assistant, hook,
                   "completed" if over else "in_progress", outcome, task, attempts, at,
                   answer, end, latencies)


def test_rates_outcomes_and_groups() -> None:
    rows = [
        row("api", "confirmed", answered_s=40),
        row("api", "declined", answered_s=20),  # a clear no: still a success
        row("api", "no_answer", attempts=3),
        row("webhook", "reschedule_requested", answered_s=60, hook="h1"),
        row("webhook", "wrong_person", answered_s=10, hook="h1"),
        row("manual", "confirmed", answered_s=30, over=False),  # still talking
        row(None, None, answered_s=90, task=False, assistant="a2"),  # came in
    ]
    s = tally(rows, UTC)
    o = s.overall.out()
    assert (o["calls"], o["finished"], o["answered"]) == (7, 6, 5)
    assert o["answer_rate"] == round(5 / 6, 4)
    assert (o["with_task"], o["successes"], o["success_rate"]) == (5, 3, 0.6)
    assert o["outcomes"] == {"confirmed": 1, "declined": 1, "no_answer": 1,
                             "reschedule_requested": 1, "wrong_person": 1}
    assert o["attempts"] == 9 and o["average_talk_s"] == (40 + 20 + 60 + 10 + 90) / 5
    assert set(s.by_source) == {"api", "webhook", "manual", "inbound"}
    api = s.by_source["api"].out()
    assert (api["calls"], api["answer_rate"], api["success_rate"]) == (3, 0.6667, 0.6667)
    assert s.by_source["manual"].out()["success_rate"] is None  # nothing finished yet
    assert s.by_source["inbound"].out()["with_task"] == 0
    assert s.by_hook["h1"].out()["success_rate"] == 0.5
    assert s.by_assistant["a1"].calls == 6 and s.by_assistant["a2"].calls == 1


def test_days_are_counted_in_the_asked_time_zone() -> None:
    rows = [row("api", "confirmed", answered_s=10),
            row("api", "confirmed", answered_s=10, at=T0 - timedelta(hours=1))]
    assert sorted(tally(rows, UTC).by_day) == ["2026-07-01"]
    lisbon = tally(rows, ZoneInfo("Europe/Lisbon")).by_day
    assert {k: v.calls for k, v in lisbon.items()} == {"2026-07-01": 1, "2026-07-02": 1}


def test_reply_latency_percentiles_by_group() -> None:
    rows = [row("api", "confirmed", answered_s=10, latencies=(900, 700)),
            row("webhook", "confirmed", answered_s=10, latencies=(1500,)),
            row("api", "no_answer")]
    s = tally(rows, UTC)
    assert s.overall.out()["reply_latency_ms"] == {"p50": 900, "p95": 1500, "replies": 3}
    assert s.by_source["api"].out()["reply_latency_ms"] == {"p50": 700, "p95": 900,
                                                           "replies": 2}
    assert s.by_day["2026-07-01"].out()["reply_latency_ms"]["replies"] == 3
    none = tally([row("api", "no_answer")], UTC).overall.out()["reply_latency_ms"]
    assert none == {"p50": None, "p95": None, "replies": 0}
