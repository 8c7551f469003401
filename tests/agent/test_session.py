"""The agent session with a language model: streaming replies, tool calls on the call,
barge-in memory, backup models and the fallback. Real speech engines (Whisper, Piper) on an
in-memory leg; the model is a local server speaking OpenAI's chat-completions stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from atende.agent.brain import TRANSFER_FAILED, Intent, RuleBrain, RuleSet
from atende.agent.fallback import Fallback
from atende.agent.llm_brain import LlmBrain
from atende.agent.tools import BUILTINS, Destination, ToolBox
from atende.providers.llm.base import LlmSettings
from atende.providers.llm.factory import language_model
from tests.agent.conftest import Call, StartCall, wait_for
from tests.peers.vendor import (
    Answer,
    Request,
    Status,
    Stream,
    VendorServer,
    data_events,
    openai_chunk,
)
from tests.peers.vendor import openai_reply as reply

GREETING = "Hello Ana, I am calling to confirm your appointment tomorrow at ten."


@pytest.fixture
def call_with(start_call: StartCall) -> Callable[..., Call]:
    def start(urls: list[str], fallback: Fallback | None = None,
              destinations: list[Destination] | None = None) -> Call:
        models = [language_model(LlmSettings("openai", "test-model", base_url=u, timeout_s=3))
                  for u in urls]
        brain = LlmBrain(models, "You confirm appointments.", GREETING,
                         ToolBox(list(BUILTINS), destinations))
        return start_call(brain, fallback=fallback)
    return start


def last_user_text(req: Request) -> str:
    return str([m for m in req.json["messages"] if m["role"] == "user"][-1]["content"])


async def test_reply_streams_and_tool_calls_act_on_the_call(
        call_with: Callable[..., Call], speech: Callable[[str], bytes]) -> None:
    answers = [reply("Thank you, that is confirmed. Have a nice day, goodbye!",
                     ("set_outcome", {"outcome": "confirmed", "fields": {"note": "ok"}}),
                     ("end_call", {}), gap_s=0.3)]
    with VendorServer(lambda req: answers.pop(0)) as llm:
        call = call_with([llm.url])
        await call.greeting_heard()
        speech_end = await call.say(speech("Yes, I confirm."))
        await asyncio.wait_for(call.task, 30)
    assert call.leg.end_cause == "assistant_hangup"
    assert call.record.outcomes == [("confirmed", {"note": "ok"})]
    req = llm.requests[0]
    assert "confirm" in last_user_text(req).lower()
    assert req.json["messages"][1] == {"role": "assistant", "content": GREETING}
    assert {t["function"]["name"] for t in req.json["tools"]} == {
        "set_outcome", "end_call", "send_dtmf"}  # no transfer without destinations
    greeting, answer = call.record.turns[0], call.record.turns[-1]
    assert greeting.text == GREETING
    assert answer.text == "Thank you, that is confirmed. Have a nice day, goodbye!"
    assert answer.llm_ms is not None and answer.stt_ms is not None
    assert answer.latency_ms is not None and answer.tts_ms is not None
    # Streaming: the first sentence was on the line before the model had finished (its
    # chunks came 0.3 s apart, five of them after the first sentence's end).
    first_out = min(t for t, _ in call.leg.sent if t > speech_end)
    assert first_out - speech_end < answer.latency_ms / 1000 + 0.05
    assert answer.llm_ms + answer.tts_ms < answer.latency_ms
    kinds = [k for k, _ in call.record.events]
    assert kinds.count("tool_call") == 2 and kinds.count("tool_result") == 2


async def test_first_audio_goes_out_before_the_model_finishes(
        call_with: Callable[..., Call], speech: Callable[[str], bytes]) -> None:
    # One sentence, then the model takes 2 s for the rest.
    stream = reply("Sure. Let me think about the rest of what you said.", gap_s=0.5)
    with VendorServer(lambda req: stream) as llm:
        call = call_with([llm.url])
        await call.greeting_heard()
        speech_end = await call.say(speech("What time is it?"))
        asked_at = asyncio.get_running_loop().time()
        await wait_for(lambda: len(call.record.said("assistant")) == 2)
    first_out = min(t for t, _ in call.leg.sent if t > speech_end)
    assert first_out < asked_at + 2.0  # the stream takes ≥ 2.5 s (6 chunks 0.5 s apart)
    assert call.record.said("assistant")[-1] == \
        "Sure. Let me think about the rest of what you said."


async def test_barge_in_leaves_only_what_was_heard_in_the_models_memory(
        call_with: Callable[..., Call], speech: Callable[[str], bytes]) -> None:
    long = ("Our clinic opens at eight. " * 2 + "We have parking behind the building. "
            "The entrance is on the left. Please bring your insurance card. "
            "Arrive ten minutes early.")
    answers: list[Answer] = [reply(long), reply("Of course, goodbye!", ("end_call", {}))]
    with VendorServer(lambda req: answers.pop(0)) as llm:
        call = call_with([llm.url])
        await call.greeting_heard()
        await call.say(speech("Tell me about the clinic."))
        await wait_for(lambda: len(call.leg.sent) > 0 and call.leg.outbound.busy
                       and len(call.record.turns) >= 2)
        await asyncio.sleep(1.5)
        await call.say(speech("Stop, that is enough, thank you. Goodbye."))
        await asyncio.wait_for(call.task, 30)
    cut = [t for t in call.record.turns if t.speaker == "assistant" and t.interrupted]
    assert len(cut) == 1 and cut[0].text and len(cut[0].text) < len(long)
    assert long.startswith(cut[0].text)
    history = llm.requests[1].json["messages"]
    remembered = [m["content"] for m in history if m["role"] == "assistant"][-1]
    assert remembered == cut[0].text + "…"


async def test_backup_model_answers_when_the_first_fails(
        call_with: Callable[..., Call], speech: Callable[[str], bytes]) -> None:
    backup: list[Answer] = [reply("The backup is here."), reply("Still the backup."),
                            Status(500, '{"error": {"message": "down too"}}')]
    first: list[Answer] = [Status(503, '{"error": {"message": "overloaded"}}'),
                           reply("The first one is back.")]
    with VendorServer(lambda req: first.pop(0)) as bad, \
            VendorServer(lambda req: backup.pop(0)) as good:
        call = call_with([bad.url, good.url])
        await call.greeting_heard()
        for n, words in enumerate(("Hello?", "Are you there?", "And now?"), start=2):
            await call.say(speech(words))
            await wait_for(lambda n=n: len(call.record.said("assistant")) == n
                           and not call.leg.outbound.busy)
    assert call.record.said("assistant")[1:] == [
        "The backup is here.", "Still the backup.", "The first one is back."]
    # After its failure the first model was not asked first again (each turn would have
    # waited for it), until the backup failed too.
    assert (len(bad.requests), len(good.requests)) == (2, 3)
    errors = [d for k, d in call.record.events if k == "provider_error"]
    assert [(e["status"], e["kind"]) for e in errors] == [(503, "server"), (500, "server")]
    assert "overloaded" in errors[0]["message"]
    assert not [k for k, _ in call.record.events if k == "fallback"]


async def test_failure_speaks_the_fallback_and_the_call_goes_on(
        call_with: Callable[..., Call], speech: Callable[[str], bytes]) -> None:
    answers: list[Answer] = [
        Stream(data_events(openai_chunk({"content": "Let me"})), cut_after=1),  # cut mid-reply
        reply("I am back. How can I help?")]
    with VendorServer(lambda req: answers.pop(0)) as llm:
        call = call_with([llm.url], Fallback("Sorry, one moment please."))
        await call.greeting_heard()
        await call.say(speech("Hello?"))
        await wait_for(lambda: len(call.record.said("assistant")) == 2)
        await wait_for(lambda: not call.leg.outbound.busy)
        await call.say(speech("Are you there?"))
        await wait_for(lambda: len(call.record.said("assistant")) == 3)
    # "Let me" never became a sentence, so it was never said.
    assert call.record.said("assistant")[1:] == ["Sorry, one moment please.",
                                                 "I am back. How can I help?"]
    (fb,) = [d for k, d in call.record.events if k == "fallback"]
    assert fb == {"provider": "openai:test-model", "kind": "connection", "action": "continue"}
    assert not call.leg.ended


async def test_fallback_takes_a_message(call_with: Callable[..., Call],
                                        speech: Callable[[str], bytes]) -> None:
    with VendorServer(lambda req: Status(500, '{"error": {"message": "boom"}}')) as llm:
        call = call_with([llm.url], Fallback("Sorry, I cannot help right now.", "message"))
        await call.greeting_heard()
        await call.say(speech("Hello?"))
        await wait_for(lambda: len(call.record.said("assistant")) == 2)
        await wait_for(lambda: not call.leg.outbound.busy)
        await call.say(speech("Please call me back about my appointment."))
        await asyncio.wait_for(call.task, 30)
    assert call.record.said("assistant")[1].startswith("Sorry, I cannot help right now.")
    ((outcome, fields),) = call.record.outcomes
    assert outcome == "message_taken" and "call me back" in fields["message"].lower()
    assert call.leg.end_cause == "assistant_hangup"
    assert len(llm.requests) == 1  # the message is taken without the model


async def test_a_failed_transfer_is_told_to_the_model(
        call_with: Callable[..., Call], speech: Callable[[str], bytes]) -> None:
    answers: list[Answer] = [
        reply("I will put you through to reception.",
              ("transfer_call", {"destination": "reception"})),
        reply("Sorry, reception is not available.")]
    with VendorServer(lambda req: answers.pop(0)) as llm:
        call = call_with([llm.url], destinations=[Destination("reception", "100", "the desk")])
        await call.greeting_heard()
        await call.say(speech("Can I talk to reception?"))
        await wait_for(lambda: len(call.record.said("assistant")) == 2)
    # One turn: the announcement, the transfer attempt, and the model's answer to its result.
    assert call.record.said("assistant")[1] == \
        "I will put you through to reception. Sorry, reception is not available."
    assert call.record.transfers == [("100", False)]  # once the announcement was heard
    tools = llm.requests[0].json["tools"]
    (transfer,) = [t for t in tools if t["function"]["name"] == "transfer_call"]
    assert transfer["function"]["parameters"]["properties"]["destination"]["enum"] == [
        "reception"]
    result = llm.requests[1].json["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == "call_transfer_call"
    assert "did not go through" in json.loads(result["content"])["error"]


async def test_a_rule_that_transfers_hands_the_caller_over_after_its_reply(
        start_call: StartCall, speech: Callable[[str], bytes]) -> None:
    """Transfer rules by keyword work without a model: the rule's reply is heard first,
    then the transfer; one that fails (an in-memory leg cannot be transferred) is told."""
    rules = RuleSet("Hello, how can I help?", [
        Intent("sales", ("sales",), "Putting you through to sales.", action="transfer",
               destination="sales")])
    brain = RuleBrain(rules, {"sales": ("1001", False)}.get)
    call = start_call(brain)
    await call.greeting_heard()
    await call.say(speech("I would like to talk to sales, please."))
    await wait_for(lambda: len(call.record.said("assistant")) == 2)
    assert call.record.transfers == [("1001", False)]  # after its reply was heard
    assert call.record.said("assistant")[1] == f"Putting you through to sales. {TRANSFER_FAILED}"
    failed = [d for kind, d in call.record.events if kind == "rule_transfer_failed"]
    assert failed == [{"destination": "sales", "reason": "an in-memory leg cannot be transferred"}]
    await call.end()
