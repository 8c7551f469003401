"""An inbound call's end costs the store nothing more than its own writes: the call queue
looks again only when a queued call ends or calls wait for a place, and the webhook
sender only when the call can have a result to send. (Each look is a transaction on the
store's one thread, on the path of every call: at 100 calls/s, two of them per call
were a good part of the store's time.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event

from atende.calls.assistant_rows import profile_of
from atende.calls.automation import CallJob
from atende.calls.events import EventBus
from atende.calls.live import LiveCall, LiveCalls
from atende.calls.queue import CallQueue
from atende.calls.records import CallRecords
from atende.channels.leg import CallInfo
from atende.channels.sip.ua import UserAgent
from atende.store import models
from atende.store.db import Store
from atende.store.secrets import SecretBox
from atende.store.writes import insert_call
from atende.telephony.trunks import TrunkManager
from atende.webhooks.outbox import Deliverer


class NoAttempts:
    """The queue's dialer: no call is queued here, so it is never asked."""

    async def reserve(self, *args: object) -> bool:
        raise AssertionError("nothing is queued")

    def release(self, call_id: str) -> None:
        raise AssertionError("nothing is queued")

    async def attempt(self, *args: object) -> None:
        raise AssertionError("nothing is queued")


class Looks:
    """Counts the statements the store runs on a table, by what they read."""

    def __init__(self, store: Store) -> None:
        self.statements: list[str] = []
        event.listen(store.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.statements.append(statement)

    def at(self, table: str) -> int:
        return sum(f"FROM {table}" in s and s.lstrip().startswith("SELECT")
                   for s in self.statements)

    async def first(self, table: str, store: Store) -> int:
        """Once the loop under test has had its look at start: the count so far."""
        while self.at(table) == 0:
            await asyncio.sleep(0.01)
        await settled(store)
        return self.at(table)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'atende.db'}")
    await s.init(default_rules={})
    yield s
    await s.close()


async def settled(store: Store) -> None:
    """Whatever a wake-up started has reached the store: the loops' tasks have run and
    queued their queries, and a query queued after them has come back."""
    for _ in range(10):
        await asyncio.sleep(0)
    await store.run(lambda s: None)


def inbound(n: int, assistant: models.Assistant, job: CallJob | None = None) -> LiveCall:
    box = SecretBox(Fernet.generate_key())
    info = CallInfo(id=f"c{n}", channel="sip", direction="inbound", from_uri="sip:a@h",
                    to_uri="sip:b@h")
    return LiveCall(profile_of(assistant, box), info, job=job)


async def test_an_inbound_calls_end_does_not_make_the_queue_look(store: Store) -> None:
    [assistant] = (await store.directory()).rows
    live = LiveCalls(10)
    records = CallRecords(store, EventBus())
    queue = CallQueue(store, NoAttempts(), live, records,  # type: ignore[arg-type]
                      TrunkManager(UserAgent(), SecretBox(Fernet.generate_key())))
    looks = Looks(store)
    queue.start()
    try:
        first = await looks.first("calls", store)
        for n in range(5):
            call = inbound(n, assistant)
            assert await live.take(call, None) is None
            live.release(call.info.id)
        await settled(store)
        assert looks.at("calls") == first
        # A queued call's end is different: its retry may now be due.
        call = inbound(9, assistant, CallJob(phone_number="100"))
        assert await live.take(call, None) is None
        live.release(call.info.id)
        await settled(store)
        assert looks.at("calls") > first
    finally:
        await queue.close()


async def test_only_a_call_that_can_have_a_result_makes_the_webhook_sender_look(
        store: Store) -> None:
    deliverer = Deliverer(store, "secret")
    records = CallRecords(store, EventBus(), deliverer)
    looks = Looks(store)
    deliverer.start()
    try:
        first = await looks.first("deliveries", store)
        for n in range(5):
            store.submit(insert_call(
                id=f"c{n}", channel="sip", direction="inbound", from_uri="sip:a@h",
                to_uri="sip:b@h", status="in_progress", invite_at=datetime.now(UTC)))
            records.finish(f"c{n}", delivers=False, status="completed")
        await settled(store)
        assert looks.at("deliveries") == first
        assert (await store.get_call("c4")).status == "completed"  # type: ignore[union-attr]
        records.finish("c0", status="completed")  # one placed for a job would
        await settled(store)
        assert looks.at("deliveries") > first
    finally:
        await deliverer.close()
