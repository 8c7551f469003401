"""The media pacer: every call's slots stay on its own ptime grid, all the calls due
are handed over in one wake-up per tick, a woken call gets the next tick, a removed
one is never handed over again, and a stall restarts the grid instead of bursting.

The pacer is driven by a hand-cranked clock standing in for the event loop's timer
(the loop's ``time`` and ``call_at``), so every slot time is exact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from atende.media.pacer import EARLY_S, TICK_S, MediaPacer


@dataclass(eq=False)
class Member:
    name: str
    ptime_s: float = 0.02


class Handle:
    def __init__(self, when: float, cb: Callable[[], None]) -> None:
        self.when, self.cb, self.cancelled = when, cb, False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Clock:
    now: float = 100.0
    timers: list[Handle] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, cb: Callable[[], None]) -> Handle:
        h = Handle(when, cb)
        self.timers.append(h)
        return h

    def run_until(self, t: float) -> int:
        """Fire the timers due by ``t`` in order; how many fired."""
        fired = 0
        while True:
            live = [h for h in self.timers if not h.cancelled and h.when <= t + 1e-9]
            if not live:
                self.now = t
                return fired
            h = min(live, key=lambda h: h.when)
            self.timers.remove(h)
            self.now = max(self.now, h.when)
            h.cb()
            fired += 1


@dataclass
class Ticks:
    calls: list[tuple[float, list[tuple[str, float]], list[str]]] = field(default_factory=list)

    def __call__(self, due: list[tuple[Member, float]], woken: list[Member], now: float
                 ) -> None:
        self.calls.append((now, [(m.name, s) for m, s in due], [m.name for m in woken]))

    def slots(self, name: str) -> list[float]:
        return [s for _, due, _ in self.calls for n, s in due if n == name]


def make() -> tuple[Clock, Ticks, MediaPacer[Member]]:
    clock, ticks = Clock(), Ticks()
    return clock, ticks, MediaPacer(clock, ticks)  # type: ignore[arg-type]


def test_each_member_keeps_its_own_grid_and_all_share_the_wake_ups() -> None:
    clock, ticks, pacer = make()
    members = [Member(f"m{i}") for i in range(50)]
    for i, m in enumerate(members):
        pacer.add(m, 100.0 + (i % 2) * 0.01)  # two phases of the 20 ms grid
    slow = Member("slow", 0.03)
    pacer.add(slow, 100.0)
    wakeups = clock.run_until(101.0)
    assert ticks.slots("m0") == pytest.approx([100.0 + 0.02 * k for k in range(51)])
    assert ticks.slots("m1") == pytest.approx([100.01 + 0.02 * k for k in range(50)])
    assert ticks.slots("slow") == pytest.approx([100.0 + 0.03 * k for k in range(34)])
    # One wake-up per 10 ms tick for all 51 members, not one per member and slot.
    assert wakeups <= 101
    assert sum(len(due) for _, due, _ in ticks.calls) == 25 * 51 + 25 * 50 + 34


def test_a_removed_member_is_never_handed_over_again() -> None:
    clock, ticks, pacer = make()
    a, b = Member("a"), Member("b")
    pacer.add(a, 100.0)
    pacer.add(b, 100.0)
    clock.run_until(100.05)
    pacer.remove(a)
    clock.run_until(100.2)
    assert ticks.slots("a") == pytest.approx([100.0, 100.02, 100.04])
    assert len(ticks.slots("b")) == 11
    pacer.remove(b)
    assert len(pacer) == 0
    before = len(ticks.calls)
    assert clock.run_until(101.0) == 0  # nothing left: no timer keeps firing
    assert len(ticks.calls) == before


def test_a_woken_member_gets_the_next_tick() -> None:
    clock, ticks, pacer = make()
    a, b = Member("a", 0.06), Member("b", 0.06)
    pacer.add(a, 100.0)
    pacer.add(b, 100.0)
    clock.run_until(100.013)
    pacer.wake(b)
    pacer.wake(b)  # twice before the tick: handed over once
    clock.run_until(100.03)
    woken_at = [(now, woken) for now, _, woken in ticks.calls if woken]
    assert woken_at == [(pytest.approx(100.02 - EARLY_S), ["b"])]
    assert ticks.slots("b") == pytest.approx([100.0])  # its slots are not moved


def test_ticks_fire_a_hair_early_for_the_loops_late_timers() -> None:
    clock, ticks, pacer = make()
    pacer.add(Member("a"), 100.0)
    clock.run_until(100.1)
    # Each wake-up is at most EARLY_S before its slot, never after it.
    assert all(0 <= s - now <= EARLY_S + 1e-9 for now, due, _ in ticks.calls for _, s in due)


def test_a_stall_restarts_the_grid_instead_of_bursting() -> None:
    clock, ticks, pacer = make()
    a = Member("a")
    pacer.add(a, 100.0)
    clock.run_until(100.04)
    clock.now = 100.5  # the loop was busy for nearly half a second
    clock.run_until(100.6)
    slots = ticks.slots("a")
    assert slots[:3] == pytest.approx([100.0, 100.02, 100.04])
    # The missed slot goes once (for the time it was due: the frame belongs there),
    # then the grid starts again from now instead of catching up with a burst.
    assert slots[3] == pytest.approx(100.06)
    assert slots[4:] == pytest.approx([100.52 + 0.02 * k for k in range(len(slots) - 4)])


def test_a_member_added_during_a_tick_is_sent_for_on_its_own_slot() -> None:
    clock, ticks, pacer = make()
    late = Member("late")

    def send(due: list[tuple[Member, float]], woken: list[Member], now: float) -> None:
        ticks(due, woken, now)
        if len(ticks.calls) == 1:
            pacer.add(late, 100.005)

    pacer = MediaPacer(clock, send)  # type: ignore[arg-type]
    pacer.add(Member("a"), 100.0)
    clock.run_until(100.1)
    first = next((now, s) for now, due, _ in ticks.calls for n, s in due if n == "late")
    assert first == (pytest.approx(100.0 + TICK_S - EARLY_S), pytest.approx(100.005))
    assert ticks.slots("late")[1] == pytest.approx(100.025)
