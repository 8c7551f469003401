"""One clock for all the calls on an event loop: every call's outgoing packet for a slot
is made in the same wake-up, so the work can be done for all of them at once.

A task per call sleeping 20 ms costs a timer, a future and a task step per packet, and
leaves nothing to batch: at a few hundred calls that overhead, and numpy's per-call
overhead on 20 ms frames, is most of the media plane's CPU. Here each call's slots stay
on its own ptime grid, but the grid is put on the pacer's 10 ms ticks (ptimes of 10, 20,
30, 40, 60 ms fall exactly on them), and one timer fires per tick for everything due.

Members can also ask for the next tick (``wake``: what arrived since, to be handled
together). The pacer knows nothing of RTP: it hands the members due in a tick, each
with the time its slot was for, and those woken, to the ``send`` function it was made
with."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

TICK_S = 0.01
# The loop's timers fire up to 1 ms late (epoll waits whole milliseconds, rounded up),
# so a tick's timer is set half that early: packets then leave within ±0.5 ms of their
# slot instead of 0 to 1 ms after it.
EARLY_S = 0.0005
# A member this far behind its grid (the loop stalled) restarts its grid instead of
# sending the missed slots in a burst.
STALL_S = 0.1


class Paced(Protocol):
    """What the pacer needs of a member: how far apart its slots are."""

    @property
    def ptime_s(self) -> float:
        """How far apart this member's slots are (read at every slot: it may change)."""
        ...


M = TypeVar("M", bound=Paced)


def tick_of(t: float) -> int:
    """The first tick at or after ``t`` (a hair of float error does not push a slot that
    is exactly on a tick to the next one)."""
    return math.ceil(t / TICK_S - 1e-6)


class MediaPacer(Generic[M]):
    """Members are sent for on their own grid of slots, grouped by tick."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 send: Callable[[list[tuple[M, float]], list[M], float], None]) -> None:
        self._loop = loop
        self._send = send
        self._slots: dict[M, float] = {}  # each member's next slot
        # tick → (member, slot) for the slots in it; an entry whose slot is no longer
        # its member's next one is stale (the member was removed) and is skipped.
        self._ticks: dict[int, list[tuple[M, float]]] = {}
        self._woken: dict[M, None] = {}  # in the order they asked
        self._timer: asyncio.TimerHandle | None = None
        self._timer_tick: int | None = None
        self._firing = False  # members added meanwhile are armed for after the tick

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, member: M, first_slot: float) -> None:
        """Start pacing ``member``; its first slot is at ``first_slot`` (loop time)."""
        self._put(member, first_slot)

    def wake(self, member: M) -> None:
        """Hand ``member`` to the next tick even if no slot of its is due."""
        if member in self._woken:
            return  # the next tick is armed for it already
        self._woken[member] = None
        if self._firing:
            return
        now = self._loop.time()
        if self._timer_tick is not None and self._timer_tick * TICK_S < now + TICK_S:
            return  # the timer is for the next tick at the latest (the usual, quickly)
        tick = tick_of(now)
        if self._timer_tick is None or tick < self._timer_tick:
            self._arm(tick)

    def remove(self, member: M) -> None:
        """Stop pacing it (its entries still in a tick are skipped there)."""
        self._slots.pop(member, None)
        self._woken.pop(member, None)
        if not self._slots and self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_tick = None
            self._ticks.clear()

    def _put(self, member: M, slot: float) -> None:
        self._slots[member] = slot
        tick = tick_of(slot)
        self._ticks.setdefault(tick, []).append((member, slot))
        if not self._firing and (self._timer_tick is None or tick < self._timer_tick):
            self._arm(tick)

    def _arm(self, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_tick = tick
        self._timer = self._loop.call_at(tick * TICK_S - EARLY_S, self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_tick = None
        now = self._loop.time()
        due: list[tuple[M, float]] = []
        last = math.floor((now + EARLY_S) / TICK_S + 1e-6)
        slots = self._slots
        for tick in sorted(t for t in self._ticks if t <= last):
            due += [entry for entry in self._ticks.pop(tick) if slots.get(entry[0]) == entry[1]]
        woken = list(self._woken)
        self._woken.clear()
        self._firing = True
        try:
            self._send(due, woken, now)
        except Exception:
            log.exception("sending a media tick failed")
        finally:
            self._firing = False
        ticks = self._ticks
        for member, slot in due:
            if member not in slots:
                continue  # removed while its slot was being sent
            following = slot + member.ptime_s
            if now - following > STALL_S:
                following = now + member.ptime_s
            slots[member] = following
            entry = (member, following)
            if (bucket := ticks.get(tick := tick_of(following))) is None:
                ticks[tick] = [entry]
            else:
                bucket.append(entry)
        if self._woken:  # woken while this tick ran: the next tick is theirs
            self._ticks.setdefault(last + 1, [])
        if self._ticks:
            self._arm(min(self._ticks))
