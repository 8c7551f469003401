"""Answering machines on calls atende places, end to end through kamailio: a baresip phone
that plays a voicemail greeting and beep gets the assistant's message after the beep, and
the result webhook says ``voicemail``; a person who says "Hello?" is greeted and confirms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.test_automation import task_call
from tests.e2e.test_outbound import pbx, trunk  # noqa: F401  (fixtures)
from tests.peers.atende import AtendeProcess
from tests.peers.audio import Tone, read_wav, speech_wav, voiced_spans
from tests.peers.kamailio import Kamailio

MACHINE = ("Hi, you have reached Ana. I cannot take your call right now. "
           "Please leave a message after the tone.")
MESSAGE = ("Hello {caller_name}, this is the clinic about your appointment tomorrow. "
           "Please call us back. Goodbye.")


def screening_assistant(a: AtendeProcess, extension: str) -> dict[str, Any]:
    r = a.api.post("/v1/assistants", json={
        "name": "Screening", "extension": extension, "voice": "espeak:en-us",
        "voicemail": {"detect": True, "action": "leave_message", "message": MESSAGE}})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_voicemail_gets_the_message_after_the_beep(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    bot = screening_assistant(atende, "vm-message")
    wav = speech_wav(tmp_path / "vm.wav", [(0.5, MACHINE), (0.4, Tone(1000, 0.5))], 20)
    call, result, machine = await task_call(atende, pbx, tmp_path, wav, trunk["id"],
                                            assistant_id=bot["id"])
    left = MESSAGE.format(caller_name="Ana")
    assert result["outcome"] == "voicemail", result["transcript"]
    assert result["fields"] == {"detected_by": "long_greeting", "message_left": left}
    assert result["hangup_cause"] == "voicemail"
    assert result["summary"] == "An answering machine took the call; the message was left."
    assert [t["text"] for t in result["transcript"] if t["speaker"] == "assistant"] == [left]
    stored = atende.call(call["id"])
    kinds = [e["kind"] for e in stored["events"]]
    assert kinds.count("answered_by") == 1 and "voicemail_message" in kinds
    # On the line: nothing from atende during the greeting, the message right after the beep.
    heard, rate = read_wav(machine.recordings()[0])
    sent, srate = read_wav(machine.recordings()[1])
    beep_end = voiced_spans(sent, srate)[-1][1]
    first_heard = voiced_spans(heard, rate)[0][0]
    print(f"message began {(first_heard - beep_end) * 1000:.0f} ms after the beep")
    assert beep_end < first_heard < beep_end + 1.0


async def test_a_person_who_says_hello_is_greeted_and_answers(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    bot = screening_assistant(atende, "vm-person")
    wav = speech_wav(tmp_path / "ana.wav", [(0.5, "Hello?"), (12.0, "Yes, I confirm.")], 20)
    call, result, _ = await task_call(atende, pbx, tmp_path, wav, trunk["id"],
                                      assistant_id=bot["id"])
    assert result["outcome"] == "confirmed", result["transcript"]
    said = [t["text"] for t in result["transcript"] if t["speaker"] == "assistant"]
    assert said[0].startswith("Hello Ana.")
    answered = [e["data"] for e in atende.call(call["id"])["events"]
                if e["kind"] == "answered_by"]
    assert answered == [{"answered_by": "human", "reason": "short_greeting"}]
