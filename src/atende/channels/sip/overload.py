"""Local overload, sans-IO: how late the event loop runs (the lag of a short periodic
sleep), and how long SIP messages waited in the socket before they were read, tell
whether atende can take more calls. Past the threshold, new INVITEs are
answered 503 with Retry-After (RFC 3261 §21.5.4) before any work is done for them, so
callers back off or go elsewhere instead of waiting for calls that would fail anyway;
calls already up are kept. The lag is smoothed, so one slow moment does not refuse
calls, and taking calls again waits until it falls to half the threshold."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

SAMPLE_S = 0.05  # how often the lag is sampled
SMOOTHING = 0.2  # weight of the newest sample
DRAIN_RETRY_S = 60


@dataclass
class LoadMonitor:
    """The loop's smoothed lag and whether new calls are shed."""

    threshold_s: float = 0.25
    lag_s: float = 0.0
    shedding: bool = False
    # Stopping cleanly: no new calls at all while the live ones end (a load balancer
    # in front sends them to other nodes; its OPTIONS probes are answered 503 too)
    draining: bool = False
    # The longest wait of a SIP message since the last sample.
    _waited_s: float = field(default=0.0, init=False, repr=False)

    def waited(self, wait_s: float) -> None:
        """SIP messages just read had waited up to ``wait_s`` in the socket: a loop that
        keeps up with its timers can still be too slow for what comes in, and the
        callers' requests then queue up in the kernel."""
        self._waited_s = max(self._waited_s, wait_s)

    def observe(self, lag_s: float) -> None:
        """One sample: how much later than asked a sleep of SAMPLE_S woke (or, if it was
        longer, the longest a SIP message waited to be read since the last sample)."""
        sample, self._waited_s = max(lag_s, self._waited_s), 0.0
        self.lag_s += SMOOTHING * (max(0.0, sample) - self.lag_s)
        if self.shedding:
            self.shedding = self.lag_s > self.threshold_s / 2
        else:
            self.shedding = self.lag_s > self.threshold_s

    @property
    def refusing(self) -> bool:
        """Whether new calls are refused now (overloaded, or draining)."""
        return self.shedding or self.draining

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
    while True:
        asked = loop.time() + SAMPLE_S
        await asyncio.sleep(SAMPLE_S)
        monitor.observe(loop.time() - asked)
