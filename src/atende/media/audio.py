"""atende's one internal audio format: 16-bit little-endian mono PCM at 16 kHz, moved in
20 ms frames. Every channel and every speech engine converts to it once, at its edge, so
nothing in between resamples."""

from __future__ import annotations

import io
import wave

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE_FRAME = bytes(FRAME_BYTES)


def wav(pcm16k: bytes) -> bytes:
    """16 kHz mono int16 PCM as a WAV file's bytes."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm16k)
    return buf.getvalue()
