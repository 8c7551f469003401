"""Gemini ``streamGenerateContent`` with ``alt=sse``: each event is a whole
GenerateContentResponse; function calls arrive complete, never in pieces."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from atende.providers.errors import ProviderError
from atende.providers.llm.base import (
    Conversation,
    Finished,
    LlmEvent,
    LlmSettings,
    TextDelta,
    ToolCall,
)
from atende.providers.llm.http import HttpRequest, decode_json, stream_error
from atende.providers.sse import SseEvent

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


def gemini_schema(schema: Any) -> Any:
    """JSON Schema cut to the OpenAPI subset Gemini accepts (no additionalProperties)."""
    if isinstance(schema, dict):
        return {k: gemini_schema(v) for k, v in schema.items()
                if k not in ("additionalProperties", "$schema")}
    if isinstance(schema, list):
        return [gemini_schema(v) for v in schema]
    return schema


def _response(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return value if isinstance(value, dict) else {"result": value}


def contents(conversation: Conversation) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in conversation.messages:
        if m.role == "tool":
            part = {"functionResponse": {"name": m.tool_name, "response": _response(m.text)}}
            if m.tool_call_id and not m.tool_call_id.startswith("gemini_"):
                part["functionResponse"]["id"] = m.tool_call_id
            if out and out[-1]["role"] == "user" and "functionResponse" in out[-1]["parts"][0]:
                out[-1]["parts"].append(part)
            else:
                out.append({"role": "user", "parts": [part]})
        elif m.role == "assistant":
            parts: list[dict[str, Any]] = [{"text": m.text}] if m.text else []
            parts += [{"functionCall": {"name": c.name, "args": c.arguments}}
                      for c in m.tool_calls]
            out.append({"role": "model", "parts": parts or [{"text": "…"}]})
        else:
            out.append({"role": "user", "parts": [{"text": m.text}]})
    return out


class GeminiGenerate:
    """A Gemini model through generateContent."""

    name = "gemini"

    def request(self, settings: LlmSettings, conversation: Conversation) -> HttpRequest:
        base = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        model = settings.model.removeprefix("models/")
        url = f"{base}/v1beta/models/{quote(model, safe='')}:streamGenerateContent?alt=sse"
        headers = {"Accept": "text/event-stream"}
        if settings.api_key:
            headers["x-goog-api-key"] = settings.api_key
        config: dict[str, Any] = {"maxOutputTokens": settings.max_tokens}
        if settings.temperature is not None:
            config["temperature"] = settings.temperature
        body: dict[str, Any] = {"contents": contents(conversation), "generationConfig": config}
        if conversation.system:
            body["systemInstruction"] = {"parts": [{"text": conversation.system}]}
        if conversation.tools:
            body["tools"] = [{"functionDeclarations": [
                {"name": t.name, "description": t.description,
                 "parameters": gemini_schema(t.parameters)} for t in conversation.tools]}]
        return HttpRequest(url, headers, body)

    def decoder(self) -> GenerateDecoder:
        return GenerateDecoder(self.name)


@dataclass
class GenerateDecoder:
    """Reads a Gemini streamGenerateContent stream into text and tool calls."""

    provider: str
    done: bool = False
    _reason: str | None = None
    _calls: int = 0

    def feed(self, event: SseEvent) -> list[LlmEvent]:
        data = decode_json(self.provider, event)
        if (err := stream_error(self.provider, data)) is not None:
            raise err
        blocked = (data.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            raise ProviderError(self.provider, "request", f"prompt blocked: {blocked}")
        out: list[LlmEvent] = []
        for cand in (data.get("candidates") or [])[:1]:
            for part in (cand.get("content") or {}).get("parts") or []:
                if part.get("thought"):
                    continue
                if part.get("text"):
                    out.append(TextDelta(str(part["text"])))
                if fc := part.get("functionCall"):
                    self._calls += 1
                    args = fc.get("args")
                    out.append(ToolCall(str(fc.get("id") or f"gemini_{self._calls}"),
                                        str(fc.get("name", "")),
                                        args if isinstance(args, dict) else {}))
            if cand.get("finishReason"):
                self._reason = str(cand["finishReason"])
        return out

    def end(self) -> list[LlmEvent]:
        if self._reason is None:
            raise ProviderError(self.provider, "connection",
                                "the stream ended before a finishReason")
        self.done = True
        return [Finished(self._reason)]
