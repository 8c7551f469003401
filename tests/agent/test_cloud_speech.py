"""The pipeline session with cloud speech on a paced in-memory leg: Deepgram hears the turn
while the caller speaks; a streamed voice's audio plays as it arrives and stops on a
barge-in; and when a cloud engine fails the local one (Whisper, Piper) hears or speaks in
its place, so the caller loses neither words nor the reply. The vendors are local servers
speaking their wire protocols; the engines on the call are the real ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import httpx
import pytest

from atende.agent.brain import DEFAULT_RULES, RuleBrain
from atende.providers.cloud_speech import cloud_voice, transcriber
from atende.providers.speech import SpeechSettings
from atende.providers.stt.base import CloudTranscriber
from atende.providers.stt.whisper import WhisperSTT
from atende.providers.tts.base import CachedStream, CachedTTS
from tests.agent.conftest import Call, StartCall, wait_for
from tests.peers.speech import FakeDeepgram, dominant_hz, elevenlabs_voice
from tests.peers.vendor import Answer, Audio, Status, VendorServer

GREETING = "Hello, you have reached the clinic. How can I help you today?"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def brain(greeting: str = GREETING) -> RuleBrain:
    return RuleBrain(replace(DEFAULT_RULES, greeting=greeting))


def deepgram(dg: FakeDeepgram, client: httpx.AsyncClient) -> CloudTranscriber:
    return transcriber(SpeechSettings("deepgram", "nova-3", "dg-test", language="en",
                                      base_url=dg.url.removesuffix("/v1"), timeout_s=2),
                       client)


def voice(api: VendorServer, client: httpx.AsyncClient) -> CachedStream:
    return CachedStream(cloud_voice(SpeechSettings(
        "elevenlabs", "eleven_flash_v2_5", "xi-test", voice="v1", base_url=api.url,
        timeout_s=2), client))


def heard(call: Call, since: float = 0.0) -> bytes:
    """What the phone was sent (from loop time ``since``)."""
    return b"".join(f for t, f in call.leg.sent if t >= since)


async def replies(call: Call, n: int) -> None:
    await wait_for(lambda: len(call.record.said("assistant")) >= n and
                   not call.leg.outbound.busy)


async def test_deepgram_hears_the_turn_while_it_is_spoken(
        start_call: StartCall, speech: Callable[[str], bytes],
        client: httpx.AsyncClient) -> None:
    utterance = speech("I would like to book an appointment for one of the days next week.")
    with FakeDeepgram(["What are your opening hours?"]) as dg:
        call = start_call(brain(), cloud_stt=deepgram(dg, client))
        await replies(call, 1)
        end = await call.say(utterance)
        await replies(call, 2)
    # The words are Deepgram's (the audio asked for an appointment): the rules answered them.
    assert call.record.said("caller") == ["What are your opening hours?"]
    assert call.record.said("assistant")[1].startswith("We are open Monday to Friday")
    turn = dg.closed_turns[0]
    assert turn.first_audio_at is not None and turn.close_stream_at is not None
    assert turn.first_audio_at < end - 2.0  # streamed while the caller was speaking
    assert turn.close_stream_at > end  # and closed once their turn was over
    # The turn from its pre-roll to the end-of-turn silence, nothing lost on the way.
    assert len(utterance) - 0.4 * 32000 <= len(turn.audio) <= len(utterance) + 0.9 * 32000
    assert call.record.events == []


async def test_a_failing_recogniser_hands_the_turn_to_whisper(
        start_call: StartCall, speech: Callable[[str], bytes],
        client: httpx.AsyncClient) -> None:
    with FakeDeepgram([], fail="error") as dg:
        call = start_call(brain(), cloud_stt=deepgram(dg, client))
        await replies(call, 1)
        await call.say(speech("What are your opening hours?"))
        await replies(call, 2)
        await call.say(speech("Thank you."))
        await replies(call, 3)
    said = call.record.said("caller")
    assert "opening" in said[0].lower() and "thank" in said[1].lower()  # Whisper heard both
    assert call.record.said("assistant")[1].startswith("We are open")
    assert call.record.events == [("provider_error", {
        "provider": "stt:deepgram", "kind": "server", "status": None,
        "message": "the test failed it", "fallback": "local"})]
    assert len(dg.connections) == 1  # the rest of the call did not wait for it again


async def test_a_streamed_voice_plays_as_it_arrives_and_is_cached(
        start_call: StartCall, client: httpx.AsyncClient) -> None:
    with VendorServer(elevenlabs_voice(gap_s=0.05)) as api:
        cloud = voice(api, client)
        call = start_call(brain(), cloud_tts=cloud)
        await replies(call, 1)
        first_out = call.leg.sent[0][0]
        again = start_call(brain(), cloud_tts=cloud)  # the next call, same assistant
        await replies(again, 1)
    sentences = ["Hello, you have reached the clinic.", "How can I help you today?"]
    assert [r.json["text"] for r in api.requests] == sentences  # once each: then cached
    assert first_out < api.finished_at[0] - 0.2  # before the vendor had sent it all
    for c in (call, again):
        pcm = heard(c)
        assert abs(dominant_hz(pcm) - 500) < 10  # the cloud voice, not the local one
        turn = c.record.turns[0]
        assert turn.text == GREETING and not turn.interrupted
        assert abs(turn.played_ms - 1200) <= 40  # 12 words: 1.2 s of tone, all of it


@pytest.mark.parametrize(("answer", "kind"), [
    (Status(503, '{"detail": {"message": "busy"}}'), "server"),
    (Audio(bytes(8000), chunk=1600, cut_after=2, gap_s=0.05), "connection"),
])
async def test_a_failing_voice_hands_the_sentence_to_the_local_one(
        start_call: StartCall, client: httpx.AsyncClient,
        engines: tuple[WhisperSTT, CachedTTS], answer: Answer, kind: str) -> None:
    with VendorServer(lambda req: answer) as api:
        call = start_call(brain(), cloud_tts=voice(api, client))
        await replies(call, 1)
    assert len(api.requests) == 1  # the second sentence went straight to the local voice
    turn = call.record.turns[0]
    assert turn.text == GREETING and not turn.interrupted
    text = engines[0].transcribe(heard(call)).lower()
    assert "clinic" in text and "help you today" in text  # the whole greeting was heard
    (event,) = call.record.events
    assert event[0] == "provider_error" and event[1]["provider"] == "tts:elevenlabs"
    assert event[1]["kind"] == kind and event[1]["fallback"] == "local"
    assert "xi-test" not in str(call.record.events)  # the key never leaves the request


async def test_a_barge_in_stops_a_streamed_sentence_and_its_download(
        start_call: StartCall, speech: Callable[[str], bytes],
        client: httpx.AsyncClient) -> None:
    long = " ".join(["This is a long sentence that goes on"] * 5) + "."  # 4 s of tone
    with VendorServer(elevenlabs_voice(gap_s=0.05)) as api:
        call = start_call(brain(long), cloud_tts=voice(api, client))
        await wait_for(lambda: bool(call.leg.sent))
        await asyncio.sleep(0.6)
        t_speak = asyncio.get_running_loop().time()
        task = asyncio.get_running_loop().create_task(call.say(speech("Wait, one question.")))
        await wait_for(lambda: bool(call.record.turns))
        sent_by_the_cut = list(call.leg.sent)  # the reply to the caller comes later
        await wait_for(lambda: api.abandoned == 1)  # the download was dropped
        await task
    turn = call.record.turns[0]
    assert turn.interrupted and 600 <= turn.played_ms < 2000
    assert sent_by_the_cut[-1][0] < t_speak + 0.8  # Piper's lead-in, onset and barge-in
    assert api.finished_at == []  # the sentence was never read to its end
    assert call.session.speaker.cloud is not None  # a barge-in is no failure
