"""OpenAI speech (``POST /v1/audio/speech`` with ``response_format: pcm``): raw 24 kHz
PCM, streamed as it is made and converted to 16 kHz on the way."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx

from atende.providers.speech import TTS_VOICES, SpeechSettings
from atende.providers.tts.http import stream_pcm

DEFAULT_URL = "https://api.openai.com/v1"


class OpenAITTS:
    """An OpenAI voice, streamed sentence by sentence (24 kHz PCM converted to 16 kHz)."""

    name = "openai"

    def __init__(self, settings: SpeechSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client

    def stream(self, text: str) -> AsyncGenerator[bytes, None]:
        s = self.settings
        url = (s.base_url or DEFAULT_URL).rstrip("/") + "/audio/speech"
        headers = {"Authorization": f"Bearer {s.api_key}"} if s.api_key else {}
        body = {"model": s.model, "input": text, "voice": s.voice or TTS_VOICES["openai"],
                "response_format": "pcm"}
        return stream_pcm(self.client, self.name, url, headers, body, 24000, s.timeout_s)
