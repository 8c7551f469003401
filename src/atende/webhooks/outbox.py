"""The webhook outbox: a call's result is written with the call's final state in one
transaction, then POSTed until the receiver says 2xx, with exponential backoff, for as long
as the retry policy allows. Delivery is at least once: each POST carries the delivery id
so receivers can drop repeats."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from atende import __version__
from atende.aio import WakeableLoop, seconds_until
from atende.egress import EgressPolicy, guarded_client
from atende.store.db import RowWrite, Store, as_utc
from atende.store.models import LIVE_STATUSES, Call, Delivery
from atende.store.prepared import Prepared
from atende.store.writes import CALLS, call_row, connection, forget_call
from atende.webhooks.signing import HEADER, sign

log = logging.getLogger(__name__)
EVENT = "call.finished"
UNFINISHED = ("queued", *LIVE_STATUSES)
_calls = CALLS.table
_FINISH_CALL = Prepared(
    update(_calls)
    .where(_calls.c.id == bindparam("call_id_"),
           or_(*(_calls.c.status == s for s in UNFINISHED)))  # each a plain parameter
    .returning(_calls.c.webhook_url))
_CALL_STATUS = select(_calls.c.status).where(_calls.c.id == bindparam("call_id_"))


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed result webhook is tried again, and when it is given up."""

    base_s: float = 10.0  # first retry after this; doubling each time
    max_interval_s: float = 3600.0
    give_up_after_s: float = 48 * 3600.0  # counted from the first attempt's creation

    def delay(self, attempts: int) -> float:
        return float(min(self.base_s * 2 ** max(0, attempts - 1), self.max_interval_s))


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else as_utc(dt).isoformat().replace("+00:00", "Z")


def result_payload(call: Call) -> dict[str, Any]:
    """What the receiver gets: the outcome first, the record of the call after."""
    answer, end = call.answer_at, call.end_at
    duration = None
    if answer is not None and end is not None:
        duration = round((as_utc(end) - as_utc(answer)).total_seconds(), 1)
    return {
        "event": EVENT,
        "call_id": call.id,
        "outcome": call.outcome,
        "summary": call.summary,
        "fields": call.fields or {},
        "metadata": call.meta or {},
        "phone_number": call.phone_number,
        "caller_name": call.caller_name,
        "task": call.task,
        "status": call.status,
        "sip_status": call.sip_status,
        "hangup_cause": call.hangup_cause,
        "assistant_id": call.assistant_id,
        "trunk_id": call.trunk_id,
        "created_at": _iso(call.invite_at),
        "answered_at": _iso(answer),
        "ended_at": _iso(end),
        "duration_s": duration,
        "transcript": [{"speaker": t.speaker, "text": t.text, "at": _iso(t.started_at)}
                       for t in call.turns],
        "attempts": [{"seq": a.seq, "status": a.status, "sip_status": a.sip_status,
                      "reason": a.reason, "started_at": _iso(a.started_at),
                      "ended_at": _iso(a.ended_at)} for a in call.attempt_log],
    }


def finish_call(call_id: str, now: datetime, **values: Any) -> RowWrite:
    """Store a call's final state and, if it has a webhook_url, its result delivery: one
    transaction, so a crash can lose neither one without the other."""
    row = CALLS.values(values)
    row["call_id_"] = call_id

    def fn(s: Session) -> None:
        conn = connection(s)
        # One statement sets the final state of a call not finished yet and says whether
        # it has a result to deliver; only then are its turns and attempts read.
        done = _FINISH_CALL.execute(conn, row)
        forget_call(s, call_id)
        if not done:
            status = conn.execute(_CALL_STATUS, {"call_id_": call_id}).scalar()
            if status is not None:
                # Finished already: by another node that took this one for dead (it was
                # cut off from the database for a lease). The first result stands, sent
                # once.
                log.warning("call %s was finished already (%s); its later end is not kept",
                            call_id, status)
            return
        [(webhook_url,)] = done
        if webhook_url:
            call = s.get(Call, call_id)  # read afresh: forgotten above if it was held
            assert call is not None
            s.add(new_delivery(call, now))

    return RowWrite(call_row(call_id), fn)  # nothing joins past a call's end


def new_delivery(call: Call, now: datetime, url: str | None = None) -> Delivery:
    target = url or call.webhook_url
    assert target is not None
    return Delivery(call_id=call.id, url=target, payload=result_payload(call),
                    status="pending", attempts=0, next_attempt_at=now, created_at=now,
                    history=[])


