"""OpenAI Realtime (the GA event names; the beta names of audio events are understood too).

On a G.711 call the session is set to ``audio/pcmu`` (or ``audio/pcma``) both ways, so the
model hears the caller at the phone's own rate; otherwise 24 kHz PCM. The server's VAD
decides turns and cancels its reply when the caller speaks; we stop playing, and tell it how
much of the reply was heard (``conversation.item.truncate``) so its memory matches the call.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from atende.providers.errors import FailureKind
from atende.providers.llm.openai import parse_arguments
from atende.providers.realtime.base import (
    AssistantText,
    AudioOut,
    CallerStarted,
    CallerStopped,
    CallerText,
    Ended,
    Failed,
    Ready,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeSettings,
    ReplyDone,
    ToolRequest,
    WireAudio,
    close_failure,
    decoded,
    ws_base,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "wss://api.openai.com/v1"
DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "marin"
TRANSCRIBER = "gpt-4o-mini-transcribe"
# Answers to requests that raced the server (it had already cancelled or finished).
HARMLESS = {"response_cancel_not_active"}


def _failure_kind(error: dict[str, Any]) -> FailureKind:
    code = str(error.get("code") or "")
    kind = str(error.get("type") or "")
    if code in ("rate_limit_exceeded", "insufficient_quota") or "rate_limit" in kind:
        return "rate_limited"
    if kind in ("server_error", "api_error"):
        return "server"
    if "auth" in kind or code == "invalid_api_key":
        return "auth"
    return "request"


class OpenAIRealtime:
    """The OpenAI Realtime API's events for one conversation, sans-IO: what to send for audio,
    tools and truncation, and what the server's events mean."""

    name = "openai"
    signals_reply_end = True
    handles_silence = False

    def __init__(self, settings: RealtimeSettings) -> None:
        self.settings = settings
        self.outbox: list[str] = []
        self._wire = WireAudio("pcm", 24000)
        self._active: str | None = None  # the response being generated
        self._calls: set[str] = set()  # tool calls waiting for their results
        self._answered = False  # results were sent since the model last spoke
        self._quiet = False  # one of them ended the call: no more replies
        self._cut: set[str] = set()  # items the caller cut: their late audio is dropped

    def url(self) -> str:
        base = ws_base(self.settings.base_url or DEFAULT_URL).rstrip("/")
        return f"{base}/realtime?model={quote(self.settings.model or DEFAULT_MODEL)}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"} \
            if self.settings.api_key else {}

    def _send(self, event: dict[str, Any]) -> None:
        self.outbox.append(json.dumps(event))

    def start(self, config: RealtimeConfig) -> None:
        codec = (config.wire_codec or "").lower()
        self._wire = WireAudio(codec, 8000) if codec in ("pcmu", "pcma") else \
            WireAudio("pcm", 24000)
        fmt: dict[str, Any] = {"type": f"audio/{self._wire.codec}"}
        if self._wire.codec == "pcm":
            fmt["rate"] = 24000
        transcription: dict[str, Any] = {"model": TRANSCRIBER}
        if config.language:
            transcription["language"] = config.language.split("-")[0]
        self._send({"type": "session.update", "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": config.instructions,
            "audio": {
                "input": {"format": fmt, "transcription": transcription,
                          "turn_detection": {
                              "type": "server_vad", "threshold": 0.5,
                              "prefix_padding_ms": 300,
                              "silence_duration_ms": config.end_of_turn_ms,
                              "create_response": True, "interrupt_response": True}},
                "output": {"format": fmt, "voice": self.settings.voice or DEFAULT_VOICE},
            },
            "tools": [{"type": "function", "name": t.name, "description": t.description,
                       "parameters": t.parameters} for t in config.tools],
            "tool_choice": "auto",
        }})
        if config.greeting:
            # The model speaks first only when asked; the greeting is the assistant's.
            self._send({"type": "response.create", "response": {
                "instructions": "Greet the caller by saying exactly this, and nothing "
                                f"else: {config.greeting}"}})

    def audio(self, pcm: bytes) -> None:
        b64 = self._wire.encode(pcm)
        if b64:
            self._send({"type": "input_audio_buffer.append", "audio": b64})

    def interrupted(self, item: str, played_ms: int) -> None:
        self._wire.drop()
        self._cut.add(item)
        if self._active is not None:
            self._send({"type": "response.cancel"})
        self._send({"type": "conversation.item.truncate", "item_id": item,
                    "content_index": 0, "audio_end_ms": max(0, played_ms)})

    def tool_result(self, request: ToolRequest, output: dict[str, Any],
                    respond: bool) -> None:
        self._send({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": request.call_id,
            "output": json.dumps(output)}})
        self._calls.discard(request.call_id)
        self._answered = True
        self._quiet = self._quiet or not respond
        self._respond()

    def prompt(self, text: str, respond: bool) -> None:
        self._send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "system",
            "content": [{"type": "input_text", "text": text}]}})
        if respond and self._active is None:  # one speaking now hears of it next turn
            self._send({"type": "response.create"})

    def _respond(self) -> None:
        """Once every tool of a reply has its result and the reply is over, the model
        speaks again, unless a tool ended or handed over the call."""
        if self._calls or self._active is not None or not self._answered:
            return
        if not self._quiet:
            self._send({"type": "response.create"})
        self._answered = self._quiet = False

    def closed(self, code: int | None, reason: str) -> Ended | Failed:
        # The model never ends a call by closing: any close (even at the session's time
        # limit) leaves a caller on the line, so the fallback takes over.
        return close_failure(code, reason)

    def receive(self, message: str) -> list[RealtimeEvent]:
        return decoded(message, lambda ev: self._event(str(ev["type"]), ev), "a Realtime event")

    def _event(self, kind: str, ev: dict[str, Any]) -> list[RealtimeEvent]:
        if kind in ("response.output_audio.delta", "response.audio.delta"):
            if ev["item_id"] in self._cut:
                return []  # in flight when the caller cut it: never into the resampler
            return [AudioOut(str(ev["item_id"]), self._wire.decode(ev["delta"]))]
        if kind in ("response.output_audio.done", "response.audio.done"):
            if ev["item_id"] in self._cut:
                return []
            tail = self._wire.end()
            return [AudioOut(str(ev["item_id"]), tail)] if tail else []
        if kind == "input_audio_buffer.speech_started":
            return [CallerStarted()]
        if kind == "input_audio_buffer.speech_stopped":
            return [CallerStopped()]
        if kind == "conversation.item.input_audio_transcription.completed":
            return [CallerText(str(ev.get("transcript", "")))]
        if kind in ("response.output_audio_transcript.done", "response.audio_transcript.done"):
            return [AssistantText(str(ev["item_id"]), str(ev.get("transcript", "")))]
        if kind == "response.function_call_arguments.done":
            self._calls.add(str(ev["call_id"]))
            return [ToolRequest(str(ev["call_id"]), str(ev["name"]),
                                parse_arguments(str(ev.get("arguments", ""))))]
        if kind == "response.created":
            self._active = str(ev.get("response", {}).get("id", "response"))
            return []
        if kind == "response.done":
            return self._response_done(ev.get("response") or {})
        if kind == "session.updated":
            return [Ready()]
        if kind == "error":
            error = ev.get("error") or {}
            if error.get("code") in HARMLESS:
                return []
            return [Failed(_failure_kind(error), str(error.get("message", "error")), False)]
        return []

    def _response_done(self, response: dict[str, Any]) -> list[RealtimeEvent]:
        self._active = None
        out: list[RealtimeEvent] = [ReplyDone()]
        if response.get("status") == "failed":
            error = (response.get("status_details") or {}).get("error") or {}
            out.append(Failed(_failure_kind(error), str(error.get("message") or
                                                        "the response failed")))
        else:
            self._respond()
        return out
