"""The abuse guard in a running atende: blocking repeat offenders, rate limiting floods."""

from __future__ import annotations

import asyncio

from tests.peers.atende import AtendeProcess
from tests.peers.sipclient import SipClient, sdp_offer


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
