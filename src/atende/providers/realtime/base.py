"""The speech-to-speech interface: caller audio in, assistant audio and what happened out.

Each vendor protocol is a sans-IO object: the session hands it our audio and decisions
(``audio``, ``interrupted``, ``tool_result``) and every message it wants sent lands in its
``outbox``; each message received goes through ``receive``, which returns channel-neutral
events. The WebSocket itself is ``connection.RealtimeConnection``'s business.

Audio crossing this interface is always ours: 16-bit mono PCM at 16 kHz. Each protocol
converts to and from its wire format (μ-law at 8 kHz when the phone leg is G.711, so the
vendor hears the call without another resampling step).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from atende.media import g711
from atende.media.audio import SAMPLE_RATE
from atende.media.resample import StreamResampler
from atende.providers.errors import FailureKind, kind_for_close
from atende.providers.llm.base import Tool


@dataclass(frozen=True)
class RealtimeSettings:
    """An assistant's realtime model: provider, model, voice, key and URL."""

    provider: str  # openai | elevenlabs | gemini
    model: str = ""  # OpenAI/Gemini model; ElevenLabs: the agent id
    api_key: str | None = None
    voice: str | None = None
    base_url: str | None = None  # a compatible server (and the tests' local one)
    timeout_s: float = 10.0  # to connect and be ready


@dataclass(frozen=True)
class RealtimeConfig:
    """What the assistant is, for one call."""

    instructions: str
    greeting: str
    tools: list[Tool] = field(default_factory=list)
    end_of_turn_ms: int = 600
    language: str | None = None
    wire_codec: str | None = None  # PCMU/PCMA when the leg carries G.711


# events -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    """The vendor accepted the session: audio may flow."""


@dataclass(frozen=True)
class AudioOut:
    """Audio the model said."""

    item: str  # the assistant item (OpenAI) or event id (ElevenLabs) this audio belongs to
    pcm: bytes


@dataclass(frozen=True)
class CallerStarted:
    """The vendor heard the caller start speaking (and stopped its own reply)."""


@dataclass(frozen=True)
class CallerStopped:
    """The vendor decided the caller's turn ended."""


@dataclass(frozen=True)
class Interrupted:
    """The vendor says what it was saying is void: stop playing it."""


@dataclass(frozen=True)
class CallerText:
    """Text of what the caller said, as the vendor heard it."""

    text: str


@dataclass(frozen=True)
class AssistantText:
    """Text of what the model said."""

    item: str
    text: str


@dataclass(frozen=True)
class ToolRequest:
    """The model asks for a tool call."""

    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ReplyDone:
    """The vendor finished producing a reply (its audio may still be playing here)."""


@dataclass(frozen=True)
class Ended:
    """The vendor ended the conversation on purpose (its own end-call tool): hang up once
    what it said has been heard."""


@dataclass(frozen=True)
class Failed:
    """The vendor reported a failure."""

    kind: FailureKind
    message: str
    fatal: bool = True  # the conversation cannot go on over this connection


RealtimeEvent = (Ready | AudioOut | CallerStarted | CallerStopped | Interrupted | CallerText
                 | AssistantText | ToolRequest | ReplyDone | Ended | Failed)


def decoded(message: str, handle: Callable[[dict[str, Any]], list[RealtimeEvent]],
            what: str, typed: bool = True) -> list[RealtimeEvent]:
    """``message`` (JSON) handed to ``handle`` as an object (with a ``type`` when
    ``typed``). One that is not such an object, or that ``handle`` finds malformed, is a
    non-fatal protocol failure: one bad message from a vendor does not end the call."""
    try:
        msg = json.loads(message)
        if not isinstance(msg, dict) or (typed and "type" not in msg):
            raise TypeError("not an object")
    except (ValueError, TypeError):
        return [Failed("protocol", f"not {what}: {message[:80]!r}", False)]
    try:
        return handle(msg)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [Failed("protocol", f"malformed {msg.get('type') or 'message'}: {exc}",
                       False)]


def close_failure(code: int | None, reason: str) -> Failed:
    """A WebSocket closed by the vendor (``code`` None: without a close frame), as a fatal
    failure whose kind follows the close code and reason."""
    why = f"{code} {reason}".strip() if code is not None else "no close frame"
    return Failed(kind_for_close(code, reason), f"the connection closed ({why})")


class RealtimeProtocol(Protocol):
    """What every realtime vendor protocol offers the session, sans-IO: messages to send for
    audio and tools, and the events its messages mean."""

    name: str
    outbox: list[str]  # messages to send, in order; the connection empties it
    # False: the vendor never says a reply is over (ElevenLabs); a reply all played out is.
    signals_reply_end: bool
    # True: the vendor's own agent reprompts a silent caller (ElevenLabs' turn timeout).
    handles_silence: bool

    def url(self) -> str: ...

    def headers(self) -> dict[str, str]: ...

    def start(self, config: RealtimeConfig) -> None:
        """Queue what is sent first: the session settings (and greeting, when the vendor
        speaks first only on request)."""

    def receive(self, message: str) -> list[RealtimeEvent]: ...

    def closed(self, code: int | None, reason: str) -> Ended | Failed:
        """What the vendor closing the socket means: the end of the call, or a failure."""

    def audio(self, pcm: bytes) -> None:
        """A frame of the caller's audio."""

    def interrupted(self, item: str, played_ms: int) -> None:
        """The caller cut ``item`` after ``played_ms`` of it was played to them."""

    def tool_result(self, request: ToolRequest, output: dict[str, Any],
                    respond: bool) -> None:
        """``output`` of a tool; ``respond``: let the model speak again after it."""

    def prompt(self, text: str, respond: bool) -> None:
        """Tell the model of something on the call it cannot hear (keys pressed, a silent
        caller), in words; ``respond``: and have it speak now."""


# audio at the edge ----------------------------------------------------------------------
class WireAudio:
    """Conversion between our 16 kHz PCM and one wire format: ``pcmu``/``pcma`` at 8 kHz or
    linear PCM at ``rate``; streaming, so frames join cleanly."""

    def __init__(self, codec: str, rate: int) -> None:
        self.codec = codec  # pcm | pcmu | pcma
        self.rate = 8000 if codec in ("pcmu", "pcma") else rate
        self._up = StreamResampler(SAMPLE_RATE, self.rate)
        self._down = StreamResampler(self.rate, SAMPLE_RATE)

    def encode(self, pcm: bytes) -> str:
        """Our audio as the vendor's base64 ("" while the resampler fills)."""
        out = self._up.process(pcm)
        if self.codec != "pcm":
            out = g711.encode(np.frombuffer(out, dtype=np.int16), self.codec.upper())
        return base64.b64encode(out).decode()

    def decode(self, b64: str) -> bytes:
        """The vendor's base64 as our audio; ValueError when it is not audio."""
        try:
            raw = base64.b64decode(b64, validate=True)
        except (ValueError, TypeError) as exc:
            raise ValueError("audio is not base64") from exc
        if self.codec != "pcm":
            raw = g711.decode(raw, self.codec.upper()).tobytes()
        elif len(raw) % 2:
            raw = raw[:-1]
        return self._down.process(raw)

    def end(self) -> bytes:
        """The end of the vendor's audio (what the resampler still holds): call it when a
        reply's audio is complete, or it would start the next one."""
        return self._down.flush()

    def drop(self) -> None:
        """Forget audio held back (a reply that was cut)."""
        self._down.reset()


def ws_base(url: str) -> str:
    """An https:// base URL (as users copy it) in its WebSocket form."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://"):]
    if url.startswith("http://"):
        return "ws://" + url[len("http://"):]
    return url
