"""Voice activity and end-of-turn detection over 20 ms frames, sans-IO.

A frame classifier (webrtcvad by default) says speech or not; the endpointer turns that into
turn events with hysteresis: speech starts after ``start_ms`` of mostly-voiced frames, a turn
ends after ``end_ms`` of silence. The audio of the turn includes ``preroll_ms`` before onset so
the recogniser hears the first syllable.

With ``pause_ms`` set, a shorter silence is reported as a pause: whoever can tell from the
audio that the caller has finished (an end-of-turn model) may end the turn there with
``end_turn`` instead of waiting for ``end_ms``; a pause the caller speaks after is void.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from atende.media.audio import FRAME_MS, SAMPLE_RATE

Classifier = Callable[[bytes], bool]


@dataclass(frozen=True)
class VadConfig:
    """Voice activity detection settings: thresholds and the silence that ends a turn."""

    aggressiveness: int = 2
    start_ms: int = 120  # voiced audio needed to declare speech
    end_ms: int = 600  # silence that ends a turn
    preroll_ms: int = 300
    min_turn_ms: int = 200  # shorter bursts are clicks and coughs
    max_turn_ms: int = 30_000
    energy_floor_dbfs: float = -50.0
    pause_ms: int | None = None  # silence reported as a Paused event (None: none)


@dataclass(frozen=True)
class SpeechStarted:
    """The caller started speaking."""

    onset_at: float  # arrival time of the first voiced frame


@dataclass(frozen=True)
class TurnEnded:
    """The caller's turn is over."""

    audio: bytes
    onset_at: float
    end_at: float  # arrival time of the last voiced frame


@dataclass(frozen=True)
class Paused:
    """The caller has been silent ``pause_ms``: the turn may be over."""

    audio: bytes  # the turn so far, the pause included
    onset_at: float
    end_at: float  # arrival time of the last voiced frame
    seq: int  # which pause: ``end_turn`` takes it, and refuses one spoken over since


VadEvent = SpeechStarted | TurnEnded | Paused


def rms_dbfs(frame: bytes) -> float:
    samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32)
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20 * float(np.log10(max(rms, 1e-3) / 32768.0))


def webrtc_classifier(aggressiveness: int, energy_floor_dbfs: float) -> Classifier:
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)

    def classify(frame: bytes) -> bool:
        if rms_dbfs(frame) < energy_floor_dbfs:
            return False
        return bool(vad.is_speech(frame, SAMPLE_RATE))

    return classify


class Endpointer:
    """Voice activity detection with end-of-turn detection: tells when the caller starts
    speaking and when a turn is over."""

    def __init__(self, config: VadConfig | None = None, classifier: Classifier | None = None
                 ) -> None:
        self.config = config or VadConfig()
        c = self.config
        self.classify = classifier or webrtc_classifier(c.aggressiveness, c.energy_floor_dbfs)
        self._start_frames = max(1, c.start_ms // FRAME_MS)
        self._window: deque[tuple[bool, float, bytes]] = deque(
            maxlen=max(self._start_frames + 2, c.preroll_ms // FRAME_MS))
        self._end_frames = max(1, c.end_ms // FRAME_MS)
        pause = None if c.pause_ms is None else max(1, c.pause_ms // FRAME_MS)
        self._pause_frames = pause if pause is not None and pause < self._end_frames else None
        self._pauses = 0
        self.in_speech = False
        self._turn: bytearray = bytearray()
        self._onset = 0.0
        self._last_voiced = 0.0
        self._voiced_ms = 0
        self._silent_run = 0

    @property
    def voiced_ms(self) -> int:
        """Voiced audio in the speech under way (0 between turns)."""
        return self._voiced_ms if self.in_speech else 0

    @property
    def onset_at(self) -> float | None:
        """Arrival time of the speech under way, if any."""
        return self._onset if self.in_speech else None

    @property
    def turn_audio(self) -> bytes:
        """The audio of the speech under way so far, pre-roll included."""
        return bytes(self._turn) if self.in_speech else b""

    def reset(self) -> None:
        self._pauses += 1
        self._window.clear()
        self.in_speech = False
        self._turn = bytearray()
        self._silent_run = 0

    def feed(self, frame: bytes, at: float) -> list[VadEvent]:
        voiced = self.classify(frame)
        if not self.in_speech:
            self._window.append((voiced, at, frame))
            recent = list(self._window)[-(self._start_frames + 2):]
            if sum(v for v, _, _ in recent) >= self._start_frames:
                self.in_speech = True
                onset = next(t for v, t, _ in recent if v)
                self._onset = onset
                self._last_voiced = at
                self._voiced_ms = sum(FRAME_MS for v, _, _ in recent if v)
                self._turn = bytearray(b"".join(f for _, _, f in self._window))
                self._window.clear()
                self._silent_run = 0
                return [SpeechStarted(onset)]
            return []
        self._turn += frame
        if voiced:
            self._silent_run = 0
            self._last_voiced = at
            self._voiced_ms += FRAME_MS
        else:
            self._silent_run += 1
        turn_ms = len(self._turn) * 1000 // (SAMPLE_RATE * 2)
        if self._silent_run >= self._end_frames or turn_ms >= self.config.max_turn_ms:
            ended = self._end()
            return [ended] if ended is not None else []
        if self._silent_run == self._pause_frames and \
                self._voiced_ms >= self.config.min_turn_ms:
            self._pauses += 1
            return [Paused(bytes(self._turn), self._onset, self._last_voiced, self._pauses)]
        return []

    def end_turn(self, pause: Paused) -> TurnEnded | None:
        """End the turn at ``pause`` (judged final), unless the caller has spoken since."""
        if not self.in_speech or pause.seq != self._pauses or \
                self._pause_frames is None or self._silent_run < self._pause_frames:
            return None
        return self._end()

    def _end(self) -> TurnEnded | None:
        self.in_speech = False
        self._pauses += 1  # the turn's pauses are void: a late verdict ends nothing more
        audio, self._turn = bytes(self._turn), bytearray()
        self._silent_run = 0
        if self._voiced_ms < self.config.min_turn_ms:
            return None
        return TurnEnded(audio, self._onset, self._last_voiced)
