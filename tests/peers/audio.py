"""Test audio: speech synthesised at test time, and measurements of what a peer heard."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from atende.media.resample import resample


@lru_cache(maxsize=1)
def _piper():  # type: ignore[no-untyped-def]
    from atende.providers.tts.piper import PiperTTS

    return PiperTTS(steady=True)


def write_wav(path: Path, pcm: bytes, rate: int, channels: int = 1) -> Path:
    """Mono ``pcm`` as a WAV of ``channels`` (each the same)."""
    if channels > 1:
        pcm = np.repeat(np.frombuffer(pcm, np.int16), channels).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        if w.getnchannels() > 1:
            data = data[:: w.getnchannels()]
    return data, rate


@dataclass(frozen=True)
class Tone:
    """A pure tone, like an answering machine's beep."""

    hz: float
    seconds: float
    dbfs: float = -12.0

    def pcm(self, rate: int) -> bytes:
        t = np.arange(int(self.seconds * rate)) / rate
        amplitude = 32767 * 10 ** (self.dbfs / 20)
        return (amplitude * np.sin(2 * np.pi * self.hz * t)).astype(np.int16).tobytes()


def speech(segments: list[tuple[float, str | Tone]], tail_s: float, rate: int = 16000
           ) -> bytes:
    """For each (silence before, sentence or tone) the silence then the sound (Piper's
    voice: Whisper recognises it reliably), then ``tail_s`` of silence."""
    out = bytearray()
    for lead_s, sound in segments:
        out += bytes(int(lead_s * rate) * 2)
        out += sound.pcm(rate) if isinstance(sound, Tone) else \
            resample(_piper().synthesize(sound), 16000, rate)
    out += bytes(int(tail_s * rate) * 2)
    return bytes(out)


def speech_wav(path: Path, segments: list[tuple[float, str | Tone]], tail_s: float,
               rate: int = 8000, channels: int = 1) -> Path:
    """``speech`` as a phone-rate WAV (baresip's opus wants 48 kHz stereo)."""
    return write_wav(path, speech(segments, tail_s, rate), rate, channels)


def frame_levels(samples: np.ndarray, rate: int, frame_ms: int = 20) -> np.ndarray:
    """RMS level in dBFS of each frame."""
    n = rate * frame_ms // 1000
    count = len(samples) // n
    frames = samples[: count * n].astype(np.float64).reshape(count, n)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-3) / 32768.0))


def voiced_spans(samples: np.ndarray, rate: int, threshold_dbfs: float = -45.0,
                 min_gap_ms: int = 300) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches louder than the threshold, gaps shorter than
    ``min_gap_ms`` bridged."""
    levels = frame_levels(samples, rate)
    spans: list[tuple[float, float]] = []
    start = None
    gap = 0
    max_gap = min_gap_ms // 20
    for i, lvl in enumerate(levels):
        if lvl > threshold_dbfs:
            if start is None:
                start = i
            gap = 0
            end = i
        elif start is not None:
            gap += 1
            if gap > max_gap:
                spans.append((start * 0.02, (end + 1) * 0.02))
                start = None
    if start is not None:
        spans.append((start * 0.02, (end + 1) * 0.02))
    return spans


def heard_so_far(path: Path) -> tuple[np.ndarray, int]:
    """The samples of a WAV that is still being written (its header's sizes are not final
    yet): all that follows its data chunk's header."""
    raw = path.read_bytes() if path.exists() else b""
    at = raw.find(b"data")
    if at < 0 or len(raw) < 44:
        return np.zeros(0, np.int16), 8000
    rate = int.from_bytes(raw[24:28], "little")
    channels = max(1, int.from_bytes(raw[22:24], "little"))
    body = raw[at + 8:]
    body = body[: len(body) - len(body) % (2 * channels)]
    return np.frombuffer(body, np.int16)[::channels], rate  # the first channel


def tone_spans(samples: np.ndarray, rate: int, hz: float, window_s: float = 0.1
               ) -> list[float]:
    """Start times (s) of the windows whose sound is a tone of about ``hz``."""
    n = int(rate * window_s)
    out = []
    for i in range(0, len(samples) - n + 1, n):
        x = samples[i:i + n].astype(np.float64)
        if 20 * np.log10(max(float(np.sqrt(np.mean(x * x))), 1e-3) / 32768) < -40:
            continue
        spectrum = np.abs(np.fft.rfft(x * np.hanning(n)))
        if abs(float(np.fft.rfftfreq(n, 1 / rate)[int(np.argmax(spectrum))]) - hz) < 25:
            out.append(i / rate)
    return out
