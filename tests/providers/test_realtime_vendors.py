"""The ElevenLabs and Gemini Live protocol objects on their own: messages in, our events out,
and what they queue to send (no socket)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from atende.media import g711
from atende.providers.llm.base import Tool
from atende.providers.realtime.base import (
    AssistantText,
    AudioOut,
    CallerStopped,
    CallerText,
    Ended,
    Failed,
    Interrupted,
    Ready,
    RealtimeConfig,
    RealtimeSettings,
    ReplyDone,
    ToolRequest,
)
from atende.providers.realtime.elevenlabs import ElevenLabsAgent
from atende.providers.realtime.gemini import GeminiLive
from atende.providers.realtime.openai import OpenAIRealtime

FRAME = np.full(320, 1000, dtype=np.int16).tobytes()  # 20 ms at 16 kHz


def sent(p: ElevenLabsAgent | GeminiLive) -> list[dict[str, Any]]:
    out = [json.loads(m) for m in p.outbox]
    p.outbox.clear()
    return out


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


# ElevenLabs -----------------------------------------------------------------------------
def eleven(**event: Any) -> tuple[ElevenLabsAgent, list[Any]]:
    p = ElevenLabsAgent(RealtimeSettings("elevenlabs", "agent 1", "xi-1"))
    return p, p.receive(json.dumps(event)) if event else []


def audio_event(p: ElevenLabsAgent, event_id: int, pcm: bytes = FRAME) -> list[Any]:
    return p.receive(json.dumps({"type": "audio", "audio_event": {
        "audio_base_64": base64.b64encode(pcm).decode(), "event_id": event_id}}))


def test_elevenlabs_url_key_and_overrides() -> None:
    p, _ = eleven()
    assert p.url() == "wss://api.elevenlabs.io/v1/convai/conversation?agent_id=agent%201"
    assert p.headers() == {"xi-api-key": "xi-1"}
    p.settings = RealtimeSettings("elevenlabs", "a", base_url="http://127.0.0.1:9/v1/")
    assert p.url() == "ws://127.0.0.1:9/v1/convai/conversation?agent_id=a"
    p.start(RealtimeConfig("Be brief.", "Olá!", language="pt-BR"))
    [init] = sent(p)
    assert init == {"type": "conversation_initiation_client_data",
                    "conversation_config_override": {"agent": {
                        "prompt": {"prompt": "Be brief."}, "first_message": "Olá!",
                        "language": "pt"}}}


def test_elevenlabs_formats_come_from_the_server() -> None:
    p, events = eleven(type="conversation_initiation_metadata",
                       conversation_initiation_metadata_event={
                           "conversation_id": "c", "user_input_audio_format": "ulaw_8000",
                           "agent_output_audio_format": "pcm_24000"})
    assert kinds(events) == ["Ready"]
    for _ in range(3):
        p.audio(FRAME)
    chunks = [base64.b64decode(m["user_audio_chunk"]) for m in sent(p)]
    assert [len(c) for c in chunks] == [160, 160, 160]  # μ-law at 8 kHz, 20 ms each
    level = np.abs(g711.decode(chunks[-1], "PCMU").astype(int)).mean()
    assert 900 < level < 1100  # the caller's level, not noise
    [out] = audio_event(p, 1, np.zeros(480, dtype=np.int16).tobytes())  # 20 ms at 24 kHz
    assert isinstance(out, AudioOut) and len(out.pcm) <= 640
    [bad] = eleven(type="conversation_initiation_metadata",
                   conversation_initiation_metadata_event={
                       "user_input_audio_format": "opus_48000"})[1]
    assert isinstance(bad, Failed) and not bad.fatal and "opus_48000" in bad.message


def test_elevenlabs_replies_text_and_interruptions() -> None:
    p, _ = eleven()
    assert p.receive(json.dumps({"type": "agent_response", "agent_response_event": {
        "agent_response": "Hello there."}})) == []  # held for the reply's first audio
    first = audio_event(p, 1)
    assert kinds(first) == ["AudioOut", "AssistantText"]
    assert first[1] == AssistantText("reply_1", "Hello there.")
    assert audio_event(p, 1)[0].item == "reply_1"
    # The caller cut in: the server voids events up to 1; late audio of it is dropped.
    assert p.receive(json.dumps({"type": "interruption", "interruption_event": {
        "event_id": 1}})) == [Interrupted(), ReplyDone()]
    assert audio_event(p, 1) == []
    events = p.receive(json.dumps({"type": "user_transcript", "user_transcription_event": {
        "user_transcript": "Wait."}}))
    assert events == [CallerStopped(), CallerText("Wait.")]
    assert audio_event(p, 3)[0].item == "reply_2"
    # The next turn ends the reply: its end is reported.
    events = p.receive(json.dumps({"type": "client_tool_call", "client_tool_call": {
        "tool_name": "end_call", "tool_call_id": "t1", "parameters": {"outcome": "completed"}}}))
    assert events[-2:] == [ReplyDone(), ToolRequest("t1", "end_call", {"outcome": "completed"})]


def response(p: ElevenLabsAgent, text: str) -> list[Any]:
    return p.receive(json.dumps({"type": "agent_response",
                                 "agent_response_event": {"agent_response": text}}))


def test_elevenlabs_audio_of_a_later_event_is_the_next_reply() -> None:
    """With no caller turn between (the agent's reprompt), a new event id starts a new reply;
    a reply's words may come just after its first audio, or before it."""
    p, _ = eleven()
    assert kinds(audio_event(p, 1)) == ["AudioOut"]
    assert response(p, "Hello.") == [AssistantText("reply_1", "Hello.")]
    assert response(p, "Are you still there?") == []  # the next reply's, held
    assert kinds(audio_event(p, 1)) == ["AudioOut"]  # more of the first
    events = audio_event(p, 2)
    assert kinds(events) == ["ReplyDone", "AudioOut", "AssistantText"]
    assert events[1].item == "reply_2"
    assert events[2] == AssistantText("reply_2", "Are you still there?")
    # An interruption voids the words of a reply whose audio had not come.
    response(p, "Let me check.")
    p.receive(json.dumps({"type": "interruption", "interruption_event": {"event_id": 2}}))
    assert kinds(audio_event(p, 3)) == ["AudioOut"]
    assert response(p, "Yes?") == [AssistantText("reply_3", "Yes?")]


def test_elevenlabs_pong_tool_results_and_closing() -> None:
    p, events = eleven(type="ping", ping_event={"event_id": 7, "ping_ms": 40})
    assert events == [] and sent(p) == [{"type": "pong", "event_id": 7}]
    request = ToolRequest("t1", "lookup", {})
    p.tool_result(request, {"ok": True}, respond=True)
    p.tool_result(request, {"error": "no such day"}, respond=True)
    p.tool_result(request, {"ok": True}, respond=False)  # the call is ending: nothing
    assert sent(p) == [
        {"type": "client_tool_result", "tool_call_id": "t1", "result": '{"ok": true}',
         "is_error": False},
        {"type": "client_tool_result", "tool_call_id": "t1",
         "result": '{"error": "no such day"}', "is_error": True}]
    assert p.closed(1000, "") == Ended()
    failed = p.closed(1008, "Override for field 'prompt' is not allowed by config.")
    assert isinstance(failed, Failed) and failed.kind == "request" and failed.fatal
    assert isinstance(p.receive("{nope")[0], Failed)
    assert isinstance(p.receive('{"type": "audio"}')[0], Failed)  # no audio_event


# Gemini Live ----------------------------------------------------------------------------
def gemini() -> GeminiLive:
    p = GeminiLive(RealtimeSettings("gemini", "gemini-live-2.5-flash-preview", "g-1",
                                    voice="Kore"))
    tool = Tool("set_outcome", "Record.", {"type": "object", "properties": {"fields": {
        "type": "object", "additionalProperties": {"type": "string"}}}})
    p.start(RealtimeConfig("Be brief.", "Hi!", tools=[tool], end_of_turn_ms=700,
                           language="pt-BR"))
    return p


def content(p: GeminiLive, **sc: Any) -> list[Any]:
    return p.receive(json.dumps({"serverContent": sc}))


def model_audio(p: GeminiLive, samples: int = 480) -> list[Any]:
    data = base64.b64encode(np.full(samples, 800, dtype=np.int16).tobytes()).decode()
    return content(p, modelTurn={"parts": [{"inlineData": {
        "mimeType": "audio/pcm;rate=24000", "data": data}}]})


def test_gemini_setup_then_the_greeting() -> None:
    p = gemini()
    assert p.url() == ("wss://generativelanguage.googleapis.com/ws/google.ai."
                       "generativelanguage.v1beta.GenerativeService.BidiGenerateContent")
    assert p.headers() == {"x-goog-api-key": "g-1"}
    [setup] = sent(p)  # nothing else until the server is ready
    s = setup["setup"]
    assert s["model"] == "models/gemini-live-2.5-flash-preview"
    assert s["generationConfig"] == {"responseModalities": ["AUDIO"], "speechConfig": {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}, "languageCode": "pt-BR"}}
    assert s["realtimeInputConfig"]["automaticActivityDetection"]["silenceDurationMs"] == 700
    [decl] = s["tools"][0]["functionDeclarations"]
    assert "additionalProperties" not in json.dumps(decl)
    assert p.receive('{"setupComplete": {}}') == [Ready()]
    [greet] = sent(p)
    assert greet["clientContent"]["turnComplete"] is True
    assert "Hi!" in greet["clientContent"]["turns"][0]["parts"][0]["text"]
    p.audio(FRAME)
    [up] = sent(p)
    assert up["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=16000"
    assert base64.b64decode(up["realtimeInput"]["audio"]["data"]) == FRAME  # as is


def test_gemini_turns_transcripts_and_interruptions() -> None:
    p = gemini()
    content(p, inputTranscription={"text": "When do "})
    content(p, inputTranscription={"text": "you open?"})
    first = model_audio(p, 4800)  # 200 ms at 24 kHz
    assert first[0] == CallerText("When do you open?")
    audio = [e.pcm for e in first[1:] + model_audio(p, 4800) if isinstance(e, AudioOut)]
    content(p, outputTranscription={"text": "At "})
    content(p, outputTranscription={"text": "nine."})
    done = content(p, turnComplete=True)
    audio += [e.pcm for e in done if isinstance(e, AudioOut)]
    assert abs(sum(len(a) for a in audio) - 2 * 6400) <= 64  # 400 ms at 16 kHz, all of it
    assert done[-2:] == [AssistantText("turn_1", "At nine."), ReplyDone()]
    # The next turn is another item; the caller cuts it.
    assert model_audio(p)[0].item == "turn_2"
    content(p, outputTranscription={"text": "Let me"})
    assert content(p, interrupted=True) == [AssistantText("turn_2", "Let me"), Interrupted(),
                                            ReplyDone()]
    assert model_audio(p)[0].item == "turn_3"


def test_gemini_tools_go_away_and_errors() -> None:
    p = gemini()
    sent(p)
    model_audio(p)
    events = p.receive(json.dumps({"toolCall": {"functionCalls": [
        {"id": "fc1", "name": "set_outcome", "args": {"outcome": "confirmed"}},
        {"id": "fc2", "name": "end_call", "args": {}}]}}))
    # What was said before the call is a finished reply.
    assert kinds(events)[-3:] == ["ReplyDone", "ToolRequest", "ToolRequest"]
    assert events[-2] == ToolRequest("fc1", "set_outcome", {"outcome": "confirmed"})
    p.tool_result(events[-2], {"ok": True}, respond=True)
    p.tool_result(events[-1], {"ok": True}, respond=False)
    assert sent(p) == [{"toolResponse": {"functionResponses": [
        {"id": "fc1", "name": "set_outcome", "response": {"ok": True}}]}}]
    [away] = p.receive('{"goAway": {"timeLeft": "10s"}}')
    assert isinstance(away, Failed) and not away.fatal and "10s" in away.message
    assert isinstance(p.receive("[1, 2]")[0], Failed)
    bad_key = p.closed(1007, "API key not valid. Please pass a valid API key.")
    assert isinstance(bad_key, Failed) and bad_key.kind == "auth"
    quota = p.closed(1011, "You exceeded your current quota")
    assert isinstance(quota, Failed) and quota.kind == "rate_limited"
    assert isinstance(p.closed(None, ""), Failed)  # never a normal end for Gemini


def test_what_the_model_cannot_hear_is_told_in_each_dialect() -> None:
    """Keys and silence, as text: ElevenLabs answers a user_message (a contextual update
    only informs it); Gemini a client turn marked complete; OpenAI a system item followed
    by response.create (only when no response is running, which would be refused)."""
    el, _ = eleven()
    el.prompt("The caller pressed 1.", respond=True)
    el.prompt("The caller is driving.", respond=False)
    assert sent(el) == [{"type": "user_message", "text": "The caller pressed 1."},
                        {"type": "contextual_update", "text": "The caller is driving."}]
    assert el.handles_silence
    gm = GeminiLive(RealtimeSettings("gemini", "m", "k"))
    gm.prompt("The caller pressed 1.", respond=True)
    assert sent(gm) == [{"clientContent": {"turns": [
        {"role": "user", "parts": [{"text": "The caller pressed 1."}]}],
        "turnComplete": True}}]
    assert not gm.handles_silence
    op = OpenAIRealtime(RealtimeSettings("openai"))
    op.prompt("The caller pressed 1.", respond=True)
    out = [json.loads(m) for m in op.outbox]
    assert out == [{"type": "conversation.item.create", "item": {
        "type": "message", "role": "system",
        "content": [{"type": "input_text", "text": "The caller pressed 1."}]}},
        {"type": "response.create"}]
    op.outbox.clear()
    op.receive(json.dumps({"type": "response.created", "response": {"id": "r1"}}))
    op.prompt("The caller pressed 2.", respond=True)
    assert [json.loads(m)["type"] for m in op.outbox] == ["conversation.item.create"]
