"""The assistant holding the caller (tools ``hold`` and ``resume``): music plays, looped
a second at a time (the next second is queued as one finishes playing, so nothing but the
leg's own pacing drives it), until the assistant resumes, speaks again, or the longest
hold it asked for has passed. Either session (pipeline or realtime) keeps one."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from atende.agent.turns import CallReport
from atende.channels.leg import CallLeg
from atende.media.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

CHUNK_BYTES = SAMPLE_RATE * 2  # a second
MARK = "hold:"
MAX_HOLD_S = 300
DEFAULT_HOLD_S = 60
HOLD_OVER = "Thank you for holding."  # said when the longest hold asked for is over


class HoldMusic:
    """Music on hold for a call: plays it while the caller is held and says when the hold ends
    and why."""

    def __init__(self, leg: CallLeg, music: bytes, report: CallReport) -> None:
        self.leg = leg
        self.music = music
        self.report = report
        self.started_at: float | None = None  # loop time; None: not holding
        self.until: float = 0.0
        self._offset = 0
        self._chunks = 0

    @property
    def active(self) -> bool:
        return self.started_at is not None

    def start(self, at: float, max_s: float, reason: str) -> None:
        if self.active:
            self.until = at + max_s
            return
        log.info("call %s: on hold (%s)", self.leg.info.id, reason or "no reason given")
        self.started_at, self.until = at, at + max_s
        self.report.event("assistant_hold", {"reason": reason, "max_seconds": max_s})
        self._queue()
        self._queue()  # one playing, one waiting: no gap between them

    def played(self, mark: str) -> bool:
        """A segment finished playing: True if it was the music (then the next second is
        queued, while holding)."""
        if not mark.startswith(MARK):
            return False
        if self.active:
            self._queue()
        return True

    def due(self, now: float) -> bool:
        """The longest hold asked for is over."""
        return self.active and now >= self.until

    def stop(self, at: float, by: str) -> None:
        """Off hold (``by``: resume, speech, timeout, hangup); the music still queued is
        dropped."""
        if self.started_at is None:
            return
        held_ms = int((at - self.started_at) * 1000)
        self.started_at = None
        self.leg.clear()
        log.info("call %s: off hold after %d ms (%s)", self.leg.info.id, held_ms, by)
        self.report.event("assistant_resume", {"by": by, "held_ms": held_ms})

    def _queue(self) -> None:
        music = self.music
        piece = music[self._offset:self._offset + CHUNK_BYTES]
        if len(piece) < CHUNK_BYTES:  # round the loop
            piece += music[:CHUNK_BYTES - len(piece)]
        self._offset = (self._offset + CHUNK_BYTES) % len(music)
        self._chunks += 1
        self.leg.play(piece, f"{MARK}{self._chunks}")


def start_hold(hold: HoldMusic, max_s: float, reason: str) -> dict[str, Any]:
    """The ``hold`` tool, once what was said before it has been heard."""
    if hold.leg.ended:
        return {"error": "the call has ended"}
    hold.start(asyncio.get_running_loop().time(), max_s, reason)
    return {"ok": True, "note": "the caller hears music until you speak or call resume, "
            f"at most {max_s:g} s"}


def stop_hold(hold: HoldMusic) -> dict[str, Any]:
    """The ``resume`` tool."""
    if not hold.active:
        return {"ok": True, "note": "the caller was not on hold"}
    hold.stop(asyncio.get_running_loop().time(), "resume")
    return {"ok": True}
