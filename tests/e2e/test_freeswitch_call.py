"""A desk phone (baresip) dials 8000 on a real FreeSWITCH, whose dialplan — printed by
`atende freeswitch dialplan` — hands the call to atende over the event socket and its audio
over mod_audio_stream: seed 003's path, end to end, with the offline models."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_baresip_call import QUESTION, replied_with, transcribe, turns
from tests.peers.atende import AtendeProcess, Call
from tests.peers.audio import read_wav, speech_wav, voiced_spans
from tests.peers.baresip import Baresip
from tests.peers.freeswitch import FreeSwitch

EXTENSION = "8000"


def dialplan(atende: AtendeProcess, secretary: str) -> str:
    out = subprocess.run([sys.executable, "-m", "atende", "freeswitch", "dialplan",
                          "--secretary", secretary, "--number", EXTENSION,
                          "--api", atende.base],
                         env=atende.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def secretary(atende: AtendeProcess) -> dict[str, object]:
    return next(a for a in atende.get("/v1/assistants") if a["is_default"])


@pytest.fixture(scope="module")
def pbx(atende: AtendeProcess, secretary: dict[str, object],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeSwitch]:
    text = dialplan(atende, str(secretary["name"]))
    assert f"socket\" data=\"127.0.0.1:{atende.esl_port} async full\"" in text
    fs = FreeSwitch(tmp_path_factory.mktemp("pbx"), dialplan=text)
    try:
        fs.start()
        yield fs
    finally:
        fs.stop()


async def call_8000(pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path, wav: Path,
                    intent: str) -> tuple[Baresip, Call]:
    """Extension 1000 dials 8000, talks until the secretary has answered with ``intent``,
    and hangs up."""
    phone = Baresip(tmp_path, wav, account=(
        f"<sip:1000@127.0.0.1:{pbx.sip_port}>;auth_pass=peer1234;regint=0"))
    await phone.start()
    before = {c["id"] for c in atende.calls()}  # the module's earlier calls
    try:
        await phone.command("dial", f"sip:{EXTENSION}@127.0.0.1:{pbx.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        match = replied_with(intent, "1000")
        call = await atende.wait_for_call(
            lambda c: c["id"] not in before and c["channel"] == "freeswitch" and match(c),
            timeout=40)
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED")
    finally:
        await phone.stop()
    return phone, call


async def test_a_desk_phone_talks_to_the_secretary_through_freeswitch(
        pbx: FreeSwitch, atende: AtendeProcess, secretary: dict[str, object],
        tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "in.wav", [(6.0, QUESTION)], tail_s=15)
    phone, call = await call_8000(pbx, atende, tmp_path, wav, "hours")

    final = await atende.wait_for_call(
        lambda c: c["id"] == call["id"] and c["status"] == "completed", timeout=10)
    assert final["hangup_cause"] == "remote_hangup", pbx.log()[-2000:]
    assert final["assistant_id"] == secretary["id"]
    assert final["from_user"] == "1000" and final["to_user"] == EXTENSION
    assert final["external_id"]  # FreeSWITCH's call UUID
    assert any("opening" in str(t["text"]).lower() for t in turns(final, "caller"))
    greeting, reply = turns(final, "assistant")[:2]
    assert str(greeting["text"]).startswith("Hello") and not greeting["interrupted"]
    assert reply["intent"] == "hours" and not reply["interrupted"]
    assert isinstance(greeting["played_ms"], int) and greeting["played_ms"] > 1500

    # What the phone heard, through FreeSWITCH: the greeting at once, then the reply.
    heard, rate = read_wav(phone.recordings()[0])
    spans = voiced_spans(heard, rate)
    assert spans and spans[0][0] < 1.5, spans
    assert "hello" in transcribe(heard[: int(5.5 * rate)], rate)
    reply_text = transcribe(heard[int(8.0 * rate):], rate)
    assert "monday" in reply_text or "nine" in reply_text, reply_text


async def test_talking_over_the_greeting_stops_it_on_freeswitch(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    # 2 s in: inside the greeting's longest stretch of speech (after "Hello,").
    wav = speech_wav(tmp_path / "in.wav", [(2.0, QUESTION)], tail_s=15)
    phone, call = await call_8000(pbx, atende, tmp_path, wav, "hours")

    greeting = turns(call, "assistant")[0]
    assert greeting["interrupted"] is True
    assert isinstance(greeting["played_ms"], int) and greeting["played_ms"] < 3000

    heard, rate = read_wav(phone.recordings()[0])
    sent, srate = read_wav(phone.recordings()[1])
    onset = voiced_spans(sent, srate)[0][0]
    greeting_span = next(s for s in voiced_spans(heard, rate, min_gap_ms=200)
                         if s[0] <= onset < s[1] + 0.2)
    stopped_after = greeting_span[1] - onset
    print(f"greeting stopped {stopped_after * 1000:.0f} ms after speech onset")
    assert stopped_after < 0.4, stopped_after
