"""The call queue: calls asked for later (scheduled_at, delay_seconds), calls waiting for a
free place on their trunk, and retries. It lives in the store, not in memory, so a restart
— even kill -9 — loses none and places none twice: an attempt starts by claiming its call
in the store (queued → dialing) and the claim succeeds once.

At start-up, calls that a previous process left dialing or in progress are closed, or
queued again when their retry policy allows (``recover``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from atende.aio import WakeableLoop
from atende.calls.automation import CallJob, summarize
from atende.calls.live import LiveCall, LiveCalls
from atende.calls.records import CallRecords
from atende.calls.retry import next_attempt_at
from atende.store.db import RowWrite, Store, as_utc
from atende.store.models import LIVE_STATUSES, Assistant, Call, CallAttempt, CallEvent
from atende.store.writes import call_row
from atende.telephony.trunks import DestinationError, TrunkConfig, TrunkManager
from atende.webhooks.outbox import finish_call

log = logging.getLogger(__name__)
# Look again at least this often, whatever happens: calls another atende node queued
# (its API took them) are seen by this one within this long.
_IDLE_S = 5.0


# Store writers (run on the store thread) --------------------------------------------------
def claim(call_id: str, now: datetime, node_id: str) -> Callable[[Session], int | None]:
    """queued → dialing on node ``node_id``, once, whichever node tries: the attempt's
    number, or None if the call is no longer queued (cancelled, or claimed already)."""

    def fn(s: Session) -> int | None:
        done = s.execute(update(Call).where(Call.id == call_id, Call.status == "queued")
                         .values(status="dialing", attempts=Call.attempts + 1,
                                 next_attempt_at=None, node_id=node_id))
        if getattr(done, "rowcount", 0) != 1:
            return None
        seq = int(s.scalar(select(Call.attempts).where(Call.id == call_id)) or 1)
        s.add(CallAttempt(call_id=call_id, seq=seq, started_at=now))
        return seq

    return fn


def end_attempt(call_id: str, seq: int, ended_at: datetime | None, status: str | None,
                sip_status: int | None, reason: str | None) -> Callable[[Session], None]:
    """Fill in how attempt ``seq`` went; None leaves a field as it is."""

    def fn(s: Session) -> None:
        row = s.scalars(select(CallAttempt).where(CallAttempt.call_id == call_id,
                                                  CallAttempt.seq == seq)).first()
        if row is None:
            return
        for key, value in (("ended_at", ended_at), ("status", status),
                           ("sip_status", sip_status), ("reason", reason)):
            if value is not None:
                setattr(row, key, value[:200] if isinstance(value, str) else value)

    return fn


def retry_data(seq: int, status: str, sip_status: int | None, reason: str,
               at: datetime) -> dict[str, Any]:
    """What a retry_scheduled event says, kept with the call and sent live alike."""
    return {"attempt": seq, "status": status, "sip_status": sip_status, "reason": reason,
            "next_attempt_at": at.isoformat()}


def requeue(call_id: str, seq: int, now: datetime, at: datetime, status: str,
            sip_status: int | None, reason: str) -> RowWrite:
    """Attempt ``seq`` ended unanswered and the call will be tried again at ``at``."""

    def fn(s: Session) -> None:
        end_attempt(call_id, seq, now, status, sip_status, reason)(s)
        s.execute(update(Call).where(Call.id == call_id).values(
            status="queued", next_attempt_at=at, sip_status=sip_status,
            hangup_cause=reason[:64]))
        s.add(CallEvent(call_id=call_id, at=now, kind="retry_scheduled",
                        data=retry_data(seq, status, sip_status, reason, at)))

    return RowWrite(call_row(call_id), fn)


def cancel_queued(call_id: str, now: datetime) -> Callable[[Session], bool]:
    """Cancel a call waiting in the queue (its result webhook goes out as for any call)."""

    def fn(s: Session) -> bool:
        # Still queued: the row is locked now, so a claim waits and then finds it over.
        done = s.execute(update(Call).where(Call.id == call_id, Call.status == "queued")
                         .values(next_attempt_at=None))
        if getattr(done, "rowcount", 0) != 1:
            return False
        name = s.scalar(select(Call.caller_name).where(Call.id == call_id))
        finish_call(call_id, now, status="cancelled", end_at=now, outcome="cancelled",
                    hangup_cause="cancelled",
                    summary=summarize("cancelled", {}, name, None))(s)
        return True

    return fn


def reschedule(call_id: str, at: datetime) -> Callable[[Session], None]:
    def fn(s: Session) -> None:
        s.execute(update(Call).where(Call.id == call_id, Call.status == "queued")
                  .values(next_attempt_at=at))

    return fn


def give_up(call_id: str, now: datetime, reason: str) -> Callable[[Session], None]:
    """A queued call that can no longer be placed (its trunk or assistant is gone)."""

    def fn(s: Session) -> None:
        name = s.scalar(select(Call.caller_name).where(Call.id == call_id))
        finish_call(call_id, now, status="failed", end_at=now, next_attempt_at=None,
                    outcome="failed", hangup_cause=reason[:64],
                    summary=summarize("failed", {}, name, reason))(s)

    return fn


def due_calls(now: datetime, limit: int) -> Callable[
        [Session], tuple[list[tuple[Call, Assistant | None]], datetime | None]]:
    """The queued calls due by ``now``, earliest first, and when the next one is due."""

    def fn(s: Session) -> tuple[list[tuple[Call, Assistant | None]], datetime | None]:
        rows = list(s.scalars(select(Call).where(Call.status == "queued",
                                                 Call.next_attempt_at <= now)
                              .order_by(Call.next_attempt_at, Call.invite_at).limit(limit)))
        out = [(row, s.get(Assistant, row.assistant_id) if row.assistant_id else None)
               for row in rows]
        upcoming = s.scalar(select(func.min(Call.next_attempt_at))
                            .where(Call.status == "queued"))
        return out, as_utc(upcoming) if upcoming is not None else None

    return fn


def recover(now: datetime, node_id: str, orphans: bool = False,
            why: str = "atende restarted") -> Callable[[Session], dict[str, int]]:
    """Close what node ``node_id`` left live when it stopped (restarted, or died and
    taken over by another node); with ``orphans``, also the live calls of no node (from
    an atende older than nodes). Their SIP dialogs and media died with it: an unanswered
    attempt is retried if its policy allows (it counts as one), anything else ends as
    ``failed`` with cause ``interrupted``, and its result webhook goes out with what was
    settled before. The rows are locked first: of two nodes recovering the same call at
    once, the second finds it no longer live."""

    def fn(s: Session) -> dict[str, int]:
        counts = {"requeued": 0, "closed": 0}
        whose = Call.node_id == node_id
        if orphans:
            whose = or_(whose, Call.node_id.is_(None))
        for call in list(s.scalars(select(Call).where(Call.status.in_(LIVE_STATUSES), whose)
                                   .with_for_update())):
            end_attempt(call.id, call.attempts, now, "interrupted", None,
                        why)(s)
            answered = call.answer_at is not None
            at = None
            if call.phone_number is not None and not answered and call.attempts:
                at = next_attempt_at(CallJob.of(call).retry, call.attempts, "interrupted",
                                     None, now)
            if at is not None:
                call.status, call.next_attempt_at, call.node_id = "queued", at, None
                call.hangup_cause = "interrupted"
                s.add(CallEvent(call_id=call.id, at=now, kind="retry_scheduled",
                                data=retry_data(call.attempts, "interrupted", None,
                                                why, at)))
                counts["requeued"] += 1
                continue
            values: dict[str, Any] = {"status": "failed", "end_at": now,
                                      "hangup_cause": "interrupted"}
            if call.phone_number is not None:  # a call with a job gets its outcome
                outcome, fields = _settled(s, call.id)
                values.update(outcome=outcome or "failed", fields=fields, summary=(
                    summarize(outcome, fields, call.caller_name, None) if outcome else
                    f"{why} during the call; it was cut off."))
            finish_call(call.id, now, **values)(s)
            counts["closed"] += 1
        return counts

    return fn


def _settled(s: Session, call_id: str) -> tuple[str | None, dict[str, Any]]:
    """The outcome the conversation reached before it was cut, if any."""
    event = s.scalars(select(CallEvent).where(CallEvent.call_id == call_id,
                                              CallEvent.kind == "outcome")
                      .order_by(CallEvent.id.desc())).first()
    if event is None:
        return None, {}
    return event.data.get("outcome"), dict(event.data.get("fields") or {})


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else as_utc(dt).isoformat()


# The queue -----------------------------------------------------------------------------
class Attempts(Protocol):
    """Who places the attempts the queue starts (the calls engine)."""

    async def reserve(self, call: Call, assistant: Assistant, trunk: TrunkConfig, user: str
                      ) -> bool: ...

    def release(self, call_id: str) -> None: ...

    async def attempt(self, call_id: str, trunk: TrunkConfig, attempt: int) -> None: ...


class CallQueue:
    """Starts queued calls when they are due and there is a place for them, oldest due
    first; woken when a call is queued or a place comes free."""

    def __init__(self, store: Store, attempts: Attempts, live: LiveCalls,
                 records: CallRecords, trunks: TrunkManager,
                 catch_up: Callable[[], Awaitable[None]] | None = None) -> None:
        self.store = store
        # Brings this node's trunks up to date with the store: a call queued through
        # another node may name a trunk created there a moment ago.
        self._catch_up = catch_up
        self.attempts = attempts
        self.live = live
        self.records = records
        self.trunks = trunks
        self._loop = WakeableLoop(self._round)
        self.start, self.wake, self.close = self._loop.start, self._loop.wake, self._loop.close
        live.on_freed(self._freed)
        self._waiting = False  # the last look found due calls with no place to start
        store.on_caught_up(self.wake)  # attempts requeued during an outage

    async def place(self, call: Call, assistant: Assistant) -> None:
        """A call just queued: start it now if it is due and has a place, so the caller of
        the API sees it dialing; else the loop takes it when it can."""
        due = call.next_attempt_at is not None and as_utc(call.next_attempt_at) <= \
            self.records.wall()
        if not due or not await self._start(call, assistant):
            self.records.events.publish(call.id, "call.queued", {
                "next_attempt_at": _iso(call.next_attempt_at),
                "scheduled_at": _iso(call.scheduled_at)})
            self.wake()

    async def cancel(self, call_id: str) -> str | None:
        """Cancel a queued or live call: what it was doing (queued, dialing, in_progress),
        or None if it is over (or unknown)."""
        doing = self.live.cancel(call_id)
        if doing is not None:
            return doing
        if await self.store.run(cancel_queued(call_id, self.records.wall())):
            self._finished(call_id, "cancelled", "cancelled", "cancelled")
            return "queued"
        # The queue may have claimed it meanwhile: then the engine has it now.
        return self.live.cancel(call_id)

    def _finished(self, call_id: str, status: str, outcome: str, cause: str) -> None:
        self.records.announce_finished(call_id, {"status": status, "outcome": outcome,
                                                "hangup_cause": cause[:64]})

    def _freed(self, call: LiveCall) -> None:
        """A place came free: look at the queue if calls wait for one, or if the call
        was one of the queue's (a retry of it may now be due sooner than the next look).
        Not for every call that ends: an inbound call's end would cost a query each."""
        if self._waiting or call.job is not None:
            self.wake()

    async def _round(self) -> float | None:
        blocked = False
        try:
            due, next_at = await self.store.run(due_calls(self.records.wall(), 50))
            for call, assistant in due:
                if not await self._start(call, assistant):
                    blocked = True
        except Exception:
            log.exception("the call queue failed; looking again in 5 s")
            return 5.0
        self._waiting = blocked
        if due and not blocked:
            return 0  # more may be due already
        # Blocked calls wait for a place to come free (LiveCalls.on_freed wakes us).
        if next_at is None or blocked:
            return _IDLE_S
        return min(_IDLE_S, max(0.05, (as_utc(next_at) - self.records.wall()).total_seconds()))

    async def _start(self, call: Call, assistant: Assistant | None) -> bool:
        """Start the call's next attempt; False when there is no place for it now."""
        now = self.records.wall()
        live = self.trunks.trunks.get(call.trunk_id or "")
        if live is None and call.trunk_id and self._catch_up is not None:
            await self._catch_up()
            live = self.trunks.trunks.get(call.trunk_id)
        problem = None
        if live is None:
            problem = "its trunk was deleted"
        elif not live.config.enabled:
            problem = f"trunk {live.config.name!r} is disabled"
        elif assistant is None:
            problem = "its assistant was deleted"
        if problem is None and live is not None:
            try:
                user = live.config.dial_user(call.phone_number or call.to_user or "")
            except DestinationError as exc:
                problem = str(exc)
        if problem is not None or live is None or assistant is None:
            log.warning("queued call %s cannot be placed: %s", call.id, problem)
            reason = f"cannot be placed: {problem}"
            await self.store.run(give_up(call.id, now, reason))
            self._finished(call.id, "failed", "failed", reason)
            return True
        hours = CallJob.of(call).retry.hours
        if hours is not None and not hours.is_open(now):
            at = hours.next_open(now)
            if at is None:
                await self.store.run(give_up(call.id, now, "calling hours never open"))
                self._finished(call.id, "failed", "failed", "calling hours never open")
            else:
                await self.store.run(reschedule(call.id, at))
            return True
        if not await self.attempts.reserve(call, assistant, live.config, user):
            return False
        seq = await self.store.run(claim(call.id, now, self.store.node_id))
        if seq is None:
            self.attempts.release(call.id)
            return True
        await self.attempts.attempt(call.id, live.config, seq)
        return True
