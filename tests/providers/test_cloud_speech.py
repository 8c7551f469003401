"""The cloud speech adapters on their own, against local servers that speak each vendor's
wire protocol: Deepgram's streaming WebSocket, OpenAI transcription, and the ElevenLabs
and OpenAI streamed voices, including the ways each of them fails."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from atende.providers.cloud_speech import cloud_voice, transcriber
from atende.providers.errors import ProviderError
from atende.providers.speech import SpeechSettings
from atende.providers.stt.deepgram import DeepgramProtocol
from atende.providers.tts.base import CachedStream, StreamingVoice
from tests.peers.audio import Tone
from tests.peers.speech import (
    FakeDeepgram,
    dominant_hz,
    elevenlabs_voice,
    form_parts,
    openai_voice,
    tone_for,
    wav_pcm,
)
from tests.peers.vendor import Audio, Silence, Status, VendorServer

AUDIO = Tone(300, 1.2).pcm(16000)  # 1.2 s of "speech" in 20 ms frames


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def deepgram(url: str, key: str = "dg-test", timeout_s: float = 2.0) -> SpeechSettings:
    return SpeechSettings("deepgram", "nova-3", key, language="en", base_url=url,
                          timeout_s=timeout_s)


async def stream_turn(settings: SpeechSettings, client: httpx.AsyncClient) -> str:
    stream = transcriber(settings, client).open()
    stream.feed(AUDIO[:9600])  # the turn so far, when the caller starts speaking
    for i in range(9600, len(AUDIO), 640):
        stream.feed(AUDIO[i:i + 640])
    return await stream.finish(AUDIO)


def test_deepgram_url_and_messages() -> None:
    p = DeepgramProtocol(SpeechSettings("deepgram", "nova-3", "k", language="pt-BR",
                                        base_url="https://dg.example.com/"))
    assert p.url() == ("wss://dg.example.com/v1/listen?model=nova-3&encoding=linear16&"
                       "sample_rate=16000&channels=1&punctuate=true&smart_format=true&"
                       "interim_results=false&language=pt-BR")
    assert p.headers() == {"Authorization": "Token k"}
    assert DeepgramProtocol(SpeechSettings("deepgram", "nova-3")).url().startswith(
        "wss://api.deepgram.com/v1/listen?")
    for text, final in (("noise", False), ("What are your", True), ("", True),
                        ("opening hours?", True)):
        p.receive(json.dumps({"type": "Results", "is_final": final,
                              "channel": {"alternatives": [{"transcript": text}]}}))
    p.receive(json.dumps({"type": "SpeechStarted"}))
    assert p.transcript == "What are your opening hours?"
    assert p.closed(1011, "") is not None  # no Metadata yet: cut short
    p.receive(json.dumps({"type": "Metadata", "duration": 1.0}))
    assert p.closed(1000, "") is None and p.closed(None, "") is None
    cut = DeepgramProtocol(SpeechSettings("deepgram", "nova-3"))
    assert (e := cut.closed(1008, "DATA-0000")) is not None and e.kind == "request"
    assert (e := cut.closed(None, "")) is not None and e.kind == "connection"
    cut.receive("not json")
    assert cut.error is not None and cut.error.kind == "protocol"


async def test_deepgram_streams_the_turn_and_joins_its_final_results(
        client: httpx.AsyncClient) -> None:
    with FakeDeepgram(["What are your opening hours?"]) as dg:
        text = await stream_turn(deepgram(dg.url.removesuffix("/v1")), client)
    assert text == "What are your opening hours?"  # the two finals, not the interim
    turn = dg.connections[0]
    assert bytes(turn.audio) == AUDIO  # every byte, in order
    assert turn.query["model"] == "nova-3" and turn.query["sample_rate"] == "16000"
    assert turn.query["encoding"] == "linear16" and turn.query["language"] == "en"


@pytest.mark.parametrize(("server", "kind", "status"), [
    (FakeDeepgram([], refuse=429), "rate_limited", 429),
    (FakeDeepgram([], api_key="another"), "auth", 401),
    (FakeDeepgram([], fail="error"), "server", None),
    (FakeDeepgram([], fail="silent"), "timeout", None),
])
async def test_deepgram_failures_have_a_kind(client: httpx.AsyncClient, server: FakeDeepgram,
                                             kind: str, status: int | None) -> None:
    with server as dg:
        t0 = time.monotonic()
        with pytest.raises(ProviderError) as exc:
            await stream_turn(deepgram(dg.url.removesuffix("/v1"), timeout_s=1.0), client)
    assert exc.value.provider == "deepgram" and exc.value.kind == kind
    assert exc.value.status == status
    assert time.monotonic() - t0 < 3  # the timeout bounds the wait
    if kind == "server":
        assert "the test failed it" in exc.value.message


async def test_deepgram_not_listening(client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as exc:
        await stream_turn(deepgram("ws://127.0.0.1:9"), client)
    assert exc.value.kind == "connection"


async def test_a_cancelled_deepgram_turn_closes_without_asking_for_a_transcript(
        client: httpx.AsyncClient) -> None:
    with FakeDeepgram(["unused"]) as dg:
        stream = transcriber(deepgram(dg.url.removesuffix("/v1")), client).open()
        stream.feed(AUDIO[:3200])
        deadline = time.monotonic() + 5
        while not dg.connections or not dg.connections[0].audio:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await stream.cancel()
    assert dg.closed_turns == [] and dg.transcripts == ["unused"]


async def test_openai_transcription_sends_the_turn_as_wav(client: httpx.AsyncClient) -> None:
    with VendorServer(lambda req: Status(200, json.dumps({"text": " Opening hours? "}))
                      ) as api:
        s = SpeechSettings("openai", "gpt-4o-mini-transcribe", "sk-stt", language="pt-BR",
                           base_url=api.url + "/v1")
        stream = transcriber(s, client).open()
        stream.feed(AUDIO[:640])  # heard, but sent only when the turn is over
        assert api.requests == []
        assert await stream.finish(AUDIO) == "Opening hours?"
    req = api.requests[0]
    assert req.path == "/v1/audio/transcriptions"
    assert req.headers["authorization"] == "Bearer sk-stt"
    form = form_parts(req)
    assert form["model"] == b"gpt-4o-mini-transcribe" and form["language"] == b"pt"
    assert form["response_format"] == b"json"
    assert wav_pcm(form["file"]) == (AUDIO, 16000)


@pytest.mark.parametrize(("answer", "kind"), [
    (Status(429, json.dumps({"error": {"message": "slow down"}}), {"retry-after": "7"}),
     "rate_limited"),
    (Status(200, json.dumps({"words": []})), "protocol"),
    (Silence(3), "timeout"),
])
async def test_openai_transcription_failures(client: httpx.AsyncClient, answer: Status,
                                             kind: str) -> None:
    with VendorServer(lambda req: answer) as api:
        s = SpeechSettings("openai", "whisper-1", "sk", base_url=api.url, timeout_s=1)
        with pytest.raises(ProviderError) as exc:
            await transcriber(s, client).open().finish(AUDIO)
    assert exc.value.kind == kind
    if kind == "rate_limited":
        assert exc.value.message == "slow down" and exc.value.retry_after_s == 7


def elevenlabs(url: str, key: str = "xi-key") -> SpeechSettings:
    return SpeechSettings("elevenlabs", "eleven_flash_v2_5", key, voice="voice/1",
                          base_url=url)


async def collect(voice: StreamingVoice, text: str) -> list[bytes]:
    return [pcm async for pcm in voice.stream(text)]


async def test_elevenlabs_streams_16k_pcm_as_it_arrives(client: httpx.AsyncClient) -> None:
    text = "Hello there, this is the clinic speaking."
    with VendorServer(elevenlabs_voice(gap_s=0.05)) as api:
        voice = cloud_voice(elevenlabs(api.url), client)
        arrivals = []
        pieces = []
        async for pcm in voice.stream(text):
            arrivals.append(time.monotonic())
            pieces.append(pcm)
    assert b"".join(pieces) == tone_for(text, 500, 16000)  # odd chunks rejoined exactly
    assert len(pieces) > 3 and arrivals[0] < api.finished_at[0] - 0.1  # not all at the end
    req = api.requests[0]
    assert req.path == "/v1/text-to-speech/voice%2F1/stream?output_format=pcm_16000"
    assert req.headers["xi-api-key"] == "xi-key"
    assert req.json == {"text": text, "model_id": "eleven_flash_v2_5"}


async def test_openai_speech_is_converted_from_24k(client: httpx.AsyncClient) -> None:
    text = "One two three four five six seven eight."
    with VendorServer(openai_voice()) as api:
        s = SpeechSettings("openai", "gpt-4o-mini-tts", "sk-tts", voice="marin",
                           base_url=api.url + "/v1")
        pcm = b"".join(await collect(cloud_voice(s, client), text))
    assert abs(len(pcm) - 0.8 * 32000) <= 64  # 0.8 s of tone, now at 16 kHz
    assert abs(dominant_hz(pcm[3200:-3200]) - 700) < 15
    req = api.requests[0]
    assert req.path == "/v1/audio/speech" and req.headers["authorization"] == "Bearer sk-tts"
    assert req.json == {"model": "gpt-4o-mini-tts", "input": text, "voice": "marin",
                        "response_format": "pcm"}


@pytest.mark.parametrize(("answer", "kind", "message"), [
    (Status(401, json.dumps({"detail": {"status": "invalid_api_key",
                                        "message": "Invalid API key"}})), "auth",
     "Invalid API key"),
    (Status(200, json.dumps({"detail": "a JSON answer"})), "protocol", "expected audio"),
    (Audio(b""), "protocol", "no audio"),
    (Audio(bytes(32000), chunk=3200, cut_after=2), "connection", ""),
    (Silence(3), "timeout", "1 s"),
])
async def test_streamed_voice_failures(client: httpx.AsyncClient, answer: Audio | Status,
                                       kind: str, message: str) -> None:
    with VendorServer(lambda req: answer) as api:
        s = SpeechSettings("elevenlabs", "m", "k", voice="v", base_url=api.url, timeout_s=1)
        with pytest.raises(ProviderError) as exc:
            await collect(cloud_voice(s, client), "Hello.")
    assert exc.value.provider == "elevenlabs" and exc.value.kind == kind
    assert message in exc.value.message


async def test_a_phrase_said_whole_is_cached_and_a_cut_one_is_not(
        client: httpx.AsyncClient) -> None:
    with VendorServer(elevenlabs_voice(gap_s=0.0)) as api:
        voice = CachedStream(cloud_voice(elevenlabs(api.url), client))
        first = b"".join(await collect(voice, "Hello, clinic."))
        assert voice.cached("Hello, clinic.") == first
        gen = voice.stream("A long sentence that the caller cuts off in the middle.")
        await gen.__anext__()
        await gen.aclose()  # a barge-in
        assert voice.cached("A long sentence that the caller cuts off in the middle.") is None
    assert len(api.requests) == 2


async def test_the_phrase_cache_is_bounded_by_bytes(client: httpx.AsyncClient) -> None:
    with VendorServer(elevenlabs_voice(gap_s=0.0)) as api:
        voice = CachedStream(cloud_voice(elevenlabs(api.url), client), max_bytes=30000)
        phrases = [f"Phrase {n}." for n in range(5)]  # 0.2 s, 6,400 bytes each
        for p in phrases:
            await collect(voice, p)
        long = "A sentence far too long to be worth keeping in the cache."  # 35 KB
        await collect(voice, long)
        assert voice.cached(long) is None  # more than a quarter of the cache: not kept
        assert voice.cached(phrases[0]) is None  # the oldest went to make room
        assert all(voice.cached(p) is not None for p in phrases[1:])
        await collect(voice, phrases[0])
    assert len(api.requests) == 7
