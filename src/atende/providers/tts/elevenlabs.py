"""ElevenLabs text to speech, streamed (``POST /v1/text-to-speech/{voice_id}/stream``):
raw 16 kHz PCM (``output_format=pcm_16000``), the format atende speaks inside, so the
pieces go to the phone as they come."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from urllib.parse import quote

import httpx

from atende.providers.speech import SpeechSettings
from atende.providers.tts.http import stream_pcm

DEFAULT_URL = "https://api.elevenlabs.io"


class ElevenLabsTTS:
    """An ElevenLabs voice, streamed sentence by sentence as 16 kHz PCM."""

    name = "elevenlabs"

    def __init__(self, settings: SpeechSettings, client: httpx.AsyncClient) -> None:
        if not settings.voice:
            raise ValueError("an ElevenLabs voice needs its voice_id")
        self.settings = settings
        self.client = client

    def stream(self, text: str) -> AsyncGenerator[bytes, None]:
        s = self.settings
        url = (f"{(s.base_url or DEFAULT_URL).rstrip('/')}/v1/text-to-speech/"
               f"{quote(s.voice or '', safe='')}/stream?output_format=pcm_16000")
        headers = {"xi-api-key": s.api_key} if s.api_key else {}
        return stream_pcm(self.client, self.name, url, headers,
                          {"text": text, "model_id": s.model}, 16000, s.timeout_s)
