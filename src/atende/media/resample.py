"""Streaming sample-rate conversion at the channel edge (soxr)."""

from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    """int16 mono PCM bytes in at one rate, out at another, keeping filter state across
    chunks so 20 ms frames join without clicks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._rs = None if in_rate == out_rate else soxr.ResampleStream(
            in_rate, out_rate, 1, dtype="int16", quality="HQ")

    def process(self, pcm: bytes) -> bytes:
        if self._rs is None:
            return pcm
        out = self._rs.resample_chunk(np.frombuffer(pcm, dtype=np.int16))
        return bytes(np.asarray(out, dtype=np.int16).tobytes())

    def flush(self) -> bytes:
        """The samples still held in the filter (the end of a stretch of audio); the
        stream starts afresh after it."""
        if self._rs is None:
            return b""
        out = self._rs.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self.reset()
        return bytes(np.asarray(out, dtype=np.int16).tobytes())

    def reset(self) -> None:
        self.__init__(self.in_rate, self.out_rate)  # type: ignore[misc]


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """One-shot conversion of a whole buffer (synthesised speech, test audio)."""
    if in_rate == out_rate:
        return pcm
    out = soxr.resample(np.frombuffer(pcm, dtype=np.int16), in_rate, out_rate, quality="HQ")
    return bytes(np.asarray(out, dtype=np.int16).tobytes())
