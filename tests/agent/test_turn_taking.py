"""Turn-taking on a live session: a backchannel over the assistant does not take the turn
(it carries on from where it was cut, and the model remembers the whole reply), a silent
caller is reprompted and then hung up on, and calls atende places listen for an answering
machine before greeting. Real Whisper and Piper on an in-memory leg."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import numpy as np
import pytest

from atende.agent.brain import RuleBrain, RuleSet
from atende.agent.llm_brain import LlmBrain
from atende.agent.tools import BUILTINS, ToolBox
from atende.agent.turn_policy import TurnPolicy
from atende.agent.voicemail import VoicemailConfig, VoicemailDetector
from atende.providers.llm.base import LlmSettings
from atende.providers.llm.factory import language_model
from tests.agent.conftest import StartCall, wait_for
from tests.peers.audio import Tone, frame_levels
from tests.peers.audio import speech as sounds
from tests.peers.vendor import Answer, VendorServer, openai_reply

GREETING = "Hello Ana, this is the clinic."
LONG = ("Our clinic opens at eight in the morning. We have parking behind the building. "
        "The entrance is on the left side. Please bring your insurance card. "
        "Arrive ten minutes early.")
MACHINE = ("Hi, you have reached Ana. I cannot take your call right now. "
           "Please leave a message after the tone.")


def rules(greeting: str = GREETING) -> RuleBrain:
    return RuleBrain(RuleSet(greeting, fallback="Sorry."))


async def test_a_backchannel_does_not_take_the_turn(
        start_call: StartCall, speech: Callable[[str], bytes]) -> None:
    answers: list[Answer] = [openai_reply(LONG), openai_reply("Goodbye!", ("end_call", {}))]
    with VendorServer(lambda req: answers.pop(0)) as llm:
        model = language_model(LlmSettings("openai", "m", base_url=llm.url, timeout_s=3))
        brain = LlmBrain([model], "You help callers.", GREETING, ToolBox(list(BUILTINS)))
        call = start_call(brain)
        await call.greeting_heard()
        await call.say(speech("Tell me about the clinic."))
        await wait_for(lambda: len(call.record.turns) >= 2 and call.leg.outbound.busy)
        await asyncio.sleep(2.5)
        await call.say(speech("Yeah, okay."))
        await wait_for(lambda: len(call.record.said("assistant")) >= 3)
        await wait_for(lambda: not call.leg.outbound.busy)
        await call.say(speech("Thank you, goodbye."))
        await asyncio.wait_for(call.task, 30)
    assistant = [t for t in call.record.turns if t.speaker == "assistant"]
    _, cut, resumed, goodbye = assistant
    assert cut.interrupted and not resumed.interrupted and goodbye.text == "Goodbye!"
    assert [t.intent for t in call.record.turns if t.speaker == "caller"] == [
        None, "backchannel", None]
    # It took up again from the start of the sentence it was cut in, and said all the rest.
    assert LONG.endswith(resumed.text) and resumed.text != LONG
    cut_sentence = cut.text.split(". ")[-1]
    assert resumed.text.startswith(cut_sentence.rstrip("."))
    # The model was not asked about "yeah, okay", and remembers the reply whole.
    assert len(llm.requests) == 2
    history = llm.requests[1].json["messages"]
    assert [m["content"] for m in history if m["role"] == "assistant"][-1] == LONG
    assert "yeah" not in str([m["content"] for m in history if m["role"] == "user"]).lower()


async def test_a_silent_caller_is_reprompted_then_the_call_ends(
        start_call: StartCall, speech: Callable[[str], bytes]) -> None:
    policy = TurnPolicy(reprompt_after_ms=2000, max_reprompts=2)
    question = "Can you confirm tomorrow at ten?"
    call = start_call(rules(f"{GREETING} {question}"), policy=policy)
    await call.greeting_heard()
    await wait_for(lambda: len(call.record.said("assistant")) == 2)  # the first reprompt
    await wait_for(lambda: not call.leg.outbound.busy)
    await call.say(speech("Hello, sorry, I am here."))  # an answer starts the count again
    await asyncio.wait_for(call.task, 40)
    said = call.record.said("assistant")
    # The reprompt asks the open question again; the rules' "Sorry." asked none.
    assert said == [f"{GREETING} {question}", f"{policy.reprompt} {question}", "Sorry.",
                    policy.reprompt, policy.reprompt, policy.silence_goodbye]
    assert call.leg.end_cause == "silence"
    events = [(k, d) for k, d in call.record.events]
    assert events == [("reprompt", {"count": 1}), ("reprompt", {"count": 1}),
                      ("reprompt", {"count": 2}), ("silence_hangup", {"reprompts": 2})]
    turns = [t for t in call.record.turns if t.speaker == "assistant"]
    for before, reprompt in itertools.pairwise(turns[2:]):
        assert reprompt.started_at - before.ended_at == pytest.approx(2.0, abs=0.25)


async def test_time_on_hold_is_not_silence(start_call: StartCall) -> None:
    """Issue 16.7: a caller who put the assistant on hold (their line silent, as with
    a=inactive) and took it off again is reprompted a whole reprompt_after_ms later, not at
    once for the silence before and during the hold."""
    policy = TurnPolicy(reprompt_after_ms=2000, max_reprompts=1)
    call = start_call(rules(), policy=policy)
    await call.greeting_heard()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(1.5)  # most of a reprompt's silence, then the hold
    call.speaking = True  # no RTP while on hold
    call.leg.hold_changed(True, loop.time())
    await asyncio.sleep(3.0)
    resumed = time.time()  # turns carry wall-clock times
    call.leg.hold_changed(False, loop.time())
    call.speaking = False
    await wait_for(lambda: len(call.record.said("assistant")) == 2)
    reprompt = [t for t in call.record.turns if t.speaker == "assistant"][1]
    assert reprompt.text == policy.reprompt
    assert reprompt.started_at - resumed == pytest.approx(2.0, abs=0.25)
    await call.end()


def screen(action: str = "hangup", message: str | None = None) -> VoicemailDetector:
    return VoicemailDetector(VoicemailConfig(detect=True, action=action, message=message))


async def test_a_machine_gets_the_message_after_its_beep(start_call: StartCall) -> None:
    message = "Hello Ana, this is the clinic. Please call us back. Goodbye."
    call = start_call(rules(), voicemail=screen("leave_message", message))
    greeting_end = await call.say(sounds([(0.3, MACHINE), (0.3, Tone(1000, 0.5))], 0))
    await asyncio.wait_for(call.task, 30)
    assert call.leg.end_cause == "voicemail"
    assert call.record.said("assistant") == [message]  # never the greeting
    assert call.record.outcomes == [("voicemail", {"detected_by": "long_greeting"}),
                                    ("voicemail", {"message_left": message})]
    first_out = call.leg.sent[0][0]
    assert greeting_end < first_out < greeting_end + 0.5  # right after the beep
    assert [k for k, _ in call.record.events] == ["answered_by", "voicemail_message"]
    assert call.record.events[1][1] == {"cue": "beep"}


async def test_a_machine_is_hung_up_on_without_a_word(start_call: StartCall) -> None:
    call = start_call(rules(), voicemail=screen())
    await call.say(sounds([(0.3, MACHINE)], 0))
    await asyncio.wait_for(call.task, 10)
    assert call.leg.end_cause == "voicemail" and not call.leg.sent
    assert call.record.outcomes == [("voicemail", {"detected_by": "long_greeting"})]


async def test_a_person_is_greeted_once_they_have_said_hello(
        start_call: StartCall, speech: Callable[[str], bytes]) -> None:
    call = start_call(rules(), voicemail=screen("leave_message", "A message."))
    await asyncio.sleep(0.5)
    hello = speech("Hello?")
    hello_end = await call.say(hello)
    await call.greeting_heard()
    first_out = call.leg.sent[0][0]
    # 0.8 s of silence after its last voiced frame, then the next packet slot.
    levels = frame_levels(np.frombuffer(hello, dtype=np.int16), 16000)
    voiced_end = hello_end - (len(levels) - 1 - int(np.nonzero(levels > -40)[0][-1])) * 0.02
    assert 0.7 < first_out - voiced_end < 1.2, (first_out - voiced_end, call.record.events)
    assert call.record.said("assistant") == [GREETING]
    assert call.record.said("caller") == []  # the hello is not a turn to answer
    assert call.record.events == [("answered_by", {"answered_by": "human",
                                                   "reason": "short_greeting"})]
