"""The realtime session with the other two vendors, each against a local server speaking its
wire protocol (ElevenLabs Conversational AI, Gemini Live), on an in-memory leg paced like
RTP: greeting and turns, barge-in on the vendor's interruption (late audio dropped), tools,
the vendor ending the call, and failures that fall back."""

from __future__ import annotations

import asyncio
import json

from atende.agent.fallback import Fallback
from atende.channels.leg import DtmfIn
from tests.agent.conftest import PROMPT, Call, StartRealtime, played_s, wait_for
from tests.peers.audio import Tone
from tests.peers.realtime import Reply
from tests.peers.realtime_elevenlabs import FakeElevenLabs
from tests.peers.realtime_gemini import FakeGemini

CALLER = Tone(300, 0.6, -20)


def tone(seconds: float, hz: float = 440) -> bytes:
    return Tone(hz, seconds).pcm(16000)


def elevenlabs(start: StartRealtime, server: FakeElevenLabs, **kwargs: object) -> Call:
    return start(server, provider="elevenlabs", model="agent_test", voice="voice_9",
                 **kwargs)


def gemini(start: StartRealtime, server: FakeGemini, **kwargs: object) -> Call:
    return start(server, provider="gemini", model="gemini-live-2.5-flash-preview",
                 voice="Puck", **kwargs)


async def speak_over(call: Call) -> float:
    """The caller speaks over the greeting once 1.2 s of it played; when they started."""
    await wait_for(lambda: played_s(call) >= 1.2)
    onset = asyncio.get_running_loop().time()
    await call.say(CALLER.pcm(16000))
    await wait_for(lambda: call.session.barge_ins == 1)  # type: ignore[attr-defined]
    return onset


LONG = Reply("Let me tell you all about our opening hours.", tone(4.0))


# ElevenLabs -----------------------------------------------------------------------------
async def test_elevenlabs_agent_greets_hears_and_answers(
        start_realtime: StartRealtime) -> None:
    with FakeElevenLabs([Reply("Hello, dental clinic.", tone(1.0)),
                         Reply("We open at nine.", tone(0.6, 660))],
                        heard=["When do you open?"], api_key="xi-test") as server:
        call = elevenlabs(start_realtime, server, api_key="xi-test")
        await wait_for(lambda: played_s(call) >= 1.0 and not call.leg.outbound.busy)
        await call.say(CALLER.pcm(16000))
        await wait_for(lambda: len(call.record.said("assistant")) == 2)
        conn = server.last

    init = conn.events[0]
    assert init["conversation_config_override"] == {
        "agent": {"prompt": {"prompt": PROMPT}, "first_message": "Hello, dental clinic."},
        "tts": {"voice_id": "voice_9"}}
    assert {"type": "pong", "event_id": 1} in conn.events  # its ping was answered
    assert len(conn.speech_started) == 1
    turns = call.record.turns
    assert [(t.speaker, t.text) for t in turns] == [
        ("assistant", "Hello, dental clinic."), ("caller", "When do you open?"),
        ("assistant", "We open at nine.")]
    assert not turns[0].interrupted and abs(turns[0].played_ms - 1000) <= 20
    assert abs(played_s(call) - 1.6) <= 0.06


async def test_elevenlabs_reply_that_stalls_is_one_turn_and_a_reprompt_its_own(
        start_realtime: StartRealtime) -> None:
    """ElevenLabs never says a reply is over. One whose audio stops coming for longer than
    was queued (its network fell behind) goes on as the same turn; a reply that follows
    with no caller turn between (as the agent's reprompt, here an answer to keys) is a
    turn of its own, with its own words."""
    greeting = Reply("Hello. Press one for sales.", tone(1.0), stall_s=0.8)
    with FakeElevenLabs([greeting, Reply("Sales, one moment.", tone(0.4, 550))]) as server:
        call = elevenlabs(start_realtime, server)
        await wait_for(lambda: played_s(call) >= 1.0 and not call.leg.outbound.busy)
        loop = asyncio.get_running_loop()
        for key in "1#":
            call.leg.events.put_nowait(DtmfIn(key, 100, loop.time()))
        await wait_for(lambda: len(call.record.said("assistant")) == 2)
    first, second = call.record.turns
    assert (first.text, second.text) == ("Hello. Press one for sales.", "Sales, one moment.")
    assert not first.interrupted and abs(first.played_ms - 1000) <= 20
    assert abs(second.played_ms - 400) <= 20
    # The stall was a silence within the one turn: 0.3 s past the 0.5 s that was queued.
    assert first.ended_at - first.started_at >= 1.2


