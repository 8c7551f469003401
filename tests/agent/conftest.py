"""An agent session on an in-memory leg, with the real speech engines (Whisper, Piper): the
caller's side speaks in real time and what the session reports is recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from atende.agent.actions import Brain, Speech
from atende.agent.brain import DEFAULT_RULES, RuleBrain
from atende.agent.fallback import Fallback
from atende.agent.realtime_session import RealtimeSession
from atende.agent.session import AgentSession
from atende.agent.tools import BUILTINS, ToolBox
from atende.agent.turn_policy import TurnPolicy
from atende.agent.turns import Turn
from atende.channels.leg import CallInfo, CallLeg, TransferResult
from atende.channels.memory import MemoryLeg
from atende.media.audio import FRAME_BYTES
from atende.providers.realtime.base import RealtimeConfig, RealtimeSettings
from atende.providers.realtime.factory import realtime_connection
from atende.providers.stt.whisper import WhisperSTT
from atende.providers.tts.base import CachedTTS
from atende.providers.tts.piper import PiperTTS
from tests.peers.realtime import FakeServer


@pytest.fixture(scope="module")
def engines() -> tuple[WhisperSTT, CachedTTS]:
    return WhisperSTT(), CachedTTS(PiperTTS(steady=True))


@pytest.fixture(scope="module")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


@dataclass
class Record:
    """What the session reports about the call (the engine stores the same)."""

    turns: list[Turn] = field(default_factory=list)
    outcomes: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    transfers: list[tuple[str, bool]] = field(default_factory=list)  # (to, still talking)

    def on_turn(self, call_id: str, turn: Turn) -> None:
        self.turns.append(turn)

    def on_dtmf(self, call_id: str, digit: str, at: float) -> None:
        pass

    def on_hold(self, call_id: str, on_hold: bool, at: float) -> None:
        pass

    def on_outcome(self, call_id: str, outcome: str, fields: dict[str, str]) -> None:
        self.outcomes.append((outcome, fields))

    def on_event(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))

    async def transfer_call(self, leg: CallLeg, to: str, bridge: bool = False
                            ) -> TransferResult:
        self.transfers.append((to, leg.outbound.busy))
        return await leg.transfer(to)

    def said(self, speaker: str) -> list[str]:
        return [t.text for t in self.turns if t.speaker == speaker]



@dataclass
class Call:
    leg: MemoryLeg
    session: AgentSession
    record: Record
    task: asyncio.Task[None]
    speaking: bool = False
    line: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.line = asyncio.get_running_loop().create_task(self._silence())

    async def _silence(self) -> None:
        """The caller's microphone between their words: silence, in real time."""
        while not self.leg.ended:
            if self.speaking:
                await asyncio.sleep(0.01)
            else:
                await self.leg.speak(bytes(FRAME_BYTES))

    async def greeting_heard(self) -> None:
        """The greeting has played out and the session has recorded it (the turn is
        written when the session reads the end of the playout, a moment after the line
        goes quiet)."""
        await wait_for(lambda: bool(self.leg.sent) and not self.leg.outbound.busy
                       and any(t.speaker == "assistant" for t in self.record.turns))

    async def say(self, pcm: bytes) -> float:
        """Speak ``pcm``; returns the time of its last frame."""
        self.speaking = True
        try:
            return await self.leg.speak(pcm)
        finally:
            self.speaking = False

    async def end(self) -> None:
        if not self.leg.ended:
            await self.leg.hangup()
        await asyncio.wait_for(self.task, 10)
        if self.line is not None:
            self.line.cancel()


async def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)



@pytest.fixture(scope="module")
def speech(engines: tuple[WhisperSTT, CachedTTS]) -> Callable[[str], bytes]:
    return engines[1].inner.synthesize


StartCall = Callable[..., Call]


@pytest.fixture
async def start_call(engines: tuple[WhisperSTT, CachedTTS], executor: ThreadPoolExecutor
                     ) -> AsyncIterator[StartCall]:
    """``start_call(brain, stt=…, **session_options)``: a call the session answers at once
    (with the module's Whisper unless ``stt`` is given)."""
    calls: list[Call] = []

    def start(brain: Brain, **options: Any) -> Call:
        stt, tts = options.pop("stt", engines[0]), engines[1]
        leg = MemoryLeg(CallInfo(uuid.uuid4().hex, "memory", "outbound", "atende", "ana"))
        record = Record()
        session = AgentSession(leg, brain, stt, tts, executor, observer=record, **options)
        leg.start()
        call = Call(leg, session, record, asyncio.get_running_loop().create_task(session.run()))
        calls.append(call)
        return call

    yield start
    for c in calls:
        await c.end()


PROMPT = "You are the front desk of a dental clinic."
StartRealtime = Callable[..., Call]


def played_s(call: Call) -> float:
    return len(call.leg.sent) * 0.02


@pytest.fixture
async def start_realtime(engines: tuple[WhisperSTT, CachedTTS], executor: ThreadPoolExecutor
                         ) -> AsyncIterator[StartRealtime]:
    """``start_realtime(server, fallback=…, wire_codec=…, api_key=…, provider=…, model=…,
    voice=…, tools=…, policy=…)``: a realtime session on a paced in-memory leg, the
    pipeline behind it."""
    calls: list[Call] = []

    def start(server: FakeServer, fallback: Fallback | None = None,
              wire_codec: str | None = None, api_key: str = "sk-test",
              provider: str = "openai", model: str = "gpt-realtime",
              voice: str | None = "marin", tools: ToolBox | None = None,
              policy: TurnPolicy | None = None) -> Call:
        stt, tts = engines
        leg = MemoryLeg(CallInfo(uuid.uuid4().hex, "memory", "inbound", "ana", "atende"))
        record = Record()
        settings = RealtimeSettings(provider, model, api_key, voice, server.url, 5)

        def pipeline(opening: Speech, brain: Brain | None) -> AgentSession:
            return AgentSession(leg, brain or RuleBrain(DEFAULT_RULES), stt, tts,
                                executor, observer=record, opening=opening,
                                opening_cause="assistant_hangup")

        box = tools or ToolBox(list(BUILTINS))
        session = RealtimeSession(
            leg, realtime_connection(settings),
            RealtimeConfig(PROMPT, "Hello, dental clinic.", box.specs,
                           end_of_turn_ms=400, wire_codec=wire_codec),
            box, observer=record, fallback=fallback, pipeline=pipeline, policy=policy)
        leg.start()
        call = Call(leg, session, record,  # type: ignore[arg-type]
                    asyncio.get_running_loop().create_task(session.run()))
        calls.append(call)
        return call

    yield start
    for c in calls:
        await c.end()
