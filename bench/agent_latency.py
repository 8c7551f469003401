"""The offline agent's responsiveness, on the real engines (Whisper tiny.en int8, Piper):
- greeting: call answered → first greeting audio frame out;
- turn: end of caller speech → first reply audio frame out (p50/p95), which includes the
  end-of-turn silence the VAD waits for.
The call leg is in-memory (paced at 20 ms), so no network is measured here."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from atende.agent.brain import DEFAULT_RULES, RuleBrain
from atende.agent.session import AgentSession
from atende.channels.leg import CallInfo
from atende.channels.memory import MemoryLeg
from atende.media import g711
from atende.media.audio import FRAME_BYTES, FRAME_SAMPLES
from atende.media.resample import resample
from atende.providers.stt.whisper import WhisperSTT
from atende.providers.tts.base import CachedTTS
from atende.providers.tts.piper import PiperTTS

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


async def one_call(stt: WhisperSTT, tts: CachedTTS, phrase_pcm: bytes,
                   executor: ThreadPoolExecutor, wait_s: float = 3.0) -> tuple[float, float]:
    leg = MemoryLeg(CallInfo(uuid.uuid4().hex, "memory", "inbound", "bench", "assistant"))
    session = AgentSession(leg, RuleBrain(DEFAULT_RULES), stt, tts, executor)
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
                   executor: ThreadPoolExecutor) -> list[float]:
    """``n`` callers whose turns end within the same second: each one's turn latency."""
    async def caller(i: int) -> float:
        await asyncio.sleep(i * 1.0 / n)  # spread over a second, as real callers are
        return (await one_call(stt, tts, phrases[i % len(phrases)], executor, 10.0))[1]

    return list(await asyncio.gather(*(caller(i) for i in range(n))))


async def main() -> None:
    executor = ThreadPoolExecutor(max_workers=2)
    stt = WhisperSTT(cpu_threads=1, workers=2)  # as the server runs it by default
    tts = CachedTTS(PiperTTS())
    tts.prepare(DEFAULT_RULES.greeting)
    stt.transcribe(bytes(32000))
    phrases = [phone_quality(tts.inner.synthesize(p)) for p in PHRASES]
    greetings, turns = [], []
    for _ in range(2):
        for pcm in phrases:
            g, t = await one_call(stt, tts, pcm, executor)
            greetings.append(g * 1000)
            turns.append(t * 1000)
    g, t = np.array(greetings), np.array(turns)
    print(f"greeting start after answer: p50 {np.percentile(g, 50):.0f} ms, "
          f"p95 {np.percentile(g, 95):.0f} ms (n={len(g)})")
    print(f"end of speech → first reply audio: p50 {np.percentile(t, 50):.0f} ms, "
          f"p95 {np.percentile(t, 95):.0f} ms (n={len(t)}; includes 600 ms end-of-turn wait)")
    many = np.array([x * 1000 for _ in range(2)
                     for x in await together(10, stt, tts, phrases, executor)])
    print(f"10 callers ending their turns within a second: p50 {np.percentile(many, 50):.0f} "
          f"ms, p95 {np.percentile(many, 95):.0f} ms (n={len(many)})")


if __name__ == "__main__":
    asyncio.run(main())
