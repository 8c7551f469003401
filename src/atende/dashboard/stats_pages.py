"""Stats: how calls went over the last days, as plots with their numbers: success rate by
how calls were started (manual, webhook, API …), by assistant, by trigger and by day;
the outcome mix; calls per day; reply latency percentiles per day. The figures are the
API's (/v1/stats)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from fastapi import APIRouter, HTTPException, Request, Response

from atende.api.stats import Figures, call_stats, window
from atende.dashboard import charts
from atende.dashboard.web import Web, refusal

PERIODS = (7, 30, 90, 365)
SOURCES = {"manual": "by hand", "webhook": "by webhook", "api": "by the API",
           "callback": "call-backs", "inbound": "calls that came in"}


def success_words(f: Figures) -> str:
    if not f.with_task:
        return f"no finished call with a task (of {f.calls} call{'s' * (f.calls != 1)})"
    return f"{f.success_rate:.0%} — {f.successes} of {f.with_task} calls with a task"


def every_day(start: datetime, end: datetime, zone: tzinfo) -> list[str]:
    """The calendar days (in ``zone``) the period [start, end) touches."""
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def stats_pages(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/stats")
    async def page(request: Request, days: int = 30, tz: str = "UTC") -> Response:
        who = await web.need(request)
        period = days if days in PERIODS else 30
        now = datetime.now(UTC)
        try:
            start, end, zone = window(now - timedelta(days=period), now, tz)
        except HTTPException as exc:
            return web.page("stats.html", 400, who=who, periods=PERIODS, days=period,
                            tz=tz, error=refusal(exc), stats=None)
        stats = await call_stats(web.store, start, end, tz, zone)
        o = stats.overall
        by_source = charts.bars([(SOURCES.get(k, k), f.success_rate, success_words(f))
                                 for k, f in stats.by_source.items()], top=1.0)
        by_assistant = charts.bars([(a.name or a.id[:8], a.success_rate, success_words(a))
                                    for a in stats.by_assistant], top=1.0)
        by_hook = charts.bars([(h.name or h.id[:8], h.success_rate, success_words(h))
                               for h in stats.by_hook], top=1.0)
        outcomes = charts.bars([(k.replace("_", " "), v, f"{v}")
                                for k, v in sorted(o.outcomes.items(),
                                                   key=lambda kv: -kv[1])])
        # Every day of the period has its place, calls or not.
        calendar = every_day(start, end, zone)
        by_day = {d.day: d for d in stats.by_day}
        volume, most = charts.columns([(day, by_day[day].calls if day in by_day else 0)
                                       for day in calendar])
        rate, _ = charts.lines(len(calendar), [
            ("success rate", "rate", [by_day[d].success_rate if d in by_day else None
                                      for d in calendar])], top=1.0)
        latency, slowest = charts.lines(len(calendar), [
            (f"p{q}", f"p{q}", [by_day[d].reply_latency_ms[f"p{q}"] if d in by_day
                                else None for d in calendar]) for q in (95, 50)])
        return web.page("stats.html", who=who, periods=PERIODS, days=period, tz=tz,
                        stats=stats, overall=o, by_source=by_source,
                        by_assistant=by_assistant, by_hook=by_hook, outcomes=outcomes,
                        volume=volume, most=most, rate=rate, latency=latency,
                        slowest=slowest, sources=SOURCES, success_words=success_words)

    return router