async def test_elevenlabs_interruption_stops_the_audio_and_drops_its_late_chunks(
        start_realtime: StartRealtime) -> None:
    with FakeElevenLabs([LONG], heard=["Sorry, one question."], pace_s=0.08,
                        late=3) as server:
        call = elevenlabs(start_realtime, server)
        onset = await speak_over(call)
        await wait_for(lambda: server.last.late_deltas >= 2)
        # The caller's turn ends well after the late chunks came: none of them played.
        await wait_for(lambda: "Sorry, one question." in call.record.said("caller"))
        conn = server.last
    stopped = call.leg.sent[-1][0] - onset
    print(f"assistant audio stopped {stopped * 1000:.0f} ms after onset")
    assert stopped < 0.25
    greeting = call.record.turns[0]
    assert greeting.interrupted and greeting.text.startswith("Let me tell you")
    assert abs(greeting.played_ms - played_s(call) * 1000) <= 20
    assert conn.late_deltas >= 2  # audio of the cut reply did arrive after the interruption


async def test_elevenlabs_client_tools_and_the_agent_hanging_up(
        start_realtime: StartRealtime) -> None:
    goodbye = Reply("See you at nine. Goodbye!", tone(0.8, 550), calls=[
        ("set_outcome", {"outcome": "confirmed", "fields": {"proposed_time": "9:00"}})])
    with FakeElevenLabs([Reply("Hello, can you come at nine?", tone(0.4)), goodbye],
                        heard=["Yes, nine is fine."], end_after=2) as server:
        call = elevenlabs(start_realtime, server)
        await wait_for(lambda: played_s(call) >= 0.4)
        await call.say(CALLER.pcm(16000))
        await asyncio.wait_for(call.task, 10)
        conn = server.last

    assert call.record.outcomes == [("confirmed", {"proposed_time": "9:00"})]
    [result] = [e for e in conn.events if e.get("type") == "client_tool_result"]
    assert result["tool_call_id"] == "tool_2_0" and result["is_error"] is False
    assert json.loads(result["result"])["ok"] is True
    # The agent closed the conversation (1000): its goodbye was played whole, then hang-up.
    assert call.leg.end_cause == "assistant_hangup"
    assert abs(played_s(call) - 1.2) <= 0.06
    assert ("provider_ended", {"provider": "elevenlabs"}) in call.record.events


async def test_elevenlabs_mulaw_agent_formats(start_realtime: StartRealtime) -> None:
    with FakeElevenLabs([Reply("Hello, dental clinic.", tone(1.0))],
                        input_format="ulaw_8000", output_format="ulaw_8000") as server:
        call = elevenlabs(start_realtime, server)
        await wait_for(lambda: played_s(call) >= 1.0)
        await call.say(CALLER.pcm(16000))
        await wait_for(lambda: len(server.last.speech_started) == 1)
        conn = server.last
    # The server heard the caller in μ-law (silence as PCM would be loud μ-law); its μ-law
    # reply played as one second of audio.
    assert conn.audio_bytes > 0
    assert abs(played_s(call) - 1.0) <= 0.04


async def test_elevenlabs_locked_overrides_fall_back(start_realtime: StartRealtime) -> None:
    fb = Fallback(message="Sorry, we cannot take your call right now.", action="hangup")
    with FakeElevenLabs([], refuse_override=True) as server:
        call = elevenlabs(start_realtime, server, fallback=fb)
        await asyncio.wait_for(call.task, 20)
    assert ("fallback", {"provider": "elevenlabs", "kind": "request", "action": "hangup"}
            ) in call.record.events
    assert call.record.said("assistant") == [fb.message]


