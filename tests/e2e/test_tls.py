"""An extension trunk over TLS: kamailio (with Debian's TLS module) as the PBX."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from atende.channels.sip.tls import ensure_self_signed
from tests.e2e.test_baresip_call import QUESTION, replied_with
from tests.e2e.test_outbound import USERS, finished, phone, place
from tests.e2e.test_trunks import registration
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.kamailio import NAMED_EXTENSIONS, Kamailio


@pytest.fixture
async def tls_pbx(tmp_path: Path) -> AsyncIterator[Kamailio]:
    cert = ensure_self_signed(tmp_path / "pki", ["127.0.0.1"])
    k = Kamailio(tmp_path / "pbx", USERS, tls_cert=cert)
    await k.start()
    yield k
    await k.stop()


async def test_extension_trunk_over_tls(atende: AtendeProcess, tls_pbx: Kamailio,
                                        tmp_path: Path) -> None:
    r = atende.api.post("/v1/trunks", json={
        "kind": "extension", "name": "TLS PBX", "number": "ai", "username": "ai",
        "extension_pattern": NAMED_EXTENSIONS,
        "password": USERS["ai"], "host": "127.0.0.1", "port": tls_pbx.tls_port,
        "transport": "tls", "country": "US"}, timeout=10)
    assert r.status_code == 201, r.text
    trunk = r.json()
    assert trunk["tls_verify"] is True
    try:
        # The PBX's certificate is self-signed: by default that is refused, and said.
        reg = await registration(atende, trunk["id"], "failed")
        assert "TLS certificate not trusted" in reg["reason"], reg
        assert tls_pbx.contacts("ai") == []

        r = atende.api.patch(f"/v1/trunks/{trunk['id']}",
                        json={"tls_verify": False}, timeout=10)
        assert r.status_code == 200
        await registration(atende, trunk["id"], "registered")
        (contact,) = tls_pbx.contacts("ai")
        assert contact.endswith(f":{atende.tls_port};transport=tls"), contact
        assert "REQ REGISTER from sip:ai@127.0.0.1 to sip:127.0.0.1 src tls:" in tls_pbx.log()

        # alice (a UDP phone) calls the assistant: the PBX relays the call over TLS.
        wav = speech_wav(tmp_path / "q.wav", [(6.0, QUESTION)], tail_s=15)
        alice = await phone(tmp_path, tls_pbx, "alice", wav)
        try:
            await alice.command("dial", "sip:ai@example.test")
            await atende.wait_for_call(replied_with("hours", "alice", trunk["id"]),
                                       timeout=40)
            await alice.command("hangup")
            await alice.wait_event("CALL_CLOSED")
            # And the assistant calls alice through the PBX over TLS.
            r = place(atende, to="alice", trunk_id=trunk["id"])
            assert r.status_code == 201, r.text
            out_id = r.json()["id"]
            await atende.wait_for_call(lambda c: c["id"] == out_id
                                       and c["status"] == "in_progress")
            await alice.command("hangup")
            done = await finished(atende, out_id)
        finally:
            await alice.stop()
        assert done["sip_status"] == 200 and done["hangup_cause"] == "remote_hangup"
        assert "REQ INVITE from sip:ai@127.0.0.1" in tls_pbx.log()
        assert "src tls:127.0.0.1" in tls_pbx.log().split("REQ INVITE from sip:ai@")[1]
    finally:
        atende.api.delete(f"/v1/trunks/{trunk['id']}")
