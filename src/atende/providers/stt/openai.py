"""OpenAI transcription (``POST /v1/audio/transcriptions``): the whole turn, sent as a WAV
file when it ends. Also any server that copies the API (``base_url``)."""

from __future__ import annotations

import httpx

from atende.media.audio import wav
from atende.providers.errors import ProviderError
from atende.providers.httpio import raise_for_status, timeout, transport_failures
from atende.providers.speech import SpeechSettings

DEFAULT_URL = "https://api.openai.com/v1"


class _WholeTurn:
    """A batch recogniser hears nothing until the turn is over."""

    def __init__(self, transcriber: OpenAITranscriber) -> None:
        self.transcriber = transcriber

    def feed(self, pcm16k: bytes) -> None:
        pass

    async def finish(self, turn: bytes) -> str:
        return await self.transcriber.transcribe(turn)

    async def cancel(self) -> None:
        pass


class OpenAITranscriber:
    """Speech recognition by OpenAI's transcription endpoint: the whole turn, sent when it
    ends."""

    name = "openai"

    def __init__(self, settings: SpeechSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client

    def open(self) -> _WholeTurn:
        return _WholeTurn(self)

    async def transcribe(self, pcm16k: bytes) -> str:
        s = self.settings
        form = {"model": s.model, "response_format": "json"}
        if s.language:
            form["language"] = s.language.split("-")[0].lower()  # ISO 639-1: "pt-BR" → "pt"
        headers = {"Authorization": f"Bearer {s.api_key}"} if s.api_key else {}
        url = (s.base_url or DEFAULT_URL).rstrip("/") + "/audio/transcriptions"
        async with transport_failures(self.name, s.timeout_s):
            resp = await self.client.post(
                url, headers=headers, data=form, files={"file": ("turn.wav", wav(pcm16k),
                                                                  "audio/wav")},
                timeout=timeout(s.timeout_s))
            await raise_for_status(self.name, resp)
        try:
            text = resp.json()["text"]
        except (ValueError, KeyError, TypeError):
            raise ProviderError(self.name, "protocol",
                                f"no text in the answer: {resp.text[:120]!r}") from None
        if not isinstance(text, str):
            raise ProviderError(self.name, "protocol", "the text is not a string")
        return text.strip()
