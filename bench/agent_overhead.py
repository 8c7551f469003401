"""The platform's own share of a turn, with instant in-process providers (a recogniser that
knows the words, a synthesiser that returns a ready tone, the rule brain):

- overhead: end of caller speech → first reply audio frame out, minus the end-of-turn
  silence the VAD waits for and the providers' own time. p50/p95; the goal is p95 < 40 ms.
  The leg is in memory but paced on the same 20 ms clock as RTP, so waiting for the next
  packet slot (0–20 ms) is part of it, as it is on a real call.
- capacity: N calls talking at once in one process (one event loop: one core), the CPU
  each second of call costs, hence how many sessions one core carries, and the overhead
  at that load. The callers' side (feeding audio in real time) runs in the same process
  and is counted too, so the sessions-per-core figure is a lower bound.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import numpy as np
from agent_latency import PHRASES, phone_quality

from atende.agent.brain import DEFAULT_RULES, RuleBrain
from atende.agent.session import AgentSession
from atende.agent.turns import Turn
from atende.agent.vad import VadConfig
from atende.channels.leg import CallInfo, CallLeg, TransferResult
from atende.channels.memory import MemoryLeg
from atende.media.audio import FRAME_BYTES
from atende.providers.tts.base import CachedTTS
from atende.providers.tts.piper import PiperTTS

HEARD = "What are your opening hours?"
REPLY = (0.3 * np.sin(2 * np.pi * 440 * np.arange(6400) / 16000) * 32767).astype(
    np.int16).tobytes()  # 0.4 s


class InstantSTT:
    name = "instant"

    def transcribe(self, pcm16k: bytes) -> str:
        return HEARD

    def transcribe_if_idle(self, pcm16k: bytes) -> str | None:
        return HEARD


class InstantTTS:
    name = "instant"

    def synthesize(self, text: str) -> bytes:
        return REPLY


class Turns:
    """The session's report: each assistant turn's latency and provider times."""

    def __init__(self) -> None:
        self.overheads: list[float] = []

    def on_turn(self, call_id: str, turn: Turn) -> None:
        if turn.speaker == "assistant" and turn.latency_ms is not None:
            providers = (turn.stt_ms or 0) + (turn.llm_ms or 0) + (turn.tts_ms or 0)
            self.overheads.append(turn.latency_ms - VadConfig.end_ms - providers)

    def on_dtmf(self, call_id: str, digit: str, at: float) -> None: ...
    def on_hold(self, call_id: str, on_hold: bool, at: float) -> None: ...
    def on_outcome(self, call_id: str, outcome: str, fields: dict[str, str]) -> None: ...
    def on_event(self, call_id: str, kind: str, data: dict[str, Any]) -> None: ...

    async def transfer_call(self, leg: CallLeg, to: str, bridge: bool = False
                            ) -> TransferResult:
        return TransferResult("refused", None, "not in a benchmark")

    async def schedule_callback(self, call_id: str, at: datetime, number: str | None,
                                reason: str) -> dict[str, Any]:
        return {"error": "not in a benchmark"}


async def caller(phrases: list[bytes], turns: Turns, executor: ThreadPoolExecutor,
                 seconds: float, offset: float) -> None:
    """One call: the caller asks, waits for the answer to end, asks again."""
    leg = MemoryLeg(CallInfo(uuid.uuid4().hex, "memory", "inbound", "bench", "assistant"))
    session = AgentSession(leg, RuleBrain(DEFAULT_RULES), InstantSTT(),
                           CachedTTS(InstantTTS()), executor, observer=turns)
    loop = asyncio.get_running_loop()
    leg.start()
    task = loop.create_task(session.run())
    await leg.speak(bytes(int(offset / 0.02) * FRAME_BYTES))  # calls out of step
    end = loop.time() + seconds
    i = 0
    while loop.time() < end:
        await leg.speak(bytes(FRAME_BYTES * 10))
        await leg.speak(phrases[i % len(phrases)])
        i += 1
        await leg.speak(bytes(FRAME_BYTES * 40))  # the end-of-turn wait and the reply
        while leg.outbound.busy:
            await leg.speak(bytes(FRAME_BYTES))
    await leg.hangup()
    await task


def figures(ms: list[float]) -> str:
    a = np.array(ms)
    return (f"p50 {np.percentile(a, 50):.1f} ms, p95 {np.percentile(a, 95):.1f} ms, "
            f"max {a.max():.1f} ms (n={len(a)})")


async def run(phrases: list[bytes], calls: int, seconds: float) -> tuple[Turns, float]:
    turns = Turns()
    with ThreadPoolExecutor(max_workers=2) as executor:
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(caller(phrases, turns, executor, seconds, (i % 50) * 0.04)
                               for i in range(calls)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return turns, cpu / wall


async def main() -> None:
    piper = PiperTTS()
    phrases = [phone_quality(piper.synthesize(p)) for p in PHRASES]
    turns, _ = await run(phrases, 1, 40)
    print(f"platform overhead per turn, one call: {figures(turns.overheads)}")
    for calls in (50, 100, 150):
        turns, load = await run(phrases, calls, 30)
        per_call = load / calls
        print(f"{calls} calls at once: {load * 100:.0f}% of a core, "
              f"{per_call * 100:.2f}% per call → about {int(1 / per_call)} sessions per "
              f"core; overhead {figures(turns.overheads)}")


if __name__ == "__main__":
    asyncio.run(main())
