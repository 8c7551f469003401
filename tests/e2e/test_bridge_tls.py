"""The bridge's far side over TLS with SRTP: kamailio listens for TLS (a self-signed
certificate, so verification is turned off for it), the bridge registers there over TLS
and offers SRTP only; bob behind kamailio takes SRTP only (baresip's srtp module). alice
calls in plain UDP and RTP; both hear each other's tone on what they received."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.e2e.test_bridge import (
    ALICE_HZ,
    BOB_HZ,
    LISTEN_SECRET,
    LISTEN_USER,
    client,
    through,
)
from tests.e2e.test_outbound import USERS
from tests.e2e.test_tls import tls_pbx  # noqa: F401  (a fixture)
from tests.peers.atende import AtendeProcess
from tests.peers.audio import Tone, speech_wav
from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.peers.net import free_port


async def test_the_far_side_over_tls_with_srtp(atende: AtendeProcess,
                                               tls_pbx: Kamailio,  # noqa: F811
                                               tmp_path: Path) -> None:
    port = free_port(pair=True)
    fields = {"enabled": True, "sip_server": f"127.0.0.1:{tls_pbx.tls_port}",
              "sip_user": "carol", "sip_password": USERS["carol"], "listen_port": port,
              "listen_user": LISTEN_USER, "listen_secret": LISTEN_SECRET,
              "extension": "carol", "server_transport": "tls", "server_srtp": True,
              "server_tls_verify": False}
    r = atende.api.put("/v1/bridge", json={**fields, "server_transport": "udp"})
    assert r.status_code == 422 and "server_srtp" in r.text  # SDES keys need TLS
    r = atende.api.put("/v1/bridge", json=fields, timeout=15)
    assert r.status_code == 200, r.text
    try:
        assert r.json()["status"]["listener"]["sip_server"]["transport"] == "tls"
        async with asyncio.timeout(10):
            while not tls_pbx.contacts("carol"):
                await asyncio.sleep(0.1)
        [contact] = tls_pbx.contacts("carol")
        assert contact.endswith(";transport=tls"), contact
        before = {c["id"] for c in atende.calls()}
        alice = await client(tmp_path, port, speech_wav(tmp_path / "a.wav",
                                                        [(0.5, Tone(ALICE_HZ, 2.0))], 20))
        bob = Baresip(tmp_path / "bob", speech_wav(tmp_path / "b.wav",
                                                   [(0.5, Tone(BOB_HZ, 2.0))], 20),
                      account=f'<sip:bob@example.test>;auth_pass={USERS["bob"]};'
                              f'outbound="sip:127.0.0.1:{tls_pbx.port}";regint=600;'
                              "mediaenc=srtp-mand", modules=("srtp",))
        await bob.start()
        try:
            async with asyncio.timeout(10):
                while not tls_pbx.contacts("bob"):
                    await asyncio.sleep(0.1)
            call = await through(atende, alice, bob, f"sip:bob@127.0.0.1:{port}", before)
        finally:
            await alice.stop()
            await bob.stop()
    finally:
        atende.api.put("/v1/bridge", json={"enabled": False})
    assert call["status"] == "completed"
    assert call["to_uri"] == f"sip:bob@127.0.0.1:{tls_pbx.tls_port};transport=tls"
    assert "starting mediaenc 'srtp-mand'" in bob.log()  # it took SRTP only
    invites = [line for line in tls_pbx.log().splitlines() if "REQ INVITE" in line
               and "sip:bob@" in line]
    assert invites and all(" src tls:" in line for line in invites[:1]), invites
