"""ElevenLabs Conversational AI (Agents Platform) over its WebSocket.

The agent lives at ElevenLabs (``model`` is its agent id); atende overrides its prompt,
first message, language and voice for the call (the agent's Security settings must allow
those overrides) and runs the client tools it calls. The tools themselves are declared in
the agent at ElevenLabs, with the names of the assistant's tools: this protocol cannot
declare them.

Audio formats are the agent's: the server says which in its first message
(``pcm_16000``, ``ulaw_8000``, …) and we convert at the edge. The server's VAD takes turns:
when the caller speaks over the agent it sends ``interruption`` with an event id, and
audio of events up to that id is void. The audio of one reply shares an event id. The
server never says a reply is over; a reply ends where the next turn begins (the caller's
transcript, a tool call, an interruption, audio of a later event: the agent's own reprompt
of a silent caller), or when everything it sent has been played a while
(``signals_reply_end`` is False). A normal close (1000) is the agent hanging up (its
end-call system tool).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

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

DEFAULT_URL = "wss://api.elevenlabs.io"


def wire_for(fmt: str) -> WireAudio:
    """``pcm_<rate>`` or ``ulaw_8000`` (ElevenLabs' format names) as our edge converter."""
    codec, _, rate = fmt.partition("_")
    if codec == "ulaw":
        return WireAudio("pcmu", 8000)
    if codec == "pcm" and rate.isdigit() and 8000 <= int(rate) <= 48000:
        return WireAudio("pcm", int(rate))
    raise ValueError(f"unknown audio format {fmt!r}")


class ElevenLabsAgent:
    """An ElevenLabs Conversational AI agent's messages for one conversation, sans-IO: audio
    both ways, client tools, interruptions and the agent's own turn-taking."""

    name = "elevenlabs"
    signals_reply_end = False
    handles_silence = True  # the agent's turn timeout reprompts a silent caller

    def __init__(self, settings: RealtimeSettings) -> None:
        self.settings = settings
        self.outbox: list[str] = []
        self._in = WireAudio("pcm", 16000)
        self._out = WireAudio("pcm", 16000)
        self._replies = 0
        self._open = False  # audio of the current reply has arrived
        self._event_id = -1  # the event id of the current reply's audio
        self._titled = False  # the current reply's words have come
        self._void = -1  # audio events with ids up to this were interrupted
        self._text: str | None = None  # the next reply's words, sent before its audio

    def url(self) -> str:
        base = ws_base(self.settings.base_url or DEFAULT_URL).rstrip("/").removesuffix("/v1")
        return f"{base}/v1/convai/conversation?agent_id={quote(self.settings.model)}"

    def headers(self) -> dict[str, str]:
        return {"xi-api-key": self.settings.api_key} if self.settings.api_key else {}

    def _send(self, event: dict[str, Any]) -> None:
        self.outbox.append(json.dumps(event))

    def start(self, config: RealtimeConfig) -> None:
        agent: dict[str, Any] = {"prompt": {"prompt": config.instructions}}
        if config.greeting:
            agent["first_message"] = config.greeting
        if config.language:
            agent["language"] = config.language.split("-")[0]
        override: dict[str, Any] = {"agent": agent}
        if self.settings.voice:
            override["tts"] = {"voice_id": self.settings.voice}
        self._send({"type": "conversation_initiation_client_data",
                    "conversation_config_override": override})

    def audio(self, pcm: bytes) -> None:
        b64 = self._in.encode(pcm)
        if b64:
            self._send({"user_audio_chunk": b64})  # the one message without a "type"

    def interrupted(self, item: str, played_ms: int) -> None:
        # The server already knows: its interruption event cut the reply. Nothing to send.
        self._out.drop()

    def tool_result(self, request: ToolRequest, output: dict[str, Any],
                    respond: bool) -> None:
        if not respond:
            return  # the call is ending or handed over: the agent must not go on
        self._send({"type": "client_tool_result", "tool_call_id": request.call_id,
                    "result": json.dumps(output), "is_error": "error" in output})

    def prompt(self, text: str, respond: bool) -> None:
        # A user message makes the agent answer; a contextual update only informs it.
        self._send({"type": "user_message" if respond else "contextual_update",
                    "text": text})

    def closed(self, code: int | None, reason: str) -> Ended | Failed:
        return Ended() if code == 1000 else close_failure(code, reason)

    def receive(self, message: str) -> list[RealtimeEvent]:
        return decoded(message, lambda ev: self._event(str(ev["type"]), ev), "an agent event")

    @property
    def _item(self) -> str:
        return f"reply_{self._replies}"

    def _end_reply(self) -> list[RealtimeEvent]:
        if not self._open:
            return []
        self._open = False
        tail = self._out.end()
        return [*([AudioOut(self._item, tail)] if tail else []), ReplyDone()]

    def _event(self, kind: str, ev: dict[str, Any]) -> list[RealtimeEvent]:
        if kind == "audio":
            audio = ev["audio_event"]
            if int(audio["event_id"]) <= self._void:
                return []  # sent before the server heard the caller cut in
            event = int(audio["event_id"])
            out = self._end_reply() if event > self._event_id else []
            if not self._open:
                self._open, self._event_id, self._titled = True, event, False
                self._replies += 1
            out.append(AudioOut(self._item, self._out.decode(str(audio["audio_base_64"]))))
            if self._text is not None and not self._titled:
                out.append(AssistantText(self._item, self._text))
                self._text, self._titled = None, True
            return out
        if kind == "agent_response":
            # It comes with a reply's first audio, before or after it.
            text = str(ev["agent_response_event"]["agent_response"])
            if self._open and not self._titled:
                self._titled = True
                return [AssistantText(self._item, text)]
            self._text = text
            return []
        if kind == "interruption":
            self._void = max(self._void, int(ev["interruption_event"]["event_id"]))
            self._out.drop()
            self._text = None  # the words of a voided reply
            was_open, self._open = self._open, False
            return [Interrupted(), *([ReplyDone()] if was_open else [])]
        if kind == "user_transcript":
            text = str(ev["user_transcription_event"]["user_transcript"])
            return [*self._end_reply(), CallerStopped(), CallerText(text)]
        if kind == "client_tool_call":
            call = ev["client_tool_call"]
            params = call.get("parameters") or {}
            return [*self._end_reply(), ToolRequest(
                str(call["tool_call_id"]), str(call["tool_name"]),
                params if isinstance(params, dict) else {})]
        if kind == "ping":
            ping = ev.get("ping_event") or {}
            self._send({"type": "pong", "event_id": ping.get("event_id")})
            return []
        if kind == "conversation_initiation_metadata":
            meta = ev["conversation_initiation_metadata_event"]
            self._in = wire_for(str(meta.get("user_input_audio_format") or "pcm_16000"))
            self._out = wire_for(str(meta.get("agent_output_audio_format") or "pcm_16000"))
            log.info("elevenlabs conversation %s", meta.get("conversation_id"))
            return [Ready()]
        if kind == "error":
            return [Failed("request", str(ev.get("message") or ev.get("error") or ev), False)]
        return []  # vad_score, tentative responses, corrections: nothing for the call
