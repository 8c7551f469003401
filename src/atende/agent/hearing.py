"""How a caller's turn becomes text. With a cloud recogniser the turn is streamed to it from
the moment the caller starts speaking (the pre-roll included), so the transcript is ready
soon after they stop; without one, or once it has failed on this call, the local engine
(Whisper) transcribes the turn's audio, which the endpointer always keeps. Either way the
caller is heard: a failing vendor costs the turn some latency, never its words."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from atende.agent.turns import CallReport
from atende.aio import BackgroundTasks
from atende.providers.errors import ProviderError
from atende.providers.stt.base import CloudTranscriber, SpeechToText, TranscriptStream

log = logging.getLogger(__name__)


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

    def started(self, audio: bytes) -> None:
        """The caller started speaking; ``audio``: the turn so far."""
        self.dropped()
        if self.cloud is not None:
            self._stream = self.cloud.open()
            self._stream.feed(audio)

    def heard(self, frame: bytes) -> None:
        if self._stream is not None:
            self._stream.feed(frame)

    def dropped(self) -> None:
        """The speech under way is not a turn (too short, or the call went on hold)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._cancels.spawn(stream.cancel())

    def ended(self) -> TranscriptStream | None:
        """The turn is over: its stream, to be finished by ``transcribe``."""
        stream, self._stream = self._stream, None
        return stream

    async def transcribe(self, stream: TranscriptStream | None, audio: bytes) -> str:
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
