"""POST /call/bridge/config exactly as seed 004 says (200, 400 naming each field, 401),
/v1/bridge in atende's style, and a configuration applied live: the listener moves to
a new port, takes new credentials at once, and a disabled bridge refuses new calls."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from atende.sip.auth import DigestClient, pick_challenge
from tests.e2e.test_bridge_transfer import until
from tests.e2e.test_outbound import pbx  # noqa: F401  (a fixture)
from tests.peers.atende import AtendeProcess
from tests.peers.kamailio import Kamailio
from tests.peers.net import free_port
from tests.peers.sipclient import SipClient, sdp_offer

SECRET = "incomingSecret123"
SEED = {"enabled": True, "sipServer": "127.0.0.1:5999", "sipUser": "whatsapp_trunk",
        "sipPass": "mySecurePassword123", "sipListenUser": "incoming_user",
        "sipListenSecret": SECRET, "sipExtension": "", "wasmServerPort": 9080,
        "wasmServerIP": "127.0.0.1", "chromeRemoteURL": "ws://127.0.0.1:9223",
        "nodeRemoteHelper": "http://127.0.0.1:9/"}  # loopback only: the helper is looked at


def post(atende: AtendeProcess, body: Any, **kw: Any) -> httpx.Response:
    return atende.api.post("/call/bridge/config", json=body, timeout=15, **kw)


@pytest.fixture
def off(atende: AtendeProcess) -> Iterator[None]:
    yield
    assert post(atende, {"enabled": False}).status_code == 200


def fields(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 400, r.text
    return {e["loc"][-1]: e["msg"] for e in r.json()["detail"]}


def test_a_missing_or_unknown_key_is_401(atende: AtendeProcess) -> None:
    url = atende.base + "/call/bridge/config"
    assert httpx.get(url).status_code == 401
    assert httpx.post(url, json=SEED).status_code == 401
    r = httpx.post(url, json=SEED, headers={"Authorization": "Bearer not-a-key"})
    assert r.status_code == 401 and "unknown" in r.json()["detail"]


def test_each_invalid_field_is_named_with_400(atende: AtendeProcess) -> None:
    found = fields(post(atende, {
        "enabled": "yes", "sipServer": "sip:pbx.example.com", "sipListenPort": 70000,
        "sipListenUser": "in coming", "sipExtension": "70 01", "wasmServerPort": True,
        "wasmServerIP": "999.1.1.1", "chromeRemoteURL": "http://10.1.0.7:9223",
        "nodeRemoteHelper": "ftp://10.1.0.7", "sipPassword": "x"}))
    assert set(found) == {"enabled", "sipServer", "sipListenPort", "sipListenUser",
                          "sipExtension", "wasmServerPort", "wasmServerIP",
                          "chromeRemoteURL", "nodeRemoteHelper", "sipPassword"}, found
    assert "host:port" in found["sipServer"] and "ws://" in found["chromeRemoteURL"]
    assert "not a field" in found["sipPassword"]
    assert set(fields(post(atende, {"sipServer": "pbx:5060"}))) == {"enabled"}
    assert set(fields(post(atende, {"enabled": True}))) == {"sipServer"}
    assert "12 characters" in fields(post(atende, {**SEED, "sipListenSecret": "short"}))[
        "sipListenSecret"]
    assert set(fields(post(atende, {**SEED, "sipListenSecret": ""}))) == {"sipListenSecret"}
    assert "atende's SIP port" in fields(post(atende, {**SEED, "sipListenPort":
                                                       atende.sip_port}))["sipListenPort"]
    r = atende.api.post("/call/bridge/config", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert set(fields(r)) == {"body"}
    assert set(fields(post(atende, [SEED]))) == {"body"}
    r = atende.api.post("/call/bridge/config", content=b'{"enabled": NaN}',
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert atende.api.get("/call/bridge/config").json()["status"]["state"] == "disabled"


def test_a_port_another_program_holds_is_refused_and_nothing_changes(
        atende: AtendeProcess) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        found = fields(post(atende, {**SEED, "sipListenPort": port}))
    assert "cannot be used" in found["sipListenPort"]
    assert atende.api.get("/call/bridge/config").json()["enabled"] is False


def test_the_configuration_is_shown_masked_and_secrets_are_kept(
        atende: AtendeProcess, off: None) -> None:
    port = free_port(pair=True)  # TLS takes the next one
    r = post(atende, {**SEED, "sipListenPort": port})
    assert r.status_code == 200, r.text
    shown = r.json()
    assert {k: shown[k] for k in SEED if k not in ("sipPass", "sipListenSecret")} == {
        k: v for k, v in SEED.items() if k not in ("sipPass", "sipListenSecret")}
    assert shown["sipPass"] == shown["sipListenSecret"] == "********"
    assert shown["sipListenPort"] == port and shown["status"]["state"] == "listening"
    # Left out, or sent back as shown: the stored secrets stay.
    again = post(atende, {k: v for k, v in shown.items() if k != "status"})
    assert again.status_code == 200 and again.json()["sipListenSecret"] == "********"
    ours = atende.api.get("/v1/bridge").json()
    assert ours["listen_port"] == port and ours["listen_secret"] == "********"
    assert ours["sip_server"] == SEED["sipServer"]
    assert atende.api.put("/v1/bridge", json={"enabled": True, "listen_port": 0}
                          ).status_code == 422
    cleared = atende.api.put("/v1/bridge", json={
        "enabled": True, "sip_server": "127.0.0.1:5999", "listen_port": port,
        "sip_user": "whatsapp_trunk", "sip_password": ""})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["sip_password"] == "" and cleared.json()["listen_secret"] == ""
    assert cleared.json()["listen_user"] == ""  # left out: back to its default
    log = atende.log()
    assert SECRET not in log and SEED["sipPass"] not in log
    health = httpx.get(atende.base + "/health").json()
    assert health["checks"]["bridge"] == {"state": "listening"}
    doc = httpx.get(atende.base + "/openapi.json").json()
    body = doc["paths"]["/call/bridge/config"]["post"]["requestBody"]["content"]
    assert set(body["application/json"]["schema"]["properties"]) == set(SEED) | {
        "sipListenPort"}
    assert "put" in doc["paths"]["/v1/bridge"]


async def _invite(c: SipClient, port: int, secret: str | None, algorithm: str = "MD5",
                  offered: tuple[str, ...] = ("MD5",)) -> int:
    """An INVITE to the bridge, answering its ``algorithm`` challenge with ``secret`` (the
    challenges it got are checked to be ``offered``, in that order): the final status (a
    call that gets through is hung up at once)."""
    ruri = f"sip:someone@127.0.0.1:{port}"
    d = c.new_dialog()
    body = sdp_offer("127.0.0.1", 4000)
    c.send(c.request("INVITE", d, body=body, ruri=ruri))
    final = await c.final(timeout=10)
    c.send(c.request("ACK", d, new_branch=False))
    if final.status != 401 or secret is None:
        return final.status
    challenges = [pick_challenge([h]) for h in final.headers.get_all("WWW-Authenticate")]
    assert tuple(ch.algorithm for ch in challenges if ch is not None) == offered
    challenge = next(ch for ch in challenges if ch is not None and ch.algorithm == algorithm)
    auth = DigestClient("incoming_user", secret).authorize(challenge, "INVITE", ruri)
    d.cseq += 1
    c.send(c.request("INVITE", d, body=body, ruri=ruri, extra=f"Authorization: {auth}\r\n"))
    final = await c.final(timeout=10)
    c.send(c.request("ACK", d, new_branch=False))
    return final.status


async def test_a_new_port_and_new_credentials_take_effect_at_once(
        atende: AtendeProcess, pbx: Kamailio, off: None) -> None:  # noqa: F811
    first, second = free_port(pair=True), free_port(pair=True)
    base = {**SEED, "sipServer": f"127.0.0.1:{pbx.port}", "sipListenPort": first}
    assert post(atende, base).status_code == 200
    c = await SipClient.open(("127.0.0.1", first), user="incoming_user")
    try:
        assert await _invite(c, first, "Not-The-Secret-1") == 401
        assert await _invite(c, first, None) == 401
    finally:
        c.close()
    r = post(atende, {**base, "sipListenPort": second, "sipListenSecret": "Another-Secret-2"})
    assert r.status_code == 200 and r.json()["status"]["listener"]["port"] == second
    c = await SipClient.open(("127.0.0.1", second), user="incoming_user")
    try:
        assert await _invite(c, second, SECRET) == 401  # the old secret no longer works
        # The new one does: the call goes to kamailio, whose 404 comes back.
        assert await _invite(c, second, "Another-Secret-2") == 404
        c.send(c.request("OPTIONS", c.new_dialog(), ruri=f"sip:127.0.0.1:{second}"))
        assert (await c.final()).status == 200
    finally:
        c.close()
    old = await SipClient.open(("127.0.0.1", first), user="incoming_user")
    try:
        old.send(old.request("OPTIONS", old.new_dialog(), ruri=f"sip:127.0.0.1:{first}"))
        with pytest.raises(TimeoutError):  # the old listener had no call: it closed
            await old.final(timeout=2)
    finally:
        old.close()


async def test_the_node_helpers_reachability_is_shown(atende: AtendeProcess, off: None
                                                      ) -> None:
    for url, reachable in ((atende.base + "/health", True), ("http://127.0.0.1:9/", False)):
        r = atende.api.put("/v1/bridge", json={"enabled": False, "node_remote_helper": url})
        assert r.status_code == 200, r.text
        await until(lambda: atende.api.get("/v1/bridge").json()["status"][
            "node_remote_helper"]["reachable"] is not None, 10)
        shown = atende.api.get("/v1/bridge").json()["status"]["node_remote_helper"]
        assert shown["url"] == url and shown["reachable"] is reachable, shown
        assert shown["detail"] == "HTTP 200" if reachable else "HTTP" not in shown["detail"]


async def test_the_listener_challenges_with_sha256_and_md5_when_told(
        atende_strict: AtendeProcess, pbx: Kamailio) -> None:  # noqa: F811
    """ATENDE_BRIDGE_DIGEST=SHA-256,MD5: two challenges, SHA-256 first; an answer to
    either gets through to the SIP server (kamailio's 404 for an unknown user), a wrong
    one does not."""
    port = free_port(pair=True)
    body = {**SEED, "sipServer": f"127.0.0.1:{pbx.port}", "sipListenPort": port,
            "wasmServerPort": free_port()}
    assert post(atende_strict, body).status_code == 200
    # From an address of its own: its wrong guess counts against nobody else's.
    c = await SipClient.open(("127.0.0.1", port), user="incoming_user", host="127.0.0.71")
    both = ("SHA-256", "MD5")
    try:
        assert await _invite(c, port, SECRET, "SHA-256", both) == 404
        assert await _invite(c, port, SECRET, "MD5", both) == 404
        assert await _invite(c, port, "Not-The-Secret-1", "SHA-256", both) == 401
    finally:
        c.close()
        assert post(atende_strict, {"enabled": False}).status_code == 200
