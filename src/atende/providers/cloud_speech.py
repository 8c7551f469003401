"""Cloud speech engines made from their settings (providers/speech.py), chosen by name."""

from __future__ import annotations

import httpx

from atende.providers.speech import SpeechSettings
from atende.providers.stt.base import CloudTranscriber
from atende.providers.stt.deepgram import DeepgramSTT
from atende.providers.stt.openai import OpenAITranscriber
from atende.providers.tts.base import StreamingVoice
from atende.providers.tts.elevenlabs import ElevenLabsTTS
from atende.providers.tts.openai import OpenAITTS


def transcriber(s: SpeechSettings, client: httpx.AsyncClient) -> CloudTranscriber:
    if s.provider == "deepgram":
        return DeepgramSTT(s)
    if s.provider == "openai":
        return OpenAITranscriber(s, client)
    raise ValueError(f"unknown speech recogniser {s.provider!r}")


def cloud_voice(s: SpeechSettings, client: httpx.AsyncClient) -> StreamingVoice:
    if s.provider == "elevenlabs":
        return ElevenLabsTTS(s, client)
    if s.provider == "openai":
        return OpenAITTS(s, client)
    raise ValueError(f"unknown voice provider {s.provider!r}")
