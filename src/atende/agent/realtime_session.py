"""The realtime session: a speech-to-speech model (OpenAI Realtime, …) holds the whole
conversation; atende carries audio both ways, plays what the model says with marks so it
knows what the caller actually heard, runs the model's tools on the call, and keeps the
call's record (turns, outcome, events).

Barge-in: when the vendor hears the caller start speaking (or says its reply is void), the
audio still queued is dropped at once, late audio of the cut reply is discarded, and the
vendor is told how many milliseconds of it were played, once the channel has said so.

When the vendor fails (cannot connect, drops the socket, a reply fails) the assistant's
fallback is spoken with the local voice and the call goes on in the pipeline mode (local
speech engines, the assistant's language models or rules): never dead air."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from atende.agent.actions import Brain, LegActions, Speech
from atende.agent.fallback import Fallback, MessageTaker, fallback_speech
from atende.agent.hold import HoldMusic
from atende.agent.session import AgentSession
from atende.agent.tools import ToolBox
from atende.agent.turn_policy import Keypad, SilenceWatch, TurnPolicy
from atende.agent.turns import CallReport, SessionObserver, Turn
from atende.agent.vad import rms_dbfs
from atende.aio import BackgroundTasks
from atende.channels.leg import (
    AudioIn,
    CallLeg,
    DtmfIn,
    HandedOver,
    HoldChanged,
    LegEnded,
    LegEvent,
    PlayoutDone,
    PlayoutStarted,
)
from atende.media.music import default_hold_music
from atende.providers.errors import ProviderError
from atende.providers.llm.base import ToolCall
from atende.providers.realtime.base import (
    AssistantText,
    AudioOut,
    CallerStarted,
    CallerStopped,
    CallerText,
    Ended,
    Failed,
    Interrupted,
    RealtimeConfig,
    RealtimeEvent,
    ReplyDone,
    ToolRequest,
)
from atende.providers.realtime.connection import RealtimeConnection

log = logging.getLogger(__name__)

CALLER_AUDIBLE_DBFS = -45.0  # louder frames count as the caller making a sound
GOODBYE_WAIT_S = 8.0  # for the model's goodbye to a silent caller, before hanging up
# A vendor that never says its reply is over may still send more of it after all it sent
# has played (its network or voice fell behind): the reply is over after this much quiet.
REPLY_GAP_S = 1.5

# The pipeline session that takes the call over when the vendor fails: it opens with the
# given speech; brain None: the assistant's own.
Pipeline = Callable[[Speech, Brain | None], AgentSession]


@dataclass
class _Item:
    """One thing the assistant says (a vendor item), as played on the call."""

    id: str
    caller_end_at: float | None  # the caller's turn it answers ended then
    queued: int = 0
    done: int = 0
    played_ms: int = 0
    first_audio_at: float | None = None
    last_audio_at: float | None = None
    text: str = ""
    cut: bool = False  # the caller barged in: later audio of it is dropped
    produced: bool = False  # the vendor finished its reply
    heard_at: float | None = None  # all it sent had played then; more may come (see REPLY_GAP_S)
    truncated: bool = False  # the vendor was told what was heard

    @property
    def playing(self) -> bool:
        return self.done < self.queued


class RealtimeSession:
    """The conversation on one call leg held by a speech-to-speech model (OpenAI Realtime,
    ElevenLabs, Gemini Live): audio both ways, barge-in truncating the model's reply to
    what was heard, the model's tools acting on the call."""

    def __init__(self, leg: CallLeg, connection: RealtimeConnection, config: RealtimeConfig,
                 tools: ToolBox, observer: SessionObserver | None = None,
                 fallback: Fallback | None = None, pipeline: Pipeline | None = None,
                 hold_music: bytes | None = None, policy: TurnPolicy | None = None) -> None:
        self.leg = leg
        self.conn = connection
        self.protocol = connection.protocol
        self.config = config
        self.tools = tools
        self.observer = observer
        self.report = CallReport(observer, leg.info.id)
        self.fallback = fallback or Fallback()
        self.pipeline = pipeline
        self.hold = HoldMusic(leg, hold_music or default_hold_music(), self.report)
        self.policy = policy or TurnPolicy()
        # A vendor that reprompts by itself (ElevenLabs) is left to it: twice is too many.
        self.silence = SilenceWatch(replace(self.policy, reprompt_after_ms=None)
                                    if self.protocol.handles_silence else self.policy)
        self.keypad = Keypad()
        self._goodbye_at: float | None = None  # asked the model to say goodbye, then
        self.hangup_cause: str | None = None  # set: hang up once everything was heard
        self.drained = asyncio.Event()  # nothing being said or still to be said
        self.drained.set()
        self.barge_ins = 0
        self.replies_done = 0  # the vendor's replies over (finished or cancelled)
        self._items: dict[str, _Item] = {}
        self._cut_ids: set[str] = set()  # their late audio is dropped
        self._producing = False
        self._vendor_gone = False  # it ended the conversation: nothing more is sent
        self._caller_started_at: float | None = None
        self._caller_end_at: float | None = None
        self._tool_tasks = BackgroundTasks()
        self._call_tasks = BackgroundTasks()  # hang-ups, transfers: outlive the loop
        # The model's tools act once what it said before calling them has been heard.
        self._actions = LegActions(leg, self.drained, observer, self.report, self.hold,
                                   self._call_tasks, self._end_after_speaking)
        self._offset = 0.0

    def _wall(self, loop_time: float) -> float:
        return loop_time + self._offset

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def run(self) -> None:
        self._offset = time.time() - self._now()
        try:
            await self.conn.open(self.config)
        except ProviderError as exc:
            await self._fall_back(exc)
            return
        failure = await self._converse()
        if failure is not None and not self.leg.ended:
            await self._fall_back(failure)

    async def _converse(self) -> ProviderError | None:
        inbox: asyncio.Queue[LegEvent | RealtimeEvent] = asyncio.Queue()
        pumps = BackgroundTasks()
        pumps.spawn(self._pump_leg(inbox))
        pumps.spawn(self._pump_vendor(inbox))
        try:
            while True:
                ev = await inbox.get()
                if isinstance(ev, LegEnded | HandedOver):
                    return None
                if isinstance(ev, Failed) and ev.fatal:
                    return ProviderError(self.protocol.name, ev.kind, ev.message)
                self._handle(ev)
        finally:
            pumps.cancel_all()
            self._tool_tasks.cancel_all()
            self.hold.stop(self._now(), "hangup")
            await self.conn.close()
            self._finish_all()

    async def _pump_leg(self, inbox: asyncio.Queue[LegEvent | RealtimeEvent]) -> None:
        while True:
            inbox.put_nowait(await self.leg.events.get())

    async def _pump_vendor(self, inbox: asyncio.Queue[LegEvent | RealtimeEvent]) -> None:
        async for ev in self.conn.events():
            inbox.put_nowait(ev)

    def _handle(self, ev: LegEvent | RealtimeEvent) -> None:
        if isinstance(ev, AudioIn):
            if self.hold.active:  # on hold: the music plays and the model hears nothing
                if self.hold.due(ev.at):
                    self.hold.stop(ev.at, "timeout")
            elif not self.leg.on_hold and not self._vendor_gone:
                self.protocol.audio(ev.pcm)
                self.conn.flush()
            self._tick(ev)
        elif isinstance(ev, AudioOut):
            self._play(ev)
        elif isinstance(ev, PlayoutStarted | PlayoutDone):
            self._on_playout(ev)
        elif isinstance(ev, CallerStarted | Interrupted):
            if isinstance(ev, CallerStarted):
                self._caller_started_at = self._now()
            self._cut()
        elif isinstance(ev, CallerStopped):
            self._caller_end_at = self._now()
        elif isinstance(ev, CallerText):
            self.silence.answered()
            self._caller_said(ev.text)
        elif isinstance(ev, AssistantText):
            item = self._items.get(ev.item)
            if item is not None:
                item.text = ev.text
        elif isinstance(ev, ToolRequest):
            self._tool_tasks.spawn(self._run_tool(ev))
        elif isinstance(ev, ReplyDone):
            self.replies_done += 1
            self._reply_over()
        elif isinstance(ev, Ended):
            log.info("call %s: %s ended the conversation", self.leg.info.id,
                     self.protocol.name)
            self.report.event("provider_ended", {"provider": self.protocol.name})
            self._vendor_gone = True
            self.hangup_cause = self.hangup_cause or "assistant_hangup"
            self._reply_over()
        elif isinstance(ev, Failed):
            log.warning("call %s: %s: %s", self.leg.info.id, self.protocol.name, ev.message)
            self.report.event("provider_error", {"provider": self.protocol.name, "kind": ev.kind,
                                           "message": ev.message})
        elif isinstance(ev, DtmfIn):
            if self.observer is not None:
                self.observer.on_dtmf(self.leg.info.id, ev.digit, self._wall(ev.at))
            self.silence.answered()
            self._keys(self.keypad.press(ev.digit, ev.at))
        elif isinstance(ev, HoldChanged):
            if self.observer is not None:
                self.observer.on_hold(self.leg.info.id, ev.on_hold, self._wall(ev.at))
            self.silence.restart()  # time on hold is not the caller's silence
            if ev.on_hold:
                self._cut()

    def _reply_over(self) -> None:
        self._producing = False
        for item in list(self._items.values()):
            item.produced = True
            self._settle(item)
        self._check_drained()

    # what the assistant says ------------------------------------------------------------
    def _play(self, ev: AudioOut) -> None:
        if ev.item in self._cut_ids:
            return  # late audio of a reply the caller cut
        item = self._items.get(ev.item)
        if item is None:
            item = self._items[ev.item] = _Item(ev.item, self._caller_end_at)
            self._caller_end_at = None
        if item.cut or self.leg.on_hold or self.leg.ended or not ev.pcm:
            return
        item.heard_at = None
        self.hold.stop(self._now(), "speech")  # the model speaking takes them off hold
        if self._goodbye_at is not None:
            self.hangup_cause = "silence"  # once this goodbye has been heard
        item.queued += 1
        self._producing = True
        self.drained.clear()
        self.leg.play(ev.pcm, f"{item.id}:{item.queued}")

    def _on_playout(self, ev: PlayoutStarted | PlayoutDone) -> None:
        if isinstance(ev, PlayoutDone) and self.hold.played(ev.mark):
            return
        item = self._items.get(ev.mark.rpartition(":")[0])
        if item is None:
            return
        if isinstance(ev, PlayoutStarted):
            if item.first_audio_at is None:
                item.first_audio_at = ev.at
            return
        item.done += 1
        item.played_ms += ev.played_ms
        item.last_audio_at = ev.at
        if ev.interrupted:
            item.cut = True
        if not item.playing and not self.protocol.signals_reply_end:
            # A vendor that never says its reply is over: all it sent has been played.
            item.heard_at = ev.at
            self._producing = any(i.playing for i in self._items.values())
        self._settle(item)
        self._check_drained()

    def _cut(self) -> None:
        """The caller spoke (or the vendor voided its reply): stop what is being said."""
        cut = False
        for item in self._items.values():
            if not item.cut and (item.playing
                                 or not (item.produced or item.heard_at is not None)):
                item.cut = True
                cut = cut or item.playing
        if cut:
            self.barge_ins += 1
            log.info("call %s: barge-in", self.leg.info.id)
            self.leg.clear()  # reports what each cut segment played, as PlayoutDone
        for item in list(self._items.values()):
            self._settle(item)

    def _settle(self, item: _Item) -> None:
        if item.playing:
            return
        if item.cut and not item.truncated and item.queued:
            item.truncated = True
            self.protocol.interrupted(item.id, item.played_ms)
            self.conn.flush()
        if item.cut or item.produced:
            self._finish(item)

    def _finish(self, item: _Item) -> None:
        self._items.pop(item.id, None)
        if item.cut:
            self._cut_ids.add(item.id)
        if not item.queued:
            return
        at = item.last_audio_at or self._now()
        latency = None
        if item.caller_end_at is not None and item.first_audio_at is not None:
            latency = int((item.first_audio_at - item.caller_end_at) * 1000)
        self.report.turn(Turn("assistant", item.text, self._wall(item.first_audio_at or at),
                          self._wall(at), interrupted=item.cut, latency_ms=latency,
                          played_ms=item.played_ms))

    def _finish_all(self) -> None:
        for item in list(self._items.values()):
            item.cut = item.cut or item.playing
            self._finish(item)

    def _end_after_speaking(self) -> None:
        self.hangup_cause = "assistant_hangup"
        self._check_drained()

    def _check_drained(self) -> None:
        if self._producing or any(i.playing for i in self._items.values()):
            return
        self.drained.set()
        if self.hangup_cause is not None and not self.leg.ended:
            cause, self.hangup_cause = self.hangup_cause, None
            self._call_tasks.spawn(self.leg.hangup(cause))

    # what the model cannot hear: keys, and silence -------------------------------------
    def _tick(self, ev: AudioIn) -> None:
        """The line's clock (a frame every 20 ms): keys to pass on, silence to act on."""
        self._keys(self.keypad.due(ev.at))
        for item in list(self._items.values()):
            if item.heard_at is not None and ev.at - item.heard_at >= REPLY_GAP_S:
                item.produced = True
                self._settle(item)
        if rms_dbfs(ev.pcm) > CALLER_AUDIBLE_DBFS:
            self.silence.restart()  # someone is making a sound: not silence
        if self._goodbye_at is not None:
            if ev.at - self._goodbye_at > GOODBYE_WAIT_S and self.hangup_cause is None \
                    and not self.leg.ended:
                self._call_tasks.spawn(self.leg.hangup("silence"))  # it said nothing
            return
        idle = (self.drained.is_set() and not self._producing and not self._tool_tasks
                and not self.leg.on_hold and not self.hold.active and not self._vendor_gone)
        verdict = self.silence.tick(ev.at, idle)
        p = self.policy
        if verdict == "reprompt":
            self.report.event("reprompt", {"count": self.silence.reprompts})
            self._tell(f"The caller has said nothing for {(p.reprompt_after_ms or 0) / 1000:g} "
                       "seconds. "
                       f'Check briefly that they are still there, e.g. "{p.reprompt}"')
        elif verdict == "goodbye":
            log.info("call %s: no answer to %d reprompts; ending the call",
                     self.leg.info.id, self.silence.reprompts)
            self.report.event("silence_hangup", {"reprompts": self.silence.reprompts})
            self._goodbye_at = ev.at
            self._tell("The caller still says nothing. Say goodbye in one short sentence, "
                       f'e.g. "{p.silence_goodbye}" The call ends after it.')

    def _keys(self, keys: str | None) -> None:
        if keys:
            log.info("call %s: keys %s passed to the model", self.leg.info.id, keys)
            self._tell(f"The caller pressed {' '.join(keys)} on their phone's keypad.")

    def _tell(self, text: str) -> None:
        if not self._vendor_gone and not self.leg.ended:
            self.protocol.prompt(text, respond=True)
            self.conn.flush()

    # what the caller says and the model does --------------------------------------------
    def _caller_said(self, text: str) -> None:
        if not text.strip():
            return
        now = self._now()
        log.info("call %s: caller said %r", self.leg.info.id, text)
        self.report.turn(Turn("caller", text, self._wall(self._caller_started_at or now),
                          self._wall(now)))

    async def _run_tool(self, request: ToolRequest) -> None:
        result = await self.tools.run(ToolCall(request.call_id, request.name,
                                               request.arguments), self._actions)
        if self.leg.ended:
            return
        self.protocol.tool_result(request, result.content, respond=not result.stop)
        self.conn.flush()

    # when the vendor fails --------------------------------------------------------------
    async def _fall_back(self, exc: ProviderError) -> None:
        fb = self.fallback
        log.warning("call %s: %s; fallback: %s", self.leg.info.id, exc, fb.action)
        self.report.event("fallback", {"provider": exc.provider, "kind": exc.kind,
                                 "action": fb.action})
        self.leg.clear()
        if self.pipeline is None:
            await self.leg.hangup("agent_error")
            return
        brain = MessageTaker() if fb.action in ("message", "transfer") else None
        await self.pipeline(fallback_speech(fb), brain).run()

