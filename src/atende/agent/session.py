"""The agent session: listens on a CallLeg, decides when the caller's turn ends, asks the
brain, speaks the reply, and stops speaking the moment the caller barges in."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

from atende.agent.brain import RuleBrain
from atende.agent.turns import SessionObserver, Turn
from atende.agent.vad import Endpointer, SpeechStarted, TurnEnded, VadConfig
from atende.aio import BackgroundTasks
from atende.channels.leg import (
    AudioIn,
    CallLeg,
    DtmfIn,
    HoldChanged,
    LegEnded,
    PlayoutDone,
    PlayoutStarted,
)
from atende.providers.stt.base import SpeechToText
from atende.providers.tts.base import CachedTTS, split_sentences

log = logging.getLogger(__name__)


@dataclass
class _Utterance:
    uid: str
    text: str
    intent: str | None
    action: str | None
    caller_end_at: float | None  # loop time; None for the greeting
    sentences: int = 0
    queued: int = 0
    done: int = 0
    first_audio_at: float | None = None
    last_audio_at: float | None = None
    played_ms: int = 0
    interrupted: bool = False
    finished: bool = False
    tts_ms: int = 0
    stt_ms: int | None = None
    marks: set[str] = field(default_factory=set)


class AgentSession:
    def __init__(self, leg: CallLeg, brain: RuleBrain, stt: SpeechToText, tts: CachedTTS,
                 executor: Executor, observer: SessionObserver | None = None,
                 vad: VadConfig | None = None, endpointer: Endpointer | None = None) -> None:
        self.leg = leg
        self.brain = brain
        self.stt = stt
        self.tts = tts
        self.executor = executor
        self.observer = observer
        self.endpointer = endpointer or Endpointer(vad)
        self._utterances: dict[str, _Utterance] = {}
        self._current: _Utterance | None = None
        self._speak_task: asyncio.Task[None] | None = None
        self._think_tasks = BackgroundTasks()
        self._hangup_tasks = BackgroundTasks()
        self._seq = 0
        self._offset = 0.0
        self.barge_ins = 0

    def _wall(self, loop_time: float) -> float:
        return loop_time + self._offset

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._offset = time.time() - loop.time()
        greeting = self.brain.greeting()
        if greeting:
            self._start_speaking(greeting, None, None, None)
        try:
            while True:
                ev = await self.leg.events.get()
                if isinstance(ev, AudioIn):
                    for vev in self.endpointer.feed(ev.pcm, ev.at):
                        if isinstance(vev, SpeechStarted):
                            self._on_speech_started(vev)
                        else:
                            self._on_turn_ended(vev)
                elif isinstance(ev, PlayoutStarted):
                    self._on_playout_started(ev)
                elif isinstance(ev, PlayoutDone):
                    self._on_playout_done(ev)
                elif isinstance(ev, DtmfIn):
                    log.info("call %s: DTMF %s", self.leg.info.id, ev.digit)
                    if self.observer:
                        self.observer.on_dtmf(self.leg.info.id, ev.digit, self._wall(ev.at))
                elif isinstance(ev, HoldChanged):
                    log.info("call %s: %s", self.leg.info.id,
                             "on hold" if ev.on_hold else "resumed")
                    if self.observer:
                        self.observer.on_hold(self.leg.info.id, ev.on_hold, self._wall(ev.at))
                    if ev.on_hold:
                        self._interrupt()
                        self.endpointer.reset()
                elif isinstance(ev, LegEnded):
                    break
        finally:
            self._shutdown()

    # listening --------------------------------------------------------------------------
    def _on_speech_started(self, ev: SpeechStarted) -> None:
        if self._current is not None and not self._current.finished:
            log.info("call %s: barge-in", self.leg.info.id)
            self.barge_ins += 1
            self._interrupt()

    def _on_turn_ended(self, ev: TurnEnded) -> None:
        self._think_tasks.spawn(self._respond(ev))

    async def _respond(self, ev: TurnEnded) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        text = await loop.run_in_executor(self.executor, self.stt.transcribe, ev.audio)
        stt_ms = int((loop.time() - t0) * 1000)
        if not text.strip() or self.leg.ended:
            return
        log.info("call %s: caller said %r (stt %d ms)", self.leg.info.id, text, stt_ms)
        self._record(Turn("caller", text, self._wall(ev.onset_at), self._wall(ev.end_at),
                          stt_ms=stt_ms))
        if self.endpointer.in_speech:
            return  # the caller kept talking: answer the next turn instead of talking over
        reply = self.brain.reply(text)
        if reply.outcome is not None and self.observer is not None:
            self.observer.on_outcome(self.leg.info.id, reply.outcome, reply.fields)
        self._start_speaking(reply.text, reply.intent, reply.action, ev.end_at, stt_ms)

    # speaking ---------------------------------------------------------------------------
    def _start_speaking(self, text: str, intent: str | None, action: str | None,
                        caller_end_at: float | None, stt_ms: int | None = None) -> None:
        self._interrupt()
        self._seq += 1
        utt = _Utterance(f"u{self._seq}", text, intent, action, caller_end_at, stt_ms=stt_ms)
        self._current = utt
        self._utterances[utt.uid] = utt
        self._speak_task = asyncio.get_running_loop().create_task(self._speak(utt))

    async def _speak(self, utt: _Utterance) -> None:
        loop = asyncio.get_running_loop()
        sentences = split_sentences(utt.text) or [utt.text]
        utt.sentences = len(sentences)
        for i, sentence in enumerate(sentences):
            t0 = loop.time()
            pcm = self.tts.cached(sentence)
            if pcm is None:
                pcm = await loop.run_in_executor(self.executor, self.tts.synthesize, sentence)
            utt.tts_ms += int((loop.time() - t0) * 1000)
            if utt.interrupted or self.leg.ended:
                return
            mark = f"{utt.uid}:{i}"
            utt.marks.add(mark)
            utt.queued += 1
            self.leg.play(pcm, mark)

    def _interrupt(self) -> None:
        utt = self._current
        if utt is None or utt.finished:
            return
        utt.interrupted = True
        if self._speak_task is not None:
            self._speak_task.cancel()
        self.leg.clear()  # queues PlayoutDone(interrupted) for what was pending
        if utt.queued == utt.done:
            self._finish(utt, asyncio.get_running_loop().time())

    def _utt_for(self, mark: str) -> _Utterance | None:
        return self._utterances.get(mark.split(":")[0])

    def _on_playout_started(self, ev: PlayoutStarted) -> None:
        utt = self._utt_for(ev.mark)
        if utt is not None and utt.first_audio_at is None:
            utt.first_audio_at = ev.at

    def _on_playout_done(self, ev: PlayoutDone) -> None:
        utt = self._utt_for(ev.mark)
        if utt is None or utt.finished:
            return
        utt.done += 1
        utt.played_ms += ev.played_ms
        utt.last_audio_at = ev.at
        if ev.interrupted:
            utt.interrupted = True
        all_done = utt.done >= utt.sentences and utt.sentences > 0
        if all_done or (utt.interrupted and utt.done >= utt.queued):
            self._finish(utt, ev.at)

    def _finish(self, utt: _Utterance, at: float) -> None:
        utt.finished = True
        self._utterances.pop(utt.uid, None)
        if self._current is utt:
            self._current = None
        started = utt.first_audio_at if utt.first_audio_at is not None else at
        latency = None
        if utt.caller_end_at is not None and utt.first_audio_at is not None:
            latency = int((utt.first_audio_at - utt.caller_end_at) * 1000)
        self._record(Turn("assistant", utt.text, self._wall(started), self._wall(at),
                          intent=utt.intent, interrupted=utt.interrupted, latency_ms=latency,
                          stt_ms=utt.stt_ms, tts_ms=utt.tts_ms, played_ms=utt.played_ms))
        if utt.action == "hangup" and not utt.interrupted and not self.leg.ended:
            # Not a think task: it must outlive the session loop, which ends on LegEnded.
            self._hangup_tasks.spawn(self.leg.hangup("assistant_hangup"))

    def _record(self, turn: Turn) -> None:
        if self.observer is not None:
            try:
                self.observer.on_turn(self.leg.info.id, turn)
            except Exception:
                log.exception("could not record a turn")

    def _shutdown(self) -> None:
        if self._speak_task is not None:
            self._speak_task.cancel()
        self._think_tasks.cancel_all()
        utt = self._current
        if utt is not None and not utt.finished:
            utt.interrupted = True
            self._finish(utt, asyncio.get_running_loop().time())
