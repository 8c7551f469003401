"""The outbox's bookkeeping on real stores (SQLite and PostgreSQL), and the signature
scheme."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from atende.store import models
from atende.store.db import Store
from atende.store.writes import insert_call
from atende.webhooks.outbox import RetryPolicy, due, finish_call, record_attempt
from atende.webhooks.signing import sign, verify

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_signatures() -> None:
    body = b'{"outcome":"confirmed"}'
    header = sign("whsec_k", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify("whsec_k", header, body, 1_700_000_100)
    assert not verify("whsec_k", header, body, 1_700_000_301)  # too old: a replay
    assert not verify("whsec_k", header, body + b" ", 1_700_000_000)
    assert not verify("whsec_other", header, body, 1_700_000_000)
    assert not verify("whsec_k", "v1=abc", body, 1_700_000_000)


def test_backoff_doubles_up_to_its_cap() -> None:
    p = RetryPolicy(base_s=10, max_interval_s=3600)
    assert [p.delay(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert p.delay(20) == 3600


async def test_finish_writes_the_delivery_and_attempts_move_it_on(store_url: str) -> None:
    store = Store(store_url)
    await store.init()
    try:
        for call_id, url in [("with", "http://127.0.0.1:9/hook"), ("without", None)]:
            store.submit(insert_call(
                id=call_id, channel="sip", direction="outbound", from_uri="sip:a@b",
                to_uri="sip:b@c", status="dialing", invite_at=T0, webhook_url=url,
                meta={"k": "v"}, phone_number="+351912345678"))
            store.submit(finish_call(call_id, T0, status="no_answer", outcome="no_answer",
                                     end_at=T0))
        rows = await store.run(lambda s: s.query(models.Delivery).all())
        (d,) = rows  # only the call with a webhook_url gets one
        assert d.call_id == "with" and d.status == "pending" and d.attempts == 0
        assert d.payload["outcome"] == "no_answer" and d.payload["metadata"] == {"k": "v"}
        policy = RetryPolicy(base_s=10, give_up_after_s=3600)

        failed = await store.run(record_attempt(d.id, T0, 503, "HTTP 503", 12, policy))
        assert failed is not None and failed.status == "pending" and failed.attempts == 1
        assert failed.next_attempt_at is not None
        assert failed.next_attempt_at.replace(tzinfo=UTC) == T0 + timedelta(seconds=10)
        late = T0 + timedelta(seconds=3600)
        gave_up = await store.run(record_attempt(d.id, late, None, "ConnectError", 1, policy))
        assert gave_up is not None and gave_up.status == "failed"
        assert gave_up.next_attempt_at is None
        assert [h["error"] for h in gave_up.history] == ["HTTP 503", "ConnectError"]
        ok = await store.run(record_attempt(d.id, late, 200, None, 5, policy))
        assert ok is not None and ok.status == "delivered" and ok.attempts == 3
    finally:
        await store.close()


async def test_a_call_is_finished_once(store_url: str) -> None:
    """A call another node finished (it took this one for dead) keeps that result: a
    later end is not written over it, and no second webhook is made."""
    store = Store(store_url)
    await store.init()
    try:
        store.submit(insert_call(
            id="c", channel="sip", direction="outbound", from_uri="sip:a@b",
            to_uri="sip:b@c", status="in_progress", invite_at=T0,
            webhook_url="http://127.0.0.1:9/hook"))
        store.submit(finish_call("c", T0, status="failed", hangup_cause="interrupted",
                                 end_at=T0))
        store.submit(finish_call("c", T0, status="completed", outcome="confirmed",
                                 end_at=T0))
        call = await store.get_call("c")
        assert call is not None and (call.status, call.outcome) == ("failed", None)
        rows = await store.run(lambda s: s.query(models.Delivery).all())
        assert len(rows) == 1 and rows[0].payload["status"] == "failed"
    finally:
        await store.close()


async def test_due_deliveries_are_claimed_by_one_node(store_url: str) -> None:
    """Two atende nodes on one database: a due delivery goes to the first that looks;
    the other passes it by until the first's lease is over (it died mid-attempt), and
    once the attempt is recorded its real next time counts."""
    first, second = Store(store_url), Store(store_url)
    await first.init()
    await second.init()
    try:
        for n in range(3):
            first.submit(insert_call(
                id=f"c{n}", channel="sip", direction="outbound", from_uri="sip:a@b",
                to_uri="sip:b@c", status="dialing", invite_at=T0,
                webhook_url="http://127.0.0.1:9/hook"))
            first.submit(finish_call(f"c{n}", T0, status="no_answer", end_at=T0))
        mine, upcoming = await first.run(due(T0, 30))
        assert sorted(d.call_id for d in mine) == ["c0", "c1", "c2"]
        assert upcoming is not None and upcoming == T0 + timedelta(seconds=30)
        theirs, upcoming = await second.run(due(T0 + timedelta(seconds=29), 30))
        assert theirs == [] and upcoming == T0 + timedelta(seconds=30)
        # The first records one attempt; the other two it never does (it died).
        policy = RetryPolicy(base_s=10)
        await first.run(record_attempt(mine[0].id, T0 + timedelta(seconds=1), 200, None, 5,
                                       policy))
        theirs, _ = await second.run(due(T0 + timedelta(seconds=31), 30))
        assert sorted(d.call_id for d in theirs) == sorted(d.call_id for d in mine[1:])
        again, _ = await first.run(due(T0 + timedelta(seconds=32), 30))
        assert again == []
    finally:
        await first.close()
        await second.close()
