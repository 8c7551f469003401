"""GET /metrics: the numbers of /v1/stats and the state of the lines for Prometheus.

Call counters are read from the store at each scrape, so they keep counting across
restarts; gauges are what is true now."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from atende.store.db import Store
from atende.store.models import Call, CallAttempt, Delivery

Counts = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True)
class LiveFigures:
    """What is true of this node now, for its gauges."""

    active_calls: int = 0
    sip: dict[str, int] = field(default_factory=dict)  # SIP message counters
    trunks: list[tuple[str, str, bool]] = field(default_factory=list)  # id, name, registered
    loop_lag_s: float = 0.0  # the overload control's smoothed lag
    shedding: bool = False  # every new call refused until the loop catches up
    admission_cap_per_s: float | None = None  # new calls taken a second; None: any


def _counts(s: Session) -> Counts:
    finished = select(Call.direction, Call.source, Call.assistant_id, Call.outcome,
                      func.count(), func.count(Call.answer_at)
                      ).where(Call.end_at.is_not(None)).group_by(
                          Call.direction, Call.source, Call.assistant_id, Call.outcome)
    by_status = select(Call.status, func.count()).group_by(Call.status)
    attempts = select(CallAttempt.status, func.count()).group_by(CallAttempt.status)
    deliveries = select(Delivery.status, func.count()).group_by(Delivery.status)
    return {"finished": [tuple(r) for r in s.execute(finished)],
            "status": [tuple(r) for r in s.execute(by_status)],
            "attempts": [tuple(r) for r in s.execute(attempts)],
            "deliveries": [tuple(r) for r in s.execute(deliveries)]}


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def families(counts: Counts, now: LiveFigures) -> list[Metric]:
    """Prometheus metric families from the store's counts and the live state."""
    calls = CounterMetricFamily("atende_calls_finished", "Calls that are over",
                                labels=["direction", "source", "assistant_id", "outcome"])
    answered = CounterMetricFamily("atende_calls_answered", "Calls that are over and were "
                                   "answered", labels=["direction", "source", "assistant_id"])
    totals: dict[tuple[str, str, str], int] = {}
    for direction, source, assistant, outcome, n, n_answered in counts["finished"]:
        key = (direction, source or "inbound", assistant or "")
        calls.add_metric([*key, outcome or "none"], n)
        totals[key] = totals.get(key, 0) + n_answered
    for key, n in sorted(totals.items()):
        answered.add_metric(list(key), n)
    status: dict[str, int] = dict(counts["status"])
    queued = GaugeMetricFamily("atende_calls_queued", "Calls waiting in the queue (scheduled, "
                               "for a retry or for a free place)", value=status.get("queued", 0))
    active = GaugeMetricFamily("atende_calls_active", "Calls being dialled or in progress",
                               value=now.active_calls)
    attempts = CounterMetricFamily("atende_call_attempts", "Dialling attempts by how they "
                                   "ended", labels=["status"])
    for state, n in counts["attempts"]:
        attempts.add_metric([state or "in_progress"], n)
    deliveries: dict[str, int] = dict(counts["deliveries"])
    sent = CounterMetricFamily("atende_webhook_deliveries", "Result webhooks delivered or "
                               "given up on", labels=["status"])
    for state in ("delivered", "failed"):
        sent.add_metric([state], deliveries.get(state, 0))
    pending = GaugeMetricFamily("atende_webhook_deliveries_pending", "Result webhooks still "
                                "being tried", value=deliveries.get("pending", 0))
    messages = CounterMetricFamily("atende_sip_messages", "SIP messages received, and those "
                                   "malformed, dropped or failing", labels=["kind"])
    for kind, n in sorted(now.sip.items()):
        messages.add_metric([kind], n)
    registered = GaugeMetricFamily("atende_trunk_registered", "1 while an extension trunk is "
                                   "registered with its PBX", labels=["trunk_id", "name"])
    for trunk_id, name, ok in now.trunks:
        registered.add_metric([trunk_id, name], 1 if ok else 0)
    return [calls, answered, queued, active, attempts, sent, pending, messages, registered,
            *_overload(now)]


def exposition(counts: Counts, now: LiveFigures) -> bytes:
    """The text Prometheus scrapes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(counts, now)))
    return bytes(generate_latest(registry))


def _overload(now: LiveFigures) -> list[Metric]:
    cap = now.admission_cap_per_s
    return [
        GaugeMetricFamily("atende_event_loop_lag_seconds", "How late the event loop and "
                          "its SIP reading run, smoothed (the overload control's measure)",
                          value=now.loop_lag_s),
        GaugeMetricFamily("atende_overload_shedding", "1 while every new call is refused "
                          "503 until the loop catches up", value=1 if now.shedding else 0),
        GaugeMetricFamily("atende_admission_limit_per_second", "New calls taken a second "
                          "while catching up from overload (+Inf: no limit)",
                          value=float("inf") if cap is None else cap)]


def metrics_router(store: Store, live: Callable[[], LiveFigures]) -> APIRouter:
    """``live``: what is true of this node at each scrape."""
    router = APIRouter(tags=["stats"])

    @router.get("/metrics", response_class=Response, responses={200: {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"example": "atende_calls_finished_total{direction=\""
                                   "outbound\",source=\"api\",assistant_id=\"9c1…\",outcome=\""
                                   "confirmed\"} 71.0\n"}}}})
    async def metrics() -> Response:
        """For Prometheus (scrape with the API key as a bearer token). Counters come
        from the store and survive restarts; gauges are the state now."""
        counts = await store.run(_counts)
        return Response(exposition(counts, live()), media_type=CONTENT_TYPE_LATEST)

    return router
