"""asyncio helpers shared across the package."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any


class BackgroundTasks:
    """Fire-and-forget tasks that are not garbage-collected mid-flight (asyncio keeps only
    weak references) and can be cancelled together."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait(self) -> None:
        """Until every task spawned so far has finished."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def running(self) -> list[asyncio.Task[Any]]:
        """The tasks not finished yet."""
        return [task for task in self._tasks if not task.done()]

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks)


class WakeableLoop:
    """A background loop that does a round of ``work``, then sleeps until it is woken or
    for as long as the round said (None: until woken; 0: go on at once). The webhook
    outbox and the call queue run on it."""

    def __init__(self, work: Callable[[], Awaitable[float | None]]) -> None:
        self._work = work
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        # The flag ends the loop even if the cancel is lost: Python 3.11's wait_for drops
        # a cancel that comes as the awaited thing completes (a wake() just before).
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()  # before the round: a wake-up during it is not lost
            timeout = await self._work()
            if timeout == 0 or self._closing:
                continue
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([woken], timeout=timeout)
            finally:
                woken.cancel()


async def all_before(awaitables: Iterable[Awaitable[Any]], deadline: float) -> int:
    """Run ``awaitables`` side by side until the event loop's clock reaches ``deadline``;
    those still running then are cancelled. Returns how many did not finish in time."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    if not tasks:
        return 0
    left = max(0.0, deadline - asyncio.get_running_loop().time())
    _, late = await asyncio.wait(tasks, timeout=left)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(late)


def seconds_until(at: datetime, at_least: float = 0.05) -> float:
    return max(at_least, (at - datetime.now(UTC)).total_seconds())
