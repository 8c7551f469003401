"""The abuse guard on a fixed clock."""

from __future__ import annotations

from atende.telephony.abuse import AbuseGuard


def test_blocks_after_repeated_failures_within_the_window() -> None:
    g = AbuseGuard(max_failures=3, window_s=60, block_s=600)
    g.failure("203.0.113.5", 0.0, "bad credentials")
    g.failure("203.0.113.5", 10.0, "bad credentials")
    assert not g.is_blocked("203.0.113.5", 10.0)
    g.failure("203.0.113.5", 20.0, "bad credentials")
    assert g.is_blocked("203.0.113.5", 20.0) and g.is_blocked("203.0.113.5", 619.0)
    assert not g.is_blocked("203.0.113.5", 620.5)  # the block expires
    assert not g.is_blocked("198.51.100.1", 20.0)  # others are unaffected
    snap = g.snapshot(100.0)
    assert snap["blocked"] == [{"address": "203.0.113.5", "blocked_for_s": 520,
                                "reason": "bad credentials", "dropped": 2}]


def test_failures_outside_the_window_do_not_add_up() -> None:
    g = AbuseGuard(max_failures=3, window_s=60)
    for t in (0.0, 50.0, 100.0, 150.0):
        g.failure("203.0.113.6", t, "x")
    assert not g.is_blocked("203.0.113.6", 150.0)


def test_rate_limit_with_burst_and_refill() -> None:
    g = AbuseGuard(rate_per_s=2, burst=4)
    assert [g.allow("203.0.113.7", 0.0) for _ in range(6)] == [True] * 4 + [False] * 2
    assert g.allow("203.0.113.7", 0.5)  # one token back after 0.5 s
    assert not g.allow("203.0.113.7", 0.5)
    assert g.rate_limited == 3
    assert g.allow("203.0.113.8", 0.5)  # per address
