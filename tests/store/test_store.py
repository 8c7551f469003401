"""The store on both databases: what comes off the wire fits its columns."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session

from atende.store import models
from atende.store.db import Store
from atende.store.directory import MAX_AGE_S, DirectoryCache
from atende.store.writes import insert_call, insert_turn, update_call
from atende.webhooks.outbox import finish_call


class Commits:
    """The commits made on a store's database, counted."""

    def __init__(self, store: Store) -> None:
        self.n = 0
        event.listen(store.engine, "commit", self._count)

    def _count(self, conn: object) -> None:
        self.n += 1


async def test_overlong_sip_values_are_clipped_not_refused(store_url: str) -> None:
    store = Store(store_url)
    await store.init()
    try:
        # A hostile or sloppy peer's From and Call-ID: longer than the columns.
        store.submit(insert_call(
            id="long", channel="sip", direction="inbound", from_uri="sip:" + "a" * 2000,
            to_uri="sip:ai@h", from_display="D" * 900, external_id="x" * 5000,
            status="ringing", invite_at=datetime.now(UTC)))
        row = await store.get_call("long")
    finally:
        await store.close()
    assert row is not None
    assert len(row.from_uri) == 500 and row.from_uri.startswith("sip:aaa")
    assert row.from_display is not None and len(row.from_display) == 200
    assert row.external_id is not None and len(row.external_id) == 300


async def test_an_extension_reaches_the_callers_domain_first(store_url: str) -> None:
    store = Store(store_url)
    await store.init()
    now = datetime.now(UTC)

    def add(assistant_id: str, domain: str | None) -> None:
        store.submit(lambda s: s.add(models.Assistant(
            id=assistant_id, name=assistant_id, extension="8000", domain_uuid=domain,
            rules={}, created_at=now)))

    try:
        add("of-a", "domain-a")
        add("of-b", "domain-b")
        # Two domains' 8000 and none shared: a call from no domain reaches neither.
        assert await store.assistant_for("8000", None) is None
        found = await store.assistant_for("8000", "domain-b")
        assert found is not None and found.id == "of-b"
        assert await store.assistant_for("8000", "domain-c") is None
        add("shared", None)
        for domain, expected in (("domain-a", "of-a"), ("domain-c", "shared"),
                                 (None, "shared")):
            found = await store.assistant_for("8000", domain)
            assert found is not None and found.id == expected, domain
            # The calls' directory answers the same, from memory.
            found = (await store.directory()).for_call("8000", domain)
            assert found is not None and found.id == expected, domain
    finally:
        await store.close()


async def test_the_assistant_directory_is_read_once_and_dropped_by_writes_to_assistants(
        store_url: str) -> None:
    store = Store(store_url)
    await store.init(default_rules={})
    reads = 0

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        nonlocal reads
        reads += "FROM assistants" in statement

    event.listen(store.engine, "before_cursor_execute", count)

    def rename(s: Session) -> None:
        row = s.scalars(select(models.Assistant)).one()
        row.name = "Renamed"

    try:
        first = await store.directory()
        [row] = first.rows
        assert await store.directory() is first and first.by_id(None) is row
        assert reads == 1
        # Writes that touch no assistant keep it.
        store.submit(insert_call(
            id="c1", channel="sip", direction="inbound", from_uri="sip:a@h", to_uri="sip:b@h",
            status="ringing", invite_at=datetime.now(UTC)))
        store.submit(update_call("c1", status="in_progress"))
        assert await store.directory() is first
        # A change to one through the session, an UPDATE statement, a deletion: each is
        # seen by the next call.
        await store.run(rename)
        assert [a.name for a in (await store.directory()).rows] == ["Renamed"]
        await store.run(lambda s: s.execute(update(models.Assistant).values(greeting="Hi")))
        assert [a.greeting for a in (await store.directory()).rows] == ["Hi"]
        await store.run(lambda s: s.execute(delete(models.Assistant)))
        assert (await store.directory()).rows == ()
        assert first.rows[0].name != "Renamed"  # a snapshot once handed out never changes
    finally:
        await store.close()


