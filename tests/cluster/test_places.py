"""A trunk's (and an assistant's) max_concurrent_calls counted over two nodes in a real
Redis: one node may use places the other does not (more than its part), never more
than the limit in all;
a place given back is free for the other node; a dead node's places lapse within its
lease; with Redis stopped each node keeps to its part and says so, and once Redis is
back the places held meanwhile are counted again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from atende.agent.profile import AssistantProfile
from atende.calls.live import LiveCall, LiveCalls
from atende.channels.leg import CallInfo
from atende.cluster.places import Places, key_of
from tests.peers.redis import Redis
from tests.telephony.test_toll_fraud import PT_EXTENSION

TRUNK = replace(PT_EXTENSION, max_concurrent_calls=3)
LEASE_S = 0.6
ASSISTANT = AssistantProfile(id="a1", name="Reception", rules={})


class Node:
    """One node's registry; its part of the limit when the nodes cannot count together
    is what Membership.share gives with two nodes alive (2 and 1 of 3)."""

    def __init__(self, url: str, part: int) -> None:
        self.places = Places(url, LEASE_S, lambda: self.live.held())
        self.live = LiveCalls(100, lambda limit: part, self.places)
        self.n = 0

    async def call(self, assistant: AssistantProfile = ASSISTANT
                   ) -> tuple[str, tuple[str, str] | None]:
        self.n += 1
        info = CallInfo(id=f"{id(self)}-{self.n}", channel="sip", direction="inbound",
                        from_uri="sip:a@h", to_uri="sip:b@h", extra={"trunk_id": TRUNK.id})
        return info.id, await self.live.take(LiveCall(assistant, info), TRUNK)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.02)


async def test_the_limit_holds_over_both_nodes(redis_server: Redis) -> None:
    a, b = Node(redis_server.url, 2), Node(redis_server.url, 1)
    for n in (a, b):
        n.places.start()
    try:
        # a takes all three places: more than its part, as b uses none.
        taken = [await a.call() for _ in range(3)]
        assert [problem for _, problem in taken] == [None, None, None]
        assert sorted(a.live.held()[f"trunk:{TRUNK.id}"]) == sorted(c for c, _ in taken)
        refused = (await b.call())[1]
        assert refused is not None and refused[0] == "trunk_busy"
        assert "over all atende nodes" in refused[1]
        assert (await a.call())[1] is not None  # a's own fourth, too
        assert len(a.live) == 3 and len(b.live) == 0

        # A call on a ends: b may take its place (once a's give-back reached Redis).
        a.live.release(taken[0][0])

        async def b_gets_one() -> bool:
            return (await b.call())[1] is None
        await until(b_gets_one)
        assert len(b.live) == 1

        # a dies (no more keeping, nothing given back): its two places lapse.
        assert a.places._task is not None
        a.places._task.cancel()
        await until(b_gets_one, timeout=LEASE_S * 10)
        await until(b_gets_one, timeout=LEASE_S * 10)
        assert len(b.live) == 3
        assert (await b.call())[1] is not None  # and never a fourth
    finally:
        for n in (a, b):
            await n.places.close()


async def test_without_redis_each_node_keeps_to_its_part(redis_server: Redis) -> None:
    a, b = Node(redis_server.url, 2), Node(redis_server.url, 1)
    for n in (a, b):
        n.places.start()
    try:
        first, problem = await b.call()
        assert problem is None
        redis_server.stop()
        # b holds one call, its part: the next is refused here, whatever a does.
        refused = (await b.call())[1]
        assert refused is not None and "its part of 3" in refused[1]
        assert not b.places.counting
        name, shown, fails = b.places.health()
        assert name == "call_limits" and "each node keeps to its part" in str(shown)
        assert fails is None
        assert [(await a.call())[1] for _ in range(3)][:2] == [None, None]
        assert len(a.live) == 2

        # Redis is back, empty: the places held meanwhile are counted again (the
        # keep-alive puts them back), so the three held leave no room.
        redis_server.start()
        for n in (a, b):
            await n.places.keep()
            assert n.places.counting
        client = a.places._client
        assert await client.zcard(key_of(f"trunk:{TRUNK.id}")) == 3
        assert (await a.call())[1] is not None
        b.live.release(first)

        async def a_gets_one() -> bool:
            return (await a.call())[1] is None
        await until(a_gets_one)
        assert len(a.live) == 3 and len(b.live) == 0
    finally:
        for n in (a, b):
            await n.places.close()


async def test_an_assistants_limit_holds_over_both_nodes(redis_server: Redis) -> None:
    """An assistant of two calls at once: the second node is refused once the first has
    both, and the trunk's place it took meanwhile is given back (all or none)."""
    busy = replace(ASSISTANT, id="a2", name="Sales", max_calls=2)
    a, b = Node(redis_server.url, 1), Node(redis_server.url, 1)
    for n in (a, b):
        n.places.start()
    try:
        assert [(await a.call(busy))[1] for _ in range(2)] == [None, None]
        refused = (await b.call(busy))[1]
        assert refused == ("assistant_busy", "assistant 'Sales' is at its "
                           "max_concurrent_calls (2, over all atende nodes)")
        client = a.places._client
        trunk = key_of(f"trunk:{TRUNK.id}")

        async def trunk_places() -> bool:
            return int(await client.zcard(trunk)) == 2
        await until(trunk_places)  # b's place on the trunk was given back
        assert (await b.call())[1] is None  # another assistant's call is not held back
        assert b.live.held() == {f"trunk:{TRUNK.id}": [f"{id(b)}-2"]}
    finally:
        for n in (a, b):
            await n.places.close()


