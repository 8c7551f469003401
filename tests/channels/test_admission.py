"""The overload control's admission, sans-IO: after shedding, new calls are taken again
at a capped rate that grows, and in a storm this keeps the backlog bounded while most of
what the server can do is still served. A model server stands in for the event loop: each
call costs it a fixed time, each refusal a tenth of that, and a request waits behind the
work queued before it (what the socket's arrival stamps measure)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from atende.channels.sip.overload import CUT, SAMPLE_S, LoadMonitor


def feed(m: LoadMonitor, start: float, seconds: float, per_s: float, lag_s: float) -> int:
    """``per_s`` new calls a second asked for from ``start`` on, a sample every SAMPLE_S
    with the loop ``lag_s`` late; how many were admitted."""
    admitted, t, due, n = 0, start, start + SAMPLE_S, 0
    while t < start + seconds:
        n += 1
        t = start + n / per_s
        while due <= t:
            m.observe(lag_s, due)
            due += SAMPLE_S
        admitted += m.admit(t)
    return admitted


def test_after_shedding_calls_are_taken_at_a_capped_rate_that_grows_then_goes() -> None:
    m = LoadMonitor(threshold_s=0.2)
    assert feed(m, 0.0, 2.0, 400, 0.0) == 800  # under the threshold: every call
    feed(m, 2.0, 1.0, 400, 0.5)  # the loop falls behind
    assert m.shedding and not m.admit(3.0)
    assert m.ceiling_per_s == pytest.approx(400, rel=0.05)
    feed(m, 3.0, 2.0, 400, 0.0)  # caught up, calls offered twice as fast as before
    assert not m.shedding and m.cap_per_s is not None
    took = feed(m, 5.0, 1.0, 800, 0.0)
    assert CUT * 400 * 0.9 < took < 800 * 0.8  # about the cap, growing: not all of them
    later = feed(m, 6.0, 3.0, 800, 0.0)
    assert later / 3 > took * 1.1  # the cap grows while the lag stays low
    feed(m, 9.0, 3.0, 100, 0.0)  # callers ask for much less: the cap goes
    assert m.cap_per_s is None
    assert feed(m, 12.0, 1.0, 900, 0.0) == 900


def test_draining_refuses_everything_and_the_cap_never_admits_above_its_rate() -> None:
    m = LoadMonitor(threshold_s=0.2, cap_per_s=100.0)
    took = sum(m.admit(i / 10_000) for i in range(10_000))  # 10,000 a second for 1 s
    assert 95 <= took <= 106
    m.draining = True
    assert not any(m.admit(1 + i / 100) for i in range(100))


@dataclass
class Run:
    served_per_s: float
    possible_per_s: float  # the most the model server could serve, refusing the rest
    worst_wait_s: float  # after the first second


def storm(offered_per_s: float, seconds: float = 20.0, threshold_s: float = 0.125,
          call_s: float = 1 / 500, refusal_s: float = 1 / 10_000) -> Run:
    m = LoadMonitor(threshold_s=threshold_s)
    backlog = owed = worst = 0.0
    served = 0
    step = 0.001
    due = SAMPLE_S
    for i in range(int(seconds / step)):
        t = i * step
        owed += offered_per_s * step
        while owed >= 1:
            owed -= 1
            if m.admit(t):
                served += 1
                backlog += call_s
            else:
                backlog += refusal_s
        backlog = max(0.0, backlog - step)  # the server works off a step of it
        m.waited(backlog)
        if t >= 1:
            worst = max(worst, backlog)
        if t >= due:
            m.observe(0.0, t)
            due += SAMPLE_S
    # served × call_s + (offered − served) × refusal_s ≤ 1 second of work a second
    possible = min(offered_per_s, (1 - offered_per_s * refusal_s) / (call_s - refusal_s))
    return Run(served / seconds, possible, worst)


@pytest.mark.parametrize("times", [1.25, 2.5, 5.0])
def test_a_storm_keeps_the_wait_bounded_and_most_of_what_can_be_served_served(
        times: float) -> None:
    run = storm(500 * times)
    assert run.served_per_s > 0.85 * run.possible_per_s, run
    assert run.worst_wait_s < 2 * 0.125, run


def test_under_capacity_every_call_is_served() -> None:
    run = storm(300)
    assert run.served_per_s == pytest.approx(300, abs=1)
    assert run.worst_wait_s < 0.01
