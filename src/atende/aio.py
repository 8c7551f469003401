"""asyncio helpers shared across the package."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
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

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the round: a wake-up during it is not lost
            timeout = await self._work()
            if timeout == 0:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass


def seconds_until(at: datetime, at_least: float = 0.05) -> float:
    return max(at_least, (at - datetime.now(UTC)).total_seconds())
