"""The offline speech engines, loaded from the bundled packages and from user paths."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from atende.agent.speaking import Speaker
from atende.agent.turns import CallReport
from atende.media import g711
from atende.media.resample import resample
from atende.providers.registry import ProviderRegistry
from atende.providers.stt.whisper import (
    Decoding,
    WhisperSTT,
    bundled_model_path,
    judged,
    window_for,
)
from atende.providers.tts.base import CachedTTS, split_sentences
from atende.providers.tts.piper import PiperTTS, bundled_voice_path
from tests.peers.debian import require

T = TypeVar("T")


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return PiperTTS(steady=True)


def test_whisper_from_a_user_supplied_path(tmp_path: Path, piper: PiperTTS) -> None:
    model = tmp_path / "my-whisper"
    shutil.copytree(bundled_model_path(), model)
    stt = WhisperSTT(model)
    assert stt.model_path == model
    text = stt.transcribe(piper.synthesize("Please book an appointment for Monday."))
    assert "appointment" in text.lower() and "monday" in text.lower()
    assert stt.transcribe(bytes(800)) == ""  # too short to be speech


def phone(pcm16k: bytes) -> bytes:
    """Through G.711 at 8 kHz and back, as a call delivers speech to the recogniser."""
    coded = g711.encode(np.frombuffer(resample(pcm16k, 16000, 8000), dtype=np.int16), "PCMU")
    return resample(g711.decode(coded, "PCMU").tobytes(), 8000, 16000)


def test_a_turn_is_heard_in_a_short_window_and_doubt_goes_the_usual_way(
        piper: PiperTTS) -> None:
    stt = WhisperSTT(cpu_threads=1)
    words = "Thursday afternoon would be perfect, thank you."
    text = stt.transcribe(phone(piper.synthesize(words)))
    assert "afternoon" in text.lower() and "perfect" in text.lower()
    assert stt.windows == {"short": 1, "full": 0}
    # Silence: Whisper hears "you" in it in a short window; the usual way hears nothing.
    assert stt.transcribe(bytes(2 * 32000)) == ""
    assert stt.windows == {"short": 2, "full": 1}
    always = WhisperSTT(cpu_threads=1, window_s=30)  # as trained: the 30 s window only
    assert "perfect" in always.transcribe(phone(piper.synthesize(words))).lower()
    assert always.windows == {"short": 0, "full": 1}
    unknown = WhisperSTT(cpu_threads=1, language=None)  # the language is detected: 30 s
    assert unknown.window_s == 30


def test_the_window_fits_the_turn() -> None:
    assert window_for(16000 * 2, 10) == 10  # a short turn: the shortest window
    assert window_for(16000 * 12 + 1, 10) == 16  # a long one: its length and 3 s
    assert window_for(16000 * 28, 10) == 30  # never past what Whisper was trained on
    assert window_for(16000 * 2, 30) == 30


def test_a_doubtful_decoding_is_not_taken() -> None:
    good = Decoding("What are your opening hours?", -0.13, 0.03, cut=False)
    assert judged(good) == "What are your opening hours?"
    assert judged(Decoding(good.text, -0.13, 0.03, cut=True)) is None  # at the limit
    assert judged(Decoding(good.text, -1.2, 0.03, cut=False)) is None  # a guess
    assert judged(Decoding("you", -0.8, 0.98, cut=False)) is None  # likely silence
    looping = " ".join(["What are your opening hours?"] * 6)
    assert judged(Decoding(looping, -0.1, 0.03, cut=False)) is None  # repeats itself


def test_whisper_rejects_a_path_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model\.bin"):
        WhisperSTT(tmp_path)


def test_piper_from_a_user_supplied_path(tmp_path: Path) -> None:
    voice = tmp_path / "voice.onnx"
    shutil.copy(bundled_voice_path(), voice)
    shutil.copy(str(bundled_voice_path()) + ".json", str(voice) + ".json")
    pcm = np.frombuffer(PiperTTS(voice).synthesize("Hello there."), dtype=np.int16)
    assert 0.4 < len(pcm) / 16000 < 3 and np.abs(pcm).max() > 3000
    with pytest.raises(FileNotFoundError):
        PiperTTS(tmp_path / "missing.onnx")


def test_a_steady_piper_voice_says_a_text_the_same_way_every_time(piper: PiperTTS) -> None:
    # The tests' callers use it, so that what Whisper hears does not vary run to run: the
    # default voice adds random variation, and once in a while it turned "book" into "vote".
    assert piper.synthesize("I would like to book") == piper.synthesize("I would like to book")
    varied = PiperTTS()
    takes = {varied.synthesize("I would like to book") for _ in range(3)}
    assert len(takes) > 1  # what the steady voice leaves out


def test_espeak_speaks_portuguese() -> None:
    require("espeak-ng")
    registry = ProviderRegistry(stt=None, default_piper=None)  # type: ignore[arg-type]
    voice = registry.load_voice("espeak:pt-br")
    pcm = np.frombuffer(voice.synthesize("Bom dia, em que posso ajudar?"), dtype=np.int16)
    assert len(pcm) / 16000 > 1 and np.abs(pcm).max() > 3000
    with pytest.raises(ValueError, match="unknown voice"):
        registry.load_voice("festival:en")


def test_cache_prepares_sentences_as_they_will_be_spoken(piper: PiperTTS) -> None:
    calls: list[str] = []

    class Counting:
        name = "counting"

        def synthesize(self, text: str) -> bytes:
            calls.append(text)
            return piper.synthesize(text)

    tts = CachedTTS(Counting())
    text = "Hello, you have reached us. How can I help?"
    tts.prepare(text)
    assert calls == split_sentences(text)
    for sentence in split_sentences(text):
        assert tts.cached(sentence) is not None


async def test_lines_made_already_are_not_sent_to_a_synthesis_thread(piper: PiperTTS) -> None:
    """Every call prepares its reprompt and goodbye; once they are made, a call finds them
    without a task or a trip to a thread (it cost each call a task and two trips, with
    the loop's and the thread's wake-ups)."""

    class Counted(ThreadPoolExecutor):
        submitted = 0

        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            self.submitted += 1
            return super().submit(fn, *args, **kwargs)

    tts = CachedTTS(piper)
    lines = ["Are you still there? Hello?", "Goodbye."]
    with Counted(1) as pool:
        speaker = Speaker(tts, pool, CallReport(None, "c1"))
        assert speaker.unprepared(lines) == lines
        await speaker.prepare(lines)
        assert pool.submitted == 2 and all(tts.prepared(line) for line in lines)
        assert speaker.unprepared(lines) == []  # the next call spawns nothing for them
        await speaker.prepare(lines)
        assert pool.submitted == 2
    assert not tts.prepared("Are you still there? Something new.")  # one sentence is not


def test_a_line_asked_for_by_many_calls_at_once_is_synthesised_once() -> None:
    # A burst of new calls asks for the same lines together: one synthesis, the others
    # wait for it, all get its audio. A failed synthesis leaves the next caller to try.
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    class Slow:
        name = "slow"

        def synthesize(self, text: str) -> bytes:
            calls.append(text)
            if text == "fail":
                raise RuntimeError("voice failed")
            if len(calls) == 1:
                entered.set()
                release.wait(10)
            return text.encode()

    tts = CachedTTS(Slow())
    got: list[bytes] = []
    first = threading.Thread(target=lambda: got.append(tts.synthesize("Hello.")))
    second = threading.Thread(target=lambda: got.append(tts.synthesize("Hello.")))
    first.start()
    assert entered.wait(10)
    second.start()
    second.join(0.3)
    assert second.is_alive() and calls == ["Hello."]  # waiting, not synthesising again
    release.set()
    first.join(10)
    second.join(10)
    assert got == [b"Hello.", b"Hello."] and calls == ["Hello."]
    with pytest.raises(RuntimeError):
        tts.synthesize("fail")
    with pytest.raises(RuntimeError):  # not cached, not stuck: tried again
        tts.synthesize("fail")
    assert calls == ["Hello.", "fail", "fail"]


def test_sentence_split_keeps_the_first_chunk_short() -> None:
    assert split_sentences("One. Two! Three?") == ["One.", "Two!", "Three?"]
    long = "We are open Monday to Friday, from nine in the morning to six in the evening."
    assert split_sentences(long) == ["We are open Monday to Friday,",
                                     "from nine in the morning to six in the evening."]
    # Cut once and remembered (every call asks for its lines'): each caller gets its own
    # list, and what one does with it is not what the next gets.
    first = split_sentences(long)
    first.append("changed")
    assert split_sentences(long) == ["We are open Monday to Friday,",
                                     "from nine in the morning to six in the evening."]
