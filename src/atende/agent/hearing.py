"""How a caller's turn becomes text. With a cloud recogniser the turn is streamed to it from
the moment the caller starts speaking (the pre-roll included), so the transcript is ready
soon after they stop; without one, or once it has failed on this call, the local engine
(Whisper) transcribes the turn's audio, which the endpointer always keeps. Either way the
caller is heard: a failing vendor costs the turn some latency, never its words.

The local engine starts early: when the caller pauses, what they said so far is transcribed
at once if a worker is free, and if that pause turns out to end the turn (nothing was said
after it) its text is the turn's. The turn still ends when it did; its text is just ready
about a transcription sooner."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass

from atende.agent.turns import CallReport
from atende.agent.vad import Paused, TurnEnded
from atende.aio import BackgroundTasks
from atende.providers.errors import ProviderError
from atende.providers.stt.base import CloudTranscriber, SpeechToText, TranscriptStream

log = logging.getLogger(__name__)


@dataclass
class _Guess:
    """The text of the turn up to a pause, being transcribed."""

    onset_at: float
    end_at: float  # of the last voiced frame before the pause
    text: asyncio.Future[str | None]  # None: no worker was free

    def matches(self, turn: TurnEnded) -> bool:
        """Whether ``turn`` is the guessed speech and only silence came after it."""
        return (self.onset_at, self.end_at) == (turn.onset_at, turn.end_at)

    def drop(self) -> None:
        self.text.cancel()  # a job not started yet is never run
        self.text.add_done_callback(lambda f: f.cancelled() or f.exception())


class Hearing:
    """What a call hears with: a cloud recogniser while it works, the local one for the turn
    and the rest of the call once it fails."""

    def __init__(self, local: SpeechToText, executor: Executor, report: CallReport,
                 cloud: CloudTranscriber | None = None) -> None:
        self.local = local
        self.executor = executor
        self.report = report
        self.cloud = cloud
        self._stream: TranscriptStream | None = None
        self._cancels = BackgroundTasks()
        self._guess: _Guess | None = None

    def started(self, audio: bytes) -> None:
        """The caller started speaking; ``audio``: the turn so far."""
        self.dropped()
        if self.cloud is not None:
            self._stream = self.cloud.open()
            self._stream.feed(audio)

    def paused(self, pause: Paused) -> None:
        """The caller paused: with the local recogniser, guess the turn's text now."""
        self._forget_guess()
        if self._stream is not None:
            return  # the cloud recogniser hears the turn as it comes
        loop = asyncio.get_running_loop()
        self._guess = _Guess(pause.onset_at, pause.end_at, loop.run_in_executor(
            self.executor, self.local.transcribe_if_idle, pause.audio))

    def _forget_guess(self) -> None:
        guess, self._guess = self._guess, None
        if guess is not None:
            guess.drop()

    def heard(self, frame: bytes) -> None:
        if self._stream is not None:
            self._stream.feed(frame)

    def dropped(self) -> None:
        """The speech under way is not a turn (too short, or the call went on hold)."""
        self._forget_guess()
        stream, self._stream = self._stream, None
        if stream is not None:
            self._cancels.spawn(stream.cancel())

    def ended(self) -> TranscriptStream | None:
        """The turn is over: its stream, to be finished by ``transcribe``."""
        stream, self._stream = self._stream, None
        return stream

    async def transcribe(self, stream: TranscriptStream | None, turn: TurnEnded) -> str:
        guess, self._guess = self._guess, None
        if guess is not None and guess.matches(turn) and stream is None:
            text = await guess.text
            if text is not None:
                return text
        elif guess is not None:
            guess.drop()
        audio = turn.audio
        if stream is not None and self.cloud is not None:
            try:
                return await stream.finish(audio)
            except ProviderError as exc:
                log.warning("call %s: %s; the local recogniser takes over",
                            self.report.call_id, exc)
                self.report.event("provider_error", exc.report(
                    provider=f"stt:{exc.provider}", fallback="local"))
                # For the rest of the call: a vendor that just failed would likely fail
                # again, each time costing the caller its timeout.
                self.cloud = None
        elif stream is not None:
            await stream.cancel()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.local.transcribe, audio)

    def close(self) -> None:
        self.dropped()