def record_attempt(delivery_id: int, now: datetime, status: int | None, error: str | None,
                   ms: int, policy: RetryPolicy) -> Callable[[Session], Delivery | None]:
    def fn(s: Session) -> Delivery | None:
        d = s.get(Delivery, delivery_id)
        if d is None:
            return None
        d.attempts += 1
        d.history = [*d.history, {"at": _iso(now), "status": status, "error": error,
                                  "ms": ms}]
        if error is None:
            d.status, d.delivered_at, d.next_attempt_at = "delivered", now, None
        elif (now - as_utc(d.created_at)).total_seconds() >= policy.give_up_after_s:
            d.status, d.next_attempt_at = "failed", None
        else:
            d.next_attempt_at = now + timedelta(seconds=policy.delay(d.attempts))
        return d

    return fn


class Deliverer:
    """Sends due deliveries; woken when one is added, else sleeps until the next is due."""

    def __init__(self, store: Store, secret: str, policy: RetryPolicy | None = None,
                 timeout_s: float = 10.0, egress: EgressPolicy | None = None) -> None:
        self.store = store
        self.secret = secret
        self.policy = policy or RetryPolicy()
        self.timeout_s = timeout_s
        # How long a claimed delivery is this node's: its POST, its write, and a margin.
        self.lease_s = timeout_s + 20.0
        # Where results may go: public addresses unless the operator allows more.
        self._client = guarded_client(egress or EgressPolicy(), timeout=timeout_s,
                                      follow_redirects=False,
                                      headers={"User-Agent": f"atende/{__version__}"})
        self._loop = WakeableLoop(self._round)
        self.start, self.wake = self._loop.start, self._loop.wake
        store.on_caught_up(self.wake)  # results written after an outage go out at once

    async def close(self) -> None:
        await self._loop.close()
        await self._client.aclose()

    async def _round(self) -> float | None:
        try:
            due_now, next_at = await self.store.run(due(datetime.now(UTC), self.lease_s))
            # Side by side: one slow receiver must not hold up the others.
            await asyncio.gather(*(self._attempt(self._client, d) for d in due_now))
        except Exception:
            log.exception("webhook delivery loop failed; retrying in 5 s")
            return 5.0
        if due_now:
            return 0  # more may be due already
        return None if next_at is None else seconds_until(next_at)

    async def _attempt(self, client: httpx.AsyncClient, d: Delivery) -> None:
        body = json.dumps(d.payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Atende-Event": EVENT,
                   "Atende-Delivery": str(d.id), "Atende-Attempt": str(d.attempts + 1),
                   HEADER: sign(self.secret, int(time.time()), body)}
        t0 = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            resp = await client.post(d.url, content=body, headers=headers)
            status = resp.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        ms = int((time.monotonic() - t0) * 1000)
        row = await self.store.run(record_attempt(d.id, datetime.now(UTC), status, error, ms,
                                                  self.policy))
        if row is None:
            return
        if row.status == "delivered":
            log.info("webhook %d for call %s delivered (attempt %d)", d.id, d.call_id,
                     row.attempts)
        else:
            log.warning("webhook %d for call %s: attempt %d failed (%s); %s", d.id,
                        d.call_id, row.attempts, error,
                        "giving up" if row.status == "failed" else
                        f"next at {_iso(row.next_attempt_at)}")


def due(now: datetime, lease_s: float
        ) -> Callable[[Session], tuple[list[Delivery], datetime | None]]:
    """The deliveries due by ``now``, claimed for ``lease_s``: their next attempt is put
    off by that much, so another atende node on the same database passes them by (and
    SKIP LOCKED passes over those being claimed right now). The attempt's outcome sets the
    real next time; if this node dies during the attempt, another sends it once the lease
    is over (receivers drop the repeat by its delivery id). Also when the next is due."""

    def fn(s: Session) -> tuple[list[Delivery], datetime | None]:
        rows = list(s.scalars(select(Delivery).where(Delivery.status == "pending",
                                                     Delivery.next_attempt_at <= now)
                              .order_by(Delivery.next_attempt_at, Delivery.id).limit(20)
                              .with_for_update(skip_locked=True)))
        mine = []
        for row in rows:
            # Compare and set, as well: where rows cannot be locked (SQLite), another
            # node that claimed it since our look makes this match nothing.
            done = s.execute(update(Delivery).where(
                Delivery.id == row.id, Delivery.status == "pending",
                Delivery.next_attempt_at <= now)
                .values(next_attempt_at=now + timedelta(seconds=lease_s))
                .execution_options(synchronize_session=False))
            if getattr(done, "rowcount", 0) == 1:
                row.next_attempt_at = now + timedelta(seconds=lease_s)
                mine.append(row)
        upcoming = s.scalar(select(func.min(Delivery.next_attempt_at))
                            .where(Delivery.status == "pending"))
        return mine, (as_utc(upcoming) if upcoming is not None else None)

    return fn
