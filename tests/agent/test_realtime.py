"""The realtime session against a local server speaking OpenAI Realtime's protocol, on an
in-memory leg paced like RTP: greeting, turns, barge-in with truncation, tools, G.711 end to
end, and the fallback when the vendor fails."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from atende.agent.fallback import Fallback
from atende.agent.turn_policy import TurnPolicy
from atende.channels.leg import DtmfIn
from tests.agent.conftest import PROMPT, StartRealtime, played_s, wait_for
from tests.peers.audio import Tone, speech
from tests.peers.realtime import FakeRealtime, Reply

VOICE = Tone(440, 1.0)  # the model's audio: a tone is easy to find in what was played
CALLER = Tone(300, 0.6, -20)


def tone(seconds: float, hz: float = 440) -> bytes:
    return Tone(hz, seconds).pcm(16000)


async def test_greets_hears_and_answers(start_realtime: StartRealtime) -> None:
    with FakeRealtime([Reply("Hello, dental clinic.", tone(1.0)),
                       Reply("We open at nine.", tone(0.6, 660))],
                      heard=["When do you open?"]) as server:
        call = start_realtime(server)
        await wait_for(lambda: played_s(call) >= 1.0 and not call.leg.outbound.busy)
        await call.say(CALLER.pcm(16000))
        await wait_for(lambda: len(call.record.said("assistant")) == 2)
        conn = server.last

    session = conn.of_type("session.update")[0]["session"]
    assert session["type"] == "realtime" and session["instructions"] == PROMPT
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
    assert [t["name"] for t in session["tools"]] == ["set_outcome", "end_call", "send_dtmf"]
    greet = conn.of_type("response.create")[0]["response"]["instructions"]
    assert "Hello, dental clinic." in greet
    # The caller's line went up as 24 kHz PCM, in which the server heard them speak once.
    assert len(conn.speech_started) == 1

    turns = call.record.turns
    assert [(t.speaker, t.text) for t in turns] == [
        ("assistant", "Hello, dental clinic."), ("caller", "When do you open?"),
        ("assistant", "We open at nine.")]
    greeting, answer = turns[0], turns[2]
    assert not greeting.interrupted and abs(greeting.played_ms - 1000) <= 20
    assert greeting.latency_ms is None  # nobody spoke before it
    assert answer.latency_ms is not None and 0 <= answer.latency_ms < 500
    assert abs(played_s(call) - 1.6) <= 0.06  # both replies, whole, nothing else


async def test_barge_in_stops_the_audio_and_truncates_what_was_heard(
        start_realtime: StartRealtime) -> None:
    with FakeRealtime([Reply("Let me tell you all about our opening hours.", tone(4.0))],
                      heard=["Sorry, one question."]) as server:
        call = start_realtime(server)
        await wait_for(lambda: played_s(call) >= 1.2)
        loop = asyncio.get_running_loop()
        onset = loop.time()
        await call.say(CALLER.pcm(16000))
        await wait_for(lambda: bool(server.last.of_type("conversation.item.truncate")))
        await wait_for(lambda: len(call.record.turns) >= 2)
        conn = server.last

    last_frame_at = call.leg.sent[-1][0]
    print(f"assistant audio stopped {(last_frame_at - onset) * 1000:.0f} ms after onset")
    assert last_frame_at - onset < 0.25
    truncate = conn.of_type("conversation.item.truncate")[0]
    assert truncate["item_id"] == "item_1" and truncate["content_index"] == 0
    # What the vendor is told is what left the leg, to the frame.
    assert abs(truncate["audio_end_ms"] - played_s(call) * 1000) <= 20
    assert not conn.of_type("response.cancel")  # its reply was already complete
    greeting = call.record.turns[0]
    assert greeting.interrupted and greeting.played_ms == truncate["audio_end_ms"]
    assert not [e for e in call.record.events if e[0] == "provider_error"]
    assert call.session.barge_ins == 1  # type: ignore[attr-defined]


async def test_late_audio_of_a_cut_reply_is_never_played(
        start_realtime: StartRealtime) -> None:
    """The vendor streams its reply a little faster than real time, as OpenAI does; when the
    caller cuts in, deltas already on their way still arrive. None of them may play."""
    with FakeRealtime([Reply("Let me tell you all about our opening hours.", tone(4.0))],
                      heard=["Sorry, one question."], pace_s=0.08, late=3) as server:
        call = start_realtime(server)
        await wait_for(lambda: played_s(call) >= 1.2)
        onset = asyncio.get_running_loop().time()
        await call.say(CALLER.pcm(16000))
        await wait_for(lambda: bool(server.last.of_type("conversation.item.truncate")))
        # The cancelled reply's end comes after its late deltas: all of them were handled.
        await wait_for(lambda: call.session.replies_done == 1)  # type: ignore[attr-defined]
        conn = server.last
    assert conn.late_deltas >= 2  # audio did arrive after the caller cut in
    assert call.leg.sent[-1][0] - onset < 0.25
    [truncate] = conn.of_type("conversation.item.truncate")
    assert abs(truncate["audio_end_ms"] - played_s(call) * 1000) <= 20
    assert len(conn.of_type("response.cancel")) == 1  # the reply was still being generated


async def test_tools_set_the_outcome_and_end_the_call_after_the_goodbye(
        start_realtime: StartRealtime) -> None:
    goodbye = Reply("Thank you, see you at nine. Goodbye!", tone(0.8, 550), calls=[
        ("set_outcome", {"outcome": "confirmed", "fields": {"proposed_time": "9:00"}}),
        ("end_call", {})])
    with FakeRealtime([Reply("Hello, can you come at nine?", tone(0.4)), goodbye],
                      heard=["Yes, nine is fine."]) as server:
        call = start_realtime(server)
        await wait_for(lambda: played_s(call) >= 0.4)
        await call.say(CALLER.pcm(16000))
        await asyncio.wait_for(call.task, 10)
        conn = server.last

    assert call.leg.end_cause == "assistant_hangup"
    assert call.record.outcomes == [("confirmed", {"proposed_time": "9:00"})]
    # The goodbye was played whole before the hang-up.
    assert abs(played_s(call) - 1.2) <= 0.06
    outputs = [e["item"] for e in conn.of_type("conversation.item.create")]
    assert [(o["type"], o["call_id"]) for o in outputs] == [
        ("function_call_output", "call_2_0"), ("function_call_output", "call_2_1")]
    # end_call: the model is not asked to speak again.
    assert len(conn.of_type("response.create")) == 1
    assert [e[0] for e in call.record.events].count("tool_call") == 2


async def test_g711_calls_are_pcmu_end_to_end(start_realtime: StartRealtime) -> None:
    loop = asyncio.get_running_loop()
    with FakeRealtime([Reply("Hello, dental clinic.", tone(1.0))]) as server:
        t0 = loop.time()
        call = start_realtime(server, wire_codec="PCMU")
        await wait_for(lambda: played_s(call) >= 1.0 and not call.leg.outbound.busy)
        await call.say(CALLER.pcm(16000))
        await wait_for(lambda: len(server.last.speech_started) == 1)
        await call.end()
        elapsed_ms = (loop.time() - t0) * 1000
        conn = server.last
    fmt = conn.of_type("session.update")[0]["session"]["audio"]
    assert fmt["input"]["format"] == {"type": "audio/pcmu"}
    assert fmt["output"]["format"] == {"type": "audio/pcmu"}
    # 8 kHz μ-law (8 bytes a millisecond) for as long as the call was up, less the time
    # to connect; the server heard the caller in it (silence as PCM would be loud μ-law).
    assert elapsed_ms - 500 < conn.audio_bytes / 8 <= elapsed_ms, (conn.audio_bytes, elapsed_ms)
    assert abs(played_s(call) - 1.0) <= 0.04


async def test_a_dropped_connection_falls_back_and_takes_a_message(
        start_realtime: StartRealtime) -> None:
    fb = Fallback(action="message")
    with FakeRealtime([Reply("Hello, dental clinic.", tone(0.5))], drop_after=1) as server:
        call = start_realtime(server, fallback=fb)
        await wait_for(lambda: any(e[0] == "fallback" for e in call.record.events))
        await wait_for(lambda: played_s(call) > 3 and not call.leg.outbound.busy)
        await call.say(speech([(0.2, "Please call me back tomorrow.")], tail_s=1.0))
        await asyncio.wait_for(call.task, 20)

    fallback = next(d for k, d in call.record.events if k == "fallback")
    assert fallback == {"provider": "openai", "kind": "server", "action": "message"}  # 1011
    assert call.record.said("assistant")[1].startswith(fb.message)
    outcome, fields = call.record.outcomes[0]
    assert outcome == "message_taken" and "call me back" in fields["message"].lower()
    assert call.leg.end_cause == "assistant_hangup"


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (401, "auth")])
async def test_a_refused_connection_is_never_dead_air(
        start_realtime: StartRealtime, status: int, kind: str) -> None:
    fb = Fallback(message="Sorry, we cannot take your call right now.", action="hangup")
    refuse: dict[str, Any] = {"refuse": status} if status != 401 else {}
    with FakeRealtime([], **refuse) as server:
        call = start_realtime(server, fallback=fb, api_key="sk-test" if refuse else "wrong")
        await asyncio.wait_for(call.task, 20)
    assert ("fallback", {"provider": "openai", "kind": kind, "action": "hangup"}) in \
        call.record.events
    assert call.record.said("assistant") == [fb.message]
    assert played_s(call) > 1.0 and call.leg.end_cause == "assistant_hangup"


def notes(conn: Any) -> list[str]:
    """What atende told the model in words (system messages)."""
    return [e["item"]["content"][0]["text"] for e in conn.of_type("conversation.item.create")
            if e["item"]["type"] == "message" and e["item"]["role"] == "system"]


def silent_caller_replies() -> list[Reply]:
    """What the model says to a caller who says nothing: greeting, reprompt, goodbye."""
    return [Reply("Hello, dental clinic.", tone(0.4)),
            Reply("Are you still there?", tone(0.5, 550)),
            Reply("Goodbye then.", tone(0.6, 660))]


async def test_a_silent_caller_is_reprompted_then_the_model_says_goodbye(
        start_realtime: StartRealtime) -> None:
    policy = TurnPolicy(reprompt_after_ms=2000, max_reprompts=1)
    with FakeRealtime(silent_caller_replies()) as server:
        call = start_realtime(server, policy=policy)
        await asyncio.wait_for(call.task, 20)
        conn = server.last
    assert call.leg.end_cause == "silence"
    told = notes(conn)
    assert len(told) == 2, told
    assert "said nothing for 2 seconds" in told[0] and policy.reprompt in told[0]
    assert "goodbye" in told[1].lower() and policy.silence_goodbye in told[1]
    assert len(conn.of_type("response.create")) == 3  # greeting, reprompt, goodbye
    assert [k for k, _ in call.record.events] == ["reprompt", "silence_hangup"]
    greeting, reprompt, goodbye = [t for t in call.record.turns if t.speaker == "assistant"]
    assert 1.9 <= reprompt.started_at - greeting.ended_at <= 2.4
    assert not goodbye.interrupted and goodbye.played_ms >= 580  # heard whole, then hung up


async def test_time_on_hold_is_not_silence_for_the_model_either(
        start_realtime: StartRealtime) -> None:
    policy = TurnPolicy(reprompt_after_ms=2000, max_reprompts=1)
    with FakeRealtime(silent_caller_replies()) as server:
        call = start_realtime(server, policy=policy)
        loop = asyncio.get_running_loop()
        await wait_for(lambda: any(t.speaker == "assistant" for t in call.record.turns))
        await asyncio.sleep(1.0)
        call.speaking = True  # a silent line while on hold
        call.leg.hold_changed(True, loop.time())
        await asyncio.sleep(2.5)
        resumed = time.time()
        call.leg.hold_changed(False, loop.time())
        call.speaking = False
        await asyncio.wait_for(call.task, 20)
    reprompt = [t for t in call.record.turns if t.speaker == "assistant"][1]
    assert 1.75 <= reprompt.started_at - resumed <= 2.5


async def test_keys_the_caller_presses_are_told_to_the_model(
        start_realtime: StartRealtime) -> None:
    with FakeRealtime([Reply("Hello. Press one for sales, then the hash key.", tone(0.4)),
                       Reply("Sales, one moment.", tone(0.4, 550))]) as server:
        call = start_realtime(server)
        await wait_for(lambda: played_s(call) >= 0.4)
        loop = asyncio.get_running_loop()
        for key in "1#":
            call.leg.events.put_nowait(DtmfIn(key, 100, loop.time()))
        await wait_for(lambda: played_s(call) >= 0.8)
        for key in "42":  # no hash: the entry ends after a pause
            call.leg.events.put_nowait(DtmfIn(key, 100, loop.time()))
        await wait_for(lambda: len(notes(server.last)) == 2, timeout=5)
        conn = server.last
    assert notes(conn) == ["The caller pressed 1 # on their phone's keypad.",
                           "The caller pressed 4 2 on their phone's keypad."]
    assert call.record.said("assistant")[1] == "Sales, one moment."