async def test_the_directory_is_read_again_after_its_age_whatever_happened(
        store_url: str) -> None:
    store = Store(store_url)
    await store.init(default_rules={})
    now = [100.0]
    cache = DirectoryCache(store.changes, clock=lambda: now[0])
    try:
        first = await store.run(cache.read)
        assert cache.fresh() is first
        now[0] += MAX_AGE_S - 0.1
        assert cache.fresh() is first
        now[0] += 0.2  # an edit made around atende is seen this long after at most
        assert cache.fresh() is None
    finally:
        await store.close()


async def test_writes_that_queue_up_are_committed_together_and_a_bad_one_alone_is_lost(
        store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(store_url)
    await store.init()
    commits = Commits(store)
    now = datetime.now(UTC)

    def row(call_id: str) -> dict[str, Any]:
        return dict(id=call_id, channel="sip", direction="inbound", from_uri="sip:a@h",
                    to_uri="sip:ai@h", status="ringing", invite_at=now)

    try:
        # The store thread is held by a slow query while the writes queue behind it.
        slow = asyncio.get_running_loop().create_task(store.run(lambda s: time.sleep(0.3)))
        await asyncio.sleep(0.05)
        for i in range(300):
            store.submit(insert_call(**row(f"c{i}")))
            store.submit(update_call(f"c{i}", status="in_progress"))
        store.submit(insert_call(**row("c7")))  # the same id again: can never be written
        store.submit(update_call("c299", status="completed"))
        await slow
        calls = await store.run(lambda s: {c.id: c.status for c in s.scalars(
            select(models.Call))})
    finally:
        await store.close()
    assert len(calls) == 300 and store.pending_writes == 0
    assert calls["c299"] == "completed" and calls["c0"] == calls["c7"] == "in_progress"
    # 602 writes in a handful of transactions (plus the ones the bad write's batch
    # was made in again, one by one), not 602.
    assert commits.n < 602 // 2, commits.n
    assert "a database write failed and is dropped" in caplog.text


async def test_plain_and_orm_writes_in_one_transaction_land_in_the_order_made(
        store_url: str) -> None:
    """A call's record is written with plain statements, other writes go through the ORM.
    Made in one transaction, each write sees what the earlier ones made, and the result
    webhook carries every turn written before the call's end."""
    store = Store(store_url)
    await store.init()
    started, gate = threading.Event(), threading.Event()
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def hold(s: Session) -> None:
        started.set()
        gate.wait()

    def orm_status(s: Session) -> None:
        call = s.get(models.Call, "c")
        assert call is not None
        call.status, call.caller_name = "ringing", "Ana"  # left pending in the session

    seen: list[tuple[str, list[str]]] = []

    def orm_look(s: Session) -> None:
        call = s.get(models.Call, "c")
        assert call is not None
        seen.append((call.status, [t.text for t in call.turns]))

    def turn(text: str) -> Callable[[Session], None]:
        return insert_turn("c", speaker="caller", text=text, started_at=t0, ended_at=t0)

    try:
        held = asyncio.get_running_loop().create_task(store.run(hold))
        await asyncio.to_thread(started.wait)  # the writes below queue behind it
        commits = Commits(store)
        store.submit(insert_call(
            id="c", channel="sip", direction="outbound", from_uri="sip:a@b", to_uri="sip:b@c",
            status="dialing", invite_at=t0, webhook_url="http://127.0.0.1:9/hook"))
        store.submit(orm_status)
        store.submit(update_call("c", status="in_progress"))
        store.submit(turn("hello"))
        store.submit(orm_look)
        store.submit(turn("yes"))
        store.submit(finish_call("c", t0, status="completed", outcome="confirmed", end_at=t0))
        gate.set()
        await held
        await store.run(lambda s: None)  # after the writes: the store runs one job at a time
        assert commits.n == 1  # the writes, together (the jobs around them used no connection)
        call = await store.get_call("c")
        deliveries = await store.run(lambda s: [d.payload for d in s.scalars(
            select(models.Delivery))])
        turns = await store.run(lambda s: [(t.seq, t.text) for t in s.scalars(
            select(models.Turn).order_by(models.Turn.seq))])
    finally:
        gate.set()
        await store.close()
    assert seen == [("in_progress", ["hello"])]
    assert call is not None and (call.status, call.outcome) == ("completed", "confirmed")
    assert call.caller_name == "Ana"
    assert turns == [(0, "hello"), (1, "yes")]
    (payload,) = deliveries
    assert payload["status"] == "completed"
    assert [t["text"] for t in payload["transcript"]] == ["hello", "yes"]


async def test_writes_made_close_together_share_a_commit_and_a_query_sees_them(
        store_url: str) -> None:
    """A call's writes come within milliseconds: they wait ``commit_delay_s`` for each
    other and are committed together; a query made meanwhile finds them made, and the
    store is healthy while they wait."""
    store = Store(store_url, commit_delay_s=0.5)
    await store.init()
    commits = Commits(store)
    now = datetime.now(UTC)
    try:
        for i in range(3):
            store.submit(insert_call(id=f"c{i}", channel="sip", direction="inbound",
                                     from_uri="sip:a@h", to_uri="sip:ai@h",
                                     status="ringing", invite_at=now))
            store.submit(update_call(f"c{i}", status="in_progress"))
        # Waiting for company; each call's change joined its insert: one write a call.
        assert store.pending_writes == 3 and commits.n == 0
        statuses = await store.run(lambda s: [c.status for c in s.scalars(
            select(models.Call).order_by(models.Call.id))])
        assert statuses == ["in_progress"] * 3 and store.pending_writes == 0
        assert commits.n == 2  # the writes together, then the query
        store.submit(update_call("c0", status="completed"))
        assert await store.health() is None  # a write waiting for company is no problem
        assert commits.n == 4  # health's query made it first
        store.submit(update_call("c1", status="completed"))
        async with asyncio.timeout(5):  # with nobody asking, it is made after the delay
            while store.pending_writes:
                await asyncio.sleep(0.05)
        assert commits.n == 5
    finally:
        await store.close()


async def test_a_calls_changes_join_its_waiting_write_but_never_pass_another_write(
        store_url: str) -> None:
    """While a call's row write waits for the commit delay, a change to the call joins it
    (one statement, not two), across writes to other rows and the call's own turns. It
    never joins past the call's end, nor past a write of unknown kind (it could touch the
    row), nor a write the store thread has taken; and the result is what the writes made
    one by one would leave."""
    store = Store(store_url, commit_delay_s=5)
    await store.init()
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *a: statements.append(sql.split()[0].upper()))

    def new(call_id: str) -> None:
        store.submit(insert_call(id=call_id, channel="sip", direction="inbound",
                                 from_uri="sip:a@h", to_uri="sip:ai@h", status="ringing",
                                 invite_at=t0))

    def touch_c2(s: Session) -> None:
        s.execute(update(models.Call).where(models.Call.id == "c2").values(caller_name="Bo"))

    try:
        new("c1")
        new("c2")
        store.submit(update_call("c1", status="in_progress", answer_at=t0))
        store.submit(insert_turn("c1", speaker="assistant", text="Hello", started_at=t0,
                                 ended_at=t0))
        store.submit(update_call("c1", caller_name="Ana"))
        assert store.pending_writes == 3  # c1's insert (joined twice), c2's, the turn
        store.submit(finish_call("c1", t0, status="completed", end_at=t0))
        store.submit(update_call("c1", status="in_progress"))  # after its end: alone
        store.submit(touch_c2)
        store.submit(update_call("c2", status="in_progress"))  # after a write of any kind
        assert store.pending_writes == 7
        statements.clear()
        await store.run(lambda s: None)  # what waits is made first
        assert statements.count("INSERT") == 3  # two calls and a turn
        assert statements.count("UPDATE") == 4  # the end, the change after it, two for c2
        store.submit(update_call("c2", recorded=True))
        await store.run(lambda s: None)  # c2's insert was taken: this one goes alone
        rows = await store.run(lambda s: {c.id: (c.status, c.caller_name, c.answer_at is not
                                                 None, c.recorded, len(c.turns))
                                          for c in s.scalars(select(models.Call))})
    finally:
        await store.close()
    assert rows == {"c1": ("in_progress", "Ana", True, False, 1),
                    "c2": ("in_progress", "Bo", False, True, 0)}