async def test_one_node_alone_counts_an_assistants_calls() -> None:
    live = LiveCalls(100)
    busy = replace(ASSISTANT, max_calls=1)
    first = CallInfo(id="c1", channel="sip", direction="inbound", from_uri="sip:a@h",
                     to_uri="sip:b@h")
    second = replace(first, id="c2")
    assert await live.take(LiveCall(busy, first), None) is None
    assert await live.take(LiveCall(busy, second), None) == (
        "assistant_busy", "assistant 'Reception' is at its max_concurrent_calls (1)")
    other = replace(ASSISTANT, id="a3", name="Other")  # no limit of its own
    assert await live.take(LiveCall(other, second), None) is None
    live.release("c1")
    assert await live.take(LiveCall(busy, replace(first, id="c3")), None) is None


async def test_a_call_that_ends_while_its_place_is_taken_gives_it_back(
        redis_server: Redis) -> None:
    a = Node(redis_server.url, 3)
    a.places.start()
    try:
        info = CallInfo(id="gone", channel="sip", direction="inbound", from_uri="sip:a@h",
                        to_uri="sip:b@h", extra={"trunk_id": TRUNK.id})
        taking = asyncio.ensure_future(a.live.take(LiveCall(ASSISTANT, info), TRUNK))
        await asyncio.sleep(0)  # it holds its place here and asks Redis
        assert "gone" in a.live
        a.live.release("gone")  # its caller hung up meanwhile
        assert await taking is None
        assert a.live.held() == {}  # not kept alive for ever

        async def none_left() -> bool:
            return int(await a.places._client.zcard(key_of(f"trunk:{TRUNK.id}"))) == 0
        await until(none_left)
    finally:
        await a.places.close()


@pytest.mark.timeout(60)  # (it hung, before)
async def test_a_node_stops_whenever_it_is_stopped(redis_server: Redis) -> None:
    """Stopping the keep-alive at any point of its Redis commands ends it. On Python 3.11 a
    cancellation that lands as a command completes was lost inside redis-py (its
    ``asyncio.wait_for`` returned the result): the task went on keeping, and a clean stop
    waited for it for ever (the hang this found: about one run in ten of the test above)."""
    held = {f"trunk:{TRUNK.id}": ["c1", "c2"]}
    for turns in range(150):
        places = Places(redis_server.url, 0.003, lambda: held)  # renews every 1 ms
        places.start()
        for _ in range(turns % 30):
            await asyncio.sleep(0)
        await asyncio.sleep(0.0005 * (turns // 30))
        async with asyncio.timeout(5):
            await places.close()
