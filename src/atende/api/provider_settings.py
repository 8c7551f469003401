"""The shapes of an assistant's provider settings in /v1/assistants — its language models
(llm), speech-to-speech model (realtime), recogniser (stt) and voice (tts): each with its
own vendor and key, or naming a shared AI provider (/v1/providers) by provider_id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from atende.calls.assistant_rows import shown_provider
from atende.providers.llm.base import LlmSettings
from atende.providers.realtime.base import RealtimeSettings
from atende.providers.realtime.gemini import DEFAULT_MODEL as DEFAULT_GEMINI_MODEL
from atende.providers.realtime.openai import DEFAULT_MODEL as DEFAULT_REALTIME_MODEL
from atende.providers.speech import STT_MODELS, TTS_MODELS, TTS_VOICES, SpeechSettings


def _url_of(*schemes: str) -> Callable[[str | None], str | None]:
    """A validator of URLs with one of ``schemes`` (its error names them, most usual
    first)."""
    def check(v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v.strip())
        if parts.scheme not in schemes or not parts.hostname:
            names = [f"{x}://" for x in schemes]
            raise ValueError(f"must be an {', '.join(names[:-1])} or {names[-1]} URL")
        return v.strip()
    return check


http_url = _url_of("http", "https")
ws_url = _url_of("https", "wss", "http", "ws")


def _shared() -> Any:
    """The id of a shared AI provider (/v1/providers) a section takes its vendor, key, URL
    and defaults from."""
    return Field(None, min_length=1, max_length=32, description="a shared AI provider "
                 "(/v1/providers) of the right type: its vendor, key, URL and model are "
                 "used; what this section sets besides wins")


def _own_or_shared(section: Any) -> bool:
    """Whether the section names its own vendor (True) or a shared provider (False);
    ValueError when it does neither, or sets a key of its own beside a shared one."""
    if section.provider_id is not None:
        if section.api_key is not None:
            raise ValueError("api_key: the key is the shared provider's "
                             f"({section.provider_id}); change it there, or leave "
                             "provider_id out")
        return False
    if section.provider is None:
        raise ValueError("provider: name the vendor, or a shared AI provider in provider_id")
    return True


class LlmIn(BaseModel):
    """The language model an assistant thinks with (mode pipeline)."""

    model_config = ConfigDict(extra="forbid")
    provider: Literal["openai", "anthropic", "gemini"] | None = Field(
        None, description="openai also covers compatible servers (Ollama, vLLM, llama.cpp, "
        "LM Studio): set base_url. Needed unless provider_id is given")
    provider_id: str | None = _shared()
    model: str | None = Field(None, min_length=1, max_length=200, description="needed "
                              "unless the shared provider names one")
    base_url: str | None = Field(None, max_length=500,
                                 description="default: the vendor's own API")
    api_key: str | None = Field(None, min_length=1, max_length=1000,
                                description="write-only; stored encrypted. Omitted on "
                                "update: the key of the same provider at the same position "
                                "is kept")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int = Field(LlmSettings.max_tokens, ge=16, le=8192)
    timeout_s: float = Field(LlmSettings.timeout_s, ge=0.5, le=60, description="to the "
                             "first token; on "
                             "timeout the next model (or the fallback) takes over")

    _url = field_validator("base_url")(http_url)

    @model_validator(mode="after")
    def _model(self) -> LlmIn:
        if _own_or_shared(self) and self.model is None:
            raise ValueError("model: name the model, e.g. gpt-4o-mini")
        return self


class LlmOut(BaseModel):
    """An assistant's language model, its key masked."""

    provider: str
    provider_id: str | None = None
    model: str | None
    base_url: str | None = None
    temperature: float | None = None
    max_tokens: int
    timeout_s: float
    api_key_set: bool


def _key() -> Any:
    """The write-only key of a provider's settings (realtime, stt, tts)."""
    return Field(None, min_length=1, max_length=1000, description="write-only; stored "
                 "encrypted. Omitted on update: the key is kept while the provider stays "
                 "the same")


