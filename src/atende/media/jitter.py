"""A small reordering jitter buffer.

The agent consumes caller audio for VAD and speech recognition, not for a loudspeaker, so
the buffer has no playout clock: it releases packets in sequence order as soon as they are
contiguous, waits at most ``depth`` packets for a missing one, and then declares it lost
(the caller inserts silence for it). In-order traffic passes with zero added delay.
"""

from __future__ import annotations


def _seq_before(a: int, b: int) -> bool:
    """True when 16-bit sequence number a comes before b (serial arithmetic)."""
    return a != b and ((b - a) & 0xFFFF) < 0x8000


class JitterBuffer:
    """Puts RTP packets back in order and hides small losses, releasing audio at the pace it
    was sent."""

    def __init__(self, depth: int = 3) -> None:
        self.depth = depth
        self._buf: dict[int, bytes] = {}
        self._next: int | None = None
        self.late = 0
        self.duplicates = 0
        self.lost = 0

    def restart(self) -> None:
        """A new stream: its first packet starts the numbering (what waits is dropped)."""
        self._buf.clear()
        self._next = None

    def push(self, seq: int, payload: bytes) -> list[bytes | None]:
        """Add a packet; returns what is now ready, in order (None marks a lost packet)."""
        if self._next is None:
            self._next = seq
        if seq == self._next and not self._buf:  # in order, nothing waiting: the usual
            self._next = (seq + 1) & 0xFFFF
            return [payload]
        if _seq_before(seq, self._next):
            self.late += 1
            return []
        if seq in self._buf:
            self.duplicates += 1
            return []
        if (seq - self._next) & 0xFFFF > 1000:
            # The stream jumped (new source or long gap): start over from here.
            self._buf.clear()
            self._next = seq
        self._buf[seq] = payload
        return self._drain()

    def _drain(self) -> list[bytes | None]:
        out: list[bytes | None] = []
        assert self._next is not None
        while self._buf:
            if self._next in self._buf:
                out.append(self._buf.pop(self._next))
            elif len(self._buf) > self.depth:
                out.append(None)
                self.lost += 1
            else:
                break
            self._next = (self._next + 1) & 0xFFFF
        return out


class SendClock:
    """When each frame of a stream was sent, on our clock: its arrival time, unless frames
    come in a burst (a stall of our loop, or of the network), when they keep the pace they
    were sent at. A recording places frames by this time, so a burst does not shift
    everything after it. The earliest arrival sets the pace (least delayed); a frame
    more than ``max_lag`` behind its arrival starts a new pace (the sender paused:
    hold, silence suppression)."""

    def __init__(self, frame_s: float, max_lag: float = 0.3) -> None:
        self.frame_s = frame_s
        self.max_lag = max_lag
        self._next: float | None = None

    def stamp(self, now: float) -> float:
        """The send time of the next frame in order, which arrived at ``now``."""
        t = self._next
        if t is None or t > now or t < now - self.max_lag:
            t = now
        self._next = t + self.frame_s
        return t
