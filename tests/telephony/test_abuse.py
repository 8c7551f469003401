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


def test_a_trunks_own_address_is_counted_but_never_blocked() -> None:
    """Issue 16.6: five INVITEs from the PBX for an unknown user blocked the PBX itself."""
    g = AbuseGuard(max_failures=5, window_s=60, block_s=600)
    for i in range(20):
        g.failure("10.0.0.2", float(i), "no such user", protected=True)
    assert not g.is_blocked("10.0.0.2", 21.0)
    report = g.snapshot(21.0)
    assert report["blocked"] == []
    assert report["watched"] == [{"address": "10.0.0.2", "recent_failures": 20}]


def test_one_username_guessed_from_many_addresses_is_locked() -> None:
    """160 wrong digests from 40 addresses blocked nobody: four each, under the limit."""
    g = AbuseGuard(max_failures=5, window_s=60, block_s=600, max_user_failures=10)
    now = 0.0
    for i in range(40):
        for _ in range(4):
            now += 0.1
            g.failure(f"198.51.100.{i}", now, "bad digest credentials", user="carrier")
    assert not any(g.is_blocked(f"198.51.100.{i}", now) for i in range(40))
    assert g.user_locked("carrier", now)
    assert not g.user_locked("someone-else", now)
    [locked] = g.snapshot(now)["locked_users"]  # type: ignore[misc]
    assert locked["user"] == "carrier" and locked["refused"] == 1
    assert 584 <= locked["locked_for_s"] <= 586  # locked at the 10th failure, at t = 1 s
    assert not g.user_locked("carrier", now + 601)  # for block_s, then it may try again


def test_an_address_rate_holds_over_two_nodes() -> None:
    """Each node lets an address through at the rate, and takes what the other let
    through from its own bucket: a flood sent to both gets the rate once in all."""
    a = AbuseGuard(rate_per_s=10, burst=10, count_spent=True)
    b = AbuseGuard(rate_per_s=10, burst=10, count_spent=True)
    ip, passed = "203.0.113.9", 0
    for tick in range(1, 41):  # 20 s, both reporting every 0.5 s
        now = tick * 0.5
        for g in (a, b):
            passed += sum(g.allow(ip, now) for _ in range(50))
        for mine, other in ((a, b), (b, a)):
            for addr, (n, peer) in mine.take_spent().items():
                other.spent_elsewhere(addr, int(n), now, bool(peer))
    # 10/s for 20 s, plus each bucket's first burst and one report's worth each
    assert 200 <= passed <= 200 + 2 * 10 + 2 * 5
    assert not a.take_spent() and not b.take_spent()
    alone = AbuseGuard(rate_per_s=10, burst=10)  # without other nodes: nothing counted
    assert alone.allow(ip, 0.0) and alone.take_spent() == {}


def test_the_balancers_rate_stays_each_nodes_own() -> None:
    g = AbuseGuard(peer_rate_per_s=100, count_spent=True, own_proxies=("192.0.2.0/29",))
    assert g.allow("192.0.2.5", 0.0, peer=True) and g.allow("198.51.100.7", 0.0, peer=True)
    assert g.take_spent() == {"198.51.100.7": [1, True]}