# Gemini Live ----------------------------------------------------------------------------
async def test_gemini_greets_hears_and_answers(start_realtime: StartRealtime) -> None:
    with FakeGemini([Reply("Hello, dental clinic.", tone(1.0)),
                     Reply("We open at nine.", tone(0.6, 660))],
                    heard=["When do you open?"]) as server:
        call = gemini(start_realtime, server)
        await wait_for(lambda: played_s(call) >= 1.0 and not call.leg.outbound.busy)
        await call.say(CALLER.pcm(16000))
        await wait_for(lambda: len(call.record.said("assistant")) == 2)
        conn = server.last

    setup = FakeGemini.of_kind(conn, "setup")[0]
    assert setup["model"] == "models/gemini-live-2.5-flash-preview"
    assert setup["systemInstruction"] == {"parts": [{"text": PROMPT}]}
    assert setup["generationConfig"]["speechConfig"]["voiceConfig"] == {
        "prebuiltVoiceConfig": {"voiceName": "Puck"}}
    assert setup["realtimeInputConfig"]["automaticActivityDetection"][
        "silenceDurationMs"] == 400
    [declared] = setup["tools"]
    assert [f["name"] for f in declared["functionDeclarations"]] == [
        "set_outcome", "end_call", "send_dtmf"]
    assert "additionalProperties" not in json.dumps(declared)  # not in Gemini's schema
    [greet] = FakeGemini.of_kind(conn, "clientContent")
    assert "Hello, dental clinic." in greet["turns"][0]["parts"][0]["text"]
    # The caller went up as 16 kHz PCM (two bytes a sample): as long as the call, nearly.
    assert conn.audio_bytes > 32 * 1000
    turns = call.record.turns
    assert [(t.speaker, t.text) for t in turns] == [
        ("assistant", "Hello, dental clinic."), ("caller", "When do you open?"),
        ("assistant", "We open at nine.")]
    assert abs(played_s(call) - 1.6) <= 0.06


async def test_gemini_interrupted_stops_the_audio(start_realtime: StartRealtime) -> None:
    """Gemini sends ``interrupted`` once its generation has stopped, after the audio that
    was already on its way: that plays until the interruption, nothing after it."""
    with FakeGemini([LONG], heard=["Sorry, one question."], pace_s=0.08, late=3) as server:
        call = gemini(start_realtime, server)
        onset = await speak_over(call)
        # The caller's turn ends well after the interruption: nothing more played.
        await wait_for(lambda: "Sorry, one question." in call.record.said("caller"))
        conn = server.last
    assert conn.late_deltas >= 2
    [said_at] = conn.interrupted
    last_frame_at = call.leg.sent[-1][0]  # the loop's clock is time.monotonic() too
    print(f"assistant audio stopped {(last_frame_at - onset) * 1000:.0f} ms after onset, "
          f"{(last_frame_at - said_at) * 1000:.0f} ms after Gemini said so")
    assert last_frame_at - said_at < 0.06  # ours: at most a frame or two
    greeting = call.record.turns[0]
    assert greeting.interrupted and greeting.text.startswith("Let me tell")
    assert abs(greeting.played_ms - played_s(call) * 1000) <= 20


async def test_gemini_tools_answer_and_end_call_hangs_up_after_the_goodbye(
        start_realtime: StartRealtime) -> None:
    ask = Reply("One moment.", tone(0.4), calls=[
        ("set_outcome", {"outcome": "confirmed", "fields": {"proposed_time": "9:00"}})])
    goodbye = Reply("Booked for nine. Goodbye!", tone(0.8, 550), calls=[("end_call", {})])
    with FakeGemini([Reply("Hello, can you come at nine?", tone(0.4)), ask, goodbye],
                    heard=["Yes, nine is fine."]) as server:
        call = gemini(start_realtime, server)
        await wait_for(lambda: played_s(call) >= 0.4)
        await call.say(CALLER.pcm(16000))
        await asyncio.wait_for(call.task, 10)
        conn = server.last

    assert call.record.outcomes == [("confirmed", {"proposed_time": "9:00"})]
    responses = FakeGemini.of_kind(conn, "toolResponse")
    # set_outcome's result went back; end_call's did not (the model must not go on).
    assert [r["functionResponses"][0]["id"] for r in responses] == ["fc_2_0"]
    assert responses[0]["functionResponses"][0]["name"] == "set_outcome"
    assert call.leg.end_cause == "assistant_hangup"
    assert abs(played_s(call) - 1.6) <= 0.06


async def test_gemini_bad_key_falls_back(start_realtime: StartRealtime) -> None:
    fb = Fallback(message="Sorry, we cannot take your call right now.", action="hangup")
    with FakeGemini([]) as server:
        call = gemini(start_realtime, server, fallback=fb, api_key="wrong")
        await asyncio.wait_for(call.task, 20)
    assert ("fallback", {"provider": "gemini", "kind": "auth", "action": "hangup"}
            ) in call.record.events
    assert call.record.said("assistant") == [fb.message]
