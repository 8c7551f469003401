"""The Smart Turn end-of-turn model, as `make install` unpacks it, loaded by path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from atende.providers.registry import ProviderRegistry
from atende.providers.tts.piper import PiperTTS
from atende.providers.turn.smart_turn import SmartTurn, bundled_path, turn_model


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    loaded = turn_model("")
    assert loaded is not None, f"make install-test unpacks the model to {bundled_path()}"
    return loaded


def test_a_question_is_a_finished_turn_a_dangling_because_is_not(model: SmartTurn) -> None:
    piper = PiperTTS(steady=True)
    pause = bytes(16000 * 2 // 5)  # 200 ms
    assert model.complete(piper.synthesize("What are your opening hours?") + pause)
    assert not model.complete(piper.synthesize("I want to cancel my order because,") + pause)


def test_any_length_of_audio_is_judged_on_its_last_eight_seconds(model: SmartTurn) -> None:
    rng = np.random.default_rng(3)
    noise = (rng.normal(0, 3000, 16000 * 12)).astype(np.int16)
    for pcm in (b"", bytes(320), noise[:16000].tobytes(), noise.tobytes()):
        assert 0.0 <= model.probability(pcm) <= 1.0
    # Only the end counts: what came more than 8 s before it changes nothing.
    tail = noise[-16000 * 8:]
    other_start = np.concatenate([np.zeros(16000 * 4, np.int16), tail])
    assert model.probability(noise.tobytes()) == pytest.approx(
        model.probability(other_start.tobytes()), abs=1e-6)


def test_off_none_or_a_missing_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert turn_model("off") is None and turn_model("OFF") is None
    with pytest.raises(FileNotFoundError, match="no end-of-turn model"):
        turn_model(str(tmp_path / "nothing.onnx"))  # asked for by name: an error
    with caplog.at_level(logging.WARNING):
        assert turn_model("", bundled=tmp_path / "absent.onnx") is None  # not unpacked
    assert "make install" in caplog.text


class NoSpeech:
    """A recogniser the registry holds but these tests never use."""

    name = "none"

    def transcribe(self, pcm16k: bytes) -> str:
        return ""

    def transcribe_if_idle(self, pcm16k: bytes) -> str | None:
        return ""


async def test_the_registry_loads_the_model_once_for_the_assistants_that_use_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    providers = ProviderRegistry(NoSpeech(), turn_model="")
    try:
        assert providers.turn is None  # nothing loaded for assistants that do not use it
        model = providers.load_turn_model()
        assert isinstance(model, SmartTurn) and providers.load_turn_model() is model
    finally:
        await providers.close()
    missing = ProviderRegistry(NoSpeech(), turn_model=str(tmp_path / "gone.onnx"))
    try:
        with caplog.at_level(logging.ERROR):
            assert missing.load_turn_model() is None  # the calls go on, on silence
        assert "gone.onnx" in caplog.text
    finally:
        await missing.close()
