"""Hold and blind transfer with real phones: baresip staff phones behind kamailio, an
assistant calling out through an extension trunk."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_outbound import (  # noqa: F401  (pbx and trunk are fixtures)
    finished,
    pbx,
    phone,
    place,
    trunk,
)
from tests.peers.atende import AtendeProcess, Call
from tests.peers.audio import speech_wav
from tests.peers.kamailio import Kamailio


async def live_call(a: AtendeProcess, trunk_id: str, to: str) -> str:
    r = place(a, to=to, trunk_id=trunk_id)
    assert r.status_code == 201, r.text
    call_id = str(r.json()["id"])
    await a.wait_for_call(lambda c: c["id"] == call_id and c["status"] == "in_progress")
    return call_id


async def transfer(a: AtendeProcess, call_id: str, to: str) -> httpx.Response:
    return await asyncio.to_thread(a.api.post, f"/v1/calls/{call_id}/transfer",
                                   json={"to": to, "timeout_s": 40}, timeout=60)


def events(call: Call, kind: str) -> list[dict[str, Any]]:
    return [e for e in call["events"] if e["kind"] == kind]


async def test_blind_transfer_to_another_phone(atende: AtendeProcess, pbx: Kamailio,  # noqa: F811
                                               trunk: dict[str, Any], tmp_path: Path  # noqa: F811
                                               ) -> None:
    alice = await phone(tmp_path, pbx, "alice", speech_wav(tmp_path / "a.wav", [], 30))
    bob = await phone(tmp_path, pbx, "bob", speech_wav(tmp_path / "b.wav", [], 30))
    try:
        call_id = await live_call(atende, trunk["id"], "alice")
        r = await transfer(atende, call_id, "bob")
        assert r.status_code == 200, r.text
        result = r.json()
        # alice's phone called bob (through the PBX) and bob answered.
        await bob.wait_event("CALL_ESTABLISHED", timeout=10)
        done = await finished(atende, call_id)
    finally:
        await alice.stop()
        await bob.stop()
    assert result["outcome"] == "transferred", result
    assert result["sip_status"] == 200 and result["progress"][-1] == 200
    assert done["status"] == "completed" and done["hangup_cause"] == "transferred"
    (started,) = events(done, "transfer_started")
    assert started["data"]["to"] == f"sip:bob@127.0.0.1:{pbx.port}"
    (ev,) = events(done, "transfer")
    assert ev["data"]["outcome"] == "transferred" and ev["data"]["status"] == 200
    assert pbx.requests("REFER") == 1


async def test_failed_transfer_keeps_the_assistant_on_the_call(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    alice = await phone(tmp_path, pbx, "alice", speech_wav(tmp_path / "a.wav", [], 30))
    try:
        call_id = await live_call(atende, trunk["id"], "alice")
        r = await transfer(atende, call_id, "carol")  # carol's phone is not registered
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["outcome"] == "failed" and result["sip_status"] == 480, result
        assert atende.call(call_id)["status"] == "in_progress"  # still talking to alice
        # Numbers outside the trunk's allowed countries are refused before any REFER.
        r = await transfer(atende, call_id, "+44 20 7946 0958")
        assert r.status_code == 422 and "GB are not allowed" in r.json()["detail"]
        await alice.command("hangup")
        done = await finished(atende, call_id)
    finally:
        await alice.stop()
    assert done["hangup_cause"] == "remote_hangup"
    (ev,) = events(done, "transfer")
    assert ev["data"]["outcome"] == "failed" and ev["data"]["status"] == 480
    r = await transfer(atende, call_id, "bob")
    assert r.status_code == 404 and "no call in progress" in r.json()["detail"]


async def test_hold_and_resume_from_the_phone(atende: AtendeProcess, pbx: Kamailio,  # noqa: F811
                                              trunk: dict[str, Any], tmp_path: Path  # noqa: F811
                                              ) -> None:
    """alice puts the assistant on hold during its greeting (it must stop talking), resumes,
    and says goodbye (it must be listening again, and hang up)."""
    goodbye_at = 7.0
    wav = speech_wav(tmp_path / "a.wav", [(goodbye_at, "That's all, goodbye.")], tail_s=15)
    alice = await phone(tmp_path, pbx, "alice", wav)
    try:
        r = place(atende, to="alice", trunk_id=trunk["id"])
        call_id = r.json()["id"]
        await alice.wait_event("CALL_ESTABLISHED", timeout=15)
        established = time.time()  # alice's microphone (the WAV) starts about now
        await alice.command("hold")
        held = await atende.wait_for_call(
            lambda c: c["id"] == call_id and bool(events(c, "hold")), timeout=10)
        await asyncio.sleep(max(0.0, established + 3.0 - time.time()))
        await alice.command("resume")
        await alice.wait_event("CALL_CLOSED", timeout=30)  # the assistant said goodbye
        done = await finished(atende, call_id)
    finally:
        await alice.stop()
    assert held["status"] == "in_progress"
    assert done["hangup_cause"] == "assistant_hangup"
    (hold,) = events(done, "hold")
    (resume,) = events(done, "resume")
    assert datetime.fromisoformat(hold["at"]) < datetime.fromisoformat(resume["at"])
    held_at, resumed_at = (datetime.fromisoformat(e["at"]) for e in (hold, resume))
    spoken = [t for t in done["turns"] if t["speaker"] == "assistant"]
    # Nothing was said on hold: no turn of the assistant's went on past the hold, or
    # started before the resume.
    for t in spoken:
        started, ended = (datetime.fromisoformat(t[k]) for k in ("started_at", "ended_at"))
        assert ended <= held_at + timedelta(seconds=0.3) or started >= resumed_at, t
    greeting = done["turns"][0]
    if greeting["speaker"] == "assistant" and datetime.fromisoformat(
            greeting["started_at"]) < held_at:
        # Its greeting had begun (it has not when its voice is slower than the phone's
        # hold): it was cut at the hold.
        assert greeting["interrupted"] is True
        stopped = datetime.fromisoformat(greeting["ended_at"]) - held_at
        assert abs(stopped.total_seconds()) < 0.3
    said = [t["text"].lower() for t in done["turns"] if t["speaker"] == "caller"]
    assert any("goodbye" in s for s in said), said


async def test_the_phone_transfers_the_assistant_by_policy(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    """alice calls the assistant and transfers it to bob: refused while the trunk does not
    accept transfers, carried out (atende calls bob) once it does."""
    alice = await phone(tmp_path, pbx, "alice", speech_wav(tmp_path / "a.wav", [], 40))
    bob = await phone(tmp_path, pbx, "bob", speech_wav(
        tmp_path / "b.wav", [(6.0, "That's all, goodbye.")], 20))

    async def call_and_transfer() -> Call:
        await alice.command("dial", "sip:ai@example.test")
        call = await atende.wait_for_call(
            lambda c: c["from_user"] == "alice" and c["status"] == "in_progress")
        await alice.command("transfer", "sip:bob@example.test")
        return call

    try:
        first = await call_and_transfer()
        refused = await atende.wait_for_call(
            lambda c: c["id"] == first["id"] and bool(events(c, "transfer_refused")))
        (ev,) = events(refused, "transfer_refused")
        assert "does not accept transfers" in ev["data"]["reason"]
        assert ev["data"]["to"] == "bob"
        # baresip hangs up when its transfer fails; the assistant did not leave by itself.
        assert (await finished(atende, first["id"]))["hangup_cause"] == "remote_hangup"
        assert "transfer failed: 403" in alice.log()

        r = atende.api.patch(f"/v1/trunks/{trunk['id']}",
                        json={"accept_transfers": True}, timeout=10)
        assert r.status_code == 200 and r.json()["accept_transfers"] is True
        second = await call_and_transfer()
        await bob.wait_event("CALL_ESTABLISHED", timeout=20)
        done = await finished(atende, second["id"])
        # bob talks to the assistant on a new call, and says goodbye.
        await bob.wait_event("CALL_CLOSED", timeout=30)
    finally:
        await alice.stop()
        await bob.stop()
    assert done["hangup_cause"] == "transferred", done
    (taken,) = events(done, "transferred_by_peer")
    new = await finished(atende, taken["data"]["call_id"])
    assert new["direction"] == "outbound" and new["to_user"] == "bob"
    assert new["trunk_id"] == trunk["id"] and new["hangup_cause"] == "assistant_hangup"
    assert pbx.requests("REFER") == 2 and pbx.requests("NOTIFY") >= 2
