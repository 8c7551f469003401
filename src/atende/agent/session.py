"""The agent session: listens on a CallLeg, decides when the caller's turn ends, asks the
brain, speaks the reply sentence by sentence as the brain produces it, and stops speaking the
moment the caller barges in. When a provider fails it speaks the fallback: never dead air.

Turn-taking (``TurnPolicy``): a barge-in needs ``min_barge_in_ms`` of caller speech; if what
interrupted turns out to be a backchannel ("uh-huh") or noise, the assistant takes up again
from the sentence it was cut in. A silent caller is reprompted, and after repeated silence the
call is ended. On calls it places, the session can first listen for an answering machine
(``VoicemailDetector``) and hang up or leave a message instead of greeting."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from concurrent.futures import Executor
from contextlib import aclosing
from dataclasses import replace

from atende.agent.actions import Brain, LegActions, Speech
from atende.agent.fallback import Fallback, MessageTaker, fallback_speech
from atende.agent.hearing import Hearing
from atende.agent.hold import HOLD_OVER, HoldMusic
from atende.agent.speaking import Speaker
from atende.agent.turn_policy import SilenceWatch, TurnPolicy
from atende.agent.turns import CallReport, SessionObserver, Turn
from atende.agent.utterance import Utterance, heard_before, sentences
from atende.agent.vad import Endpointer, Paused, SpeechStarted, TurnEnded, VadConfig
from atende.agent.voicemail import Human, LeaveMessage, Machine, VoicemailDetector
from atende.aio import BackgroundTasks
from atende.channels.leg import (
    AudioIn,
    CallLeg,
    DtmfIn,
    HandedOver,
    HoldChanged,
    LegEnded,
    PlayoutDone,
    PlayoutStarted,
)
from atende.media.music import default_hold_music
from atende.providers.errors import ProviderError
from atende.providers.stt.base import CloudTranscriber, SpeechToText, TranscriptStream
from atende.providers.tts.base import CachedStream, CachedTTS
from atende.providers.turn.base import TurnDetector

log = logging.getLogger(__name__)

PAUSE_MS = 200  # silence after which the turn's text is guessed and the turn judged


class AgentSession:
    """The conversation on one call leg with local or cloud speech: listens (VAD, end of turn),
    hears (STT), thinks (the brain), speaks (TTS) sentence by sentence, and lets the
    caller barge in."""

    def __init__(self, leg: CallLeg, brain: Brain, stt: SpeechToText, tts: CachedTTS,
                 executor: Executor, observer: SessionObserver | None = None,
                 vad: VadConfig | None = None, endpointer: Endpointer | None = None,
                 fallback: Fallback | None = None, policy: TurnPolicy | None = None,
                 voicemail: VoicemailDetector | None = None,
                 opening: Speech | None = None, opening_cause: str = "closed",
                 cloud_stt: CloudTranscriber | None = None,
                 cloud_tts: CachedStream | None = None,
                 hold_music: bytes | None = None,
                 turn_detector: TurnDetector | None = None) -> None:
        self.leg = leg
        self.brain = brain
        self.executor = executor
        self.observer = observer
        self.report = CallReport(observer, leg.info.id)
        # The local engines (stt, tts) hear and speak when there is no cloud one, and
        # whenever the cloud one fails.
        self.hearing = Hearing(stt, executor, self.report, cloud_stt)
        self.speaker = Speaker(tts, executor, self.report, cloud_tts)
        self.hold = HoldMusic(leg, hold_music or default_hold_music(), self.report)
        # Pauses are when the local recogniser starts guessing the turn's text and, with an
        # end-of-turn model, when it may judge the caller done (the turn then ends there;
        # the full end-of-turn silence still ends the turns it does not).
        self.turn_detector = turn_detector
        self.endpointer = endpointer or Endpointer(replace(vad or VadConfig(),
                                                           pause_ms=PAUSE_MS))
        self.fallback = fallback or Fallback()
        self.policy = policy or TurnPolicy()
        self.screen = voicemail  # listening for a machine before greeting; None once done
        self.opening = opening  # said and done first instead of the brain's greeting
        self.opening_cause = opening_cause  # of the hang-up, if the opening ends the call
        self._utterances: dict[str, Utterance] = {}
        self._current: Utterance | None = None
        self._speak_task: asyncio.Task[None] | None = None
        self._think_tasks = BackgroundTasks()
        self._call_tasks = BackgroundTasks()  # hang-ups, transfers: outlive the loop
        self._warm_up = BackgroundTasks()  # lines synthesised ahead of need
        self._seq = 0
        self._offset = 0.0
        self.barge_ins = 0
        self._resumable: Utterance | None = None  # cut by a barge-in, maybe by mistake
        self.silence = SilenceWatch(self.policy)
        self._question: str | None = None  # the last one the caller heard, unanswered

    def _wall(self, loop_time: float) -> float:
        return loop_time + self._offset

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._offset = time.time() - loop.time()
        if self.screen is None:
            self._greet()
        lines = self.speaker.unprepared([self.policy.reprompt, self.policy.silence_goodbye])
        if lines:  # usually made for an earlier call already: then no task at all
            self._warm_up.spawn(self._prepare_lines(self._speak_task, lines))
        try:
            while True:
                ev = await self.leg.events.get()
                if isinstance(ev, AudioIn):
                    if self.screen is not None:
                        self._on_screened(ev)
                    else:
                        self._listen(ev)
                elif isinstance(ev, PlayoutStarted):
                    self._on_playout_started(ev)
                elif isinstance(ev, PlayoutDone):
                    self._on_playout_done(ev)
                elif isinstance(ev, DtmfIn):
                    log.info("call %s: DTMF %s", self.leg.info.id, ev.digit)
                    self.silence.answered()
                    if self.observer:
                        self.observer.on_dtmf(self.leg.info.id, ev.digit, self._wall(ev.at))
                elif isinstance(ev, HoldChanged):
                    log.info("call %s: %s", self.leg.info.id,
                             "on hold" if ev.on_hold else "resumed")
                    if self.observer:
                        self.observer.on_hold(self.leg.info.id, ev.on_hold, self._wall(ev.at))
                    self.silence.restart()  # time on hold is not the caller's silence
                    if ev.on_hold:
                        self._interrupt()
                        self.endpointer.reset()
                        self.hearing.dropped()
                elif isinstance(ev, LegEnded | HandedOver):
                    break
        finally:
            self._shutdown()

    async def _prepare_lines(self, opening: asyncio.Task[None] | None, lines: list[str]
                             ) -> None:
        """Once the opening is synthesised, ``lines`` (the reprompt and the goodbye to a
        silent caller): they then start as soon as the silence is long enough."""
        if opening is not None:
            await asyncio.wait([opening])
        try:
            await self.speaker.prepare(lines)
        except Exception:  # said later, it will fail (and be handled) there again
            log.exception("call %s: preparing the reprompt failed", self.leg.info.id)

    def _greet(self) -> None:
        if self.opening is not None:
            self._start_speaking(self.opening, None, hangup_cause=self.opening_cause,
                                 reply=False)
            return
        greeting = self.brain.greeting()
        if greeting:
            self._start_speaking(sentences(greeting), None)

    # answering machines -----------------------------------------------------------------
    def _on_screened(self, ev: AudioIn) -> None:
        assert self.screen is not None
        for verdict in self.screen.feed(ev.pcm, ev.at):
            if isinstance(verdict, Human):
                log.info("call %s: answered by a person (%s)", self.leg.info.id,
                         verdict.reason)
                self.report.event("answered_by", {"answered_by": "human", "reason": verdict.reason})
                self.screen = None
                self.endpointer.reset()
                self._greet()
            elif isinstance(verdict, Machine):
                log.info("call %s: answered by a machine (%s)", self.leg.info.id,
                         verdict.reason)
                self.report.event("answered_by", {"answered_by": "machine",
                                            "reason": verdict.reason})
                if self.observer is not None:
                    self.observer.on_outcome(self.leg.info.id, "voicemail",
                                             {"detected_by": verdict.reason})
                if not self._voicemail_message():
                    self._call_tasks.spawn(self.leg.hangup("voicemail"))
            elif isinstance(verdict, LeaveMessage):
                self.report.event("voicemail_message", {"cue": verdict.reason})
                self._start_speaking(sentences(self._voicemail_message(), hangup=True),
                                     None, hangup_cause="voicemail", reply=False)

    def _voicemail_message(self) -> str:
        c = self.screen.config if self.screen is not None else None
        return (c.message or "") if c is not None and c.action == "leave_message" else ""

    # listening --------------------------------------------------------------------------
    def _listen(self, ev: AudioIn) -> None:
        if self.hold.active:  # the caller hears music and is not listened to
            self.silence.restart()
            if self.hold.due(ev.at):
                self.hold.stop(ev.at, "timeout")
                self._start_speaking(sentences(HOLD_OVER), None, reply=False)
            return
        onset = self.endpointer.onset_at
        turn_ended = False
        events = self.endpointer.feed(ev.pcm, ev.at)
        if onset is not None:
            self.hearing.heard(ev.pcm)  # a frame of the speech under way (or its last)
        for vev in events:
            if isinstance(vev, SpeechStarted):
                self.silence.restart()
                self.hearing.started(self.endpointer.turn_audio)
            elif isinstance(vev, Paused):
                self.hearing.paused(vev)
                if self.turn_detector is not None:
                    self._think_tasks.spawn(self._judge(vev))
            else:
                turn_ended = True
                self._on_turn_ended(vev)
        if onset is not None and not self.endpointer.in_speech and not turn_ended:
            self.hearing.dropped()
            self._take_up_again(onset, "")  # too short to be a turn: a noise
        self._check_barge_in()
        self._check_silence(ev.at)

    def _take_up_again(self, onset: float, heard: str) -> bool:
        """If the speech that began at ``onset`` cut the assistant and was only ``heard``
        (a backchannel, or no words), say again what it cut."""
        cut = self._resumable
        if cut is None or cut.cut_by != onset:
            return False
        log.info("call %s: %s over the assistant; taking up again", self.leg.info.id,
                 repr(heard) if heard.strip() else "a noise")
        self._resume(cut)
        return True

    def _check_barge_in(self) -> None:
        """Caller speech over the assistant's audio stops it once it has lasted
        ``min_barge_in_ms``: whenever it began, the assistant never talks over the caller."""
        utt = self._current
        if utt is None or utt.finished or utt.first_audio_at is None or \
                self.endpointer.voiced_ms < self.policy.min_barge_in_ms:
            return
        log.info("call %s: barge-in", self.leg.info.id)
        self.barge_ins += 1
        utt.cut_by = self.endpointer.onset_at
        self._resumable = utt
        self._interrupt()

    def _idle(self) -> bool:
        """Nobody is speaking and nothing is being prepared: the caller's move."""
        return (self._current is None and not self.endpointer.in_speech
                and not self._think_tasks and not self._call_tasks and not self.leg.on_hold
                and not self.hold.active and not self.leg.ended)

    def _check_silence(self, at: float) -> None:
        p, watch = self.policy, self.silence
        verdict = watch.tick(at, self._idle())
        if verdict == "goodbye":
            log.info("call %s: no answer to %d reprompts; ending the call",
                     self.leg.info.id, watch.reprompts)
            self.report.event("silence_hangup", {"reprompts": watch.reprompts})
            self._start_speaking(sentences(p.silence_goodbye, hangup=True), None,
                                 hangup_cause="silence", reply=False)
        elif verdict == "reprompt":
            self.report.event("reprompt", {"count": watch.reprompts})
            # Asked again with it, so that "yes, I'm here" cannot answer something else.
            text = f"{p.reprompt} {self._question}" if self._question else p.reprompt
            self._start_speaking(sentences(text), None, reply=False)

    async def _judge(self, pause: Paused) -> None:
        """End the turn at ``pause`` if the end-of-turn model hears the caller done."""
        detector = self.turn_detector
        if detector is None:
            return
        loop = asyncio.get_running_loop()
        # Not the recognisers' executor: a verdict must not queue behind transcriptions.
        done = await loop.run_in_executor(None, detector.complete, pause.audio)
        ev = self.endpointer.end_turn(pause) if done and not self.leg.ended else None
        if ev is not None:
            log.debug("call %s: the end-of-turn model ended the turn", self.leg.info.id)
            self._on_turn_ended(ev)

    def _on_turn_ended(self, ev: TurnEnded) -> None:
        self._think_tasks.spawn(self._respond(ev, self.hearing.ended()))

    async def _respond(self, ev: TurnEnded, stream: TranscriptStream | None) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        text = await self.hearing.transcribe(stream, ev)
        stt_ms = int((loop.time() - t0) * 1000)
        if self.leg.ended:
            return
        backchannel = self.policy.is_backchannel(text)
        if text.strip():
            self.report.turn(Turn("caller", text, self._wall(ev.onset_at), self._wall(ev.end_at),
                              stt_ms=stt_ms, intent="backchannel" if backchannel else None))
        if (backchannel or not text.strip()) and self._take_up_again(ev.onset_at, text):
            return
        if not text.strip():
            return
        log.info("call %s: caller said %r (stt %d ms)", self.leg.info.id, text, stt_ms)
        self.silence.answered()
        if self.endpointer.in_speech:
            return  # the caller kept talking: answer the next turn instead of talking over
        brain = self.brain
        self._start_speaking(lambda actions: brain.respond(text, actions), ev.end_at, stt_ms)

    def _resume(self, cut: Utterance) -> None:
        """Say again what a mistaken barge-in cut: from the sentence it was cut in."""
        rest = cut.sentences[cut.completed:]
        if self._current is not None or not rest or self.endpointer.in_speech:
            return
        self._start_speaking(sentences(rest, hangup=cut.hangup), None,
                             hangup_cause=cut.hangup_cause, resumes=cut, reply=cut.reply)

    # speaking ---------------------------------------------------------------------------
    def _start_speaking(self, produce: Speech,
                        caller_end_at: float | None, stt_ms: int | None = None,
                        hangup_cause: str = "assistant_hangup",
                        resumes: Utterance | None = None, reply: bool = True) -> None:
        self._interrupt()
        self._resumable = None
        self._seq += 1
        utt = Utterance(f"u{self._seq}", caller_end_at, stt_ms=stt_ms,
                         think_at=asyncio.get_running_loop().time(),
                         hangup_cause=hangup_cause, resumes=resumes, reply=reply)
        utt.drained.set()
        self._current = utt
        self._utterances[utt.uid] = utt
        stream = produce(self._actions(utt))
        self._speak_task = asyncio.get_running_loop().create_task(self._speak(utt, stream))

    def _actions(self, utt: Utterance) -> LegActions:
        """What the brain does while saying ``utt`` lands on the call once it was heard."""

        def intent(name: str | None) -> None:
            utt.intent = name

        def end_after_speaking() -> None:
            utt.hangup = True

        def first_token() -> None:
            if utt.llm_ms is None and utt.think_at is not None:
                utt.llm_ms = int((asyncio.get_running_loop().time() - utt.think_at) * 1000)

        return LegActions(self.leg, utt.drained, self.observer, self.report, self.hold,
                          self._call_tasks, end_after_speaking, intent, first_token)

    async def _speak(self, utt: Utterance, stream: AsyncGenerator[str, None]) -> None:
        try:
            try:
                async for sentence in stream:
                    if not await self._say(utt, sentence):
                        return
            finally:
                await stream.aclose()  # now, not when collected: its memory must settle
        except ProviderError as exc:
            await self._fall_back(utt, exc)
        finally:
            utt.closed = True
            self._settle(utt, asyncio.get_running_loop().time())

    async def _say(self, utt: Utterance, sentence: str) -> bool:
        """Synthesise one sentence and queue its audio as it comes (one marked segment,
        however many pieces); False once the utterance is interrupted."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        mark: str | None = None
        async with aclosing(self.speaker.pieces(sentence)) as pieces:
            async for pcm in pieces:
                if utt.tts_ms is None:
                    utt.tts_ms = int((loop.time() - t0) * 1000)
                if utt.interrupted or self.leg.ended:
                    return False
                if mark is None:
                    self.hold.stop(loop.time(), "speech")  # speaking takes them off hold
                    mark = f"{utt.uid}:{len(utt.sentences)}"
                    utt.sentences.append(sentence)
                    utt.queued += 1
                    utt.drained.clear()
                self.leg.play(pcm, mark, more=True)
        if utt.interrupted or self.leg.ended:
            return False
        if mark is not None:
            self.leg.play(b"", mark)  # the sentence is all there
        return True

    async def _fall_back(self, utt: Utterance, exc: ProviderError) -> None:
        fb = self.fallback
        log.warning("call %s: %s; fallback: %s", self.leg.info.id, exc, fb.action)
        self.report.event("fallback", {"provider": exc.provider, "kind": exc.kind,
                                 "action": fb.action})
        if fb.action in ("message", "transfer"):
            self.brain = MessageTaker()  # a transfer that fails takes a message
        async with aclosing(fallback_speech(fb)(self._actions(utt))) as lines:
            async for sentence in lines:
                if not await self._say(utt, sentence):
                    return

    def _interrupt(self) -> None:
        utt = self._current
        if utt is None or utt.finished:
            return
        utt.interrupted = True
        utt.closed = True
        if self._speak_task is not None:
            self._speak_task.cancel()
        self.leg.clear()  # queues PlayoutDone(interrupted) for what was pending
        self._settle(utt, asyncio.get_running_loop().time())

    def _utt_for(self, mark: str) -> Utterance | None:
        return self._utterances.get(mark.split(":")[0])

    def _on_playout_started(self, ev: PlayoutStarted) -> None:
        utt = self._utt_for(ev.mark)
        if utt is None:
            return
        if utt.first_audio_at is None:
            utt.first_audio_at = ev.at
        utt.started = max(utt.started, int(ev.mark.split(":")[1]) + 1)

    def _on_playout_done(self, ev: PlayoutDone) -> None:
        if self.hold.played(ev.mark):
            return
        utt = self._utt_for(ev.mark)
        if utt is None or utt.finished:
            return
        utt.done += 1
        utt.completed += 0 if ev.interrupted else 1
        utt.played_ms += ev.played_ms
        utt.last_audio_at = ev.at
        if ev.interrupted:
            utt.interrupted = True
            utt.closed = True
        if utt.done >= utt.queued:
            utt.drained.set()
        self._settle(utt, ev.at)

    def _settle(self, utt: Utterance, at: float) -> None:
        """Finish ``utt`` once nothing more will be said and all of it was played."""
        if utt.closed and not utt.finished and utt.done >= utt.queued:
            self._finish(utt, at)

    def _finish(self, utt: Utterance, at: float) -> None:
        utt.finished = True
        self._utterances.pop(utt.uid, None)
        if self._current is utt:
            self._current = None
        heard = utt.sentences[: utt.started] if utt.interrupted else utt.sentences
        text = " ".join(heard)
        if utt.reply:
            # A reply taken up again after a mistaken barge-in is remembered as one reply.
            self.brain.said(" ".join(heard_before(utt) + heard), utt.interrupted)
            asked = [s for s in heard if s.rstrip().endswith("?")]
            self._question = asked[-1] if asked and not utt.interrupted else None
        if utt.sentences:
            started = utt.first_audio_at if utt.first_audio_at is not None else at
            latency = None
            if utt.caller_end_at is not None and utt.first_audio_at is not None:
                latency = int((utt.first_audio_at - utt.caller_end_at) * 1000)
            self.report.turn(Turn("assistant", text, self._wall(started), self._wall(at),
                              intent=utt.intent, interrupted=utt.interrupted,
                              latency_ms=latency, stt_ms=utt.stt_ms, llm_ms=utt.llm_ms,
                              tts_ms=utt.tts_ms, played_ms=utt.played_ms))
        if utt.hangup and not utt.interrupted and not self.leg.ended:
            if utt.hangup_cause == "voicemail" and self.observer is not None:
                self.observer.on_outcome(self.leg.info.id, "voicemail",
                                         {"message_left": text})
            self._call_tasks.spawn(self.leg.hangup(utt.hangup_cause))

    def _shutdown(self) -> None:
        if self._speak_task is not None:
            self._speak_task.cancel()
        self._think_tasks.cancel_all()
        self._warm_up.cancel_all()
        self.hearing.close()
        self.hold.stop(asyncio.get_running_loop().time(), "hangup")
        utt = self._current
        if utt is not None and not utt.finished:
            utt.interrupted = True
            self._finish(utt, asyncio.get_running_loop().time())
