"""Call recordings: two-channel WAV, the caller on the left and the assistant on the right,
16-bit at the leg's 16 kHz, written to disk as the call goes (never held whole in memory).

``StereoTimeline`` is the pure part: frames of each side with the time they were heard or
sent, laid side by side. A side that went quiet (no packets: hold, a gap in the network,
nothing to say) is padded with silence so the two stay in step; frames that arrive in a
burst are kept, never dropped. ``WavRecorder`` writes what the timeline releases."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CALLER, ASSISTANT = 0, 1
SLACK_S = 0.06  # lateness tolerated before a side is padded (jitter is not a gap)
SILENT_S = 0.5  # a side this far behind the other has gone quiet: pad it up to the other


def recording_path(directory: Path, call_id: str) -> Path:
    return directory / f"{call_id}.wav"


class StereoTimeline:
    """Two channels of audio laid out by time (caller left, assistant right), gaps filled with
    silence."""

    def __init__(self, start: float, rate: int = 16000) -> None:
        self.start = start
        self.rate = rate
        self._sides: tuple[bytearray, bytearray] = (bytearray(), bytearray())
        self._written = 0  # samples per side already released

    def add(self, side: int, pcm: bytes, at: float) -> None:
        """``pcm`` of ``side`` that began at ``at`` (the leg's clock)."""
        buf = self._sides[side]
        due = int((at - self.start) * self.rate) - self._written
        have = len(buf) // 2
        if due - have > SLACK_S * self.rate:
            buf += bytes(2 * (due - have))
        buf += pcm

    def take(self, final: bool = False) -> bytes:
        """Interleaved frames both sides have reached (all of them when ``final``)."""
        left, right = self._sides
        for quiet, other in ((left, right), (right, left)):
            # The other side is the clock while this one sends nothing (hold, a muted
            # phone): without this, audio would pile up in memory until it spoke again.
            behind = len(other) - len(quiet)
            if behind > 2 * SILENT_S * self.rate:
                quiet += bytes(behind - 2 * int(SLACK_S * self.rate))
        n = max(len(left), len(right)) if final else min(len(left), len(right))
        n -= n % 2
        if n == 0:
            return b""
        lhs = np.frombuffer(bytes(left[:n]).ljust(n, b"\0"), dtype=np.int16)
        rhs = np.frombuffer(bytes(right[:n]).ljust(n, b"\0"), dtype=np.int16)
        del left[:n]
        del right[:n]
        self._written += n // 2
        return np.column_stack([lhs, rhs]).tobytes()


class WavRecorder:
    """Writes a call's timeline to ``path`` (its header is completed at ``close``)."""

    FLUSH_BYTES = 64_000  # about a second of both sides

    def __init__(self, path: Path, start: float, rate: int = 16000) -> None:
        self.path = path
        self.timeline = StereoTimeline(start, rate)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wav: wave.Wave_write | None = wave.open(str(path), "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self._pending = 0

    def add(self, side: int, pcm: bytes, at: float) -> None:
        if self._wav is None:
            return
        self.timeline.add(side, pcm, at)
        self._pending += len(pcm)
        if self._pending >= self.FLUSH_BYTES:
            self._pending = 0
            self._write(self.timeline.take())

    def _write(self, frames: bytes) -> None:
        if self._wav is None or not frames:
            return
        try:
            self._wav.writeframesraw(frames)
        except OSError:
            log.exception("recording %s: could not write; it stops here", self.path)
            self._abandon()

    def _abandon(self) -> None:
        wav, self._wav = self._wav, None
        if wav is not None:
            try:
                wav.close()
            except OSError:
                pass

    def close(self) -> None:
        """Write what is left and complete the header."""
        if self._wav is None:
            return
        self._write(self.timeline.take(final=True))
        self._abandon()
