"""Overload and floods answered as RFC 3261 §21.5.4 says: a trunk's PBX past its (higher)
rate, and any caller while atende's loop runs late, get 503 with Retry-After; a flood from
anyone else is dropped unanswered. A real user agent on loopback, a test client."""

from __future__ import annotations

import asyncio

from atende.channels.sip.overload import SAMPLE_S, LoadMonitor, watch_loop
from atende.channels.sip.ua import UserAgent
from atende.sip.dialog import Dialog
from atende.sip.message import Request, Response, make_response
from atende.sip.transaction import Address, ServerTransaction
from atende.telephony.abuse import AbuseGuard
from tests.peers.sipclient import SipClient


class Busy486:
    """A transaction user that refuses every call at once (answers are what we count),
    and knows one trunk peer address."""

    def __init__(self, ua: UserAgent, peer: str | None) -> None:
        self.ua = ua
        self.peer = peer
        ua.serve(self)

    def on_request(self, req: Request, txn: ServerTransaction | None, source: Address) -> None:
        if txn is not None:
            self.ua.respond(txn, make_response(req, 486))

    def on_ack_timeout(self, dialog: Dialog) -> None:
        pass

    def on_2xx_retransmission(self, resp: Response) -> None:
        pass

    def trunk_address(self, ip: str) -> bool:
        return ip == self.peer


async def _answers(ua: UserAgent, count: int) -> list[Response]:
    """``count`` new INVITEs at once from one client; the final answer each got within
    1 s (a 486 comes again until ACKed: the first one counts)."""
    c = await SipClient.open(("127.0.0.1", ua.port))
    try:
        for _ in range(count):
            c.send(c.request("INVITE", c.new_dialog(), ruri=f"sip:x@127.0.0.1:{ua.port}"))
        got: dict[str, Response] = {}
        try:
            while True:
                msg = await c.recv(timeout=1.0)
                if isinstance(msg, Response) and msg.status >= 200:
                    got.setdefault(msg.call_id, msg)
        except TimeoutError:
            return list(got.values())
    finally:
        c.close()


async def test_a_trunk_peer_past_its_rate_is_told_to_retry_and_others_are_dropped() -> None:
    for peer, expected in (("127.0.0.1", {486, 503}), (None, {486})):
        ua = UserAgent(guard=AbuseGuard(rate_per_s=1, burst=2, peer_rate_per_s=5))
        Busy486(ua, peer)
        await ua.start("127.0.0.1", 0)
        try:
            got = await _answers(ua, 30)
        finally:
            await ua.close()
        assert {r.status for r in got} == expected, (peer, [r.status for r in got])
        if peer is not None:  # all answered: 10 at once (twice the rate), the rest 503
            assert len(got) == 30
            assert sum(r.status == 486 for r in got) == 10
            assert all(r.headers.get("Retry-After") == "1" for r in got if r.status == 503)
        else:  # a stranger: its burst of two, the rest unanswered
            assert len(got) == 2


async def test_a_late_loop_sheds_new_calls_and_takes_them_again_when_it_catches_up() -> None:
    ua = UserAgent(load=LoadMonitor(threshold_s=0.2))
    Busy486(ua, None)
    await ua.start("127.0.0.1", 0)
    watcher = asyncio.get_running_loop().create_task(watch_loop(ua.load))
    try:
        loop = asyncio.get_running_loop()
        # A blocked loop: the monitor's next sample wakes 0.5 s late, again and again.
        while not ua.load.shedding:
            asked = loop.time()
            await asyncio.sleep(0)
            while loop.time() - asked < 0.5:
                pass
            await asyncio.sleep(SAMPLE_S)
        got = await _answers(ua, 1)
        assert [r.status for r in got] == [503] and got[0].reason == "Overloaded"
        assert int(got[0].headers.get("Retry-After") or 0) >= 1
        assert ua.stats["shed"] == 1
        async with asyncio.timeout(10):  # it catches up: calls are taken again
            while ua.load.shedding:
                await asyncio.sleep(SAMPLE_S)
        assert [r.status for r in await _answers(ua, 1)] == [486]
    finally:
        watcher.cancel()
        await ua.close()


def test_the_monitor_smooths_and_has_hysteresis() -> None:
    m = LoadMonitor(threshold_s=0.2)
    m.observe(1.0)  # one slow moment
    assert not m.shedding and m.lag_s == 0.2 * 1.0
    for _ in range(5):
        m.observe(0.5)
    assert m.shedding and m.retry_after() >= 4
    for _ in range(6):  # back under the threshold, not yet under half of it
        m.observe(0.12)
    assert 0.1 < m.lag_s < 0.2 and m.shedding
    for _ in range(10):
        m.observe(0.0)
    assert not m.shedding and m.retry_after() == 1
