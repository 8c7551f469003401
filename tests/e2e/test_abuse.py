"""The abuse guard in a running atende: blocking repeat offenders, rate limiting floods."""

from __future__ import annotations

import asyncio

from atende.sip.auth import Challenge, DigestClient
from tests.peers.atende import AtendeProcess
from tests.peers.sipclient import Dialog, SipClient, sdp_offer

CARRIER_PASS = "Carrier-Pass-2024!"


async def answered_within(c: SipClient, seconds: float) -> int:
    """How many responses arrive in ``seconds`` (an absence check needs a bounded wait)."""
    n = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            await c.recv(timeout=left)
            n += 1
        except TimeoutError:
            break
    return n


async def test_repeat_offender_is_blocked(atende_strict: AtendeProcess) -> None:
    server = ("127.0.0.1", atende_strict.sip_port)
    bad = await SipClient.open(server, host="127.0.0.12")
    good = await SipClient.open(server)
    try:
        for _ in range(5):  # ATENDE_ABUSE_MAX_FAILURES defaults to 5
            d = bad.new_dialog()
            bad.send(bad.request("INVITE", d, body=sdp_offer("127.0.0.12", 4)))
            assert (await bad.final()).status == 403
            bad.send(bad.request("ACK", d, new_branch=False))  # stop the 403's retransmission
        # Now everything from that address is dropped unanswered…
        bad.send(bad.request("OPTIONS", bad.new_dialog()))
        good.send(good.request("OPTIONS", good.new_dialog()))
        assert (await good.final()).status == 200  # …while others are served
        assert await answered_within(bad, 1.0) == 0
        report = atende_strict.api.get("/v1/abuse").json()
        (entry,) = [b for b in report["blocked"] if b["address"] == "127.0.0.12"]
        assert entry["blocked_for_s"] > 500 and "not allowed" in entry["reason"]
        assert entry["dropped"] >= 1
        assert "blocking 127.0.0.12" in atende_strict.log()
    finally:
        bad.close()
        good.close()


async def test_register_flood_is_rate_limited(atende: AtendeProcess) -> None:
    c = await SipClient.open(("127.0.0.1", atende.sip_port), host="127.0.0.13")
    try:
        for _ in range(60):
            c.send(c.request("REGISTER", c.new_dialog()))
        answers = await answered_within(c, 1.5)
        assert 15 <= answers < 60  # the burst is answered (405), the rest dropped
        assert atende.api.get("/v1/abuse").json()["rate_limited"] >= 60 - answers
    finally:
        c.close()


async def invite(c: SipClient, ruri: str, password: str | None = None) -> tuple[Dialog, int]:
    """An INVITE to ``ruri``; with ``password``, answering the digest challenge. Returns
    the dialog and the final status (its ACK sent)."""
    d = c.new_dialog()
    c.send(c.request("INVITE", d, ruri=ruri, body=sdp_offer(c.sock.host, 4000)))
    final = await c.final()
    c.send(c.request("ACK", d, ruri=ruri, new_branch=False))
    if final.status != 401 or password is None:
        return d, final.status
    challenge = Challenge.parse(final.headers.get("WWW-Authenticate") or "")
    header = DigestClient("carrier", password).authorize(challenge, "INVITE", ruri)
    d.cseq += 1
    c.send(c.request("INVITE", d, ruri=ruri, body=sdp_offer(c.sock.host, 4000),
                     extra=f"Authorization: {header}\r\n"))
    final = await c.final(timeout=8)
    if final.status < 300:
        d.to_tag = final.to.tag or ""  # a 2xx's ACK is a transaction of its own
    c.send(c.request("ACK", d, ruri=ruri, new_branch=final.status < 300))
    return d, final.status


async def test_a_trunks_own_address_is_never_blocked_and_a_guessed_user_is_locked(
        atende_strict: AtendeProcess) -> None:
    """Issue 16.6: the PBX/carrier is not cut off by failures (its own or anyone's), and a
    username guessed at from many addresses, a few tries each, gets locked."""
    a = atende_strict
    server = ("127.0.0.1", a.sip_port)
    r = a.api.post("/v1/trunks", json={
        "kind": "did", "name": "Carrier", "number": "+12025550111", "username": "carrier",
        "password": CARRIER_PASS, "host": "127.0.0.13", "country": "US",
        "inbound_auth": "digest"})
    assert r.status_code == 201, r.text
    trunk_id = r.json()["id"]
    did = f"sip:+12025550111@127.0.0.1:{a.sip_port}"
    clients = [await SipClient.open(server, host="127.0.0.13")]
    try:
        carrier = clients[0]
        for _ in range(7):  # calls for nobody, from the carrier's own address
            _, status = await invite(carrier, f"sip:nobody@127.0.0.1:{a.sip_port}")
            assert status == 403
        carrier.send(carrier.request("OPTIONS", carrier.new_dialog()))
        assert (await carrier.final()).status == 200  # still served
        report = a.api.get("/v1/abuse").json()
        assert not [b for b in report["blocked"] if b["address"] == "127.0.0.13"]
        (watched,) = [w for w in report["watched"] if w["address"] == "127.0.0.13"]
        assert watched["recent_failures"] >= 7

        for i in range(12):  # one wrong guess from each of twelve addresses
            guesser = await SipClient.open(server, host=f"127.0.0.{40 + i}")
            clients.append(guesser)
            _, status = await invite(guesser, did, password=f"Guess-{i}-Password!")
            assert status == (401 if i < 10 else 403), i  # locked after the tenth
        late = await SipClient.open(server, host="127.0.0.60")
        clients.append(late)
        _, status = await invite(late, did, password=CARRIER_PASS)
        assert status == 403  # locked: even the right password from elsewhere
        report = a.api.get("/v1/abuse").json()
        assert [u["user"] for u in report["locked_users"]] == ["carrier"]
        assert not [b for b in report["blocked"] if b["address"].startswith("127.0.0.4")]
        # The carrier itself still gets its calls through.
        d, status = await invite(carrier, did, password=CARRIER_PASS)
        assert status == 200
        d.cseq += 1
        carrier.send(carrier.request("BYE", d, ruri=did))
        assert (await carrier.final()).status == 200
    finally:
        for c in clients:
            c.close()
        a.api.delete(f"/v1/trunks/{trunk_id}")
