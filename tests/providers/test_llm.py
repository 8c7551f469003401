"""The LLM adapters against a local server that speaks each vendor's wire protocol: the
requests they send, the streams they read, and every way a provider can fail."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atende.providers.errors import ProviderError
from atende.providers.llm.base import (
    Conversation,
    Finished,
    LlmEvent,
    LlmSettings,
    Message,
    TextDelta,
    Tool,
    ToolCall,
)
from atende.providers.llm.factory import language_model
from atende.providers.sse import SseEvent, SseParser
from tests.peers.net import free_port
from tests.peers.vendor import (
    Answer,
    Request,
    Silence,
    Status,
    Stream,
    VendorServer,
    data_events,
    named_events,
    openai_chunk,
)

OUTCOME = Tool("set_outcome", "Record what the call achieved.", {
    "type": "object", "properties": {"outcome": {"type": "string"}},
    "required": ["outcome"], "additionalProperties": False})


def conversation() -> Conversation:
    """A call in progress: greeting, an answer, a tool call already made and its result."""
    return Conversation("You confirm appointments.", [
        Message("assistant", "Hello Ana, can you confirm tomorrow at ten?"),
        Message("user", "Yes, I confirm."),
        Message("assistant", "", (ToolCall("c1", "set_outcome", {"outcome": "confirmed"}),)),
        Message("tool", '{"ok": true}', tool_call_id="c1", tool_name="set_outcome"),
    ], [OUTCOME])


async def collect(provider: str, answer: Answer | list[Answer], **settings: Any
                  ) -> tuple[list[LlmEvent], Request]:
    answers = answer if isinstance(answer, list) else [answer]
    with VendorServer(lambda req: answers.pop(0)) as server:
        model = language_model(LlmSettings(provider, "m-1", api_key="sk-test",
                                           base_url=server.url, **settings))
        events = [e async for e in model.stream(conversation())]
    return events, server.requests[0]


def text_of(events: list[LlmEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- the event-stream parser ---------------------------------------------------------------
def test_sse_events_split_anywhere_with_any_line_ending() -> None:
    wire = ": keep-alive\r\nevent: a\r\ndata: one\r\ndata: two\r\n\r\nid: 7\ndata: {\"x\":1}\n\n" \
           "data: three\r\r: bye\n"
    for size in (1, 2, 3, 5, len(wire)):
        parser = SseParser()
        events: list[SseEvent] = []
        for i in range(0, len(wire), size):
            events += parser.feed(wire[i:i + size])
        assert events == [SseEvent("one\ntwo", "a"), SseEvent('{"x":1}', "message", "7"),
                          SseEvent("three", "message", "7")], size


def test_sse_a_lone_cr_at_the_end_waits_for_its_lf() -> None:
    parser = SseParser()
    assert parser.feed("data: x\r") == []
    assert parser.feed("\n\r") == []
    assert parser.feed("\n") == [SseEvent("x")]


# --- OpenAI-compatible chat completions -------------------------------------------------------
async def test_openai_streams_text_and_tool_calls_in_pieces() -> None:
    events, req = await collect("openai", Stream(data_events(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Thank you, "}),
        openai_chunk({"content": "that is confirmed."}),
        openai_chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                      "function": {"name": "set_outcome", "arguments": ""}}]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"outc'}}]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ome": "confirmed"}'}},
                                     {"index": 1, "id": "call_b", "type": "function",
                                      "function": {"name": "end_call", "arguments": "{}"}}]}),
        openai_chunk({}, "tool_calls"), done=True)))
    assert text_of(events) == "Thank you, that is confirmed."
    assert events[-3:] == [ToolCall("call_a", "set_outcome", {"outcome": "confirmed"}),
                           ToolCall("call_b", "end_call", {}), Finished("tool_calls")]
    assert req.path == "/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-test"
    body = req.json
    assert body["model"] == "m-1" and body["stream"] is True and body["max_tokens"] == 400
    assert body["messages"] == [
        {"role": "system", "content": "You confirm appointments."},
        {"role": "assistant", "content": "Hello Ana, can you confirm tomorrow at ten?"},
        {"role": "user", "content": "Yes, I confirm."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "set_outcome", "arguments": '{"outcome": "confirmed"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"ok": true}'}]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "set_outcome", "description": OUTCOME.description,
        "parameters": OUTCOME.parameters}}]


async def test_openai_bad_tool_arguments_reach_the_tool_not_an_exception() -> None:
    events, _ = await collect("openai", Stream(data_events(
        openai_chunk({"tool_calls": [{"index": 0, "id": "x", "function": {
            "name": "set_outcome", "arguments": '{"outcome": '}}]}, "tool_calls"), done=True)))
    assert events[0] == ToolCall("x", "set_outcome", {"_unparsed": '{"outcome": '})


async def test_openai_finish_without_done_is_complete_but_a_cut_stream_is_not() -> None:
    events, _ = await collect("openai", Stream(data_events(
        openai_chunk({"content": "Hi."}), openai_chunk({}, "stop"))))
    assert events == [TextDelta("Hi."), Finished("stop")]
    with pytest.raises(ProviderError) as err:
        await collect("openai", Stream(data_events(openai_chunk({"content": "Hi"}),
                                                   openai_chunk({"content": " there"})),
                                       cut_after=1))
    assert err.value.kind == "connection"


async def test_openai_error_inside_the_stream() -> None:
    with pytest.raises(ProviderError) as err:
        await collect("openai", Stream(data_events(
            openai_chunk({"content": "Hi"}),
            {"error": {"message": "The server had an error", "type": "server_error"}})))
    assert err.value.kind == "server" and "The server had an error" in str(err.value)


# --- Anthropic Messages -------------------------------------------------------------------
async def test_anthropic_streams_text_and_tool_use() -> None:
    events, req = await collect("anthropic", Stream(named_events(
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [],
            "model": "m-1", "stop_reason": None, "usage": {"input_tokens": 9}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Noted. "}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "set_outcome", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": '{"outcome": "decl'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": 'ined"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                           "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}))))
    assert events == [TextDelta("Noted. "),
                      ToolCall("toolu_1", "set_outcome", {"outcome": "declined"}),
                      Finished("tool_use")]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == "sk-test"
    assert req.headers["anthropic-version"] == "2023-06-01"
    body = req.json
    assert body["system"] == "You confirm appointments." and body["stream"] is True
    assert body["tools"] == [{"name": "set_outcome", "description": OUTCOME.description,
                              "input_schema": OUTCOME.parameters}]
    msgs = body["messages"]
    assert msgs[0]["role"] == "user"  # a call opens with our greeting; the API wants user first
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[3]["content"] == [{"type": "tool_use", "id": "c1", "name": "set_outcome",
                                   "input": {"outcome": "confirmed"}}]
    assert msgs[4]["content"] == [{"type": "tool_result", "tool_use_id": "c1",
                                   "content": '{"ok": true}'}]


async def test_anthropic_overloaded_mid_stream_and_cut_before_message_stop() -> None:
    with pytest.raises(ProviderError) as err:
        await collect("anthropic", Stream(named_events(
            ("error", {"type": "error", "error": {"type": "overloaded_error",
                                                  "message": "Overloaded"}}))))
    assert err.value.kind == "server" and "Overloaded" in err.value.message
    with pytest.raises(ProviderError) as err:
        await collect("anthropic", Stream(named_events(
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "Hi"}}))))
    assert err.value.kind == "connection"


# --- Gemini -------------------------------------------------------------------------------
async def test_gemini_streams_text_and_function_calls() -> None:
    events, req = await collect("gemini", Stream(data_events(
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "One moment."}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "set_outcome", "args": {"outcome": "confirmed"}}}]},
            "finishReason": "STOP"}], "usageMetadata": {"totalTokenCount": 5}})))
    assert events == [TextDelta("One moment."),
                      ToolCall("gemini_1", "set_outcome", {"outcome": "confirmed"}),
                      Finished("STOP")]
    assert req.path == "/v1beta/models/m-1:streamGenerateContent?alt=sse"
    assert req.headers["x-goog-api-key"] == "sk-test"
    body = req.json
    assert body["systemInstruction"] == {"parts": [{"text": "You confirm appointments."}]}
    decl = body["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "set_outcome" and "additionalProperties" not in decl["parameters"]
    assert body["contents"][2] == {"role": "model", "parts": [
        {"functionCall": {"name": "set_outcome", "args": {"outcome": "confirmed"}}}]}
    assert body["contents"][3] == {"role": "user", "parts": [
        {"functionResponse": {"name": "set_outcome", "id": "c1", "response": {"ok": True}}}]}


async def test_gemini_error_status_and_blocked_prompt() -> None:
    with pytest.raises(ProviderError) as err:
        await collect("gemini", Status(429, json.dumps({"error": {
            "code": 429, "message": "Resource has been exhausted",
            "status": "RESOURCE_EXHAUSTED"}})))
    assert err.value.kind == "rate_limited" and err.value.status == 429
    assert err.value.message == "Resource has been exhausted"
    with pytest.raises(ProviderError) as err:
        await collect("gemini", Stream(data_events({"promptFeedback": {"blockReason": "SAFETY"}})))
    assert err.value.kind == "request"


# --- failures every adapter maps the same way ---------------------------------------------
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(("answer", "kind", "status"), [
    (Status(429, '{"error": {"message": "slow down"}}', {"Retry-After": "7"}),
     "rate_limited", 429),
    (Status(500, '{"error": {"message": "boom"}}'), "server", 500),
    (Status(503, "upstream unavailable"), "server", 503),
    (Status(401, '{"error": {"message": "bad key"}}'), "auth", 401),
    (Status(400, '{"error": {"message": "bad model"}}'), "request", 400),
    (Silence(1.5), "timeout", None),
    (Status(200, '{"not": "a stream"}'), "protocol", 200),
])
async def test_failures_become_provider_errors(provider: str, answer: Answer, kind: str,
                                               status: int | None) -> None:
    with pytest.raises(ProviderError) as err:
        await collect(provider, answer, timeout_s=0.5)
    assert err.value.kind == kind and err.value.status == status
    if status == 429:
        assert err.value.retry_after_s == 7
    assert "sk-test" not in str(err.value)


async def test_nobody_listening_is_a_connection_failure() -> None:
    model = language_model(LlmSettings("openai", "m", base_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(ProviderError) as err:
        [e async for e in model.stream(conversation())]
    assert err.value.kind == "connection"


def test_unknown_provider_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="openai, anthropic, gemini"):
        language_model(LlmSettings("acme", "m"))
