"""The offline agent's responsiveness, on the real engines (Whisper tiny.en int8, Piper):
- greeting: call answered → first greeting audio frame out;
- turn: end of caller speech → first reply audio frame out (p50/p95), which includes the
  end-of-turn silence the VAD waits for (600 ms), or less with the end-of-turn model;
- the word error rate of what the assistant heard, on the same phrases.
The call leg is in-memory (paced at 20 ms), so no network is measured here."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import numpy as np

from atende.agent.brain import DEFAULT_RULES, RuleBrain
from atende.agent.session import AgentSession
from atende.agent.turns import Turn
from atende.channels.leg import CallInfo, CallLeg, TransferResult
from atende.channels.memory import MemoryLeg
from atende.media import g711
from atende.media.audio import FRAME_BYTES, FRAME_SAMPLES
from atende.media.resample import resample
from atende.providers.stt.whisper import WhisperSTT
from atende.providers.tts.base import CachedTTS
from atende.providers.tts.piper import PiperTTS
from atende.providers.turn.base import TurnDetector
from atende.providers.turn.smart_turn import turn_model

PHRASES = [
    "What are your opening hours?",
    "I would like to book an appointment.",
    "Can I talk to a person please?",
    "Are you open on Saturday?",
    "Thank you very much.",
    "I need to schedule a visit for next week.",
]


def phone_quality(pcm16k: bytes) -> bytes:
    """Through G.711 at 8 kHz and back, as a phone call would deliver it, with the
    synthesiser's trailing silence cut so the last frame fed is the end of speech."""
    pcm8 = resample(pcm16k, 16000, 8000)
    coded = g711.decode(g711.encode(np.frombuffer(pcm8, dtype=np.int16), "PCMU"), "PCMU")
    pcm = np.frombuffer(resample(coded.tobytes(), 8000, 16000), dtype=np.int16)
    loud = np.nonzero(np.abs(pcm) > 800)[0]
    end = (int(loud[-1]) // FRAME_SAMPLES + 1) * FRAME_SAMPLES
    return pcm[:end].tobytes()


class Heard:
    """A session observer that keeps what the recogniser heard, in order (to score it)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def on_turn(self, call_id: str, turn: Turn) -> None:
        if turn.speaker == "caller":
            self.texts.append(turn.text)

    def on_dtmf(self, call_id: str, digit: str, at: float) -> None:
        pass

    def on_hold(self, call_id: str, on_hold: bool, at: float) -> None:
        pass

    def on_outcome(self, call_id: str, outcome: str, fields: dict[str, str]) -> None:
        pass

    def on_event(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        pass

    async def transfer_call(self, leg: CallLeg, to: str, bridge: bool = False
                            ) -> TransferResult:
        return TransferResult("failed", None, "not in the benchmark")

    async def schedule_callback(self, call_id: str, at: datetime, number: str | None,
                                reason: str) -> dict[str, Any]:
        return {"error": "not in the benchmark"}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def wer(said: list[str], heard: list[str]) -> float:
    """Word error rate over all phrases: edits (Levenshtein on words) / words said."""
    edits = total = 0
    for ref, hyp in zip(said, heard, strict=True):
        r, h = words(ref), words(hyp)
        row = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            prev, row[0] = row[0], i
            for j, hw in enumerate(h, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
        edits += row[len(h)]
        total += len(r)
    return edits / max(1, total)


async def one_call(stt: WhisperSTT, tts: CachedTTS, phrase_pcm: bytes,
                   executor: ThreadPoolExecutor, wait_s: float = 3.0,
                   detector: TurnDetector | None = None, heard: Heard | None = None
                   ) -> tuple[float, float]:
    leg = MemoryLeg(CallInfo(uuid.uuid4().hex, "memory", "inbound", "bench", "assistant"))
    session = AgentSession(leg, RuleBrain(DEFAULT_RULES), stt, tts, executor,
                           observer=heard, turn_detector=detector)
    loop = asyncio.get_running_loop()
    answered = loop.time()
    leg.start()
    task = loop.create_task(session.run())
    while not leg.sent:
        await asyncio.sleep(0.005)
    greeting_delay = leg.sent[0][0] - answered
    while leg.outbound.busy:  # let the greeting finish
        await asyncio.sleep(0.02)
    await leg.speak(bytes(FRAME_BYTES * 10))
    speech_end = await leg.speak(phrase_pcm)
    sent_before = len(leg.sent)
    await leg.speak(bytes(FRAME_BYTES * int(wait_s * 50)))  # silence while it answers
    reply = [t for t, _ in leg.sent[sent_before:] if t > speech_end]
    await leg.hangup()
    await task
    if not reply:
        raise RuntimeError("the assistant did not answer")
    return greeting_delay, reply[0] - speech_end


async def together(n: int, stt: WhisperSTT, tts: CachedTTS, phrases: list[bytes],
                   executor: ThreadPoolExecutor, detector: TurnDetector | None = None
                   ) -> list[float]:
    """``n`` callers whose turns end within the same second: each one's turn latency."""
    async def caller(i: int) -> float:
        await asyncio.sleep(i * 1.0 / n)  # spread over a second, as real callers are
        return (await one_call(stt, tts, phrases[i % len(phrases)], executor, 10.0,
                               detector))[1]

    return list(await asyncio.gather(*(caller(i) for i in range(n))))


async def main() -> None:
    executor = ThreadPoolExecutor(max_workers=2)
    # As the server runs it by default (ATENDE_MODEL_THREADS=2, ATENDE_STT_WORKERS=2), or
    # with the threads each transcription uses given as --threads=N.
    threads = int(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), 2))
    stt = WhisperSTT(cpu_threads=threads, workers=2)
    print(f"Whisper: 2 workers, {threads} thread(s) each")
    tts = CachedTTS(PiperTTS())
    tts.prepare(DEFAULT_RULES.greeting)
    stt.transcribe(bytes(32000))
    phrases = [phone_quality(tts.inner.synthesize(p)) for p in PHRASES]
    model = turn_model("")
    settings: list[tuple[str, TurnDetector | None]] = [("600 ms end-of-turn silence", None)]
    if model is not None:
        settings.append(("end-of-turn model", model))
    for label, detector in settings:
        greetings: list[float] = []
        turns: list[float] = []
        heard = Heard()
        for _ in range(2):
            for pcm in phrases:
                greeting, turn = await one_call(stt, tts, pcm, executor, detector=detector,
                                                heard=heard)
                greetings.append(greeting * 1000)
                turns.append(turn * 1000)
        g, t = np.array(greetings), np.array(turns)
        print(f"[{label}]")
        print(f"  greeting start after answer: p50 {np.percentile(g, 50):.0f} ms, "
              f"p95 {np.percentile(g, 95):.0f} ms (n={g.size})")
        print(f"  end of speech → first reply audio, 1 caller: p50 "
              f"{np.percentile(t, 50):.0f} ms, p95 {np.percentile(t, 95):.0f} ms (n={t.size})")
        print(f"  word error rate: {wer(PHRASES * 2, heard.texts):.1%} "
              f"({sum(1 for h in heard.texts if h)} of {len(heard.texts)} turns heard)")
        if "--one" in sys.argv:
            continue
        many = np.array([x * 1000 for _ in range(2)
                         for x in await together(10, stt, tts, phrases, executor, detector)])
        print(f"  10 callers ending their turns within a second: p50 "
              f"{np.percentile(many, 50):.0f} ms, p95 {np.percentile(many, 95):.0f} ms "
              f"(n={len(many)})")


if __name__ == "__main__":
    asyncio.run(main())