class RealtimeIn(BaseModel):
    """The speech-to-speech model that holds the conversation (mode realtime)."""

    model_config = ConfigDict(extra="forbid")
    provider: Literal["openai", "elevenlabs", "gemini"] | None = Field(
        None, description="openai: OpenAI Realtime (or a server that speaks it: set "
        "base_url); elevenlabs: an ElevenLabs Conversational AI agent; gemini: Gemini Live. "
        "Needed unless provider_id is given")
    provider_id: str | None = _shared()
    model: str | None = Field(None, min_length=1, max_length=200, description=(
        f"default: {DEFAULT_REALTIME_MODEL} (openai), {DEFAULT_GEMINI_MODEL} (gemini); "
        "elevenlabs: the agent's id (required)"))
    voice: str | None = Field(None, min_length=1, max_length=100, description="the "
                              "vendor's voice (OpenAI/Gemini voice name, ElevenLabs "
                              "voice_id); default: the model's or agent's own")
    base_url: str | None = Field(None, max_length=500, description="default: the vendor's "
                                 "own API, e.g. wss://api.openai.com/v1, "
                                 "wss://api.elevenlabs.io, "
                                 "wss://generativelanguage.googleapis.com")
    api_key: str | None = _key()
    timeout_s: float = Field(RealtimeSettings.timeout_s, ge=1, le=60, description="to connect "
                             "and be ready; after it (or any failure) the fallback runs")

    _url = field_validator("base_url")(ws_url)

    @model_validator(mode="after")
    def _model(self) -> RealtimeIn:
        if not _own_or_shared(self):
            return self
        if self.model is None and self.provider == "elevenlabs":
            raise ValueError("model: the ElevenLabs agent's id is needed (agent_id)")
        if self.model is None:
            self.model = DEFAULT_GEMINI_MODEL if self.provider == "gemini" else \
                DEFAULT_REALTIME_MODEL
        return self


class RealtimeOut(BaseModel):
    """An assistant's realtime model, its key masked."""

    provider: str
    provider_id: str | None = None
    model: str | None
    voice: str | None
    base_url: str | None
    timeout_s: float
    api_key_set: bool


class SttIn(BaseModel):
    """A cloud recogniser for the assistant (the local Whisper takes over when it fails)."""

    model_config = ConfigDict(extra="forbid")
    provider: Literal["deepgram", "openai"] | None = Field(
        None, description="deepgram: streaming recognition, the caller's words sent as they "
        "speak; openai: the turn sent when it ends (or a server that copies the API: set "
        "base_url). Needed unless provider_id is given")
    provider_id: str | None = _shared()
    model: str | None = Field(None, min_length=1, max_length=200, description=(
        f"default: {STT_MODELS['deepgram']} (deepgram), {STT_MODELS['openai']} (openai)"))
    language: str | None = Field(None, min_length=2, max_length=16,
                                 description="default: the assistant's language")
    base_url: str | None = Field(None, max_length=500, description="default: the vendor's "
                                 "own API (wss://api.deepgram.com, https://api.openai.com/v1)")
    api_key: str | None = _key()
    timeout_s: float = Field(SpeechSettings.timeout_s, ge=0.5, le=30, description="to "
                             "connect, and for the transcript once the turn ends; after it "
                             "(or any failure) the local recogniser hears the turn")

    @model_validator(mode="after")
    def _defaults(self) -> SttIn:
        if not _own_or_shared(self):
            self.base_url = ws_url(self.base_url)  # the shared provider's vendor decides
            return self
        assert self.provider is not None
        self.model = self.model or STT_MODELS[self.provider]
        check = ws_url if self.provider == "deepgram" else http_url
        try:
            self.base_url = check(self.base_url)
        except ValueError as exc:
            raise ValueError(f"base_url: {exc}") from None
        return self


class TtsIn(BaseModel):
    """A cloud voice for the assistant (the local voice takes over when it fails)."""

    model_config = ConfigDict(extra="forbid")
    provider: Literal["elevenlabs", "openai"] | None = Field(
        None, description="elevenlabs or openai, streamed: the first words play while the "
        "rest of the sentence is made. Needed unless provider_id is given")
    provider_id: str | None = _shared()
    model: str | None = Field(None, min_length=1, max_length=200, description=(
        f"default: {TTS_MODELS['elevenlabs']} (elevenlabs), {TTS_MODELS['openai']} "
        "(openai)"))
    voice: str | None = Field(None, min_length=1, max_length=100, description="the "
                              "ElevenLabs voice_id (required), or the OpenAI voice "
                              f"(default {TTS_VOICES['openai']})")
    base_url: str | None = Field(None, max_length=500, description="default: the vendor's "
                                 "own API (https://api.elevenlabs.io, "
                                 "https://api.openai.com/v1)")
    api_key: str | None = _key()
    timeout_s: float = Field(SpeechSettings.timeout_s, ge=0.5, le=30, description="for the "
                             "first audio of a sentence and between its pieces; after it (or "
                             "any failure) the local voice speaks")

    _url = field_validator("base_url")(http_url)

    @model_validator(mode="after")
    def _defaults(self) -> TtsIn:
        if not _own_or_shared(self):
            return self
        assert self.provider is not None
        if self.voice is None and self.provider == "elevenlabs":
            raise ValueError("voice: the ElevenLabs voice_id is needed")
        self.model = self.model or TTS_MODELS[self.provider]
        self.voice = self.voice or TTS_VOICES.get(self.provider)
        return self


class SpeechOut(BaseModel):
    """An assistant's cloud recogniser or voice, its key masked."""

    provider: str
    provider_id: str | None = None
    model: str | None
    voice: str | None = None
    language: str | None = None
    base_url: str | None
    timeout_s: float
    api_key_set: bool

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> SpeechOut | None:
        return cls(**shown_provider(row)) if row else None
