"""Sounds for a caller who waits, as 16 kHz mono PCM: music on hold (a soft chime loop made
here, so there is no file to ship and nothing under anyone's copyright, or the business's
own WAV file), and the ringback tone of a call being put through."""

from __future__ import annotations

import logging
import wave
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from atende.media.audio import SAMPLE_RATE
from atende.media.resample import resample

log = logging.getLogger(__name__)

MAX_MUSIC_BYTES = 32 << 20
# A slow C major arpeggio and its answer: notes (Hz) of half a second each.
_NOTES = (261.63, 329.63, 392.00, 523.25, 392.00, 329.63, 293.66, 349.23, 440.00, 587.33,
          440.00, 349.23, 261.63, 329.63, 392.00, 329.63)


@cache
def default_hold_music() -> bytes:
    """Eight seconds that loop without a click: each note fades in and out."""
    n = SAMPLE_RATE // 2
    t = np.arange(n) / SAMPLE_RATE
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-3.0 * t)
    notes = [(np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t)) * envelope
             for f in _NOTES]
    samples = np.concatenate(notes) * (32767 * 10 ** (-18 / 20) / 1.25)
    return bytes(samples.astype(np.int16).tobytes())


@cache
def ringback_tone(seconds: int = 30) -> bytes:
    """ITU-T E.180's common ringing tone: 425 Hz, 1 s on and 4 s off."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    ring = np.sin(2 * np.pi * 425 * t) * np.minimum(1.0, np.minimum(t, 1 - t) / 0.01)
    cycle = np.concatenate([ring, np.zeros(4 * SAMPLE_RATE)]) * (32767 * 10 ** (-16 / 20))
    cycles = np.tile(cycle, -(-seconds // 5))[: seconds * SAMPLE_RATE]
    return bytes(cycles.astype(np.int16).tobytes())


def load_music(path: str | Path) -> bytes:
    """A WAV file (PCM, any rate, mono or stereo) as 16 kHz mono. ValueError says what is
    wrong with it."""
    try:
        # Only a plain file of a sane size: a FIFO or a device would block whoever reads.
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such file (it must be a WAV file on the server)")
        if Path(path).stat().st_size > MAX_MUSIC_BYTES:
            raise ValueError(f"{path}: larger than {MAX_MUSIC_BYTES >> 20} MiB")
        with wave.open(str(path)) as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"{path}: only 16-bit PCM WAV files are supported")
            channels, rate = w.getnchannels(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise ValueError(f"{path}: not a readable WAV file ({exc})") from None
    samples = np.frombuffer(frames, dtype=np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if samples.size < rate // 2:
        raise ValueError(f"{path}: shorter than half a second")
    return resample(samples.tobytes(), rate, SAMPLE_RATE)


def music_for(path: str | None) -> bytes:
    """The music of ``path`` (read once per version of the file), or the default one. A
    file that went missing since it was set is logged and replaced by the default: a call
    is never refused over its hold music."""
    if path is None:
        return default_hold_music()
    try:
        return _cached(path, Path(path).stat().st_mtime_ns)
    except (OSError, ValueError) as exc:
        log.warning("hold music %s cannot be used (%s); playing the default", path, exc)
        return default_hold_music()


@lru_cache(maxsize=16)
def _cached(path: str, mtime_ns: int) -> bytes:
    return load_music(path)
