"""A softphone (baresip) calls an assistant that hears with Deepgram and speaks with an
ElevenLabs voice, both local servers speaking the vendors' wire protocols: the caller's
audio reaches Deepgram while they speak, the phone hears the cloud voice (its tone) on
the RTP it receives, and when the voice fails mid-call the local one answers instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tests.e2e.test_baresip_call import turns
from tests.peers.atende import AtendeProcess
from tests.peers.audio import read_wav, speech_wav, voiced_spans
from tests.peers.baresip import Baresip
from tests.peers.speech import FakeDeepgram, dominant_hz, elevenlabs_voice
from tests.peers.vendor import Answer, Request, Status, VendorServer

GREETING = "Hello, this is the clinic."


def cloud_assistant(atende: AtendeProcess, extension: str, dg: FakeDeepgram,
                    voice: VendorServer) -> dict[str, Any]:
    r = atende.api.post("/v1/assistants", json={
        "name": f"Cloud {extension}", "extension": extension, "voice": "espeak:en-us",
        "greeting": GREETING,
        "stt": {"provider": "deepgram", "base_url": dg.url.removesuffix("/v1"),
                "api_key": "dg-test", "timeout_s": 3},
        "tts": {"provider": "elevenlabs", "voice": "v-clinic", "base_url": voice.url,
                "api_key": "xi-e2e-secret", "timeout_s": 3}})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def call_it(atende: AtendeProcess, tmp_path: Path, extension: str, user: str,
                  wav: Path, replies: int) -> tuple[dict[str, Any], Baresip]:
    phone = Baresip(tmp_path, wav, account=f"<sip:{user}@127.0.0.1>;regint=0")
    await phone.start()
    try:
        await phone.command("dial", f"sip:{extension}@127.0.0.1:{atende.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        call = await atende.wait_for_call(
            lambda c: c["from_user"] == user and len(turns(c, "assistant")) >= replies
            and len(turns(c, "caller")) >= replies - 1, timeout=40)
        # A turn is stored once all of its audio was sent: the phone has heard it.
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED")
    finally:
        await phone.stop()
    return call, phone


def spans_hz(samples: np.ndarray, rate: int) -> list[tuple[float, float, float]]:
    """(start, end, pitch) of each stretch of sound the phone heard."""
    out = []
    for start, end in voiced_spans(samples, rate, min_gap_ms=150):
        part = samples[int(start * rate):int(end * rate)].astype(np.int16).tobytes()
        out.append((start, end, dominant_hz(part, rate)))
    return out


async def test_a_call_heard_by_deepgram_and_answered_in_a_cloud_voice(
        atende: AtendeProcess, tmp_path: Path) -> None:
    with FakeDeepgram(["What are your opening hours?"]) as dg, \
            VendorServer(elevenlabs_voice(hz=500)) as voice:
        bot = cloud_assistant(atende, "cloud-desk", dg, voice)
        assert bot["stt"]["api_key_set"] and bot["tts"]["api_key_set"]
        wav = speech_wav(tmp_path / "in.wav",
                         [(2.0, "I would like to book an appointment for next week.")], 6)
        call, phone = await call_it(atende, tmp_path, "cloud-desk", "cloudcaller", wav, 2)
        speech_end = 2.0 + voiced_spans(*read_wav(wav))[0][1] - voiced_spans(
            *read_wav(wav))[0][0]
    # Deepgram's words, not the audio's: the rules answered the opening hours.
    assert [t["text"] for t in turns(call, "caller")] == ["What are your opening hours?"]
    said = [t["text"] for t in turns(call, "assistant")]
    assert said[0] == GREETING and said[1].startswith("We are open Monday to Friday")
    [turn] = dg.closed_turns
    assert turn.first_audio_at is not None and turn.close_stream_at is not None
    # Streamed as it was spoken: audio sent all at once at the turn's end would reach the
    # server within milliseconds of the close. The span is the speech (about 2.8 s) and
    # the end-of-turn wait, less the time the connection took to open at the speech's
    # start: 1.48 s once in a clean-clone run with both cores busy, so 1.0 s is the bar.
    assert turn.close_stream_at - turn.first_audio_at > 1.0
    assert len(turn.audio) > 2 * 32000
    # Every sentence was asked of the voice, with its key; the phone heard its tone.
    texts = [r.json["text"] for r in voice.requests]
    assert texts[0] == GREETING and "".join(texts[1:]).startswith("We are open")
    assert all(r.headers["xi-api-key"] == "xi-e2e-secret" for r in voice.requests)
    heard, rate = read_wav(phone.recordings()[0])
    spans = spans_hz(heard, rate)
    assert len(spans) >= 2, spans
    greeting, reply = spans[0], spans[-1]
    assert abs(greeting[2] - 500) < 15 and abs(reply[2] - 500) < 15, spans
    assert abs((greeting[1] - greeting[0]) - 0.5) < 0.12  # five words: 0.5 s of tone
    assert reply[0] > speech_end  # the answer came after the question
    assert "xi-e2e-secret" not in atende.log() and "dg-test" not in atende.log()
    assert not [e for e in atende.call(call["id"])["events"] if e["kind"] == "provider_error"]


async def test_a_cloud_voice_that_fails_mid_call_is_replaced_by_the_local_one(
        atende: AtendeProcess, tmp_path: Path) -> None:
    tone = elevenlabs_voice(hz=500)

    def greeting_then_down(req: Request) -> Answer:
        if req.json["text"] == GREETING:
            return tone(req)
        return Status(500, json.dumps({"detail": {"message": "voice service down"}}))

    with FakeDeepgram(["What are your opening hours?"]) as dg, \
            VendorServer(greeting_then_down) as voice:
        cloud_assistant(atende, "cloud-fails", dg, voice)
        wav = speech_wav(tmp_path / "in.wav", [(2.0, "What are your opening hours?")], 7)
        call, phone = await call_it(atende, tmp_path, "cloud-fails", "cloudfail", wav, 2)
    said = [t["text"] for t in turns(call, "assistant")]
    assert said[1].startswith("We are open Monday to Friday")
    heard, rate = read_wav(phone.recordings()[0])
    spans = spans_hz(heard, rate)
    assert abs(spans[0][2] - 500) < 15, spans  # the greeting: the cloud voice
    reply = spans[-1]
    assert abs(reply[2] - 500) > 15 and reply[1] - reply[0] > 1.5, spans  # espeak's speech
    stored = atende.call(call["id"])
    errors = [e["data"] for e in stored["events"] if e["kind"] == "provider_error"]
    assert errors == [{"provider": "tts:elevenlabs", "kind": "server", "status": 500,
                       "message": "voice service down", "fallback": "local"}]
    assert len(voice.requests) == 2  # after the failure the call no longer asked it
