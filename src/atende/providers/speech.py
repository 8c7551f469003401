"""Cloud speech engines, chosen by an assistant's ``stt`` and ``tts`` settings: Deepgram
or OpenAI to recognise, ElevenLabs or OpenAI to speak. Without them, or when they fail,
the local engines (Whisper, Piper, espeak-ng) do the work."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from atende.providers.stt.base import CloudTranscriber
from atende.providers.tts.base import StreamingVoice

STT_MODELS = {"deepgram": "nova-3", "openai": "gpt-4o-mini-transcribe"}
TTS_MODELS = {"elevenlabs": "eleven_flash_v2_5", "openai": "gpt-4o-mini-tts"}
TTS_VOICES = {"openai": "alloy"}  # ElevenLabs has no default: a voice_id is needed


@dataclass(frozen=True)
class SpeechSettings:
    provider: str
    model: str
    api_key: str | None = None
    voice: str | None = None  # TTS: the vendor's voice name or id
    language: str | None = None
    base_url: str | None = None
    timeout_s: float = 5.0


def transcriber(s: SpeechSettings, client: httpx.AsyncClient) -> CloudTranscriber:
    if s.provider == "deepgram":
        from atende.providers.stt.deepgram import DeepgramSTT

        return DeepgramSTT(s)
    if s.provider == "openai":
        from atende.providers.stt.openai import OpenAITranscriber

        return OpenAITranscriber(s, client)
    raise ValueError(f"unknown speech recogniser {s.provider!r}")


def cloud_voice(s: SpeechSettings, client: httpx.AsyncClient) -> StreamingVoice:
    if s.provider == "elevenlabs":
        from atende.providers.tts.elevenlabs import ElevenLabsTTS

        return ElevenLabsTTS(s, client)
    if s.provider == "openai":
        from atende.providers.tts.openai import OpenAITTS

        return OpenAITTS(s, client)
    raise ValueError(f"unknown voice provider {s.provider!r}")
