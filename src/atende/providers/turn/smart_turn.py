"""Smart Turn v3 (pipecat-ai, BSD-2): an audio model that says whether a caller has finished
their turn or only paused, from the sound of the last 8 s (intonation, a trailing "and…").

Loaded by file path with onnxruntime; pipecat itself is never imported. ``make install``
unpacks the model shipped in the ``pipecat-ai`` wheel to ``<venv>/share/atende/`` (see
``bundled_path``); any Smart Turn v3 ONNX file a user gives works the same way. The input
is Whisper's log-mel spectrogram (80 bands, 10 ms hop) of exactly 8 s of 16 kHz audio,
left-padded with silence, of the waveform normalised to zero mean and unit variance; the
output is the probability that the turn is complete.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_S = 8
MODEL_FILE = "smart-turn-v3.2-cpu.onnx"


def bundled_path() -> Path:
    """Where ``make install`` puts the model: beside the interpreter's environment."""
    return Path(sys.prefix) / "share" / "atende" / MODEL_FILE


class SmartTurn:
    """Whether a pause ends the caller's turn. ``complete`` is CPU work of about 0.1 s on
    two cores: call it from a worker thread."""

    name = "smart-turn"

    def __init__(self, path: str | Path, threshold: float = 0.5, threads: int = 1) -> None:
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no end-of-turn model at {path}")
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initialisers are noise
        self._session = ort.InferenceSession(str(path), sess_options=options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._features = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE,
                                          chunk_length=WINDOW_S)
        # One feature extractor and session: a lock keeps concurrent callers' calls whole.
        self._lock = threading.Lock()
        self.path = path
        self.threshold = threshold
        log.info("end-of-turn model loaded from %s", path)

    def probability(self, pcm16k: bytes) -> float:
        """How likely the turn in ``pcm16k`` (16-bit mono 16 kHz, its end = now) is over."""
        audio = np.frombuffer(pcm16k, dtype=np.int16)[-SAMPLE_RATE * WINDOW_S:]
        x = np.zeros(SAMPLE_RATE * WINDOW_S, dtype=np.float32)
        x[x.size - audio.size:] = audio / 32768.0
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        with self._lock:
            features = self._features(x, padding=0)
            out = self._session.run(None, {self._input: features[None].astype(np.float32)})
        return float(np.asarray(out[0]).reshape(-1)[0])

    def complete(self, pcm16k: bytes) -> bool:
        return self.probability(pcm16k) > self.threshold


def turn_model(setting: str, bundled: Path | None = None) -> SmartTurn | None:
    """The end-of-turn model ``ATENDE_TURN_MODEL`` names, loaded and warmed: '' the bundled
    one (none, with a warning, when it was not unpacked), 'off' none, else a file path (an
    error if it is not there: the operator asked for it)."""
    if setting.strip().lower() == "off":
        return None
    path = Path(setting) if setting.strip() else bundled or bundled_path()
    if not setting.strip() and not path.is_file():
        log.warning("no end-of-turn model at %s (`make install` unpacks it): turns end "
                    "after each assistant's end-of-turn silence", path)
        return None
    model = SmartTurn(path)
    model.complete(bytes(SAMPLE_RATE * 2))  # its first run allocates: not on a call
    return model
