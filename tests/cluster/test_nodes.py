"""Nodes on one real database (SQLite and PostgreSQL): a node not heard from for a lease
is taken over by exactly one other, which closes or requeues its live calls once; a node
that comes back can be taken over again when it next dies; a clean stop leaves nothing
to take over; the nodes as the API shows them. Times are given, not read: every step is
exact."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from atende.cluster.nodes import Membership, beat, join, leave, nodes_view, take_over
from atende.store import models
from atende.store.db import Store

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
LEASE = 15.0


def live_call(call_id: str, node_id: str | None, **values: Any) -> models.Call:
    fields: dict[str, Any] = dict(
        id=call_id, channel="sip", direction="outbound", from_uri="sip:ai@pbx",
        to_uri="sip:alice@pbx", status="in_progress", invite_at=T0, answer_at=T0,
        phone_number="alice", attempts=1, max_attempts=1, node_id=node_id,
        webhook_url="http://127.0.0.1:9/hook")
    fields.update(values)
    return models.Call(**fields)


async def add(store: Store, *rows: models.Call) -> None:
    await store.run(lambda s: s.add_all(rows))


async def statuses(store: Store) -> dict[str, str]:
    rows = await store.run(lambda s: s.query(models.Call).all())
    return {r.id: r.status for r in rows}


async def deliveries(store: Store) -> list[str]:
    rows = await store.run(lambda s: s.query(models.Delivery).all())
    return sorted(r.call_id for r in rows)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_a_dead_node_is_taken_over_once(store: Store) -> None:
    for node in ("a", "b", "c"):
        assert await store.run(join(node, f"{node}1", T0)) == {"requeued": 0, "closed": 0}
    await add(store, live_call("on_a", "a"), live_call("on_b", "b"),
              live_call("ringing_on_a", "a", status="dialing", answer_at=None,
                        max_attempts=2, retry_after_s=5))
    # b and c keep beating; a stopped at T0.
    for second in (5, 10, 15):
        for node in ("b", "c"):
            assert await store.run(beat(node, f"{node}1", at(second))) is None
    assert await store.run(take_over("b", at(15), LEASE)) == []  # not a whole lease yet
    (taken,) = await store.run(take_over("b", at(16), LEASE))
    assert (taken.node_id, taken.requeued, taken.closed) == ("a", 1, 1)
    assert await store.run(take_over("c", at(16), LEASE)) == []  # b did it: once
    assert await store.run(take_over("b", at(17), LEASE)) == []
    got = await statuses(store)
    assert got == {"on_a": "failed", "on_b": "in_progress", "ringing_on_a": "queued"}
    assert await deliveries(store) == ["on_a"]  # one result, for the call that ended
    call = await store.get_call("on_a")
    assert call is not None and call.hangup_cause == "interrupted"
    assert call.summary == "atende node a stopped during the call; it was cut off."
    requeued = await store.get_call("ringing_on_a")
    assert requeued is not None and requeued.node_id is None  # any node may place it

    # a comes back (its own leftovers are gone already), then dies again with a call.
    assert await store.run(join("a", "a2", at(30))) == {"requeued": 0, "closed": 0}
    await add(store, live_call("again_on_a", "a"))
    for node in ("b", "c"):
        await store.run(beat(node, f"{node}1", at(46)))
    (taken,) = await store.run(take_over("c", at(46), LEASE))
    assert (taken.node_id, taken.closed) == ("a", 1)
    assert (await statuses(store))["again_on_a"] == "failed"


async def test_a_restart_closes_its_own_calls_and_those_of_no_node(store: Store) -> None:
    await store.run(join("a", "a1", T0))
    await add(store, live_call("mine", "a"), live_call("old", None),
              live_call("theirs", "b"))
    assert await store.run(join("a", "a2", at(3))) == {"requeued": 0, "closed": 2}
    assert await statuses(store) == {"mine": "failed", "old": "failed",
                                     "theirs": "in_progress"}


async def test_a_clean_stop_leaves_nothing_to_take_over(store: Store) -> None:
    await store.run(join("a", "a1", T0))
    await store.run(join("b", "b1", T0))
    await add(store, live_call("on_b", "b"))
    assert not await store.run(leave("b", at(1)))  # a call of its own is still live
    await store.run(lambda s: setattr(s.get(models.Call, "on_b"), "status", "completed"))
    assert await store.run(leave("b", at(2)))
    await store.run(beat("a", "a1", at(20)))
    assert await store.run(take_over("a", at(20), LEASE)) == []


async def test_a_second_process_under_the_same_name_is_told(store: Store) -> None:
    await store.run(join("a", "first", T0))
    await store.run(join("a", "second", at(1)))  # started by mistake as "a" too
    assert await store.run(beat("a", "first", at(5))) == "second"
    assert await store.run(beat("a", "first", at(10))) is None


async def test_two_nodes_race_to_take_over_and_one_does(store_url: str) -> None:
    """Two survivors on separate connections look at the same moment."""
    stores = [Store(store_url), Store(store_url)]
    for s in stores:
        await s.init()
    try:
        await stores[0].run(join("dead", "d1", T0))
        await add(stores[0], *(live_call(f"c{n}", "dead") for n in range(20)))
        results = await asyncio.gather(*(s.run(take_over(name, at(20), LEASE))
                                         for s, name in zip(stores, ("b", "c"),
                                                            strict=True)))
        assert sorted(len(r) for r in results) == [0, 1]
        assert sum(t.closed for r in results for t in r) == 20
        assert await deliveries(stores[0]) == sorted(f"c{n}" for n in range(20))
    finally:
        for s in stores:
            await s.close()


async def test_membership_waits_a_lease_of_its_own_beats_before_taking_over(
        store: Store) -> None:
    """After a start (or an outage) every node's last beat is old: a node takes none
    over until all have had a lease to say they are alive."""
    wall, clock = [at(100)], [0.0]
    woken: list[str] = []
    await store.run(join("other", "o1", T0))  # last heard from long ago
    await add(store, live_call("on_other", "other"))
    m = Membership(store, "me", LEASE, lambda: wall[0], lambda: clock[0])
    m.on_taken_over(lambda: woken.append("queue"))
    await m.join()
    assert await m.round() == LEASE / 3
    assert (await statuses(store))["on_other"] == "in_progress" and woken == []
    wall[0], clock[0] = at(115), LEASE
    await m.round()
    assert (await statuses(store))["on_other"] == "failed" and woken == ["queue"]
    await m.leave()
    assert await store.run(take_over("other", at(200), LEASE)) == []


async def test_a_shared_limit_is_split_among_the_nodes_alive(store: Store) -> None:
    wall = [T0]
    nodes = {name: Membership(store, name, LEASE, lambda: wall[0]) for name in "abc"}
    await nodes["a"].join()
    assert nodes["a"].share(10) == 10  # alone: all of it
    await nodes["b"].join()
    await nodes["c"].join()
    for n in "ab":  # each sees the others at its next round
        await nodes[n].round()
    for limit in (0, 1, 2, 3, 10, 11):
        parts = [nodes[n].share(limit) for n in "abc"]
        assert sum(parts) == limit and max(parts) - min(parts) <= 1, (limit, parts)
    assert [nodes[n].share(2) for n in "abc"] == [1, 1, 0]
    # c stops cleanly: a and b split it between them.
    await nodes["c"].leave()
    await nodes["a"].round()
    await nodes["b"].round()
    assert (nodes["a"].share(3), nodes["b"].share(3)) == (2, 1)


async def test_the_nodes_as_the_api_shows_them(store: Store) -> None:
    for node in ("alive", "dead", "taken", "gone"):
        await store.run(join(node, node + "1", T0))
    await add(store, live_call("c1", "alive"), live_call("c2", "alive"),
              live_call("c3", "dead"), live_call("over", "alive", status="completed"))
    await store.run(leave("gone", at(1)))
    for second in (10, 20):
        await store.run(beat("alive", "alive1", at(second)))
    await store.run(beat("dead", "dead1", at(4)))
    await store.run(lambda s: s.execute(update(models.Node).where(models.Node.id == "taken")
                                        .values(taken_over_at=at(18), taken_over_by="alive")))
    views = {v.id: v for v in await store.run(nodes_view(at(20), LEASE))}
    assert {k: v.state for k, v in views.items()} == {
        "alive": "alive", "dead": "dead", "taken": "taken_over", "gone": "gone"}
    assert (views["alive"].live_calls, views["dead"].live_calls) == (2, 1)
    assert views["taken"].taken_over_by == "alive" and views["gone"].taken_over_by is None
    assert views["alive"].seen_at == at(20) and views["alive"].registers == []
