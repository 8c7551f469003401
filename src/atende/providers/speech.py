"""Settings of cloud speech engines (an assistant's ``stt`` and ``tts``): Deepgram or
OpenAI to recognise, ElevenLabs or OpenAI to speak, and each one's defaults. Without them,
or when they fail, the local engines (Whisper, Piper, espeak-ng) do the work. The engines
are made from them in cloud_speech.py."""

from __future__ import annotations

from dataclasses import dataclass

STT_MODELS = {"deepgram": "nova-3", "openai": "gpt-4o-mini-transcribe"}
TTS_MODELS = {"elevenlabs": "eleven_flash_v2_5", "openai": "gpt-4o-mini-tts"}
TTS_VOICES = {"openai": "alloy"}  # ElevenLabs has no default: a voice_id is needed


@dataclass(frozen=True)
class SpeechSettings:
    """An assistant's cloud recogniser or voice: provider, model, key, voice and language."""

    provider: str
    model: str
    api_key: str | None = None
    voice: str | None = None  # TTS: the vendor's voice name or id
    language: str | None = None
    base_url: str | None = None
    timeout_s: float = 5.0
