"""The store on both databases: what comes off the wire fits its columns."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session

from atende.store import models
from atende.store.db import Store, insert_call, update_call
from atende.store.directory import MAX_AGE_S, DirectoryCache


async def test_overlong_sip_values_are_clipped_not_refused(store_url: str) -> None:
    store = Store(store_url)
    await store.init()
    try:
        # A hostile or sloppy peer's From and Call-ID: longer than the columns.
        store.submit(insert_call(models.Call(
            id="long", channel="sip", direction="inbound", from_uri="sip:" + "a" * 2000,
            to_uri="sip:ai@h", from_display="D" * 900, external_id="x" * 5000,
            status="ringing", invite_at=datetime.now(UTC))))
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
        store.submit(insert_call(models.Call(
            id="c1", channel="sip", direction="inbound", from_uri="sip:a@h", to_uri="sip:b@h",
            status="ringing", invite_at=datetime.now(UTC))))
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
    commits = 0

    def count(conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(store.engine, "commit", count)
    now = datetime.now(UTC)

    def row(call_id: str) -> models.Call:
        return models.Call(id=call_id, channel="sip", direction="inbound", from_uri="sip:a@h",
                           to_uri="sip:ai@h", status="ringing", invite_at=now)

    try:
        # The store thread is held by a slow query while the writes queue behind it.
        slow = asyncio.get_running_loop().create_task(store.run(lambda s: time.sleep(0.3)))
        await asyncio.sleep(0.05)
        for i in range(300):
            store.submit(insert_call(row(f"c{i}")))
            store.submit(update_call(f"c{i}", status="in_progress"))
        store.submit(insert_call(row("c7")))  # the same id again: can never be written
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
    assert commits < 602 // 2, commits
    assert "a database write failed and is dropped" in caplog.text
