"""The speech-to-text interface. Engines are blocking; the agent runs them in a worker pool
so the event loop (and every call's RTP pacing) never waits on a model."""

from __future__ import annotations

from typing import Protocol


class SpeechToText(Protocol):
    name: str

    def transcribe(self, pcm16k: bytes) -> str:
        """Text of one utterance of 16 kHz mono int16 PCM."""
        ...
