"""The asyncio helpers: the background loop that must stop when asked (issue 16.18: it
could hang SIGTERM forever), and waiting for many things under one deadline."""

from __future__ import annotations

import asyncio

from atende.aio import WakeableLoop, all_before


async def test_close_returns_even_right_after_a_wake() -> None:
    """Python 3.11's wait_for drops a cancel that arrives as the awaited event is set: the
    loop's close() used to wait forever after wake()."""
    for yields in range(8):  # the wake-up is some loop iterations along when close comes
        rounds = 0

        async def work() -> float | None:
            nonlocal rounds
            rounds += 1
            return 60.0  # sleep a minute unless woken

        loop = WakeableLoop(work)
        loop.start()
        await asyncio.sleep(0.01)
        loop.wake()
        for _ in range(yields):
            await asyncio.sleep(0)
        await asyncio.wait_for(loop.close(), 1)
        assert rounds >= 1


async def test_a_round_that_sleeps_a_while_is_woken_early() -> None:
    woken = asyncio.Event()
    rounds = 0

    async def work() -> float | None:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            woken.set()
        return 60.0

    loop = WakeableLoop(work)
    loop.start()
    await asyncio.sleep(0.01)
    loop.wake()
    await asyncio.wait_for(woken.wait(), 1)
    await loop.close()


async def test_all_before_waits_side_by_side_and_gives_up_at_the_deadline() -> None:
    done: list[str] = []
    forever = asyncio.Event()

    async def quick(name: str) -> None:
        await asyncio.sleep(0.05)
        done.append(name)

    async def never() -> None:
        await forever.wait()

    loop = asyncio.get_running_loop()
    start = loop.time()
    late = await all_before([quick("a"), never(), quick("b"), never()], start + 0.3)
    elapsed = loop.time() - start
    assert late == 2 and sorted(done) == ["a", "b"]
    assert 0.29 <= elapsed < 0.6  # the two quick ones in parallel, the rest cut off
    assert await all_before([], start) == 0
