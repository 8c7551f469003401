"""Numbers that tell the story: calls, answer rate, outcomes and success rate, by how the
calls were started (manual, webhook, api), by assistant, by trigger and by day. Pure: it
sums the rows it is given.

A call *succeeds* when it had a task and the person called gave a clear answer to it:
``confirmed``, ``reschedule_requested`` or ``declined`` (a clear "no" is still an answer
the business can act on; ``wrong_person``, ``no_answer`` … are not).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from atende.store.db import CallRow

SUCCESS = ("confirmed", "reschedule_requested", "declined")


@dataclass
class Tally:
    """Counters of one group of calls (answered, with a task, succeeded …)."""

    calls: int = 0
    finished: int = 0  # over: not queued, ringing or in progress
    answered: int = 0
    with_task: int = 0  # finished calls that had a task
    successes: int = 0
    attempts: int = 0
    talk_s: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[int] = field(default_factory=list)  # of the replies, ms

    def add(self, row: CallRow) -> None:
        self.calls += 1
        self.attempts += row.attempts
        self.latencies.extend(row.latencies)
        if row.end_at is None:
            return
        self.finished += 1
        if row.outcome is not None:
            self.outcomes[row.outcome] += 1
        if row.answer_at is not None:
            self.answered += 1
            self.talk_s += max(0.0, (row.end_at - row.answer_at).total_seconds())
        if row.task:
            self.with_task += 1
            self.successes += row.outcome in SUCCESS

    def out(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "finished": self.finished,
            "answered": self.answered,
            "answer_rate": _rate(self.answered, self.finished),
            "outcomes": dict(sorted(self.outcomes.items())),
            "with_task": self.with_task,
            "successes": self.successes,
            "success_rate": _rate(self.successes, self.with_task),
            "attempts": self.attempts,
            "average_talk_s": round(self.talk_s / self.answered, 1) if self.answered else None,
            "reply_latency_ms": {"p50": percentile(self.latencies, 0.5),
                                 "p95": percentile(self.latencies, 0.95),
                                 "replies": len(self.latencies)},
        }


def percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest rank: the smallest value with at least ``q`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Stats:
    """Statistics of a period: in total and by source, assistant, trigger and day."""

    overall: Tally = field(default_factory=Tally)
    by_source: dict[str, Tally] = field(default_factory=dict)
    by_assistant: dict[str, Tally] = field(default_factory=dict)
    by_hook: dict[str, Tally] = field(default_factory=dict)
    by_day: dict[str, Tally] = field(default_factory=dict)


def tally(rows: list[CallRow], zone: tzinfo) -> Stats:
    """Sum ``rows``; days are calendar days in ``zone``. Calls with no source (those that
    came in) count under "inbound"."""
    stats = Stats()
    for row in rows:
        groups = [stats.overall,
                  _get(stats.by_source, row.source or "inbound"),
                  _get(stats.by_day, row.invite_at.astimezone(zone).date().isoformat())]
        if row.assistant_id:
            groups.append(_get(stats.by_assistant, row.assistant_id))
        if row.hook_id:
            groups.append(_get(stats.by_hook, row.hook_id))
        for t in groups:
            t.add(row)
    return stats


def _get(groups: dict[str, Tally], key: str) -> Tally:
    if key not in groups:
        groups[key] = Tally()
    return groups[key]
