"""The live event bus: order, filtering, resuming with Last-Event-ID, slow clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from atende.calls.events import EventBus, LiveEvent


async def take(stream: AsyncIterator[LiveEvent], n: int) -> list[LiveEvent]:
    return [await asyncio.wait_for(anext(stream), 1) for _ in range(n)]


async def test_subscribers_get_what_happens_after_they_came_in_order() -> None:
    bus = EventBus()
    bus.publish("a", "call.queued")  # before anyone listened: not sent
    everything = bus.subscribe()
    only_b = bus.subscribe(call_id="b")
    first = asyncio.ensure_future(take(everything, 3))
    second = asyncio.ensure_future(take(only_b, 1))
    await asyncio.sleep(0)  # both generators are now waiting
    bus.publish("a", "call.dialing", {"attempt": 1})
    bus.publish("b", "call.dialing", {"attempt": 1})
    bus.publish("a", "call.finished", {"status": "no_answer"})
    got = await first
    assert [(e.call_id, e.kind) for e in got] == [("a", "call.dialing"), ("b", "call.dialing"),
                                                  ("a", "call.finished")]
    assert [e.seq for e in got] == [2, 3, 4] and got[0].id == f"{bus.epoch}-2"
    assert got[2].payload()["status"] == "no_answer" and got[2].payload()["call_id"] == "a"
    assert [e.call_id for e in await second] == ["b"]


async def test_a_client_that_reconnects_gets_what_it_missed_once() -> None:
    bus = EventBus()
    events = [bus.publish("a", f"call.e{n}") for n in range(5)]
    stream = bus.subscribe(last_event_id=events[1].id)
    missed = await take(stream, 3)
    assert [e.kind for e in missed] == ["call.e2", "call.e3", "call.e4"]
    bus.publish("a", "call.e5")
    (live,) = await take(stream, 1)
    assert live.kind == "call.e5"  # and nothing repeated before it


async def test_a_gap_that_cannot_be_filled_is_said() -> None:
    bus = EventBus(backlog=3)
    first = bus.publish("a", "call.e0")
    for n in range(1, 6):
        bus.publish("a", f"call.e{n}")
    (reset, *rest) = await take(bus.subscribe(last_event_id=first.id), 4)
    assert reset.kind == "stream.reset" and "missed" in reset.data["reason"]
    assert [e.kind for e in rest] == ["call.e3", "call.e4", "call.e5"]
    other = EventBus()  # as after a restart: another epoch
    (restarted,) = await take(other.subscribe(last_event_id=first.id), 1)
    assert restarted.kind == "stream.reset" and "restarted" in restarted.data["reason"]


async def test_a_slow_client_is_dropped_not_waited_for() -> None:
    bus = EventBus()
    stream = bus.subscribe()
    pending = asyncio.ensure_future(take(stream, 1))
    await asyncio.sleep(0)
    bus.publish("a", "call.e0")
    (got,) = await pending
    for n in range(1, 1200):  # more than a client may fall behind
        bus.publish("a", f"call.e{n}")
    seen = [event async for event in stream]
    assert len(seen) == 1001 and seen[-1].kind == "stream.lagged"
    assert [e.kind for e in seen[:-1]] == [f"call.e{n}" for n in range(1, 1001)]  # none lost
    assert seen[-1].id == seen[-2].id  # reconnecting with it resumes after the last one
    caught_up = await take(bus.subscribe(last_event_id=seen[-1].id), 3)
    assert [e.kind for e in caught_up] == ["call.e1001", "call.e1002", "call.e1003"]
    assert got.kind == "call.e0"


async def test_closing_ends_every_stream() -> None:
    bus = EventBus()
    stream = bus.subscribe()
    pending = asyncio.ensure_future(take(stream, 1))
    await asyncio.sleep(0)
    bus.close()
    try:
        await pending
        raise AssertionError("the stream went on")
    except StopAsyncIteration:
        pass
