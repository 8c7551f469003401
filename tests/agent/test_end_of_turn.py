"""The end of a caller's turn, sooner: the local recogniser guesses the turn's text in the
first 200 ms of a pause (used when the pause ends the turn, thrown away when the caller goes
on), and an end-of-turn model may end the turn in that pause instead of after the full
end-of-turn silence. Real Whisper, Piper and Smart Turn on an in-memory leg."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from atende.agent.brain import DEFAULT_RULES, RuleBrain
from atende.agent.vad import VadConfig
from atende.media.audio import FRAME_BYTES
from atende.providers.stt.whisper import WhisperSTT
from atende.providers.tts.base import CachedTTS
from atende.providers.turn.smart_turn import SmartTurn, bundled_path
from tests.agent.conftest import Call, StartCall, wait_for


class Counted:
    """The real recogniser, counting which way it was asked."""

    name = "whisper"

    def __init__(self, inner: WhisperSTT) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def transcribe(self, pcm16k: bytes) -> str:
        self.calls["waited for"] += 1
        return self.inner.transcribe(pcm16k)

    def transcribe_if_idle(self, pcm16k: bytes) -> str | None:
        self.calls["guessed"] += 1
        return self.inner.transcribe_if_idle(pcm16k)


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn(bundled_path())


@pytest.fixture
def counted(engines: tuple[WhisperSTT, CachedTTS]) -> Counted:
    return Counted(engines[0])


def silence(ms: int) -> bytes:
    return bytes(FRAME_BYTES * (ms // 20))


def trimmed(pcm: bytes) -> bytes:
    """Without the synthesiser's silence before and after the words."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.nonzero(np.abs(samples) > 500)[0]
    return samples[loud[0]:loud[-1] + 1].tobytes()


async def caller_turn(call: Call) -> str:
    await wait_for(lambda: bool(call.record.said("caller")))
    return call.record.said("caller")[0]


async def test_the_text_guessed_in_the_pause_is_the_turns_when_nothing_follows(
        start_call: StartCall, speech: Callable[[str], bytes], counted: Counted) -> None:
    call = start_call(RuleBrain(DEFAULT_RULES), stt=counted)
    await call.greeting_heard()
    await call.say(speech("What are your opening hours?"))
    assert "opening hours" in (await caller_turn(call)).lower()
    # Guessed once, 200 ms into the pause, and not transcribed again at its end.
    assert counted.calls == Counter({"guessed": 1})


async def test_words_after_a_pause_are_heard_with_the_rest(
        start_call: StartCall, speech: Callable[[str], bytes], counted: Counted) -> None:
    call = start_call(RuleBrain(DEFAULT_RULES), stt=counted)
    await call.greeting_heard()
    await call.say(trimmed(speech("I would like to book")) + silence(400)
                   + trimmed(speech("an appointment for Tuesday.")))
    text = (await caller_turn(call)).lower()
    assert "book" in text and "tuesday" in text  # the guess of the first half was dropped
    # Guessed at each pause, the last guess being the whole turn's text.
    assert counted.calls["guessed"] >= 2 and counted.calls["waited for"] == 0
    assert len(call.record.said("caller")) == 1


async def reply_delay(call: Call, pcm: bytes) -> float:
    """Seconds from the end of the caller's speech to the assistant's first reply frame."""
    leg = call.leg
    await call.greeting_heard()
    sent_before = len(leg.sent)
    end = await call.say(pcm)
    await wait_for(lambda: any(t > end for t, _ in leg.sent[sent_before:]), 15)
    return float(min(t for t, _ in leg.sent[sent_before:] if t > end) - end)


async def test_an_end_of_turn_model_ends_a_finished_turn_in_its_pause(
        start_call: StartCall, speech: Callable[[str], bytes], smart_turn: SmartTurn) -> None:
    slow = VadConfig(end_ms=2500)  # the silence that ends turns the model does not
    done = start_call(RuleBrain(DEFAULT_RULES), vad=slow, turn_detector=smart_turn)
    assert await reply_delay(done, speech("What are your opening hours?")) < 2.5
    await done.end()
    unfinished = start_call(RuleBrain(DEFAULT_RULES), vad=slow, turn_detector=smart_turn)
    assert await reply_delay(unfinished, speech("I want to cancel my order because,")) >= 2.5
