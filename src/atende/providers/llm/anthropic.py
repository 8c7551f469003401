"""Anthropic Messages, streamed: named events (message_start, content_block_start/delta/
stop, message_delta, message_stop), tool use as content blocks whose input arrives as
partial JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atende.providers.errors import FailureKind, ProviderError
from atende.providers.llm.base import (
    Conversation,
    Finished,
    LlmEvent,
    LlmSettings,
    Message,
    TextDelta,
    ToolCall,
)
from atende.providers.llm.http import HttpRequest, decode_json
from atende.providers.llm.openai import parse_arguments
from atende.providers.sse import SseEvent

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
# The conversation must open with the user; a call opens with our greeting.
CALL_STARTED = "(The phone call has been answered.)"

_ERROR_KINDS: dict[str, FailureKind] = {
    "overloaded_error": "server", "api_error": "server", "rate_limit_error": "rate_limited",
    "authentication_error": "auth", "permission_error": "auth", "timeout_error": "timeout"}


def _blocks(m: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
               for c in m.tool_calls]
    return blocks


def messages(conversation: Conversation) -> list[dict[str, Any]]:
    """Alternating user/assistant turns: tool results are user content blocks, and
    consecutive ones share a turn."""
    out: list[dict[str, Any]] = []
    for m in conversation.messages:
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.text}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.role == "assistant":
            out.append({"role": "assistant", "content": _blocks(m) or
                        [{"type": "text", "text": "…"}]})
        else:
            out.append({"role": "user", "content": m.text})
    if out and out[0]["role"] == "assistant":
        out.insert(0, {"role": "user", "content": CALL_STARTED})
    return out


class AnthropicMessages:
    """An Anthropic model through the Messages API."""

    name = "anthropic"

    def request(self, settings: LlmSettings, conversation: Conversation) -> HttpRequest:
        base = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        headers = {"anthropic-version": API_VERSION, "Accept": "text/event-stream"}
        if settings.api_key:
            headers["x-api-key"] = settings.api_key
        body: dict[str, Any] = {"model": settings.model, "max_tokens": settings.max_tokens,
                                "stream": True, "messages": messages(conversation)}
        if conversation.system:
            body["system"] = conversation.system
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        if conversation.tools:
            body["tools"] = [{"name": t.name, "description": t.description,
                              "input_schema": t.parameters} for t in conversation.tools]
        return HttpRequest(f"{base}/v1/messages", headers, body)

    def decoder(self) -> MessagesDecoder:
        return MessagesDecoder(self.name)


@dataclass
class MessagesDecoder:
    """Reads an Anthropic Messages stream into text and tool calls."""

    provider: str
    done: bool = False
    _tools: dict[int, tuple[str, str, list[str]]] = field(default_factory=dict)
    _reason: str = "end_turn"

    def feed(self, event: SseEvent) -> list[LlmEvent]:
        data = decode_json(self.provider, event)
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "error":
            err = data.get("error") or {}
            raise ProviderError(self.provider, _ERROR_KINDS.get(str(err.get("type")), "server"),
                                str(err.get("message", "error event")))
        index = int(data.get("index", 0)) if isinstance(data, dict) else 0
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._tools[index] = (str(block.get("id", "")), str(block.get("name", "")), [])
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [TextDelta(str(delta["text"]))]
            if delta.get("type") == "input_json_delta" and index in self._tools:
                self._tools[index][2].append(str(delta.get("partial_json", "")))
        elif kind == "content_block_stop" and index in self._tools:
            call_id, name, parts = self._tools.pop(index)
            return [ToolCall(call_id, name, parse_arguments("".join(parts)))]
        elif kind == "message_delta":
            self._reason = str((data.get("delta") or {}).get("stop_reason") or self._reason)
        elif kind == "message_stop":
            self.done = True
            return [Finished(self._reason)]
        return []

    def end(self) -> list[LlmEvent]:
        raise ProviderError(self.provider, "connection",
                            "the stream ended before message_stop")
