"""Abuse guard, sans-IO: addresses that keep failing authentication or calling without
being allowed get blocked for a while, and INVITE/REGISTER floods are rate limited per
address. Blocked traffic is dropped without an answer (scanners learn nothing). A trunk's
PBX or carrier has a rate of its own, higher (``peer_rate_per_s``), and past it is told to
retry (503) rather than left guessing. A username
whose digest keeps failing, from however many addresses, is locked for a while: only its
trunk's own addresses may still try it. A trunk's own addresses are never blocked (their
failures are counted and shown): blocking them would cut the PBX or carrier off."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from atende.telephony.guard import in_networks, parse_cidrs

log = logging.getLogger(__name__)
MAX_SPENT = 5_000  # addresses counted between two reports, at most (a flood from many)


@dataclass(frozen=True)
class Failure:
    """One failure, as nodes tell each other."""

    ip: str
    reason: str
    user: str | None
    protected: bool


@dataclass
class _Source:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    reason: str = ""
    tokens: float = 0.0
    last_refill: float = 0.0
    dropped: int = 0
    shared: bool = True  # its rate holds over all nodes (not one of our proxies)


class AbuseGuard:
    """Flood and brute-force protection for SIP, sans-IO: rate limits new requests per address
    and blocks addresses that keep failing."""

    def __init__(self, max_failures: int = 5, window_s: float = 60.0, block_s: float = 600.0,
                 rate_per_s: float = 10.0, burst: float = 20.0,
                 max_user_failures: int = 10, peer_rate_per_s: float = 200.0,
                 count_spent: bool = False, own_proxies: tuple[str, ...] = ()) -> None:
        self.max_failures = max_failures
        self.max_user_failures = max_user_failures
        self._users: dict[str, _Source] = {}  # digest usernames: failures and locks
        self.window_s = window_s
        self.block_s = block_s
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.peer_rate_per_s = peer_rate_per_s
        self.peer_burst = 2 * peer_rate_per_s
        self.peer_refused = 0  # trunk peers' requests over their rate (answered 503)
        self._sources: dict[str, _Source] = {}
        self.rate_limited = 0
        self.blocked_drops = 0
        self._listeners: list[Callable[[Failure], None]] = []
        # Requests let through since the last ``take_spent``, by address (and whether it
        # is a trunk's): what the other nodes take from their buckets, so that an
        # address's rate holds over all nodes. Counted only when there are others.
        self._spent: dict[str, list[int | bool]] | None = {} if count_spent else None
        # The balancer in front (ATENDE_SIP_PROXIES) sends to every node: its rate is
        # each node's own, or the nodes together would carry no more than one.
        self._own_proxies = parse_cidrs(own_proxies)

    def on_failure(self, listener: Callable[[Failure], None]) -> None:
        """``listener`` for each failure seen here (for the other nodes, which count it
        too: cluster/shared.py)."""
        self._listeners.append(listener)

    def _src(self, ip: str, now: float, burst: float | None = None) -> _Source:
        src = self._sources.get(ip)
        if src is None:
            src = self._sources[ip] = _Source(tokens=burst or self.burst, last_refill=now,
                                              shared=not in_networks(ip, self._own_proxies))
            if len(self._sources) > 100_000:
                self._forget(now)
        return src

    def _forget(self, now: float) -> None:
        for ip in [ip for ip, s in self._sources.items()
                   if s.blocked_until <= now and not s.failures]:
            del self._sources[ip]

    def is_blocked(self, ip: str, now: float) -> bool:
        src = self._sources.get(ip)
        if src is not None and src.blocked_until > now:
            src.dropped += 1
            self.blocked_drops += 1
            return True
        return False

    def allow(self, ip: str, now: float, peer: bool = False) -> bool:
        """Token bucket for INVITE and REGISTER: ``rate_per_s`` sustained, ``burst`` at once
        (a trunk's ``peer``: ``peer_rate_per_s``, twice that at once)."""
        src, rate = self._refilled(ip, now, peer)
        if src.tokens >= 1:
            src.tokens -= 1
            if self._spent is not None and src.shared:
                if (spent := self._spent.get(ip)) is None:
                    if len(self._spent) < MAX_SPENT:
                        self._spent[ip] = [1, peer]
                else:
                    spent[0] += 1
            return True
        if peer:
            self.peer_refused += 1
            if self.peer_refused % 100 == 1:
                log.warning("trunk peer %s sends more than %g new requests a second: "
                            "answering 503 (ATENDE_TRUNK_RATE_PER_S)", ip, rate)
            return False
        self.rate_limited += 1
        src.dropped += 1
        if self.rate_limited % 100 == 1:
            log.warning("rate limiting SIP requests from %s", ip)
        return False

    def take_spent(self) -> dict[str, list[int | bool]]:
        """The requests let through since the last call, by address: [count, trunk's]."""
        if self._spent is None:
            return {}
        spent, self._spent = self._spent, {}
        return spent

    def spent_elsewhere(self, ip: str, n: int, now: float, peer: bool) -> None:
        """Another node let ``n`` requests from ``ip`` through: they come out of this
        node's bucket too, down to minus a burst at most (a flood spread over the nodes
        then gets the rate once in all, give or take one report's worth)."""
        src, _ = self._refilled(ip, now, peer)
        src.tokens = max(-(self.peer_burst if peer else self.burst), src.tokens - n)

    def _refilled(self, ip: str, now: float, peer: bool) -> tuple[_Source, float]:
        """The address's bucket, refilled up to ``now``, and its rate."""
        rate, burst = ((self.peer_rate_per_s, self.peer_burst) if peer
                       else (self.rate_per_s, self.burst))
        src = self._src(ip, now, burst)
        src.tokens = min(burst, src.tokens + (now - src.last_refill) * rate)
        src.last_refill = now
        return src, rate

    def failure(self, ip: str, now: float, reason: str, user: str | None = None,
                protected: bool = False, remote: bool = False) -> None:
        """An authentication failure (``user``: the digest username tried) or a call from
        where calls are not allowed. ``protected``: a trunk's own address, counted but
        never blocked. ``remote``: seen by another node (not passed on again)."""
        if not remote:
            for listener in self._listeners:
                listener(Failure(ip, reason, user, protected))
        if user:
            self._user_failure(user[:200], now)
        src = self._src(ip, now)
        src.failures.append(now)
        while src.failures and src.failures[0] <= now - self.window_s:
            src.failures.popleft()
        if protected:
            if len(src.failures) == self.max_failures:
                log.warning("%s keeps failing (%s) but is a trunk's address: not blocked",
                            ip, reason)
            return
        if len(src.failures) >= self.max_failures and src.blocked_until <= now:
            src.blocked_until = now + self.block_s
            src.reason = reason
            src.failures.clear()
            log.warning("blocking %s for %.0f s after %d failures (last: %s)", ip,
                        self.block_s, self.max_failures, reason)

    def _user_failure(self, user: str, now: float) -> None:
        rec = self._users.get(user)
        if rec is None:
            if len(self._users) > 10_000:  # spread over made-up names: keep only the locked
                self._users = {u: r for u, r in self._users.items() if r.blocked_until > now}
            rec = self._users[user] = _Source()
        rec.failures.append(now)
        while rec.failures and rec.failures[0] <= now - self.window_s:
            rec.failures.popleft()
        if len(rec.failures) >= self.max_user_failures and rec.blocked_until <= now:
            rec.blocked_until = now + self.block_s
            rec.failures.clear()
            log.warning("locking user %r for %.0f s after %d failed digests", user,
                        self.block_s, self.max_user_failures)

    def user_locked(self, user: str, now: float) -> bool:
        rec = self._users.get(user[:200])
        if rec is not None and rec.blocked_until > now:
            rec.dropped += 1
            return True
        return False

    def snapshot(self, now: float) -> dict[str, object]:
        blocked = [
            {"address": ip, "blocked_for_s": int(s.blocked_until - now), "reason": s.reason,
             "dropped": s.dropped}
            for ip, s in self._sources.items() if s.blocked_until > now
        ]
        watched = [
            {"address": ip, "recent_failures": len(s.failures)}
            for ip, s in self._sources.items() if s.failures and s.blocked_until <= now
        ]
        locked = [{"user": u, "locked_for_s": int(r.blocked_until - now),
                   "refused": r.dropped}
                  for u, r in self._users.items() if r.blocked_until > now]
        return {"blocked": blocked, "watched": watched, "locked_users": locked,
                "rate_limited": self.rate_limited,
                "blocked_drops": self.blocked_drops,
                "policy": {"max_failures": self.max_failures, "window_s": self.window_s,
                           "block_s": self.block_s, "rate_per_s": self.rate_per_s,
                           "max_user_failures": self.max_user_failures,
                           "burst": self.burst}}
