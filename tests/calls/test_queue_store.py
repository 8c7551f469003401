"""The call queue's bookkeeping on a real SQLite store: claims happen once, retries and
cancellations are recorded, and a restart closes or requeues what was left live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from atende.agent.brain import DEFAULT_RULES
from atende.calls.queue import cancel_queued, claim, due_calls, end_attempt, recover, requeue
from atende.store import models
from atende.store.db import Store
from atende.store.writes import insert_event

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = Store(store_url)
    await s.init(DEFAULT_RULES.to_dict())
    yield s
    await s.close()


def queued(call_id: str, at: datetime = T0, **values: Any) -> models.Call:
    fields: dict[str, Any] = dict(
        id=call_id, channel="sip", direction="outbound", from_uri="sip:ai@pbx",
        to_uri="sip:alice@pbx", to_user="alice", status="queued", invite_at=T0,
        next_attempt_at=at, phone_number="alice", caller_name="Ana", max_attempts=3,
        retry_after_s=60, webhook_url="http://127.0.0.1:9/hook", attempts=0)
    fields.update(values)
    return models.Call(**fields)


async def add(store: Store, *rows: models.Call) -> None:
    def fn(s: Any) -> None:
        for row in rows:
            s.add(row)

    await store.run(fn)


async def call(store: Store, call_id: str) -> models.Call:
    row = await store.get_call(call_id)
    assert row is not None
    return row


async def deliveries(store: Store) -> list[models.Delivery]:
    return await store.run(lambda s: list(s.query(models.Delivery).all()))


async def test_due_calls_come_earliest_first(store: Store) -> None:
    await add(store, queued("late", T0 + timedelta(minutes=5)), queued("b", T0),
              queued("a", T0 - timedelta(minutes=1)), queued("gone", status="completed"))
    due, next_at = await store.run(due_calls(T0, 10))
    assert [c.id for c, _ in due] == ["a", "b"]
    assert next_at == T0 - timedelta(minutes=1)
    later, _ = await store.run(due_calls(T0 + timedelta(minutes=5), 10))
    assert [c.id for c, _ in later] == ["a", "b", "late"]


async def test_a_call_is_claimed_once_and_its_attempts_are_recorded(store: Store) -> None:
    await add(store, queued("c"))
    assert await store.run(claim("c", T0, "n1")) == 1
    assert await store.run(claim("c", T0, "n2")) is None  # a second claim loses
    row = await call(store, "c")
    assert (row.status, row.attempts, row.next_attempt_at, row.node_id) == (
        "dialing", 1, None, "n1")
    retry_at = T0 + timedelta(seconds=60)
    await store.run(requeue("c", 1, T0, retry_at, "no_answer", 480, "480 Not Here"))
    row = await call(store, "c")
    assert row.status == "queued" and row.next_attempt_at is not None
    assert row.next_attempt_at.replace(tzinfo=UTC) == retry_at
    assert [e.kind for e in row.events] == ["retry_scheduled"]
    assert row.events[0].data["next_attempt_at"] == retry_at.isoformat()
    assert await store.run(claim("c", retry_at, "n1")) == 2
    await store.run(end_attempt("c", 2, retry_at, "answered", 200, None))
    row = await call(store, "c")
    assert [(a.seq, a.status, a.sip_status) for a in row.attempt_log] == [
        (1, "no_answer", 480), (2, "answered", 200)]


async def test_cancel_wins_or_loses_against_a_claim(store: Store) -> None:
    await add(store, queued("x"), queued("y"))
    assert await store.run(cancel_queued("x", T0))
    assert await store.run(claim("x", T0, "n1")) is None  # cancelled: never placed
    row = await call(store, "x")
    assert (row.status, row.outcome) == ("cancelled", "cancelled")
    (d,) = await deliveries(store)  # its result webhook goes out as for any call
    assert d.call_id == "x" and d.payload["outcome"] == "cancelled"
    assert await store.run(claim("y", T0, "n1")) == 1
    assert not await store.run(cancel_queued("y", T0))  # claimed first: the engine has it


async def test_recovery_after_a_crash(store: Store) -> None:
    await add(
        store,
        # dialing, attempts left: tried again (the cut attempt counts)
        queued("ringing_out", status="dialing", attempts=1, next_attempt_at=None),
        # dialing on its last attempt: over
        queued("last_try", status="dialing", attempts=3, next_attempt_at=None),
        # answered, the conversation settled something before the crash
        queued("talking", status="in_progress", attempts=1, next_attempt_at=None,
               answer_at=T0),
        # an inbound call: closed, no webhook
        models.Call(id="inbound", channel="sip", direction="inbound", from_uri="sip:x@y",
                    to_uri="sip:ai@z", status="in_progress", invite_at=T0, answer_at=T0),
        queued("waiting"),  # queued calls stay as they are
        # live on another atende node, which is alive: not this node's to close
        queued("elsewhere", status="in_progress", attempts=1, next_attempt_at=None,
               answer_at=T0, node_id="n2"),
    )
    for call_id in ("ringing_out", "last_try", "talking"):
        await store.run(lambda s, c=call_id: s.add(models.CallAttempt(
            call_id=c, seq=s.get(models.Call, c).attempts, started_at=T0)))
    store.submit(insert_event("talking", T0.timestamp(), "outcome", {
        "outcome": "reschedule_requested", "fields": {"proposed_time": "monday at 9 am"}}))
    now = T0 + timedelta(minutes=1)
    # The calls of no node (left by an atende from before nodes) count as this one's.
    assert await store.run(recover(now, "n1", orphans=True)) == {"requeued": 1, "closed": 3}
    assert await store.run(recover(now, "n1", orphans=True)) == {"requeued": 0, "closed": 0}
    assert (await call(store, "elsewhere")).status == "in_progress"

    again = await call(store, "ringing_out")
    assert again.status == "queued" and again.next_attempt_at is not None
    assert again.next_attempt_at.replace(tzinfo=UTC) == now + timedelta(seconds=60)
    assert again.attempt_log[0].status == "interrupted"
    last = await call(store, "last_try")
    assert (last.status, last.outcome, last.hangup_cause) == ("failed", "failed",
                                                              "interrupted")
    talking = await call(store, "talking")
    assert talking.outcome == "reschedule_requested"
    assert talking.fields == {"proposed_time": "monday at 9 am"}
    inbound = await call(store, "inbound")
    assert (inbound.status, inbound.hangup_cause, inbound.outcome) == (
        "failed", "interrupted", None)
    assert (await call(store, "waiting")).status == "queued"
    assert sorted(d.call_id for d in await deliveries(store)) == ["last_try", "talking"]
