"""Two nodes' links through a real Redis server: a failure on one counts on the other
(five, and both block the address), an event of one node's call reaches the other's
watchers once, nothing comes back to its sender; with Redis stopped each goes on alone
and says so, and they share again once it is back. One node asks another to act and
gets its answer, or a clear failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from atende.calls.events import EventBus
from atende.cluster.shared import Shared, Unreachable, unreachable
from atende.store import models
from atende.store.db import Store
from atende.telephony.abuse import AbuseGuard
from tests.peers.redis import Redis


class Node:
    def __init__(self, url: str, name: str) -> None:
        self.guard = AbuseGuard(max_failures=5, rate_per_s=1, burst=20, count_spent=True)
        self.events = EventBus()
        self.shared = Shared(url, name, self.guard, self.events, time.monotonic)


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def pair(redis_server: Redis) -> AsyncIterator[tuple[Node, Node]]:
    """Nodes a and b, linked through Redis."""
    a, b = Node(redis_server.url, "a"), Node(redis_server.url, "b")
    for n in (a, b):
        n.shared.start()
    try:
        await until(lambda: a.shared.problem is None and b.shared.problem is None)
        yield a, b
    finally:
        for n in (a, b):
            await n.shared.close()


async def test_failures_and_events_are_shared(redis_server: Redis,
                                              pair: tuple[Node, Node]) -> None:
    a, b = pair
    assert a.shared.health() == ("redis", "ok", None)
    # Three failures on a, two on b: five in all, and both block the address.
    for _ in range(3):
        a.guard.failure("203.0.113.7", time.monotonic(), "bad digest", user="100")
    for _ in range(2):
        b.guard.failure("203.0.113.7", time.monotonic(), "bad digest", user="100")
    await until(lambda: a.shared.received == 2 and b.shared.received == 3)
    for n in (a, b):
        assert n.guard.is_blocked("203.0.113.7", time.monotonic())
    # A trunk's address is counted on both but blocked on neither.
    for _ in range(5):
        a.guard.failure("198.51.100.1", time.monotonic(), "bad digest", protected=True)
    await until(lambda: b.shared.received == 8)
    assert not b.guard.is_blocked("198.51.100.1", time.monotonic())

    a.events.publish("call-1", "call.answered", {"from": "sip:x@y"}, 1000.0)
    await until(lambda: b.shared.received == 9)
    (event,) = b.events.backlog_after(f"{b.events.epoch}-0", "call-1")[0]
    assert (event.kind, event.data, event.at) == ("call.answered", {"from": "sip:x@y"},
                                                   1000.0)
    await asyncio.sleep(0.2)  # a echo of its own would have come back by now
    assert a.shared.received == 2

    # Redis stops: each goes on alone and says so; it comes back, they share again.
    redis_server.stop()
    await until(lambda: a.shared.problem is not None and b.shared.problem is not None)
    name, shown, trouble = a.shared.health()
    assert name == "redis" and "this node's own" in str(shown) and trouble is None
    a.guard.failure("192.0.2.1", time.monotonic(), "not allowed")  # not sent later
    redis_server.start()
    await until(lambda: a.shared.problem is None and b.shared.problem is None, 30)
    b.events.publish("call-2", "call.finished", {"status": "completed"})
    await until(lambda: a.shared.received == 3)
    assert b.shared.received == 9  # the failure made while Redis was down stayed


def test_messages_not_understood_are_dropped() -> None:
    n = Node("redis://127.0.0.1:9/0", "a")
    for raw in (b"not json", b"[1]", b'{"node":"b","t":"failure"}',
                b'{"node":"b","t":"what"}', b'{"node":"a","t":"event","kind":"x","at":1}',
                b'{"node":"b","t":"spent","by":{"192.0.2.1":"x"}}'):
        n.shared.receive(raw)
    assert n.shared.received == 0
    assert not n.events.backlog_after(f"{n.events.epoch}-0", None)[0]


async def test_a_node_asks_another(redis_server: Redis, pair: tuple[Node, Node]) -> None:
    a, b = pair
    done: list[str] = []

    async def cancel(args: dict[str, object]) -> dict[str, object]:
        done.append(str(args["call_id"]))
        return {"doing": "in_progress"}

    async def broken(args: dict[str, object]) -> dict[str, object]:
        raise RuntimeError("the leg is gone")

    b.shared.serve("cancel", cancel)
    b.shared.serve("broken", broken)
    assert await a.shared.ask("b", "cancel", {"call_id": "c1"}, 5) == {
        "doing": "in_progress"}
    assert done == ["c1"]
    assert await a.shared.ask("b", "broken", {}, 5) == {"error": "the leg is gone"}
    assert await a.shared.ask("b", "unknown", {}, 5) == {
        "error": "this node does not do 'unknown'"}
    with pytest.raises(Unreachable, match="node c did not answer within 1 s"):
        await a.shared.ask("c", "cancel", {"call_id": "c2"}, 1)
    redis_server.stop()
    await until(lambda: a.shared.problem is not None)
    with pytest.raises(Unreachable, match="Redis is unreachable"):
        await a.shared.ask("b", "cancel", {"call_id": "c3"}, 5)
    assert done == ["c1"]


async def test_settings_changed_on_one_node_are_re_read_by_the_other(
        pair: tuple[Node, Node], store: Store) -> None:
    """A commit that touches assistants or trunks (and only such a commit) is told, once
    committed, to the other node, which drops what it read of them."""
    a, b = pair
    told: list[frozenset[str]] = []
    b.shared.on_changed(told.append)
    loop = asyncio.get_running_loop()
    store.changes.on_commit(lambda kinds: loop.call_soon_threadsafe(a.shared.changed, kinds))
    await store.run(lambda s: s.execute(update(models.Assistant).values(greeting="Hi")))
    await until(lambda: len(told) == 1)
    assert told == [frozenset({"assistants"})]

    def failing(s: Session) -> None:
        s.execute(update(models.Trunk).values(name="x"))
        raise RuntimeError("rolled back")
    with pytest.raises(RuntimeError):
        await store.run(failing)  # nothing committed: nothing told
    await store.run(lambda s: s.add(models.ApiKey(
        id="k1", name="ops", prefix="k", key_hash="h", created_at=datetime.now(UTC))))
    await store.run(lambda s: s.execute(delete(models.Trunk)))
    await until(lambda: len(told) == 2)
    assert told[1] == frozenset({"trunks"})


async def test_what_one_node_lets_through_counts_on_the_other(
        pair: tuple[Node, Node]) -> None:
    a, b = pair
    now = time.monotonic()
    assert all(b.guard.allow("203.0.113.20", now) for _ in range(20))  # b's burst
    await until(lambda: a.shared.received == 1)
    # a has let nothing through from it, but its bucket is spent as well.
    assert not a.guard.allow("203.0.113.20", time.monotonic())
    assert a.guard.allow("203.0.113.21", now)


async def test_what_cannot_be_sent_or_applied_leaves_the_link_up(
        pair: tuple[Node, Node]) -> None:
    """An event that is not JSON is not sent (and its publisher is not hurt); a listener
    that fails on a message does not stop the messages after it."""
    a, b = pair

    def broken(kinds: frozenset[str]) -> None:
        raise RuntimeError("a bug in a listener")
    b.shared.on_changed(broken)
    a.events.publish("call-1", "call.answered", {"at": datetime.now(UTC)}, 1.0)
    a.shared.changed(frozenset({"trunks"}))
    a.events.publish("call-2", "call.answered", {"from": "sip:x@y"}, 2.0)
    await until(lambda: bool(b.events.backlog_after(f"{b.events.epoch}-0", "call-2")[0]))
    assert not b.events.backlog_after(f"{b.events.epoch}-0", "call-1")[0]
    assert b.shared.problem is None and b.shared.received == 1


def test_a_failure_is_told_in_a_few_words() -> None:
    assert unreachable(ConnectionError("refused\nmore")) == "unreachable (refused)"
    assert unreachable(TimeoutError()) == "unreachable (TimeoutError)"  # no message


async def test_a_burst_of_events_reaches_the_other_node_whole_and_in_order(
        pair: tuple[Node, Node]) -> None:
    """Events are published many to a round trip: a burst larger than one batch all
    arrives, in the order it was made."""
    a, b = pair
    for i in range(500):
        a.events.publish("call-burst", "call.turn", {"n": i}, 1000.0 + i)
    await until(lambda: b.shared.received == 500)
    events = b.events.backlog_after(f"{b.events.epoch}-0", "call-burst")[0]
    assert [e.data["n"] for e in events] == list(range(500))
    assert not a.shared._out
