"""What judges whether a caller who paused has finished their turn."""

from __future__ import annotations

from typing import Protocol


class TurnDetector(Protocol):
    """Judges, from the sound of a caller's pause, whether their turn is over."""

    name: str

    def complete(self, pcm16k: bytes) -> bool:
        """Whether the turn in ``pcm16k`` (16-bit mono 16 kHz, ending now, in a pause) is
        over. Blocking CPU work: called from a worker thread."""
        ...
