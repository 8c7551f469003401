"""The call writes run as prepared statements on the driver's cursor (store/prepared.py),
on both databases: what they store reads back as SQLAlchemy would have stored it, a bad
write fails as SQLAlchemy's error (so the store drops it alone), and a connection lost
under a write is an outage the store waits out, not a bad write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, exc, insert, text
from sqlalchemy.orm import Session

from atende.store import models
from atende.store.db import Store, unavailable
from atende.store.prepared import Prepared
from atende.store.writes import connection, insert_call, insert_turn, update_call
from tests.peers.postgres import Postgres

T0 = datetime(2026, 3, 1, 9, 0, 30, 123456, tzinfo=UTC)


def new_call(call_id: str, **values: object) -> dict[str, object]:
    return dict(id=call_id, channel="sip", direction="inbound", from_uri="sip:a@h",
                to_uri="sip:ai@h", status="ringing", invite_at=T0, **values)


async def test_what_a_prepared_write_stores_reads_back_as_the_orm_stores_it(
        store_url: str) -> None:
    store = Store(store_url)
    await store.init()
    try:
        store.submit(insert_call(**new_call("c1", meta={"order": 42, "tags": ["é", None]})))
        store.submit(insert_turn("c1", speaker="caller", text="Hi", started_at=T0,
                                 ended_at=T0))
        store.submit(insert_turn("c1", speaker="assistant", text="Hello", started_at=T0,
                                 ended_at=T0, interrupted=True))
        store.submit(update_call("c1", status="in_progress", answer_at=T0,
                                 fields={"date": "Monday"}))
        await store.run(lambda s: s.add(models.Call(**new_call("c2", meta={"order": 42,
                                                                         "tags": ["é", None]}))))
        got = {c: await store.get_call(c) for c in ("c1", "c2")}
        c1, c2 = got["c1"], got["c2"]
        assert c1 is not None and c2 is not None
        assert (c1.meta, c1.invite_at, c1.recorded, c1.attempts) == \
            (c2.meta, c2.invite_at, c2.recorded, c2.attempts)  # defaults, JSON, time
        assert c1.invite_at.replace(tzinfo=UTC) == T0  # to the microsecond
        assert (c1.status, c1.fields, c1.answer_at is not None) == \
            ("in_progress", {"date": "Monday"}, True)
        assert [(t.seq, t.speaker, t.interrupted) for t in c1.turns] == \
            [(0, "caller", False), (1, "assistant", True)]
    finally:
        await store.close()


async def test_a_prepared_write_that_breaks_a_rule_fails_as_sqlalchemys_error_alone(
        store_url: str) -> None:
    store = Store(store_url)
    await store.init()
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *a: statements.append(sql))
    try:
        def twice(s: Session) -> None:
            insert_call(**new_call("dup"))(s)
            insert_call(**new_call("dup"))(s)

        with pytest.raises(exc.IntegrityError):  # not the driver's own
            await store.run(twice)
        assert any(s.startswith("INSERT INTO calls") for s in statements)  # listeners see it
        # In the background, the write that can never be made is dropped; the rest land.
        store.submit(insert_call(**new_call("c1")))
        store.submit(lambda s: s.execute(insert(models.Call).values(**new_call("c1"))))
        store.submit(insert_call(**new_call("c2")))
        assert {c: await store.get_call(c) is not None for c in ("c1", "c2")} == \
            {"c1": True, "c2": True}
    finally:
        await store.close()


async def test_a_connection_lost_under_a_prepared_write_is_an_outage(
        postgres: Postgres) -> None:
    store = Store(postgres.new_database())
    await store.init()
    statement = Prepared(insert(models.Call.__table__))  # type: ignore[arg-type]
    try:
        # On a connection of its own, so that what the statement raises is seen as it is
        # (a session's rollback on the dead connection would raise an error of its own).
        with store.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with store.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(exc.DBAPIError) as raised:
                statement.execute(conn, new_call("c1"))
            assert raised.value.connection_invalidated and unavailable(raised.value)
            assert conn.invalidated  # the pool will not hand it out again
        await store.run(lambda s: statement.execute(connection(s), new_call("c1")))
        assert await store.get_call("c1") is not None  # a new connection took over
    finally:
        await store.close()
