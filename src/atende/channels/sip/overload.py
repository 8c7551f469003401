"""Local overload, sans-IO: how late the event loop runs (the lag of a short periodic
sleep), and how long SIP messages waited in the socket before they were read, tell
whether atende can take more calls. Past the threshold, new INVITEs are answered 503
with Retry-After (RFC 3261 §21.5.4) before any work is done for them, so callers back
off or go elsewhere instead of waiting for calls that would fail anyway; calls already
up are kept. The lag is smoothed, so one slow moment does not refuse calls.

Every new call is refused until the lag has halved (a backlog drains fastest that way:
a refusal costs a fraction of a call). Then calls are taken again at a capped rate, a
little under the most that was taken before the lag crossed the threshold, and the cap
grows while the lag stays low, until it is well above what callers ask for and is
lifted. (Taking every call again at once, as before, sent the loop straight back over
the threshold in a storm; a cap cut step by step with the lag, tried too, reacted too
late or too deep: the lag trails what was admitted by the better part of a second.)"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SAMPLE_S = 0.05  # how often the lag is sampled
SMOOTHING = 0.2  # weight of the newest sample
DRAIN_RETRY_S = 60
# After shedding, the cap starts at CUT of the most admitted a second before it, and
# grows by PROBE_PER_S of itself a second, plus GROWTH_MIN_PER_S (so that after a stall
# that had nothing to do with calls, at a low rate, it soon goes).
CUT = 0.85
PROBE_PER_S = 0.1
GROWTH_MIN_PER_S = 50.0
LIFT = 1.5  # the cap goes once it is this many times the rate of calls asked for
BURST_S = 0.05  # calls taken at once under a cap: this many seconds of it


@dataclass
class LoadMonitor:
    """The loop's smoothed lag, and which new calls are admitted (``admit``)."""

    threshold_s: float = 0.125
    lag_s: float = 0.0
    shedding: bool = False  # refusing every new call until the lag has halved
    # New calls admitted a second since shedding ended; None: all of them.
    cap_per_s: float | None = None
    # Stopping cleanly: no new calls at all while the live ones end (a load balancer
    # in front sends them to other nodes; its OPTIONS probes are answered 503 too)
    draining: bool = False
    ceiling_per_s: float = 0.0  # the most admitted a second before the last shedding
    rate_per_s: float = 0.0  # new calls admitted a second, smoothed
    asked_per_s: float = 0.0  # new calls asked for a second (admitted or not), smoothed
    # The longest wait of a SIP message since the last sample.
    _waited_s: float = field(init=False, repr=False)
    _admitted: int = field(init=False, repr=False)  # since the last sample
    _asked: int = field(init=False, repr=False)
    refused: int = field(init=False)  # new calls refused, ever (draining too)
    _peak_per_s: float = field(init=False, repr=False)
    _sampled_at: float | None = field(init=False, repr=False)
    _tokens: float = field(init=False, repr=False)
    _filled_at: float | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # (Set here, not as the fields' defaults, which compiled dataclasses leave unset.)
        self._waited_s = self._peak_per_s = self._tokens = 0.0
        self._admitted = self._asked = self.refused = 0
        self._sampled_at = self._filled_at = None

    def waited(self, wait_s: float) -> None:
        """SIP messages just read had waited up to ``wait_s`` in the socket: a loop that
        keeps up with its timers can still be too slow for what comes in, and the
        callers' requests then queue up in the kernel."""
        self._waited_s = max(self._waited_s, wait_s)

    def observe(self, lag_s: float, now: float) -> None:
        """One sample at ``now``: how much later than asked a sleep of SAMPLE_S woke (or,
        if it was longer, the longest a SIP message waited to be read since the last
        sample). Whether new calls are shed, or capped, follows."""
        sample, self._waited_s = max(lag_s, self._waited_s), 0.0
        self.lag_s += SMOOTHING * (max(0.0, sample) - self.lag_s)
        elapsed = SAMPLE_S if self._sampled_at is None else now - self._sampled_at
        self._sampled_at = now
        if elapsed <= 0:
            return
        self.rate_per_s += SMOOTHING * (self._admitted / elapsed - self.rate_per_s)
        self.asked_per_s += SMOOTHING * (self._asked / elapsed - self.asked_per_s)
        self._admitted = self._asked = 0
        if self.shedding:
            self.shedding = self.lag_s > self.threshold_s / 2
            if self.shedding:
                return
            # Caught up: a little under the most taken before (its burst to start with).
            self.cap_per_s, self._filled_at = CUT * self.ceiling_per_s, None
        elif self.lag_s > self.threshold_s:  # refuse all until caught up
            self.shedding = True
            self.ceiling_per_s, self._peak_per_s = self._peak_per_s, 0.0
            return
        else:
            self._peak_per_s = max(self._peak_per_s, self.rate_per_s)
            if self.cap_per_s is not None and self.lag_s < self.threshold_s / 2:
                self.cap_per_s += elapsed * (PROBE_PER_S * self.cap_per_s
                                             + GROWTH_MIN_PER_S)
        if self.cap_per_s is not None and self.cap_per_s >= LIFT * self.asked_per_s:
            self.cap_per_s = None  # callers ask for less than we can take

    def admit(self, now: float) -> bool:
        """Whether a new call that arrives at ``now`` is taken (False: refuse it 503)."""
        self._asked += 1
        if self.draining or self.shedding:
            self.refused += 1
            return False
        cap = self.cap_per_s
        if cap is not None:
            burst = max(1.0, cap * BURST_S) if cap > 0 else 0.0
            if self._filled_at is None:  # a new cap
                self._tokens = burst
            else:
                self._tokens = min(burst, self._tokens + max(0.0, now - self._filled_at) * cap)
            self._filled_at = now
            if self._tokens < 1:
                self.refused += 1
                return False
            self._tokens -= 1
        self._admitted += 1
        return True

    @property
    def refusing(self) -> bool:
        """Whether new calls may be refused now (shed, capped, or draining)."""
        return self.shedding or self.cap_per_s is not None or self.draining

    def retry_after(self) -> int:
        """Seconds a refused caller should wait: longer the further behind we are (a
        draining node is not coming back soon)."""
        if self.draining:
            return DRAIN_RETRY_S
        return max(1, min(30, round(4 * self.lag_s / self.threshold_s)))


async def watch_loop(monitor: LoadMonitor) -> None:
    """Sample the running loop's lag into ``monitor`` until cancelled (the server starts
    it once it is up: its own start-up blocks the loop, and is no overload)."""
    loop = asyncio.get_running_loop()
    began: float | None = None  # when the loop last fell behind (None: all calls taken)
    refused = 0
    while True:
        asked = loop.time() + SAMPLE_S
        await asyncio.sleep(SAMPLE_S)
        now = loop.time()
        monitor.observe(now - asked, now)
        # One line when the loop falls behind and one when every call is taken again,
        # not one per swing between shedding and the cap: an operator learns why callers
        # got 503 and for how long, without a storm of log lines.
        if began is None and monitor.shedding:
            began, refused = now, monitor.refused
            log.warning("the event loop runs %.0f ms late (threshold %.0f ms): refusing "
                        "new calls with 503 until it catches up", 1000 * monitor.lag_s,
                        1000 * monitor.threshold_s)
        elif began is not None and not monitor.shedding and monitor.cap_per_s is None:
            log.warning("caught up after %.1f s: every new call is taken again (%d "
                        "refused meanwhile)", now - began, monitor.refused - refused)
            began = None
