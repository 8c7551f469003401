"""The speech-to-text interface. Engines are blocking; the agent runs them in a worker pool
so the event loop (and every call's RTP pacing) never waits on a model."""

from __future__ import annotations

from typing import Protocol


class SpeechToText(Protocol):
    """A recogniser that turns a turn's 16 kHz PCM into text."""

    name: str

    def transcribe(self, pcm16k: bytes) -> str:
        """Text of one utterance of 16 kHz mono int16 PCM."""
        ...

    def transcribe_if_idle(self, pcm16k: bytes) -> str | None:
        """The same, or None at once when the engine is busy: for guesses that are not
        worth making another caller wait."""
        ...


class TranscriptStream(Protocol):
    """One caller turn on its way to a cloud recogniser, opened when the caller starts
    speaking: a streaming vendor hears the audio as it comes, so its transcript is ready
    soon after the turn ends; a batch one is sent the whole turn at the end."""

    def feed(self, pcm16k: bytes) -> None:
        """Audio of the turn as it arrives (the first call: all of it so far)."""

    async def finish(self, turn: bytes) -> str:
        """The transcript, once the turn (all of its audio: ``turn``) is over.
        ProviderError if the vendor fails."""
        ...

    async def cancel(self) -> None:
        """The speech was not a turn after all (a cough): nothing to transcribe."""


class CloudTranscriber(Protocol):
    """A cloud recogniser that hears a turn as it is spoken."""

    name: str

    def open(self) -> TranscriptStream: ...
