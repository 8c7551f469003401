"""OpenAI Chat Completions, streamed (``stream: true``) with tool calling. The same dialect
is spoken by Ollama, vLLM, llama.cpp's server and LM Studio: point ``base_url`` at them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from atende.providers.errors import ProviderError
from atende.providers.llm.base import (
    Conversation,
    Finished,
    LlmEvent,
    LlmSettings,
    Message,
    TextDelta,
    ToolCall,
)
from atende.providers.llm.http import HttpRequest, decode_json, stream_error
from atende.providers.sse import SseEvent

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def parse_arguments(raw: str) -> dict[str, Any]:
    """Tool arguments as the model wrote them. Not an object → ``{"_unparsed": raw}``, so
    the tool answers the model with what was wrong instead of the call failing."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"_unparsed": raw}
    return value if isinstance(value, dict) else {"_unparsed": raw}


def _message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text}
    if m.role == "assistant" and m.tool_calls:
        return {"role": "assistant", "content": m.text or None, "tool_calls": [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in m.tool_calls]}
    return {"role": m.role, "content": m.text}


class OpenAIChat:
    """An OpenAI-compatible Chat Completions model (OpenAI, Ollama, vLLM, llama.cpp, LM
    Studio)."""

    name = "openai"

    def request(self, settings: LlmSettings, conversation: Conversation) -> HttpRequest:
        base = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        headers = {"Accept": "text/event-stream"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        messages = [{"role": "system", "content": conversation.system}] if \
            conversation.system else []
        body: dict[str, Any] = {
            "model": settings.model, "stream": True,
            "messages": messages + [_message(m) for m in conversation.messages],
        }
        # OpenAI's newer models refuse max_tokens; the servers that copy the API know only it.
        limit = "max_completion_tokens" if base == DEFAULT_BASE_URL else "max_tokens"
        body[limit] = settings.max_tokens
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        if conversation.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in conversation.tools]
            body["tool_choice"] = "auto"
        return HttpRequest(f"{base}/chat/completions", headers, body)

    def decoder(self) -> ChatDecoder:
        return ChatDecoder(self.name)


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class ChatDecoder:
    """Reads an OpenAI-compatible Chat Completions stream into text and tool calls."""

    provider: str
    done: bool = False
    _calls: dict[int, _PartialCall] = field(default_factory=dict)
    _reason: str | None = None

    def feed(self, event: SseEvent) -> list[LlmEvent]:
        if event.data.strip() == "[DONE]":
            self.done = True
            return self._finish(self._reason or "stop")
        data = decode_json(self.provider, event)
        if (err := stream_error(self.provider, data)) is not None:
            raise err
        out: list[LlmEvent] = []
        for choice in data.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if content := delta.get("content"):
                out.append(TextDelta(str(content)))
            for part in delta.get("tool_calls") or []:
                call = self._calls.setdefault(int(part.get("index", 0)), _PartialCall())
                call.id = part.get("id") or call.id
                fn = part.get("function") or {}
                call.name = fn.get("name") or call.name
                call.arguments += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self._reason = str(choice["finish_reason"])
        return out

    def end(self) -> list[LlmEvent]:
        if self._reason is None:
            raise ProviderError(self.provider, "connection",
                                "the stream ended before the reply was finished")
        self.done = True
        return self._finish(self._reason)

    def _finish(self, reason: str) -> list[LlmEvent]:
        out: list[LlmEvent] = [
            ToolCall(c.id or f"call_{i}", c.name, parse_arguments(c.arguments))
            for i, c in sorted(self._calls.items()) if c.name]
        self._calls.clear()
        return [*out, Finished(reason)]
