"""Outbound calls through a trunk, with kamailio as the PBX and baresip staff phones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_trunks import registration
from tests.peers.atende import AtendeProcess, Call
from tests.peers.audio import read_wav, speech_wav, voiced_spans
from tests.peers.baresip import Baresip
from tests.peers.kamailio import NAMED_EXTENSIONS, Kamailio

AI_PASS = "Corr3ct-Horse-Battery"
USERS = {"ai": AI_PASS, "alice": "Alice-Phone-Pass-1", "bob": "Bob-Phone-Pass-22",
         "carol": "Carol-Phone-Pass-3"}


@pytest.fixture
async def pbx(tmp_path: Path) -> AsyncIterator[Kamailio]:
    k = Kamailio(tmp_path / "pbx", USERS)
    await k.start()
    yield k
    await k.stop()


@pytest.fixture
async def trunk(atende: AtendeProcess, pbx: Kamailio) -> AsyncIterator[dict[str, Any]]:
    r = atende.api.post("/v1/trunks", json={
        "kind": "extension", "name": "PBX out", "number": "ai", "username": "ai",
        "extension_pattern": NAMED_EXTENSIONS,
        "password": AI_PASS, "host": "127.0.0.1", "port": pbx.port, "country": "US"})
    assert r.status_code == 201, r.text
    t = r.json()
    await registration(atende, t["id"], "registered")
    yield t
    atende.api.delete(f"/v1/trunks/{t['id']}")


async def phone(tmp_path: Path, pbx: Kamailio, user: str, wav: Path, auto: bool = True,
                codecs: str = "PCMU,PCMA") -> Baresip:
    b = Baresip(tmp_path / user, wav,
                account=f'<sip:{user}@example.test>;auth_pass={USERS[user]};'
                        f'outbound="sip:127.0.0.1:{pbx.port}";regint=600'
                        + ("" if auto else ";answermode=manual"), codecs=codecs)
    await b.start()
    async with asyncio.timeout(10):
        while not pbx.contacts(user):
            await asyncio.sleep(0.1)
    return b


def place(a: AtendeProcess, **body: Any) -> httpx.Response:
    return a.api.post("/v1/calls", json=body, timeout=10)


async def finished(a: AtendeProcess, call_id: str) -> Call:
    return await a.wait_for_call(
        lambda c: c["id"] == call_id and c["status"] not in ("queued", "dialing",
                                                             "in_progress"),
        timeout=60)


async def test_assistant_calls_a_staff_phone(atende: AtendeProcess, pbx: Kamailio,
                                             trunk: dict[str, Any], tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "alice.wav", [(5.5, "That's all, goodbye.")], tail_s=20)
    alice = await phone(tmp_path, pbx, "alice", wav)
    try:
        r = place(atende, to="alice", trunk_id=trunk["id"])
        assert r.status_code == 201, r.text
        call = r.json()
        assert call["direction"] == "outbound" and call["status"] == "dialing"
        assert call["to_uri"] == f"sip:alice@127.0.0.1:{pbx.port}"
        await alice.wait_event("CALL_CLOSED", timeout=60)  # the assistant said goodbye
        done = await finished(atende, call["id"])
    finally:
        await alice.stop()
    assert done["status"] == "completed" and done["sip_status"] == 200
    assert done["hangup_cause"] == "assistant_hangup" and done["answer_at"]
    assert done["trunk_id"] == trunk["id"]
    assert [t["intent"] for t in done["turns"] if t["speaker"] == "assistant"][-1] == "goodbye"
    # The PBX challenged our INVITE (407) and we answered with the trunk's credentials.
    assert pbx.requests("INVITE") >= 2
    heard, rate = read_wav(alice.recordings()[0])
    assert voiced_spans(heard, rate)  # alice heard the assistant


async def test_unreachable_extension_is_no_answer(atende: AtendeProcess, pbx: Kamailio,
                                                  trunk: dict[str, Any]) -> None:
    call = place(atende, to="bob", trunk_id=trunk["id"]).json()  # bob is not registered
    done = await finished(atende, call["id"])
    assert (done["status"], done["sip_status"]) == ("no_answer", 480)
    assert "480" in done["hangup_cause"]
    call = place(atende, to="nobody", trunk_id=trunk["id"]).json()
    done = await finished(atende, call["id"])
    assert (done["status"], done["sip_status"]) == ("rejected", 404)


async def test_ring_timeout_cancels(atende: AtendeProcess, pbx: Kamailio,
                                    trunk: dict[str, Any], tmp_path: Path) -> None:
    carol = await phone(tmp_path, pbx, "carol", speech_wav(tmp_path / "c.wav", [], 5),
                        auto=False)
    try:
        call = place(atende, to="carol", trunk_id=trunk["id"], ring_timeout_s=3).json()
        await carol.wait_event("CALL_INCOMING", timeout=10)
        done = await finished(atende, call["id"])
        await carol.wait_event("CALL_CLOSED", timeout=10)  # our CANCEL reached her
    finally:
        await carol.stop()
    assert done["status"] == "no_answer" and done["sip_status"] == 487
    assert done["hangup_cause"] == "no answer within 3 s" and done["answer_at"] is None
    assert pbx.requests("CANCEL") >= 1


def test_toll_fraud_guard_and_validation(atende: AtendeProcess) -> None:
    r = atende.api.post("/v1/trunks", json={
        "kind": "did", "name": "US carrier", "number": "+1 202 555 0111",
        "username": "acme", "password": "Carrier-Pass-2024", "host": "127.0.0.1",
        "country": "US", "allowed_ips": ["127.0.0.1/32"]})
    t = r.json()
    try:
        r = place(atende, to="+351 912 345 678", trunk_id=t["id"])
        assert r.status_code == 422 and "PT are not allowed" in r.json()["detail"]
        r = place(atende, to="not a number", trunk_id=t["id"])
        assert r.status_code == 422 and r.json()["detail"].startswith("to:")
        r = place(atende, to="+12025550123", trunk_id="nope")
        assert r.status_code == 422 and "trunk_id" in r.json()["detail"]
        r = place(atende, to="+12025550123", trunk_id=t["id"], ring_timeout_s=1)
        assert r.status_code == 422
    finally:
        atende.api.delete(f"/v1/trunks/{t['id']}")


async def test_trunk_test_endpoint(atende: AtendeProcess, pbx: Kamailio,
                                   trunk: dict[str, Any], tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "t.wav", [(0.5, "Hello?")], tail_s=15)
    alice = await phone(tmp_path, pbx, "alice", wav)
    try:
        r = atende.api.post(f"/v1/trunks/{trunk['id']}/test", json={"to": "alice"},
                       timeout=60)
        await alice.wait_event("CALL_CLOSED", timeout=20)
    finally:
        await alice.stop()
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] is True
    reg, call = report["steps"]
    assert reg["check"] == "registration" and reg["ok"] and reg["sip_status"] == 200
    assert call["ok"] and call["media_received"] and call["sip_status"] == 200
    heard, rate = read_wav(alice.recordings()[0])
    assert voiced_spans(heard, rate)  # the test message was heard

    # A destination that is not reachable: the report says so, with the SIP evidence.
    r = atende.api.post(f"/v1/trunks/{trunk['id']}/test", json={"to": "bob"},
                   timeout=60).json()
    assert r["ok"] is False
    step = r["steps"][1]
    assert step["sip_status"] == 480 and "nobody answered" in step["detail"]
    assert "480" in step["detail"]


async def test_trunk_test_reports_a_bad_password(atende: AtendeProcess, pbx: Kamailio
                                                 ) -> None:
    r = atende.api.post("/v1/trunks", json={
        "kind": "extension", "name": "Typo", "number": "ai", "username": "ai",
        "extension_pattern": NAMED_EXTENSIONS,
        "password": "Wrong-Password-123", "host": "127.0.0.1", "port": pbx.port,
        "country": "US"})
    t = r.json()
    try:
        await registration(atende, t["id"], "failed")
        report = atende.api.post(f"/v1/trunks/{t['id']}/test", json={},
                            timeout=30).json()
        assert report["ok"] is False
        (reg,) = report["steps"]
        assert reg["sip_status"] == 401 and "wrong username or password" in reg["detail"]
    finally:
        atende.api.delete(f"/v1/trunks/{t['id']}")
