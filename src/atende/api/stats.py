"""GET /v1/stats: calls, answer rate, outcomes and success rate — overall, per integration
level, per assistant, per trigger and per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, JsonValue

from atende.api.openapi import IsoTime, require_zones
from atende.calls.stats import SUCCESS, Tally, tally
from atende.store.db import Store

DEFAULT_DAYS = 30
MAX_DAYS = 400
TALLY_EXAMPLE: dict[str, JsonValue] = {
    "calls": 120, "finished": 118, "answered": 97, "answer_rate": 0.822,
    "outcomes": {"confirmed": 71, "reschedule_requested": 12, "declined": 6, "no_answer": 19,
                 "busy": 2},
    "with_task": 118, "successes": 89, "success_rate": 0.7542, "attempts": 141,
    "average_talk_s": 38.4, "reply_latency_ms": {"p50": 980, "p95": 1640, "replies": 412}}


class Figures(BaseModel):
    """One group's numbers."""

    model_config = {"json_schema_extra": {"examples": [TALLY_EXAMPLE]}}

    calls: int = Field(description="calls placed or received in the window")
    finished: int = Field(description="of which are over")
    answered: int
    answer_rate: float | None = Field(description="answered / finished")
    outcomes: dict[str, int] = Field(description="finished calls per outcome")
    with_task: int = Field(description="finished calls that had a task")
    successes: int = Field(description=f"of those, outcome {', '.join(SUCCESS)}")
    success_rate: float | None = Field(description="successes / with_task")
    attempts: int = Field(description="dialling attempts, retries included")
    average_talk_s: float | None = Field(description="answer to hang-up, answered calls")
    reply_latency_ms: dict[str, int | None] = Field(
        description="the assistant's replies: p50 and p95 (nearest rank) of end of the "
        "caller's speech → first reply audio, in ms, and how many replies")

    @classmethod
    def of(cls, t: Tally) -> Figures:
        return cls(**t.out())


class Named(Figures):
    """The figures of one assistant or trigger."""

    id: str
    name: str | None = Field(description="the assistant's or trigger's name, if it still "
                             "exists")


class Day(Figures):
    """The figures of one day."""

    day: str = Field(description="YYYY-MM-DD in the requested time zone")


class StatsOut(BaseModel):
    """Call statistics of a period, in total and by source, assistant, trigger and day."""

    model_config = {"json_schema_extra": {"examples": [{
        "since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z", "tz": "UTC",
        "overall": TALLY_EXAMPLE, "by_source": {"webhook": TALLY_EXAMPLE},
        "by_assistant": [{"id": "9c1d3e5f7a9b4c2d8e0f1a3b5c7d9e1f",
                          "name": "Default assistant", **TALLY_EXAMPLE}],
        "by_hook": [{"id": "a1b2c3d4e5f6", "name": "calendar", **TALLY_EXAMPLE}],
        "by_day": [{"day": "2026-11-20", **TALLY_EXAMPLE}]}]}}

    since: datetime
    until: datetime
    tz: str
    overall: Figures
    by_source: dict[str, Figures] = Field(description="manual, webhook, api, callback; "
                                          "calls that came in count as inbound")
    by_assistant: list[Named]
    by_hook: list[Named] = Field(description="per webhook trigger (integration)")
    by_day: list[Day]


def stats_router(store: Store) -> APIRouter:
    router = APIRouter(tags=["stats"])

    @router.get("/v1/stats", response_model=StatsOut,
                responses={422: {"description": "a bad window or time zone"}})
    async def stats(
        since: Annotated[IsoTime | None, Query(description="start of the window, ISO 8601 "
                                               "with zone (default: 30 days ago)",
                                               examples=["2026-11-01T00:00:00Z"])] = None,
        until: Annotated[IsoTime | None, Query(description="end of the window (default: "
                                               "now)", examples=["2026-12-01T00:00:00Z"])]
        = None,
        tz: Annotated[str, Query(description="time zone of the days in by_day",
                                 examples=["Europe/Lisbon"])] = "UTC",
    ) -> StatsOut:
        """How calls went in a window: how many, how many were answered, their outcomes
        and how often the task succeeded — overall, per integration level (`source`), per
        assistant, per webhook trigger and per day."""
        start, end, zone = window(since, until, tz)
        return await call_stats(store, start, end, tz, zone)

    return router


def window(since: datetime | None, until: datetime | None, tz: str
           ) -> tuple[datetime, datetime, ZoneInfo]:
    """The period asked for (by default the last 30 days) and the time zone of its days,
    or a 422 that says what is wrong."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(422, f"tz: {tz!r} is not an IANA time zone such as "
                            "Europe/Lisbon") from None
    require_zones(since=since, until=until)
    end = until.astimezone(UTC) if until else datetime.now(UTC)
    start = since.astimezone(UTC) if since else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise HTTPException(422, "since: must be before until")
    if end - start > timedelta(days=MAX_DAYS):
        raise HTTPException(422, f"the window is longer than {MAX_DAYS} days")
    return start, end, zone


async def call_stats(store: Store, start: datetime, end: datetime, tz: str, zone: ZoneInfo
                     ) -> StatsOut:
    """The statistics of calls placed or received in [start, end): for the API and the
    dashboard."""
    s = tally(await store.stat_rows(start, end), zone)
    assistants = {a.id: a.name for a in await store.assistants()}
    hooks = await store.hook_names()
    return StatsOut(
        since=start, until=end, tz=tz, overall=Figures.of(s.overall),
        by_source={k: Figures.of(v) for k, v in sorted(s.by_source.items())},
        by_assistant=[Named(id=k, name=assistants.get(k), **v.out())
                      for k, v in sorted(s.by_assistant.items())],
        by_hook=[Named(id=k, name=hooks.get(k), **v.out())
                 for k, v in sorted(s.by_hook.items())],
        by_day=[Day(day=k, **v.out()) for k, v in sorted(s.by_day.items())])
