"""The OpenAI Realtime protocol object on its own: events in, our events out, and what it
queues to send (no socket)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from atende.providers.realtime.base import (
    AssistantText,
    AudioOut,
    CallerStarted,
    CallerText,
    Failed,
    RealtimeConfig,
    RealtimeSettings,
    ReplyDone,
    ToolRequest,
    ws_base,
)
from atende.providers.realtime.openai import OpenAIRealtime


def feed(p: OpenAIRealtime, **event: Any) -> list[Any]:
    return p.receive(json.dumps(event))


def sent(p: OpenAIRealtime) -> list[dict[str, Any]]:
    out = [json.loads(m) for m in p.outbox]
    p.outbox.clear()
    return out


def calls(p: OpenAIRealtime, *ids: str) -> list[ToolRequest]:
    out = []
    for i in ids:
        [req] = feed(p, type="response.function_call_arguments.done", call_id=i,
                     name="lookup", arguments='{"day": "monday"}')
        out.append(req)
    return out


def test_urls_and_key() -> None:
    p = OpenAIRealtime(RealtimeSettings("openai", "gpt-realtime", "sk-1",
                                        base_url="https://example.test/v1/"))
    assert p.url() == "wss://example.test/v1/realtime?model=gpt-realtime"
    assert p.headers() == {"Authorization": "Bearer sk-1"}
    assert ws_base("http://127.0.0.1:9/v1") == "ws://127.0.0.1:9/v1"
    assert OpenAIRealtime(RealtimeSettings("openai")).url() == \
        "wss://api.openai.com/v1/realtime?model=gpt-realtime"


def test_start_sets_the_session_and_asks_for_the_greeting() -> None:
    p = OpenAIRealtime(RealtimeSettings("openai", voice="cedar"))
    p.start(RealtimeConfig("Be brief.", "Hello!", end_of_turn_ms=700, language="pt-BR",
                           wire_codec="PCMA"))
    update, greet = sent(p)
    audio = update["session"]["audio"]
    assert audio["input"]["format"] == audio["output"]["format"] == {"type": "audio/pcma"}
    assert audio["input"]["transcription"]["language"] == "pt"
    assert audio["input"]["turn_detection"]["interrupt_response"] is True
    assert audio["output"]["voice"] == "cedar"
    assert greet["type"] == "response.create" and "Hello!" in greet["response"]["instructions"]


def test_tool_results_then_one_response_once_the_reply_is_over() -> None:
    p = OpenAIRealtime(RealtimeSettings("openai"))
    feed(p, type="response.created", response={"id": "r1"})
    first, second = calls(p, "c1", "c2")
    assert first.arguments == {"day": "monday"}
    p.tool_result(first, {"ok": True}, respond=True)
    assert feed(p, type="response.done", response={"id": "r1", "status": "completed"}) == \
        [ReplyDone()]
    assert [e["type"] for e in sent(p)] == ["conversation.item.create"]  # c2 still running
    p.tool_result(second, {"ok": True}, respond=True)
    out = sent(p)
    assert [e["type"] for e in out] == ["conversation.item.create", "response.create"]
    assert out[0]["item"] == {"type": "function_call_output", "call_id": "c2",
                              "output": '{"ok": true}'}


def test_a_tool_that_ends_the_call_silences_the_model() -> None:
    p = OpenAIRealtime(RealtimeSettings("openai"))
    feed(p, type="response.created", response={"id": "r1"})
    outcome, end = calls(p, "c1", "c2")
    p.tool_result(outcome, {"ok": True}, respond=True)
    p.tool_result(end, {"ok": True}, respond=False)
    feed(p, type="response.done", response={"id": "r1", "status": "completed"})
    assert "response.create" not in [e["type"] for e in sent(p)]
    # …and a later tool answered outside a reply gets its response at once.
    [later] = calls(p, "c3")
    p.tool_result(later, {"ok": True}, respond=True)
    assert sent(p)[-1] == {"type": "response.create"}


def test_barge_in_cancels_only_a_live_response_and_truncates() -> None:
    p = OpenAIRealtime(RealtimeSettings("openai"))
    feed(p, type="response.created", response={"id": "r1"})
    p.interrupted("item_1", 1234)
    assert sent(p) == [{"type": "response.cancel"},
                       {"type": "conversation.item.truncate", "item_id": "item_1",
                        "content_index": 0, "audio_end_ms": 1234}]
    feed(p, type="response.done", response={"id": "r1", "status": "cancelled"})
    p.interrupted("item_1", 40)
    assert [e["type"] for e in sent(p)] == ["conversation.item.truncate"]


def test_audio_both_ways_at_24_khz_and_the_tail_at_the_end() -> None:
    p = OpenAIRealtime(RealtimeSettings("openai"))
    p.start(RealtimeConfig("x", ""))
    sent(p)
    tone = (8000 * np.sin(np.arange(2400) * 0.2)).astype(np.int16).tobytes()  # 100 ms
    out = b""
    for name in ("response.output_audio.delta", "response.audio.delta"):  # GA and beta
        [ev] = feed(p, type=name, item_id="i1", delta=base64.b64encode(tone).decode())
        assert isinstance(ev, AudioOut) and ev.item == "i1"
        out += ev.pcm
    [tail] = feed(p, type="response.output_audio.done", item_id="i1")
    assert isinstance(tail, AudioOut)
    # 200 ms at 16 kHz as it arrives; the end holds only the filter's ~1.5 ms.
    assert len(out) == 2 * 3200 and 0 < len(tail.pcm) <= 64
    for _ in range(10):
        p.audio(bytes(640))
    appended = b"".join(base64.b64decode(e["audio"]) for e in sent(p))
    assert 0 < len(appended) <= 9600 and len(appended) % 2 == 0  # ≤ 200 ms at 24 kHz


def test_what_the_caller_and_the_model_said() -> None:
    p = OpenAIRealtime(RealtimeSettings("openai"))
    assert feed(p, type="input_audio_buffer.speech_started", audio_start_ms=10,
                item_id="x") == [CallerStarted()]
    assert feed(p, type="conversation.item.input_audio_transcription.completed",
                item_id="x", content_index=0, transcript="Hi there") == [CallerText("Hi there")]
    assert feed(p, type="response.output_audio_transcript.done", item_id="i1",
                transcript="Hello") == [AssistantText("i1", "Hello")]
    assert feed(p, type="rate_limits.updated", rate_limits=[]) == []


def test_errors() -> None:
    p = OpenAIRealtime(RealtimeSettings("openai"))
    assert feed(p, type="error", error={"code": "response_cancel_not_active"}) == []
    [err] = feed(p, type="error", error={"type": "invalid_request_error", "message": "bad"})
    assert err == Failed("request", "bad", fatal=False)
    feed(p, type="response.created", response={"id": "r1"})
    _, failed = feed(p, type="response.done", response={
        "id": "r1", "status": "failed", "status_details": {"error": {
            "type": "server_error", "message": "boom"}}})
    assert failed == Failed("server", "boom")
    [quota] = feed(p, type="response.done", response={"status": "failed", "status_details": {
        "error": {"type": "insufficient_quota", "code": "insufficient_quota"}}})[1:]
    assert quota.kind == "rate_limited" and quota.fatal
    for junk in ("not json", "[]", '{"no": "type"}'):
        [bad] = p.receive(junk)
        assert isinstance(bad, Failed) and not bad.fatal
    [bad] = feed(p, type="response.output_audio.delta", item_id="i", delta="%%%")
    assert isinstance(bad, Failed) and not bad.fatal
