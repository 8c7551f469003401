"""Assistants that think with a language model, end to end: configured through
/v1/assistants, calling baresip phones through kamailio, the model a local server speaking
OpenAI's chat-completions stream. Its tool calls act on the real call: the outcome, DTMF
the phone receives, a transfer to another phone; its failure speaks the fallback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.test_automation import TASK, task_call
from tests.e2e.test_outbound import (  # noqa: F401  (pbx and trunk are fixtures)
    finished,
    pbx,
    phone,
    trunk,
)
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.peers.vendor import Answer, Request, Status, VendorServer
from tests.peers.vendor import openai_reply as reply


def conversation_model(rules: Callable[[str, list[dict[str, Any]]], Answer]
                       ) -> Callable[[Request], Answer]:
    """A model that answers by the caller's last words (lower case) and the messages."""
    def answer(req: Request) -> Answer:
        messages = req.json["messages"]
        heard = next(str(m["content"]) for m in reversed(messages) if m["role"] == "user")
        return rules(heard.lower(), messages)
    return answer


def assistant(a: AtendeProcess, **body: Any) -> dict[str, Any]:
    r = a.api.post("/v1/assistants", json={"name": "LLM", "voice": "espeak:en-us", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def events(call: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in call["events"] if e["kind"] == kind]


async def test_the_model_confirms_the_appointment_with_a_tool_call(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    def rules(heard: str, messages: list[dict[str, Any]]) -> Answer:
        if messages[-1]["role"] == "tool":
            return reply("")  # after end_call the model has nothing to add
        if "confirm" in heard:
            return reply("Thank you Ana, that is confirmed. Goodbye!",
                         ("set_outcome", {"outcome": "confirmed"}), ("end_call", {}))
        return reply("Sorry, could you say that again?")

    with VendorServer(conversation_model(rules)) as llm:
        bot = assistant(atende, extension="llm-confirm", llm=[
            {"provider": "openai", "model": "test-model", "base_url": llm.url,
             "api_key": "sk-e2e-secret"}])
        wav = speech_wav(tmp_path / "ana.wav", [(12.0, "Yes, I confirm.")], 25)
        call, result, _ = await task_call(atende, pbx, tmp_path, wav, trunk["id"],
                                          assistant_id=bot["id"])
    assert result["outcome"] == "confirmed", result["transcript"]
    assert result["hangup_cause"] == "assistant_hangup"
    said = [t["text"] for t in result["transcript"] if t["speaker"] == "assistant"]
    assert said[0].startswith("Hello Ana.")  # the task greeting, while the phone rang
    assert said[-1] == "Thank you Ana, that is confirmed. Goodbye!"
    req = llm.requests[0]
    assert req.headers["authorization"] == "Bearer sk-e2e-secret"
    system = req.json["messages"][0]
    assert system["role"] == "system" and TASK in system["content"] and "Ana" in system["content"]
    assert {t["function"]["name"] for t in req.json["tools"]} >= {"set_outcome", "end_call"}
    stored = atende.call(call["id"])
    reply_turn = [t for t in stored["turns"] if t["speaker"] == "assistant"][-1]
    assert reply_turn["llm_ms"] is not None and reply_turn["latency_ms"] is not None
    calls = [e["name"] for e in events(stored, "tool_call")]
    assert calls == ["set_outcome", "end_call"]
    assert "sk-e2e-secret" not in atende.log()


async def test_the_model_schedules_the_call_back_it_promised(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    reason = "Confirm Ana's dental appointment; she was busy."

    def rules(heard: str, messages: list[dict[str, Any]]) -> Answer:
        if messages[-1]["role"] == "tool":
            return reply("")
        if "call me back" in heard:
            return reply("Of course, we will call you tomorrow. Goodbye!",
                         ("schedule_callback", {"in_minutes": 1440, "reason": reason}),
                         ("end_call", {}))
        return reply("Sorry, could you say that again?")

    with VendorServer(conversation_model(rules)) as llm:
        bot = assistant(atende, extension="llm-callback", llm=[
            {"provider": "openai", "model": "test-model", "base_url": llm.url}],
            tools=["set_outcome", "end_call", "schedule_callback"])
        wav = speech_wav(tmp_path / "ana.wav",
                         [(12.0, "I'm busy right now. Please call me back tomorrow.")], 25)
        call, result, _ = await task_call(atende, pbx, tmp_path, wav, trunk["id"],
                                          assistant_id=bot["id"])
    promised_at = time.time()
    assert result["hangup_cause"] == "assistant_hangup", result["transcript"]
    assert "schedule_callback" in {t["function"]["name"] for t in llm.requests[0].json["tools"]}
    stored = atende.call(call["id"])
    (scheduled,) = events(stored, "callback_scheduled")
    assert scheduled["ok"] is True and scheduled["number"] == "alice"
    # The call back is queued like any scheduled call: same person, trunk and assistant,
    # the first call's context kept and linked.
    later = atende.call(scheduled["call_id"])
    assert later["status"] == "queued" and later["source"] == "callback"
    assert (later["phone_number"], later["trunk_id"], later["assistant_id"]) == (
        "alice", trunk["id"], bot["id"])
    assert later["task"] == reason and later["caller_name"] == "Ana"
    assert later["metadata"]["callback_of"] == call["id"]
    assert later["webhook_url"] == call["webhook_url"]
    due = datetime.fromisoformat(later["next_attempt_at"]).timestamp()
    assert abs(due - (promised_at + 86400)) < 120, later["next_attempt_at"]
    r = atende.api.post(f"/v1/calls/{later['id']}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "cancelled", r.text


def _story(atende: AtendeProcess, call_id: str, phone: Baresip) -> str:
    """A call's turns, events and the phone's events, for a failure's message."""
    call = atende.call(call_id)
    turns = [(t["speaker"], t["text"]) for t in call.get("turns", [])]
    kinds = [(e["kind"], e["data"]) for e in call["events"]]
    seen = [e.get("type") for e in phone.events]
    return (f"status {call['status']}\nturns {turns}\nevents {kinds}\nphone {seen}\n"
            f"log tail:\n{atende.log()[-4000:]}")


async def test_dtmf_and_transfer_tools_act_on_the_call(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    def rules(heard: str, messages: list[dict[str, Any]]) -> Answer:
        if messages[-1]["role"] == "tool":
            result = json.loads(messages[-1]["content"])
            return reply("Done." if result.get("ok") else "That did not work.")
        # Any of the words will do: a short name like "Bob" is the likeliest to be misheard
        # (Whisper's floating point differs between CPUs), and the test is of the tools.
        if "press" in heard or "hash" in heard:
            return reply("Pressing one and hash.", ("send_dtmf", {"digits": "1#"}))
        if "bob" in heard or "through" in heard:
            return reply("Putting you through to Bob.", ("transfer_call", {"destination": "bob"}))
        return reply("Sorry?")

    with VendorServer(conversation_model(rules)) as llm:
        bot = assistant(atende, extension="llm-tools", llm=[
            {"provider": "openai", "model": "test-model", "base_url": llm.url}],
            greeting="Hello, this is the assistant.",
            transfers=[{"name": "bob", "target": "bob", "description": "Bob, in sales"}])
        alice = await phone(tmp_path, pbx, "alice", speech_wav(
            tmp_path / "alice.wav", [(5.0, "Please press one and hash for me."),
                                     (6.0, "Now put me through to Bob please.")], 30))
        bob = await phone(tmp_path, pbx, "bob", speech_wav(tmp_path / "bob.wav", [], 30))
        try:
            r = atende.api.post("/v1/calls", json={
                "phone_number": "alice", "trunk_id": trunk["id"], "assistant_id": bot["id"]})
            assert r.status_code == 201, r.text
            digit = await alice.wait_event("CALL_DTMF_START", timeout=40)
            try:
                await bob.wait_event("CALL_ESTABLISHED", timeout=40)
            except TimeoutError:  # say what the call heard and did, to tell why
                raise AssertionError(_story(atende, r.json()["id"], alice)) from None
            done = await finished(atende, r.json()["id"])
        finally:
            await alice.stop()
            await bob.stop()
    assert digit["param"].startswith("1"), digit
    (transfer,) = events(done, "transfer")
    assert transfer["outcome"] == "transferred" and transfer["to"].startswith("sip:bob@")
    names = [e["name"] for e in events(done, "tool_call")]
    assert names == ["send_dtmf", "transfer_call"]
    # (The transfer's own result may not be recorded: the call is over when it succeeds.)
    assert events(done, "tool_result")[0]["result"] == {"ok": True, "sent": "1#"}


async def test_a_failing_model_speaks_the_fallback_and_transfers(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    with VendorServer(lambda req: Status(500, '{"error": {"message": "boom"}}')) as llm:
        bot = assistant(atende, extension="llm-broken", llm=[
            {"provider": "openai", "model": "test-model", "base_url": llm.url}],
            greeting="Hello, this is the assistant.",
            transfers=[{"name": "desk", "target": "bob"}],
            fallback={"message": "Sorry, let me put you through to a colleague.",
                      "action": "transfer", "destination": "desk"})
        alice = await phone(tmp_path, pbx, "alice", speech_wav(
            tmp_path / "alice.wav", [(5.0, "I have a question about my bill.")], 30))
        bob = await phone(tmp_path, pbx, "bob", speech_wav(tmp_path / "bob.wav", [], 30))
        try:
            r = atende.api.post("/v1/calls", json={
                "phone_number": "alice", "trunk_id": trunk["id"], "assistant_id": bot["id"]})
            assert r.status_code == 201, r.text
            await bob.wait_event("CALL_ESTABLISHED", timeout=40)
            done = await finished(atende, r.json()["id"])
        finally:
            await alice.stop()
            await bob.stop()
    said = [t["text"] for t in done["turns"] if t["speaker"] == "assistant"]
    assert said[-1] == "Sorry, let me put you through to a colleague."
    (fb,) = events(done, "fallback")
    assert fb["kind"] == "server" and fb["action"] == "transfer"
    (err,) = events(done, "provider_error")
    assert err["status"] == 500 and err["message"] == "boom"
    assert events(done, "transfer")[0]["outcome"] == "transferred"
    assert len(llm.requests) == 1
