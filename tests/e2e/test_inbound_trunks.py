"""Calls arriving through trunks: a PBX extension (kamailio + baresip staff phones) and DID
trunks authenticated by IP allowlist or digest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from atende.sip.auth import Challenge, DigestClient, pick_challenge
from tests.e2e.test_baresip_call import QUESTION, replied_with
from tests.e2e.test_trunks import registration
from tests.peers.atende import AtendeProcess
from tests.peers.audio import read_wav, speech_wav, voiced_spans
from tests.peers.baresip import Baresip
from tests.peers.kamailio import NAMED_EXTENSIONS, Kamailio
from tests.peers.sipclient import SipClient, sdp_offer

AI_PASS = "Corr3ct-Horse-Battery"
ALICE_PASS = "Alice-Phone-Pass-1"
DID_PASS = "Carrier-Trunk-Pass-7"


@pytest.fixture
async def pbx(tmp_path: Path) -> AsyncIterator[Kamailio]:
    k = Kamailio(tmp_path / "pbx", {"ai": AI_PASS, "alice": ALICE_PASS})
    await k.start()
    yield k
    await k.stop()


def create(a: AtendeProcess, body: dict[str, Any]) -> dict[str, Any]:
    r = a.api.post("/v1/trunks", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_staff_phone_calls_the_assistant_through_the_pbx(
        atende: AtendeProcess, pbx: Kamailio, tmp_path: Path) -> None:
    trunk = create(atende, {"kind": "extension", "name": "PBX", "number": "ai",
                            "extension_pattern": NAMED_EXTENSIONS,
                            "username": "ai", "password": AI_PASS, "host": "127.0.0.1",
                            "port": pbx.port, "country": "US"})
    try:
        await registration(atende, trunk["id"], "registered")
        wav = speech_wav(tmp_path / "in.wav", [(6.0, QUESTION)], tail_s=15)
        alice = Baresip(tmp_path / "alice", wav,
                        account=f'<sip:alice@example.test>;auth_pass={ALICE_PASS};'
                                f'outbound="sip:127.0.0.1:{pbx.port}";regint=600')
        await alice.start()
        try:
            # Ask the registrar (baresip may register before our control socket connects).
            async with asyncio.timeout(10):
                while not pbx.contacts("alice"):
                    await asyncio.sleep(0.1)
            await alice.command("dial", "sip:ai@example.test")
            await alice.wait_event("CALL_ESTABLISHED")
            call = await atende.wait_for_call(replied_with("hours", "alice", trunk["id"]),
                                              timeout=40)
            await alice.command("hangup")
            await alice.wait_event("CALL_CLOSED")
        finally:
            await alice.stop()
        assert call["trunk_id"] == trunk["id"]
        assert any("opening" in t["text"].lower() for t in call["turns"]
                   if t["speaker"] == "caller")  # atende heard alice
        heard, rate = read_wav(alice.recordings()[0])
        assert voiced_spans(heard, rate)  # and alice heard the assistant
    finally:
        atende.api.delete(f"/v1/trunks/{trunk['id']}")


async def test_invite_to_an_extension_from_elsewhere_is_refused(
        atende: AtendeProcess, pbx: Kamailio) -> None:
    trunk = create(atende, {"kind": "extension", "name": "PBX2", "number": "ai",
                            "extension_pattern": NAMED_EXTENSIONS,
                            "username": "ai", "password": AI_PASS, "host": "127.0.0.1",
                            "port": pbx.port, "country": "US"})
    contact_user = trunk["sip_address"].split(":")[1].split("@")[0]
    c = await SipClient.open(("127.0.0.1", atende.sip_port), host="127.0.0.5")
    try:
        c.send(c.request("INVITE", c.new_dialog(), body=sdp_offer("127.0.0.5", 4000),
                         ruri=f"sip:{contact_user}@127.0.0.1:{atende.sip_port}"))
        assert (await c.final()).status == 403
    finally:
        c.close()
        atende.api.delete(f"/v1/trunks/{trunk['id']}")


async def test_did_call_relayed_by_the_carrier_from_an_allowed_ip(
        atende: AtendeProcess, pbx: Kamailio, tmp_path: Path) -> None:
    trunk = create(atende, {"kind": "did", "name": "Carrier", "number": "+1 202 555 0188",
                            "username": "acme", "password": DID_PASS, "host": "127.0.0.1",
                            "country": "US", "allowed_ips": ["127.0.0.1/32"]})
    try:
        wav = speech_wav(tmp_path / "in.wav", [(6.0, QUESTION)], tail_s=15)
        caller = Baresip(tmp_path / "caller", wav,
                         account=f'<sip:customer@127.0.0.1>;outbound="sip:127.0.0.1:'
                                 f'{pbx.port}";regint=0')
        await caller.start()
        try:
            # The carrier (kamailio) relays the call for the DID number to atende.
            await caller.command("dial", f"sip:+12025550188@127.0.0.1:{atende.sip_port}")
            await caller.wait_event("CALL_ESTABLISHED")
            call = await atende.wait_for_call(replied_with("hours", "customer", trunk["id"]),
                                              timeout=40)
            await caller.command("hangup")
            await caller.wait_event("CALL_CLOSED")
        finally:
            await caller.stop()
        assert call["trunk_id"] == trunk["id"]
        assert pbx.requests("INVITE") >= 1  # it really went through the carrier

        # The same number from an address outside the allowlist: 403, not a direct call.
        c = await SipClient.open(("127.0.0.1", atende.sip_port), host="127.0.0.9")
        try:
            c.send(c.request("INVITE", c.new_dialog(), body=sdp_offer("127.0.0.9", 4000),
                             ruri=f"sip:12025550188@127.0.0.1:{atende.sip_port}"))
            r = await c.final()
            assert r.status == 403 and "allowed" in r.reason
        finally:
            c.close()
    finally:
        atende.api.delete(f"/v1/trunks/{trunk['id']}")


async def test_did_with_digest_accepts_the_right_credentials_only(
        atende: AtendeProcess) -> None:
    trunk = create(atende, {"kind": "did", "name": "Digest carrier",
                            "number": "+351 912 345 699", "username": "carrier",
                            "password": DID_PASS, "host": "127.0.0.1", "country": "PT",
                            "inbound_auth": "digest"})
    c = await SipClient.open(("127.0.0.1", atende.sip_port), user="carrier")
    ruri = f"sip:+351912345699@127.0.0.1:{atende.sip_port}"
    try:
        async def attempt(password: str) -> int:
            d = c.new_dialog()
            body = sdp_offer("127.0.0.1", 4000)
            c.send(c.request("INVITE", d, body=body, ruri=ruri))
            challenge_resp = await c.final()
            assert challenge_resp.status == 401
            c.send(c.request("ACK", d, new_branch=False))
            challenge = pick_challenge(challenge_resp.headers.get_all("WWW-Authenticate"))
            assert isinstance(challenge, Challenge) and challenge.algorithm == "SHA-256"
            auth = DigestClient("carrier", password).authorize(challenge, "INVITE", ruri)
            d.cseq += 1
            c.send(c.request("INVITE", d, body=body, ruri=ruri,
                             extra=f"Authorization: {auth}\r\n"))
            final = await c.final()
            if final.status == 200:
                d.to_tag = final.to.tag or ""
                c.send(c.request("ACK", d))
                d.cseq += 1
                c.send(c.request("BYE", d))
                assert (await c.final()).status == 200
            else:
                c.send(c.request("ACK", d, new_branch=False))
            return final.status

        assert await attempt("Not-The-Password-1") == 401
        assert await attempt(DID_PASS) == 200
        call = await atende.wait_for_call(
            lambda x: x["trunk_id"] == trunk["id"] and x["status"] == "completed")
        assert call["to_user"] == "+351912345699"
    finally:
        c.close()
        atende.api.delete(f"/v1/trunks/{trunk['id']}")
        await asyncio.sleep(0)
