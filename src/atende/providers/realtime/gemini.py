"""Gemini Live (``BidiGenerateContent``) over its WebSocket.

The first message is ``setup`` (model, voice, instructions, tools, the server's VAD with
our end-of-turn silence, transcription both ways); audio may flow once ``setupComplete``
arrives, and only then is the greeting asked for. The caller's audio goes up as 16 kHz
PCM, ours already; the model's comes down as 24 kHz PCM. Gemini has no G.711.

Turns: each model turn is one item; ``turnComplete`` ends it. When the caller speaks over
the model, ``interrupted`` says the rest of the turn is void; Gemini keeps no audio
position, so nothing is sent back. Transcripts come in pieces and are joined per turn.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import quote

from atende.media.audio import SAMPLE_RATE
from atende.providers.llm.gemini import gemini_schema
from atende.providers.realtime.base import (
    AssistantText,
    AudioOut,
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

DEFAULT_URL = "wss://generativelanguage.googleapis.com"
DEFAULT_MODEL = "gemini-live-2.5-flash-preview"
PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
OUT_RATE = 24000


def _rate(mime: str) -> int:
    """The rate of ``audio/pcm;rate=24000`` (24000 when it does not say)."""
    for param in mime.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key == "rate" and value.isdigit():
            return int(value)
    return OUT_RATE


class GeminiLive:
    """The Gemini Live API's messages for one conversation, sans-IO: setup, audio both ways,
    tool calls and interruptions."""

    name = "gemini"
    signals_reply_end = True
    handles_silence = False

    def __init__(self, settings: RealtimeSettings) -> None:
        self.settings = settings
        self.outbox: list[str] = []
        self._out = WireAudio("pcm", OUT_RATE)
        self._greeting = ""
        self._turn = 1
        self._open = False  # the model's current turn has produced audio
        self._heard: list[str] = []  # the caller's words since the model last spoke
        self._said: list[str] = []  # the model's words in this turn

    def url(self) -> str:
        base = ws_base(self.settings.base_url or DEFAULT_URL).rstrip("/")
        return base + PATH

    def headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.settings.api_key} if self.settings.api_key else {}

    def _send(self, message: dict[str, Any]) -> None:
        self.outbox.append(json.dumps(message))

    def start(self, config: RealtimeConfig) -> None:
        self._greeting = config.greeting
        model = self.settings.model or DEFAULT_MODEL
        speech: dict[str, Any] = {}
        if self.settings.voice:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": self.settings.voice}}
        if config.language:
            speech["languageCode"] = config.language
        generation: dict[str, Any] = {"responseModalities": ["AUDIO"]}
        if speech:
            generation["speechConfig"] = speech
        setup: dict[str, Any] = {
            "model": model if model.startswith("models/") else f"models/{quote(model)}",
            "generationConfig": generation,
            "systemInstruction": {"parts": [{"text": config.instructions}]},
            "realtimeInputConfig": {
                "automaticActivityDetection": {"silenceDurationMs": config.end_of_turn_ms,
                                               "prefixPaddingMs": 300},
                "activityHandling": "START_OF_ACTIVITY_INTERRUPTS"},
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
        }
        if config.tools:
            setup["tools"] = [{"functionDeclarations": [
                {"name": t.name, "description": t.description,
                 "parameters": gemini_schema(t.parameters)} for t in config.tools]}]
        self._send({"setup": setup})

    def audio(self, pcm: bytes) -> None:
        self._send({"realtimeInput": {"audio": {
            "mimeType": f"audio/pcm;rate={SAMPLE_RATE}", "data": base64.b64encode(pcm).decode()}}})

    def interrupted(self, item: str, played_ms: int) -> None:
        self._out.drop()

    def tool_result(self, request: ToolRequest, output: dict[str, Any],
                    respond: bool) -> None:
        if not respond:
            return  # the call is ending or handed over: the model must not go on
        self._send({"toolResponse": {"functionResponses": [
            {"id": request.call_id, "name": request.name, "response": output}]}})

    def prompt(self, text: str, respond: bool) -> None:
        self._send({"clientContent": {"turns": [{"role": "user", "parts": [{"text": text}]}],
                                      "turnComplete": respond}})

    def closed(self, code: int | None, reason: str) -> Ended | Failed:
        # Gemini reports errors (bad key, bad setup, quota) in the close frame's reason.
        return close_failure(code, reason)

    def receive(self, message: str) -> list[RealtimeEvent]:
        return decoded(message, self._message, "a Live message", typed=False)

    @property
    def _item(self) -> str:
        return f"turn_{self._turn}"

    def _message(self, msg: dict[str, Any]) -> list[RealtimeEvent]:
        if "setupComplete" in msg:
            if self._greeting:
                # Gemini speaks when spoken to: the greeting is asked for as a first turn.
                self._send({"clientContent": {"turns": [{"role": "user", "parts": [{
                    "text": "The call has just been answered. Greet the caller by saying "
                            f"exactly this, and nothing else: {self._greeting}"}]}],
                    "turnComplete": True}})
            return [Ready()]
        out: list[RealtimeEvent] = []
        if "serverContent" in msg:
            out += self._content(msg["serverContent"])
        if "toolCall" in msg:
            # What the model said before calling is all it says until it has the result
            # (and it may not send turnComplete before): that reply is over.
            out += self._end_turn() if self._open else self._heard_text()
            for call in msg["toolCall"].get("functionCalls") or []:
                args = call.get("args") or {}
                out.append(ToolRequest(str(call.get("id") or call["name"]), str(call["name"]),
                                       args if isinstance(args, dict) else {}))
        if "goAway" in msg:
            left = msg["goAway"].get("timeLeft", "")
            out.append(Failed("server", f"the server will close the session ({left} left)",
                              False))
        return out

    def _content(self, sc: dict[str, Any]) -> list[RealtimeEvent]:
        out: list[RealtimeEvent] = []
        if text := (sc.get("inputTranscription") or {}).get("text"):
            self._heard.append(str(text))
        if text := (sc.get("outputTranscription") or {}).get("text"):
            self._said.append(str(text))
        for part in (sc.get("modelTurn") or {}).get("parts") or []:
            data = part.get("inlineData")
            if not data or not str(data.get("mimeType", "")).startswith("audio/pcm"):
                continue
            if not self._open:
                self._open = True
                out += self._heard_text()
            rate = _rate(str(data["mimeType"]))
            if rate != self._out.rate:
                self._out = WireAudio("pcm", rate)
            out.append(AudioOut(self._item, self._out.decode(str(data["data"]))))
        if sc.get("interrupted"):
            out += [*self._said_text(), Interrupted(), ReplyDone()]
            self._out.drop()
            self._next_turn()
        elif sc.get("turnComplete"):
            out += self._end_turn()
        return out

    def _end_turn(self) -> list[RealtimeEvent]:
        tail = self._out.end() if self._open else b""
        out = [*([AudioOut(self._item, tail)] if tail else []), *self._heard_text(),
               *self._said_text(), ReplyDone()]
        self._next_turn()
        return out

    def _next_turn(self) -> None:
        if self._open:
            self._turn += 1
        self._open = False

    def _heard_text(self) -> list[RealtimeEvent]:
        text, self._heard = "".join(self._heard).strip(), []
        return [CallerText(text)] if text else []

    def _said_text(self) -> list[RealtimeEvent]:
        text, self._said = "".join(self._said).strip(), []
        return [AssistantText(self._item, text)] if text and self._open else []
