"""A bridged call written down as it happens (``transcribe`` on /v1/bridge): each side's
speech is cut into utterances by the voice activity detector and recognised by the local
engine in the speech workers, and each utterance becomes a turn of the call's record,
speaker ``caller`` or ``callee``. The call's audio is not held up by any of it."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from datetime import timedelta

from atende.agent.vad import Endpointer, TurnEnded
from atende.aio import BackgroundTasks
from atende.calls.records import CallRecords
from atende.providers.stt.base import SpeechToText
from atende.store.writes import insert_turn

log = logging.getLogger(__name__)


class Transcripts:
    """Makes each bridged call's transcript with the local recogniser."""

    def __init__(self, stt: SpeechToText, executor: Executor, records: CallRecords) -> None:
        self.stt = stt
        self.executor = executor
        self.records = records

    def for_call(self, call_id: str) -> CallTranscript:
        return CallTranscript(call_id, self)


class CallTranscript:
    """One call's two sides, each with its own endpointer."""

    def __init__(self, call_id: str, parts: Transcripts) -> None:
        self.call_id = call_id
        self._parts = parts
        self._sides = {"caller": Endpointer(), "callee": Endpointer()}
        self._pending = BackgroundTasks()

    def heard(self, side: str, frame: bytes, at: float) -> None:
        """A 20 ms frame (16 kHz) of ``side`` (caller or callee), arrived at ``at``."""
        for event in self._sides[side].feed(frame, at):
            if isinstance(event, TurnEnded):
                self._pending.spawn(self._write(side, event))

    async def _write(self, side: str, turn: TurnEnded) -> None:
        loop = asyncio.get_running_loop()
        try:
            text = (await loop.run_in_executor(self._parts.executor,
                                               self._parts.stt.transcribe, turn.audio)).strip()
        except Exception:
            log.exception("call %s: transcribing the %s failed", self.call_id, side)
            return
        if not text:
            return
        # The endpointer's times are the event loop's: to the records' wall clock.
        now = self._parts.records.wall()
        started = now - timedelta(seconds=loop.time() - turn.onset_at)
        ended = started + timedelta(seconds=turn.end_at - turn.onset_at)
        self._parts.records.store.submit(insert_turn(
            self.call_id, speaker=side, text=text, started_at=started, ended_at=ended))
        self._parts.records.events.publish(self.call_id, "call.turn",
                                           {"speaker": side, "text": text})

    async def close(self) -> None:
        """Once the call is over: what was being said when it ended, and the utterances
        still being recognised, are written."""
        for side, endpointer in self._sides.items():
            onset = endpointer.onset_at
            if onset is not None:
                end = asyncio.get_running_loop().time()
                self._pending.spawn(self._write(side, TurnEnded(endpointer.turn_audio,
                                                                onset, end)))
        await self._pending.wait()
