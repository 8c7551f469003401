"""A realtime vendor's protocol and connection by name."""

from __future__ import annotations

from atende.providers.realtime.base import RealtimeProtocol, RealtimeSettings
from atende.providers.realtime.connection import RealtimeConnection
from atende.providers.realtime.elevenlabs import ElevenLabsAgent
from atende.providers.realtime.gemini import GeminiLive
from atende.providers.realtime.openai import OpenAIRealtime

PROVIDERS = ("openai", "elevenlabs", "gemini")


def realtime_protocol(settings: RealtimeSettings) -> RealtimeProtocol:
    if settings.provider == "openai":
        return OpenAIRealtime(settings)
    if settings.provider == "elevenlabs":
        return ElevenLabsAgent(settings)
    if settings.provider == "gemini":
        return GeminiLive(settings)
    raise ValueError(f"unknown realtime provider {settings.provider!r}: use one of "
                     f"{', '.join(PROVIDERS)}")


def realtime_connection(settings: RealtimeSettings) -> RealtimeConnection:
    """Not yet connected: the session opens it, and falls back if that fails."""
    return RealtimeConnection(realtime_protocol(settings), settings.timeout_s)
