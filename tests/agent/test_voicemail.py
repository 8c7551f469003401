"""Answering-machine detection on real speech (Piper's voice through the phone band) and
beeps: when a person answers, when a machine does, and when its recording starts."""

from __future__ import annotations

import pytest

from atende.agent.voicemail import (
    BeepDetector,
    Human,
    LeaveMessage,
    Machine,
    Verdict,
    VoicemailConfig,
    VoicemailDetector,
)
from atende.media.audio import FRAME_BYTES, SAMPLE_RATE
from atende.media.resample import resample
from tests.peers.audio import Tone, speech

GREETING = ("Hi, you have reached Ana. I cannot take your call right now. "
            "Please leave a message after the tone.")


def phone(segments: list[tuple[float, str | Tone]], tail_s: float) -> bytes:
    """What the callee sends, through an 8 kHz phone line."""
    return resample(resample(speech(segments, tail_s), SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)


def run(pcm: bytes, config: VoicemailConfig | None = None) -> list[Verdict]:
    detector = VoicemailDetector(config or VoicemailConfig(detect=True))
    out: list[Verdict] = []
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        out += detector.feed(pcm[i : i + FRAME_BYTES], i / FRAME_BYTES * 0.02)
    return out


def test_a_person_saying_hello_is_greeted_after_a_short_pause() -> None:
    verdicts = run(phone([(0.4, "Hello?")], tail_s=5))
    assert len(verdicts) == 1
    (human,) = verdicts
    assert isinstance(human, Human) and human.reason == "short_greeting"
    # "Hello?" lasts well under a second; the verdict follows 0.8 s of silence after it.
    assert 1.2 < human.at < 2.6


def test_nobody_speaking_is_greeted_after_the_initial_silence() -> None:
    assert run(phone([], tail_s=6)) == [Human("silence", pytest.approx(3.5))]


def test_a_click_does_not_count_as_a_greeting() -> None:
    click = Tone(300, 0.06, dbfs=-6)
    (verdict,) = run(phone([(0.5, click)], tail_s=6))
    assert verdict == Human("silence", pytest.approx(3.5))


def test_a_long_greeting_is_a_machine_and_the_message_follows_the_beep() -> None:
    pcm = phone([(0.5, GREETING), (0.3, Tone(1000, 0.5))], tail_s=3)
    machine, cue = run(pcm)
    assert isinstance(machine, Machine) and machine.reason == "long_greeting"
    assert machine.at == pytest.approx(0.5 + 2.5, abs=0.3)  # 2.5 s into the greeting
    beep_end = len(pcm) / 2 / SAMPLE_RATE - 3
    assert cue == LeaveMessage("beep", pytest.approx(beep_end, abs=0.06))


def test_without_a_beep_the_message_starts_after_the_greeting_falls_silent() -> None:
    pcm = phone([(0.5, GREETING)], tail_s=4)
    greeting_end = len(pcm) / 2 / SAMPLE_RATE - 4
    machine, cue = run(pcm)
    assert isinstance(machine, Machine)
    assert isinstance(cue, LeaveMessage) and cue.reason == "silence"
    # 2 s after the last voiced frame (Piper's voice fades out over its last 0.2 s).
    assert greeting_end + 1.7 < cue.at < greeting_end + 2.3


def test_a_short_greeting_ending_in_a_beep_is_a_machine() -> None:
    pcm = phone([(0.5, "Leave a message."), (0.1, Tone(850, 0.4))], tail_s=2)
    verdicts = run(pcm, VoicemailConfig(detect=True, after_greeting_ms=1500))
    assert [type(v) for v in verdicts] == [Machine, LeaveMessage]
    assert verdicts[0].reason == "beep" and verdicts[1].reason == "beep"


def test_a_machine_that_never_falls_silent_gets_its_message_at_the_time_limit() -> None:
    long_talk = " ".join([GREETING] * 4)
    verdicts = run(phone([(0.2, long_talk)], tail_s=0),
                   VoicemailConfig(detect=True, max_message_wait_ms=5000))
    machine, cue = verdicts
    assert cue == LeaveMessage("timeout", pytest.approx(machine.at + 5.0))


@pytest.mark.parametrize("hz", [440.0, 1000.0, 1400.0])
def test_beeps_are_heard_at_common_pitches(hz: float) -> None:
    pcm = phone([(0.2, Tone(hz, 0.3))], tail_s=0.2)
    detector = BeepDetector()
    ends = [i for i in range(len(pcm) // FRAME_BYTES)
            if detector.feed(pcm[i * FRAME_BYTES : (i + 1) * FRAME_BYTES])]
    assert ends == [pytest.approx(25, abs=1)]  # the first frame after the tone


def test_speech_and_short_blips_are_not_beeps() -> None:
    pcm = phone([(0.2, GREETING), (0.2, "Hello? Hello, who is this? Sure, okay."),
                 (0.2, Tone(1000, 0.08))], tail_s=0.2)
    detector = BeepDetector()
    assert not any(detector.feed(pcm[i : i + FRAME_BYTES])
                   for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES))
