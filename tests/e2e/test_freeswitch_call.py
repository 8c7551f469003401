"""A desk phone (baresip) dials 8000 on a real FreeSWITCH, whose dialplan — printed by
`atende freeswitch dialplan` — hands the call to atende over the event socket and its audio
over mod_audio_stream: seed 003's path, end to end, with the offline models."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from atende.channels.freeswitch.dialplan import secretary_extension
from tests.e2e.test_automation import TASK, place
from tests.e2e.test_baresip_call import QUESTION, replied_with, transcribe, turns
from tests.e2e.test_cli import atende_cli
from tests.peers.atende import AtendeProcess, Call
from tests.peers.audio import read_wav, speech_wav, voiced_spans
from tests.peers.baresip import Baresip
from tests.peers.freeswitch import FreeSwitch, desk_phone, running
from tests.peers.vendor import Answer, Request, Status, VendorServer
from tests.peers.vendor import openai_reply as reply
from tests.peers.webhook import webhook_receiver

EXTENSION = "8000"
NOBODY = "8009"
RTP_EXTENSION = "8003"
DOTENV_KEY = "sk-from-the-dotenv"


def dialplan(atende: AtendeProcess, secretary: str, number: str = EXTENSION,
             *options: str) -> str:
    out = subprocess.run([sys.executable, "-m", "atende", "freeswitch", "dialplan",
                          "--secretary", secretary, "--number", number, *options,
                          "--api", atende.base],
                         env=atende.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def model_secretary(atende: AtendeProcess, pbx: FreeSwitch, name: str, number: str,
                    llm_url: str, **fields: object) -> dict[str, object]:
    """A secretary that thinks with the model server at ``llm_url`` (no key of its own),
    reached on ``number`` through the dialplan `atende freeswitch dialplan` prints."""
    r = atende.api.post("/v1/assistants", json={
        "name": name, "extension": name.lower().replace(" ", "-"), "voice": "espeak:en-us",
        "greeting": "Hi.", "llm": [{"provider": "openai", "model": "m", "base_url": llm_url}],
        **fields})
    assert r.status_code == 201, r.text
    pbx.load_dialplan(dialplan(atende, name, number))
    return dict(r.json())


async def until_registered(pbx: FreeSwitch, user: str) -> None:
    async with asyncio.timeout(10):
        while not (await asyncio.to_thread(pbx.api, f"sofia_contact {user}@127.0.0.1")
                   ).startswith("sofia/"):
            await asyncio.sleep(0.1)


async def live_call(pbx: FreeSwitch, atende: AtendeProcess, phone: Baresip,
                    number: str = EXTENSION) -> Call:
    """``phone`` (started) dials ``number``: the new call's record once it is in
    progress at atende."""
    before = {c["id"] for c in atende.calls()}
    await phone.command("dial", f"sip:{number}@127.0.0.1:{pbx.sip_port}")
    await phone.wait_event("CALL_ESTABLISHED")
    return await atende.wait_for_call(
        lambda c: c["id"] not in before and c["status"] == "in_progress")


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeSwitch]:
    with running(tmp_path_factory.mktemp("pbx")) as fs:
        yield fs


@pytest.fixture(scope="module")
def atende(pbx: FreeSwitch, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[AtendeProcess]:
    """atende set up the way seed 003 does it: a .env with its names (the ports and folders
    of the test come as ATENDE_* variables, which win)."""
    workdir = Path(tmp_path_factory.mktemp("atende-fs"))
    (workdir / ".env").write_text(
        "# seed 003's names\n"
        f"ESL_HOST=127.0.0.1\nESL_PORT={pbx.esl_port}\nESL_PASSWORD=ClueCon\n"
        f"OPENAI_API_KEY={DOTENV_KEY}\nAUDIO_MODE=websocket\n"
        "DB_HOST=\n"  # empty: the default database (SQLite)
        "ESL_SERVER_PORT=1\n")  # not an atende name: ignored (ATENDE_ESL_SERVER_PORT is)
    proc = AtendeProcess(workdir, (26000, 26999))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module", autouse=True)
def secretary(atende: AtendeProcess, pbx: FreeSwitch) -> dict[str, object]:
    """The default assistant, reachable on 8000 through the dialplan `atende freeswitch
    dialplan` prints (pasted into FreeSWITCH, as a user does)."""
    chosen = next(a for a in atende.get("/v1/assistants") if a["is_default"])
    text = dialplan(atende, str(chosen["name"]))
    assert f"socket\" data=\"127.0.0.1:{atende.esl_port} async full\"" in text
    # A number whose dialplan names a secretary atende does not have.
    text += secretary_extension("nobody", NOBODY, uuid.uuid4().hex, "127.0.0.1",
                                atende.esl_port, atende.audio_stream_port)
    # The same secretary on 8003, its calls bridged to atende's SIP port (AUDIO_MODE=rtp).
    rtp = dialplan(atende, str(chosen["name"]), RTP_EXTENSION, "--mode", "rtp")
    assert f"sofia/internal/{RTP_EXTENSION}@127.0.0.1:{atende.sip_port}" in rtp
    pbx.load_dialplan(text + rtp)
    return chosen


async def call_8000(pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path, wav: Path,
                    intent: str, number: str = EXTENSION, channel: str = "freeswitch"
                    ) -> tuple[Baresip, Call]:
    """Extension 1000 dials 8000, talks until the secretary has answered with ``intent``,
    and hangs up."""
    phone = desk_phone(pbx, tmp_path, wav)
    await phone.start()
    before = {c["id"] for c in atende.calls()}  # the module's earlier calls
    try:
        await phone.command("dial", f"sip:{number}@127.0.0.1:{pbx.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        match = replied_with(intent, "1000")
        call = await atende.wait_for_call(
            lambda c: c["id"] not in before and c["channel"] == channel and match(c),
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


async def test_in_rtp_mode_freeswitch_bridges_the_call_to_atendes_sip_port(
        pbx: FreeSwitch, atende: AtendeProcess, secretary: dict[str, object],
        tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "in.wav", [(6.0, QUESTION)], tail_s=15)
    phone, call = await call_8000(pbx, atende, tmp_path, wav, "hours", RTP_EXTENSION, "sip")
    final = await atende.wait_for_call(
        lambda c: c["id"] == call["id"] and c["status"] == "completed", timeout=10)
    assert final["assistant_id"] == secretary["id"]  # named by the X-Atende-Secretary header
    # The call came over the event socket, which had FreeSWITCH bridge it to atende's SIP
    # port: the record carries FreeSWITCH's UUID of it, as in websocket mode.
    assert final["external_id"] in pbx.log() and final["external_id"].count("-") == 4
    assert final["from_user"] == "1000" and final["to_user"] == RTP_EXTENSION
    assert final["hangup_cause"] == "remote_hangup"
    greeting, reply = turns(final, "assistant")[:2]
    assert not greeting["interrupted"] and reply["intent"] == "hours"
    heard, rate = read_wav(phone.recordings()[0])
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


@pytest.mark.parametrize("number", [EXTENSION, RTP_EXTENSION])
async def test_a_transfer_rings_another_desk_phone_that_then_hears_the_caller(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path, number: str) -> None:
    """websocket mode: uuid_transfer over the event socket; rtp mode: a REFER, which
    FreeSWITCH carries out on the caller's leg."""
    staff = desk_phone(pbx, tmp_path / "1001", speech_wav(tmp_path / "quiet.wav", [], 30),
                       "1001", register=True)
    caller = desk_phone(pbx, tmp_path / "1000",
                        speech_wav(tmp_path / "in.wav", [(7.0, QUESTION)], tail_s=10))
    await staff.start()
    await caller.start()
    try:
        await until_registered(pbx, "1001")
        call = await live_call(pbx, atende, caller, number)
        answered = asyncio.get_running_loop().time()  # just after the phone answered
        r = await asyncio.to_thread(atende.api.post, f"/v1/calls/{call['id']}/transfer",
                                    json={"to": "1001", "timeout_s": 20}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "transferred" and r.json()["sip_status"] == 200
        await staff.wait_event("CALL_ESTABLISHED")
        final = await atende.wait_for_call(
            lambda c: c["id"] == call["id"] and c["status"] == "completed", timeout=10)
        # atende let go of the call; the phones talk through FreeSWITCH until the caller
        # has asked its question (7 s into its call, 2 s long) and hangs up.
        spoken = answered + 9.5 - asyncio.get_running_loop().time()
        await asyncio.sleep(max(0.0, spoken))
        assert not [e for e in staff.events if e.get("type") == "CALL_CLOSED"]
        await caller.command("hangup")
        await staff.wait_event("CALL_CLOSED")
    finally:
        await caller.stop()
        await staff.stop()
    assert final["hangup_cause"] == "transferred"
    heard, rate = read_wav(staff.recordings()[0])
    assert "opening" in transcribe(heard, rate)  # the caller, heard by the staff phone


async def test_keys_the_caller_presses_reach_the_call_record(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    phone = desk_phone(pbx, tmp_path, speech_wav(tmp_path / "quiet.wav", [], 20))
    await phone.start()
    try:
        call = await live_call(pbx, atende, phone)
        # As if the phone sent them: FreeSWITCH's own DTMF events on the channel.
        assert "+OK" in pbx.api(f"uuid_recv_dtmf {call['external_id']} 4#")
        got = await atende.wait_for_call(
            lambda c: c["id"] == call["id"]
            and len([e for e in c["events"] if e["kind"] == "dtmf"]) == 2)
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED")
    finally:
        await phone.stop()
    assert [e["data"]["digit"] for e in got["events"] if e["kind"] == "dtmf"] == ["4", "#"]


async def refused(pbx: FreeSwitch, atende: AtendeProcess, folder: Path, number: str
                  ) -> tuple[dict[str, object], Call]:
    """1000 dials ``number``, which atende refuses: how the phone was told, and the
    call's record."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    phone = desk_phone(pbx, folder, speech_wav(folder / "quiet.wav", [], 5))
    await phone.start()
    before = {c["id"] for c in atende.calls()}
    try:
        await phone.command("dial", f"sip:{number}@127.0.0.1:{pbx.sip_port}")
        closed = await phone.wait_event("CALL_CLOSED")
    finally:
        await phone.stop()
    call = await atende.wait_for_call(lambda c: c["id"] not in before, timeout=5)
    assert call["status"] == "rejected" and call["hangup_cause"] == "no_such_assistant"
    return closed, call


async def test_a_number_for_no_secretary_is_refused(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    closed, call = await refused(pbx, atende, tmp_path, NOBODY)
    assert call["to_user"] == NOBODY and call["assistant_id"] is None
    print("the phone was told:", closed.get("param"))


async def test_health_reports_the_event_socket_and_the_listeners(atende: AtendeProcess) -> None:
    health = atende.get("/health")
    assert health["status"] == "ok"
    fs = health["checks"]["freeswitch"]
    assert fs["event_socket"].endswith(": connected")
    assert fs["event_socket_server"] == f"listening on port {atende.esl_port}"
    assert fs["audio_stream_server"] == f"listening on port {atende.audio_stream_port}"


async def test_a_model_secretary_uses_the_key_from_the_dotenv(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    def model(req: Request) -> Answer:
        return reply("We open at nine.")

    with VendorServer(model) as llm:
        made = model_secretary(atende, pbx, "Model secretary", "8002", llm.url)
        assert made["llm"][0]["api_key_set"] is False  # none of its own
        wav = speech_wav(tmp_path / "in.wav", [(2.0, QUESTION)], tail_s=12)
        phone = desk_phone(pbx, tmp_path, wav)
        await phone.start()
        try:
            await phone.command("dial", f"sip:8002@127.0.0.1:{pbx.sip_port}")
            await phone.wait_event("CALL_ESTABLISHED")
            async with asyncio.timeout(30):
                while not llm.requests:
                    await asyncio.sleep(0.1)
            await phone.command("hangup")
        finally:
            await phone.stop()
    assert llm.requests[0].headers["authorization"] == f"Bearer {DOTENV_KEY}"
    assert DOTENV_KEY not in atende.log()


async def test_freeswitch_dying_mid_call_ends_the_call_and_atende_reconnects(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    phone = desk_phone(pbx, tmp_path, speech_wav(tmp_path / "quiet.wav", [], 30))
    await phone.start()
    try:
        call = await live_call(pbx, atende, phone)
        pbx.kill()
        ended = await atende.wait_for_call(
            lambda c: c["id"] == call["id"] and c["status"] == "completed", timeout=10)
        assert ended["hangup_cause"] == "esl_lost"
        health = await asyncio.to_thread(atende.api.get, "/health")
        assert health.status_code == 503
        assert "FreeSWITCH event socket" in health.json()["problems"][0]
        await asyncio.to_thread(pbx.start)
        async with asyncio.timeout(40):  # the backoff reaches 10 s by now at most
            while (await asyncio.to_thread(atende.api.get, "/health")).status_code != 200:
                await asyncio.sleep(0.5)
    finally:
        await phone.stop()
    assert "FreeSWITCH event socket 127.0.0.1:" in atende.log()


async def test_a_keyword_rule_transfers_without_a_model(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    """Seed 003's transfer rules: a phrase the caller says sends them to a destination,
    with the offline brain."""
    r = atende.api.post("/v1/assistants", json={
        "name": "Front desk", "extension": "front-desk", "voice": "espeak:en-us",
        "transfers": [{"name": "sales", "target": "1001", "description": "the sales team"}],
        "rules": {"greeting": "Front desk, how can I help?", "intents": [
            {"name": "sales", "phrases": ["sales", "buy"], "reply": "Putting you through.",
             "action": "transfer", "destination": "sales"}]}})
    assert r.status_code == 201, r.text
    pbx.load_dialplan(dialplan(atende, "Front desk", "8004"))
    staff = desk_phone(pbx, tmp_path / "1001", speech_wav(tmp_path / "quiet.wav", [], 20),
                       "1001", register=True)
    caller = desk_phone(pbx, tmp_path / "1000", speech_wav(
        tmp_path / "in.wav", [(3.0, "I would like to talk to sales.")], tail_s=15))
    await staff.start()
    await caller.start()
    before = {c["id"] for c in atende.calls()}
    try:
        await until_registered(pbx, "1001")
        await caller.command("dial", f"sip:8004@127.0.0.1:{pbx.sip_port}")
        await caller.wait_event("CALL_ESTABLISHED")
        await staff.wait_event("CALL_ESTABLISHED", timeout=30)
        call = await atende.wait_for_call(
            lambda c: c["id"] not in before and c["status"] == "completed")
        await caller.command("hangup")
    finally:
        await caller.stop()
        await staff.stop()
    assert call["hangup_cause"] == "transferred"
    assert [t["intent"] for t in call["turns"] if t["speaker"] == "assistant"][-1] == "sales"
    (transfer,) = [e["data"] for e in call["events"] if e["kind"] == "transfer"]
    assert transfer["to"] == "1001" and transfer["outcome"] == "transferred"


async def dial_and_wait_end(pbx: FreeSwitch, atende: AtendeProcess, folder: Path,
                            number: str, wav: Path) -> Call:
    """1000 dials ``number`` and stays until the secretary hangs up; the call's record."""
    phone = desk_phone(pbx, folder, wav)
    await phone.start()
    before = {c["id"] for c in atende.calls()}
    try:
        await phone.command("dial", f"sip:{number}@127.0.0.1:{pbx.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        await phone.wait_event("CALL_CLOSED", timeout=40)  # the secretary hung up
        return await atende.wait_for_call(
            lambda c: c["id"] not in before and c["status"] == "completed", timeout=10)
    finally:
        await phone.stop()


async def test_closed_hours_and_a_failing_model_on_freeswitch(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    closed = "We are closed right now. Goodbye."
    r = atende.api.post("/v1/assistants", json={
        "name": "Closed desk", "extension": "closed-desk", "voice": "espeak:en-us",
        "business_hours": {"timezone": "Europe/Lisbon", "weekly": {},  # never open
                           "closed": {"message": closed, "action": "hangup"}}})
    assert r.status_code == 201, r.text
    with VendorServer(lambda req: Status(500, '{"error": {"message": "boom"}}')) as llm:
        r = atende.api.post("/v1/assistants", json={
            "name": "Broken model", "extension": "broken-model", "voice": "espeak:en-us",
            "greeting": "Hello.",
            "llm": [{"provider": "openai", "model": "m", "base_url": llm.url}],
            "fallback": {"message": "Sorry, I cannot help right now. Goodbye.",
                         "action": "hangup"}})
        assert r.status_code == 201, r.text
        pbx.load_dialplan(dialplan(atende, "Closed desk", "8005")
                          + dialplan(atende, "Broken model", "8006"))
        quiet = speech_wav(tmp_path / "quiet.wav", [], 20)
        shut = await dial_and_wait_end(pbx, atende, tmp_path / "closed", "8005", quiet)
        asked = speech_wav(tmp_path / "asked.wav", [(2.0, QUESTION)], 20)
        broken = await dial_and_wait_end(pbx, atende, tmp_path / "broken", "8006", asked)
    assert turns(shut, "assistant")[0]["text"] == closed
    assert [e["data"] for e in shut["events"] if e["kind"] == "closed"] == [
        {"action": "hangup"}]
    assert shut["hangup_cause"] == "closed"
    assert turns(broken, "assistant")[-1]["text"] == "Sorry, I cannot help right now. Goodbye."
    assert [e["data"]["action"] for e in broken["events"] if e["kind"] == "fallback"] == [
        "hangup"]
    assert broken["hangup_cause"] == "assistant_hangup"


async def test_calls_placed_through_freeswitch_end_with_their_outcome_and_webhook(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    """A trunk of kind freeswitch: POST /v1/calls originates over the event socket, the
    answered call comes back over the socket and mod_audio_stream, and the task's outcome
    reaches the webhook; a phone that is not registered fails with FreeSWITCH's cause."""
    made = atende_cli(atende, "trunk", "add", "--kind", "freeswitch", "--name", "FreeSWITCH",
                      "--number", "8100", "--country", "US",
                      "--dial-string", "user/{number}@127.0.0.1")
    assert made.returncode == 0, made.stderr
    assert "8100 via user/{number}@127.0.0.1" in made.stdout
    trunk = atende.get(f"/v1/trunks/{made.stdout.split()[0]}")
    assert trunk["registration"] is None and trunk["sip_address"] is None
    ana = desk_phone(pbx, tmp_path / "1001", speech_wav(
        tmp_path / "ana.wav", [(11.0, "Yes, I confirm.")], tail_s=25), "1001", register=True)
    await ana.start()
    try:
        await until_registered(pbx, "1001")
        with webhook_receiver() as hook:
            placed = place(atende, phone_number="1001", task=TASK, caller_name="Ana",
                           webhook_url=hook.url, trunk_id=trunk["id"])
            missing = place(atende, phone_number="1002", task=TASK, webhook_url=hook.url,
                            trunk_id=trunk["id"])
            got = {r.json["call_id"]: r.json for r in await hook.wait_for(2, timeout=90)}
    finally:
        await ana.stop()
    confirmed, failed = got[placed["id"]], got[missing["id"]]
    assert confirmed["outcome"] == "confirmed", confirmed["transcript"]
    assert confirmed["transcript"][0]["text"].startswith("Hello Ana.")
    call = atende.call(placed["id"])
    assert call["channel"] == "freeswitch" and call["direction"] == "outbound"
    assert call["to_uri"] == "user/1001@127.0.0.1" and call["from_user"] == "8100"
    assert call["external_id"] and call["hangup_cause"] == "assistant_hangup"
    assert failed["outcome"] == "failed" and failed["status"] == "failed"
    assert failed["sip_status"] == 404 and "USER_NOT_REGISTERED" in failed["hangup_cause"]


async def test_a_call_back_promised_on_a_freeswitch_call_goes_out_through_freeswitch(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    fs_trunks = [t for t in atende.get("/v1/trunks") if t["kind"] == "freeswitch"]
    if not fs_trunks:
        r = atende.api.post("/v1/trunks", json={
            "name": "FreeSWITCH", "kind": "freeswitch", "number": "8100", "country": "US",
            "dial_string": "user/{number}@127.0.0.1"})
        assert r.status_code == 201, r.text
        fs_trunks = [r.json()]

    def model(req: Request) -> Answer:
        if req.json["messages"][-1]["role"] == "tool":
            return reply("")
        return reply("Of course, we will call you tomorrow. Goodbye!",
                     ("schedule_callback", {"in_minutes": 1440, "reason": "Call back."}),
                     ("end_call", {}))

    with VendorServer(model) as llm:
        r = atende.api.post("/v1/assistants", json={
            "name": "Callback secretary", "extension": "callback-secretary",
            "voice": "espeak:en-us", "greeting": "Hi.",
            "tools": ["end_call", "schedule_callback"],
            "llm": [{"provider": "openai", "model": "m", "base_url": llm.url}]})
        assert r.status_code == 201, r.text
        pbx.load_dialplan(dialplan(atende, "Callback secretary", "8007"))
        wav = speech_wav(tmp_path / "in.wav", [(2.0, "Please call me back tomorrow.")], 20)
        call = await dial_and_wait_end(pbx, atende, tmp_path / "phone", "8007", wav)
    (scheduled,) = [e["data"] for e in call["events"] if e["kind"] == "callback_scheduled"]
    later = atende.call(scheduled["call_id"])
    assert (later["phone_number"], later["trunk_id"]) == ("1000", fs_trunks[0]["id"])
    assert later["status"] == "queued" and later["channel"] == "freeswitch"
    r = atende.api.post(f"/v1/calls/{later['id']}/cancel")
    assert r.status_code == 202, r.text


async def test_hold_plays_music_on_freeswitch_until_it_times_out(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    def model(req: Request) -> Answer:
        if req.json["messages"][-1]["role"] == "tool":
            return reply("")
        return reply("Please hold.", ("hold", {"max_seconds": 6, "reason": "checking"}))

    with VendorServer(model) as llm:
        model_secretary(atende, pbx, "Hold secretary", "8008", llm.url,
                        tools=["hold", "resume"])
        phone = desk_phone(pbx, tmp_path, speech_wav(
            tmp_path / "in.wav", [(1.5, "Can you check that for me?")], 25))
        await phone.start()
        before = {c["id"] for c in atende.calls()}
        try:
            await phone.command("dial", f"sip:8008@127.0.0.1:{pbx.sip_port}")
            await phone.wait_event("CALL_ESTABLISHED")
            held = await atende.wait_for_call(lambda c: c["id"] not in before and any(
                e["kind"] == "assistant_resume" for e in c["events"]), timeout=40)
            await phone.command("hangup")
            await phone.wait_event("CALL_CLOSED")
        finally:
            await phone.stop()
    (hold,) = [e for e in held["events"] if e["kind"] == "assistant_hold"]
    (resume,) = [e for e in held["events"] if e["kind"] == "assistant_resume"]
    assert resume["data"]["by"] == "timeout" and 5500 <= resume["data"]["held_ms"] <= 8000
    # The phone heard music, without a gap, for the whole hold.
    heard, rate = read_wav(phone.recordings()[0])
    longest = max(end - start for start, end in voiced_spans(heard, rate, min_gap_ms=300))
    assert longest > 5.0, voiced_spans(heard, rate, min_gap_ms=300)
    assert hold["data"]["max_seconds"] == 6


async def test_two_domains_with_secretaries_on_one_extension_keep_to_their_own(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    """Two FusionPBX domains each have a secretary on 8000. A call of domain A reaches A's
    (over mod_audio_stream and in AUDIO_MODE=rtp); a dialplan of domain A that names B's
    secretary is refused; A's API key sees A's secretary and calls only."""
    domains = {"A": str(uuid.uuid4()), "B": str(uuid.uuid4())}
    made = {}
    for name, domain in domains.items():
        r = atende.api.post("/v1/assistants", json={
            "name": f"Clinic {name}", "extension": "8000", "domain_uuid": domain,
            "voice": "espeak:en-us", "greeting": f"Clinic {name}."})
        assert r.status_code == 201, r.text
        made[name] = r.json()
    a_id, b_id = made["A"]["id"], made["B"]["id"]

    def of_domain_a(text: str) -> str:  # FusionPBX fills in ${domain_uuid} per domain
        return text.replace("${domain_uuid}", domains["A"])

    pbx.load_dialplan(of_domain_a(
        dialplan(atende, "Clinic A", "8020") + dialplan(atende, "Clinic B", "8021")
        + dialplan(atende, "Clinic A", "8022", "--mode", "rtp")
        + dialplan(atende, "Clinic B", "8023", "--mode", "rtp")))
    quiet = speech_wav(tmp_path / "quiet.wav", [], 8)
    for number, channel in (("8020", "freeswitch"), ("8022", "sip")):
        phone = desk_phone(pbx, tmp_path / number, quiet)
        await phone.start()
        try:
            call = await live_call(pbx, atende, phone, number)
            await phone.command("hangup")
            await phone.wait_event("CALL_CLOSED")
        finally:
            await phone.stop()
        assert call["assistant_id"] == a_id and call["channel"] == channel
    for number in ("8021", "8023"):
        closed, call = await refused(pbx, atende, tmp_path / number, number)
        assert not call["assistant_id"], number
        if number == "8023":  # rtp mode: refused before anything answered the phone
            assert "404" in str(closed.get("param")), closed  # UNALLOCATED_NUMBER
    assert f"names secretary {b_id} of domain {domains['B']}: refused" in atende.log()

    made_key = subprocess.run(
        [sys.executable, "-m", "atende", "apikey", "create", "--name", "clinic-a",
         "--domain", domains["A"].upper()],
        env=atende.env, cwd=atende.workdir, capture_output=True, text=True, timeout=60)
    assert made_key.returncode == 0, made_key.stderr
    assert f"limited to domain {domains['A']}" in made_key.stderr
    key_a = {"Authorization": f"Bearer {made_key.stdout.strip()}"}
    seen = atende.api.get("/v1/assistants", headers=key_a).json()
    assert [a["id"] for a in seen] == [a_id]
    calls = atende.api.get("/v1/calls", headers=key_a).json()["items"]
    assert len(calls) == 2 and {c["assistant_id"] for c in calls} == {a_id}
    assert atende.api.get("/v1/trunks", headers=key_a).status_code == 403


async def test_the_assistant_resumes_a_hold_when_its_lookup_is_done(
        pbx: FreeSwitch, atende: AtendeProcess, tmp_path: Path) -> None:
    """Hold and resume: the model holds the caller, takes a while (a lookup), calls resume
    and answers; the caller hears music, then the answer."""
    done = "Thanks for waiting, you are booked for Monday."

    def model(req: Request) -> Answer:
        last = req.json["messages"][-1]
        if last["role"] == "user":
            return reply("Please hold.", ("hold", {"max_seconds": 30, "reason": "booking"}))
        if last.get("tool_call_id") == "call_hold":
            return reply("", ("resume", {}), gap_s=1.5)  # the lookup takes a while
        return reply(done)

    with VendorServer(model) as llm:
        model_secretary(atende, pbx, "Resume secretary", "8007", llm.url,
                        tools=["hold", "resume"])
        phone = desk_phone(pbx, tmp_path, speech_wav(
            tmp_path / "in.wav", [(1.5, "Can you book me for Monday?")], 20))
        await phone.start()
        try:
            call = await live_call(pbx, atende, phone, "8007")
            resumed = await atende.wait_for_call(lambda c: c["id"] == call["id"] and any(
                done in t["text"] and t["played_ms"] for t in c["turns"]), timeout=40)
            await phone.command("hangup")
            await phone.wait_event("CALL_CLOSED")
        finally:
            await phone.stop()
    (hold,) = [e for e in resumed["events"] if e["kind"] == "assistant_hold"]
    (resume,) = [e for e in resumed["events"] if e["kind"] == "assistant_resume"]
    assert resume["data"]["by"] == "resume" and 2000 <= resume["data"]["held_ms"] < 15000
    assert hold["data"]["reason"] == "booking"
    # The phone heard the music, then the answer (Whisper on what reached the phone).
    heard, rate = read_wav(phone.recordings()[0])
    spans = voiced_spans(heard, rate, min_gap_ms=300)
    assert max(end - start for start, end in spans) > 1.8, spans
    said = transcribe(heard[-5 * rate:], rate)  # the answer, which ends the recording
    assert "waiting" in said, said
