"""Answering-machine detection for the calls atende places, sans-IO.

A person who picks up says something short ("Hello?", "Ana speaking") and waits; a
voicemail greeting talks on for seconds, often ends in a beep, then records. So the
assistant listens before it greets:

- speech that ends (``after_greeting_ms`` of silence) within ``max_greeting_ms`` of its
  onset: a person (``Human``);
- speech still going at ``max_greeting_ms``, or a beep: a machine (``Machine``);
- nobody speaking for ``initial_silence_ms``: greet anyway (``Human("silence")``), since a
  person may be waiting for us, and a machine will end up recording what we say.

After ``Machine``, ``LeaveMessage`` says when a message would be recorded: the end of the
beep, else ``message_silence_ms`` of silence after the greeting, else ``max_message_wait_ms``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from atende.agent.vad import Classifier, Endpointer, SpeechStarted, TurnEnded, VadConfig, rms_dbfs
from atende.media.audio import FRAME_MS, SAMPLE_RATE

ACTIONS = ("hangup", "leave_message")


@dataclass(frozen=True)
class VoicemailConfig:
    """Whether an assistant listens for an answering machine on calls it places, and what it
    does then."""

    detect: bool = False
    action: str = "hangup"  # hangup | leave_message
    message: str | None = None  # what to leave (placeholders filled per call)
    initial_silence_ms: int = 3500
    max_greeting_ms: int = 2500
    after_greeting_ms: int = 800
    message_silence_ms: int = 2000
    max_message_wait_ms: int = 30_000

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> VoicemailConfig:
        """From the stored ``voicemail`` (the API's, with every field), or the defaults."""
        return cls(**(data or {}))


@dataclass(frozen=True)
class Human:
    """A person answered."""

    reason: str  # short_greeting | silence
    at: float


@dataclass(frozen=True)
class Machine:
    """An answering machine answered."""

    reason: str  # long_greeting | beep
    at: float


@dataclass(frozen=True)
class LeaveMessage:
    """The answering machine's beep: leave the message now."""

    reason: str  # beep | silence | timeout
    at: float


Verdict = Human | Machine | LeaveMessage


class BeepDetector:
    """A beep is one steady pure tone: nearly all of a frame's energy in one narrow band,
    at the same frequency, for ``min_ms``. Voices spread theirs over harmonics that move.
    ``feed`` is true on the first frame after a beep ends (or once it has lasted
    ``max_ms``): the moment a recording starts."""

    def __init__(self, min_ms: int = 160, max_ms: int = 2000, min_dbfs: float = -40.0,
                 purity: float = 0.95) -> None:
        self.min_frames = max(1, min_ms // FRAME_MS)
        self.max_frames = max(self.min_frames, max_ms // FRAME_MS)
        self.min_dbfs = min_dbfs
        self.purity = purity
        self._window = np.hanning(SAMPLE_RATE * FRAME_MS // 1000)
        self._hz_per_bin = 1000 / FRAME_MS
        self._run = 0
        self._bin = -10

    def tone_bin(self, frame: bytes) -> int | None:
        """The frequency bin of the tone this frame is, or None."""
        if rms_dbfs(frame) < self.min_dbfs:
            return None
        samples = np.frombuffer(frame, dtype=np.int16).astype(np.float64)
        if samples.size != self._window.size:
            return None
        power = np.abs(np.fft.rfft(samples * self._window)) ** 2
        lo, hi = int(300 / self._hz_per_bin), int(3400 / self._hz_per_bin)
        peak = lo + int(np.argmax(power[lo:hi]))
        share = float(power[peak - 2 : peak + 3].sum() / max(power[1:].sum(), 1e-9))
        return peak if share >= self.purity else None

    def feed(self, frame: bytes) -> bool:
        peak = self.tone_bin(frame)
        if peak is not None and abs(peak - self._bin) <= 1:
            self._run += 1
            if self._run == self.max_frames:
                return True
            return False
        ended = self.min_frames <= self._run < self.max_frames
        self._run, self._bin = (1, peak) if peak is not None else (0, -10)
        return ended


class VoicemailDetector:
    """Feed it the callee's 20 ms frames from the moment the call is answered."""

    def __init__(self, config: VoicemailConfig, classifier: Classifier | None = None
                 ) -> None:
        self.config = config
        self.speech = Endpointer(VadConfig(start_ms=100, end_ms=config.after_greeting_ms,
                                           preroll_ms=100, min_turn_ms=100),
                                 classifier)
        self.beep = BeepDetector()
        self.verdict: Human | Machine | None = None
        self.message_cue: LeaveMessage | None = None
        self._start: float | None = None
        self._onset: float | None = None  # of the first real speech
        self._turn_end: float | None = None  # of the last real speech
        self._machine_at = 0.0

    def feed(self, frame: bytes, at: float) -> list[Verdict]:
        if self.message_cue is not None or isinstance(self.verdict, Human):
            return []
        if self._start is None:
            self._start = at
        beeped = self.beep.feed(frame)
        was_speaking = self.speech.in_speech
        events = self.speech.feed(frame, at)
        ended = None
        for ev in events:
            if isinstance(ev, SpeechStarted) and self._onset is None:
                self._onset = ev.onset_at
            elif isinstance(ev, TurnEnded):
                ended = self._turn_end = ev.end_at
        if was_speaking and not self.speech.in_speech and ended is None and \
                self._turn_end is None:
            self._onset = None  # a click or a cough, not a greeting
        out: list[Verdict] = []
        if self.verdict is None:
            self.verdict = self._judge(beeped, ended, at)
            if self.verdict is not None:
                out.append(self.verdict)
                self._machine_at = at
        if isinstance(self.verdict, Machine):
            self.message_cue = self._cue(beeped, at)
            if self.message_cue is not None:
                out.append(self.message_cue)
        return out

    def _judge(self, beeped: bool, ended: float | None, at: float) -> Human | Machine | None:
        c = self.config
        if beeped:
            return Machine("beep", at)
        if self._onset is None:
            assert self._start is not None
            if (at - self._start) * 1000 >= c.initial_silence_ms:
                return Human("silence", at)
            return None
        if ended is not None and (ended - self._onset) * 1000 <= c.max_greeting_ms:
            return Human("short_greeting", at)
        if self.speech.in_speech and (at - self._onset) * 1000 > c.max_greeting_ms:
            return Machine("long_greeting", at)
        return None

    def _cue(self, beeped: bool, at: float) -> LeaveMessage | None:
        c = self.config
        if beeped:
            return LeaveMessage("beep", at)
        if not self.speech.in_speech and self._turn_end is not None and \
                (at - self._turn_end) * 1000 >= c.message_silence_ms:
            return LeaveMessage("silence", at)
        if (at - self._machine_at) * 1000 >= c.max_message_wait_ms:
            return LeaveMessage("timeout", at)
        return None
