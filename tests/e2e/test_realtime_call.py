"""A softphone (baresip) calls an assistant in mode realtime; the speech-to-speech model is a
local server speaking OpenAI Realtime's protocol. Barge-in is measured on the RTP baresip
receives, and the truncation atende reports is checked against what baresip heard."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from tests.e2e.test_baresip_call import turns
from tests.peers.atende import AtendeProcess
from tests.peers.audio import Tone, read_wav, speech_wav, voiced_spans
from tests.peers.baresip import Baresip
from tests.peers.realtime import FakeRealtime, Reply

GREETING = "Hello, you are through to the clinic. Let me tell you about our hours."
F0, SWEEP = 300.0, 600.0  # the greeting's pitch: 300 Hz rising 600 Hz a second


def chirp(seconds: float, rate: int = 16000) -> bytes:
    """A rising tone: its pitch at any moment says how far into it that moment is, so
    what a phone heard can be placed in the audio whatever its jitter buffer dropped."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (F0 * t + SWEEP * t * t / 2)
    return (8000 * np.sin(phase)).astype(np.int16).tobytes()


def chirp_position_s(samples: np.ndarray, rate: int, end_s: float) -> float:
    """How far into the chirp the audio heard up to ``end_s`` reached."""
    window = samples[int((end_s - 0.05) * rate):int((end_s - 0.01) * rate)].astype(float)
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window)), 1 << 15))
    hz = float(np.argmax(spectrum)) * rate / (1 << 15)
    return (hz - F0) / SWEEP + 0.03  # the window's centre is 30 ms before the end


def realtime_assistant(atende: AtendeProcess, server: FakeRealtime, extension: str,
                       **extra: object) -> str:
    r = atende.api.post("/v1/assistants", json={**extra,
        "name": f"Realtime {extension}", "extension": extension, "voice": "espeak:en-us",
        "greeting": GREETING, "prompt": "You are the clinic's receptionist.",
        "mode": "realtime", "fallback": {"action": "hangup"},
        "realtime": {"provider": "openai", "model": "gpt-realtime", "voice": "marin",
                     "base_url": server.url, "api_key": "sk-test"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["realtime"]["api_key_set"] is True and "api_key" not in body["realtime"]
    return str(body["id"])


async def test_barge_in_on_a_realtime_call_stops_the_audio_and_truncates(
        atende: AtendeProcess, tmp_path: Path) -> None:
    greeting = chirp(4.0)
    with FakeRealtime([Reply(GREETING, greeting)], heard=["Sorry, a question."]) as server:
        realtime_assistant(atende, server, "rt-desk", record=True)
        # The caller speaks 1.5 s into the call, inside the 4 s greeting.
        wav = speech_wav(tmp_path / "in.wav", [(1.5, Tone(300, 0.8, -18))], tail_s=8)
        phone = Baresip(tmp_path, wav, account="<sip:rtcaller@127.0.0.1>;regint=0")
        await phone.start()
        try:
            await phone.command("dial", f"sip:rt-desk@127.0.0.1:{atende.sip_port}")
            await phone.wait_event("CALL_ESTABLISHED")
            call = await atende.wait_for_call(
                lambda c: c["from_user"] == "rtcaller" and len(c["turns"]) >= 2, timeout=30)
            await phone.command("hangup")
            await phone.wait_event("CALL_CLOSED")
        finally:
            await phone.stop()
        conn = server.last

    # G.711 on the phone leg: the model is given μ-law both ways, no resampling to 24 kHz.
    audio = conn.of_type("session.update")[0]["session"]["audio"]
    assert audio["input"]["format"] == audio["output"]["format"] == {"type": "audio/pcmu"}

    heard, rate = read_wav(phone.recordings()[0])
    sent, srate = read_wav(phone.recordings()[1])
    onset = voiced_spans(sent, srate)[0][0]
    assert 1.3 < onset < 1.9, onset
    played = next(s for s in voiced_spans(heard, rate, min_gap_ms=200)
                  if s[0] <= onset < s[1] + 0.2)
    stop_after_onset = played[1] - onset
    print(f"realtime: assistant audio stopped {stop_after_onset * 1000:.0f} ms after onset")
    assert stop_after_onset < 0.25, stop_after_onset

    # The model is told how much of its greeting the caller heard: where in the greeting
    # the audio baresip received stopped (read from the pitch it stopped at).
    [truncate] = conn.of_type("conversation.item.truncate")
    heard_ms = chirp_position_s(heard, rate, played[1]) * 1000
    print(f"truncated at {truncate['audio_end_ms']} ms; baresip heard up to {heard_ms:.0f} ms")
    assert abs(truncate["audio_end_ms"] - heard_ms) <= 40, (truncate, heard_ms)
    assert 1000 < truncate["audio_end_ms"] < 2500

    greeting_turn, caller_turn = turns(call, "assistant")[0], turns(call, "caller")[0]
    assert greeting_turn["text"] == GREETING and greeting_turn["interrupted"] is True
    assert greeting_turn["played_ms"] == truncate["audio_end_ms"]
    assert caller_turn["text"] == "Sorry, a question."

    # The call was recorded: the caller on the left, the assistant on the right, in step.
    final = await atende.wait_for_call(
        lambda c: c["id"] == call["id"] and c["status"] == "completed", timeout=10)
    assert final["recording"] == f"/v1/calls/{call['id']}/recording"
    r = atende.api.get(final["recording"])
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    wav = tmp_path / "recording.wav"
    wav.write_bytes(r.content)
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 16000)
        both = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    left, right = both[:, 0].copy(), both[:, 1].copy()
    caller_at = voiced_spans(left, 16000)[0][0]
    said = voiced_spans(right, 16000, min_gap_ms=200)[0]
    assert said[0] < 1.0 < caller_at  # the greeting first, then the caller over it
    # As the phone heard it: the greeting stops right after the caller starts.
    assert 0 < said[1] - caller_at < 0.25, (said, caller_at)
    assert abs((said[1] - said[0]) - (played[1] - played[0])) < 0.1
    assert atende.api.delete(final["recording"]).status_code == 204
    assert atende.api.get(final["recording"]).status_code == 404
    assert atende.call(call["id"])["recording"] is None


async def test_a_realtime_vendor_that_refuses_gets_the_fallback(
        atende: AtendeProcess, tmp_path: Path) -> None:
    with FakeRealtime([], refuse=503) as server:
        realtime_assistant(atende, server, "rt-down")
        wav = speech_wav(tmp_path / "in.wav", [], tail_s=12)
        phone = Baresip(tmp_path, wav, account="<sip:rtdown@127.0.0.1>;regint=0")
        await phone.start()
        try:
            await phone.command("dial", f"sip:rt-down@127.0.0.1:{atende.sip_port}")
            await phone.wait_event("CALL_ESTABLISHED")
            await phone.wait_event("CALL_CLOSED", timeout=30)  # the fallback hangs up
        finally:
            await phone.stop()
    call = await atende.wait_for_call(
        lambda c: c["from_user"] == "rtdown" and c["status"] == "completed", timeout=10)
    assert call["hangup_cause"] == "assistant_hangup"
    [line] = turns(call, "assistant")
    assert str(line["text"]).startswith("I am sorry")
    fallback = [e for e in call["events"] if e["kind"] == "fallback"]
    assert fallback and fallback[0]["data"] == {"provider": "openai", "kind": "server",
                                                "action": "hangup"}
    heard, rate = read_wav(phone.recordings()[0])
    assert voiced_spans(heard, rate)  # the caller heard the apology, not dead air
