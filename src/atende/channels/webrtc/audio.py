"""Audio between aiortc's frames and atende's internal format (16 kHz mono int16, 20 ms
frames), converted once at the edge."""

from __future__ import annotations

import fractions

import av
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

from atende.media.audio import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


class Incoming:
    """The browser's audio (what the Opus or G.711 decoder gives, any rate and layout) cut
    into 20 ms frames of atende's format."""

    def __init__(self) -> None:
        self._resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._pending = bytearray()

    def frames(self, frame: av.AudioFrame) -> list[bytes]:
        for out in self._resampler.resample(frame):
            # planes[0] may be padded past the samples it holds: take the samples only
            self._pending += bytes(out.planes[0])[: out.samples * 2]
        ready = []
        while len(self._pending) >= FRAME_BYTES:
            ready.append(bytes(self._pending[:FRAME_BYTES]))
            del self._pending[:FRAME_BYTES]
        return ready


def outgoing(pcm: bytes, pts: int) -> AudioFrame:
    """One 20 ms frame of atende's audio for aiortc's encoder (which resamples it to the
    codec's rate); ``pts`` in samples at 16 kHz."""
    frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
    frame.planes[0].update(pcm)
    frame.pts = pts
    frame.sample_rate = SAMPLE_RATE
    frame.time_base = TIME_BASE
    return frame
