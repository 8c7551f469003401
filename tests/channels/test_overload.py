"""Overload and floods answered as RFC 3261 §21.5.4 says: a trunk's PBX past its (higher)
rate, and any caller while atende's loop runs late, get 503 with Retry-After; a flood from
anyone else is dropped unanswered. A real user agent on loopback, a test client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

import pytest

from atende.channels.sip.overload import SAMPLE_S, LoadMonitor, watch_loop
from atende.channels.sip.transport import SipTransport
from atende.channels.sip.ua import UserAgent
from atende.sip.dialog import Dialog
from atende.sip.message import Request, Response, make_response, parse_message
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


async def test_a_late_loop_sheds_new_calls_and_takes_them_again_when_it_catches_up(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="atende.channels.sip.overload")
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
    # The operator reads why callers got 503, and when that stopped.
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert "refusing new calls with 503 until it catches up" in said[0]
    assert "threshold 200 ms" in said[0]
    assert said[1].startswith("caught up after ")
    assert said[1].endswith("every new call is taken again (1 refused meanwhile)")


async def test_the_udp_socket_says_how_long_requests_waited_to_be_read() -> None:
    got: list[bytes] = []
    waits: list[float] = []
    transport = SipTransport(lambda data, addr: got.append(data), on_wait=waits.append)
    await transport.start("127.0.0.1", 0)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(100):
            sender.sendto(b"OPTIONS %d" % i, ("127.0.0.1", transport.port))
        time.sleep(0.3)  # the loop is busy elsewhere: they wait in the kernel
        async with asyncio.timeout(5):
            while len(got) < 100:
                await asyncio.sleep(0.01)
    finally:
        sender.close()
        await transport.close()
    assert got == [b"OPTIONS %d" % i for i in range(100)]  # all of them, in order
    assert max(waits) >= 0.3
    assert len(waits) < 100  # many read at each wake-up, not one a turn of the loop


class Holding:
    """A transaction user that answers calls only when told to."""

    def __init__(self, ua: UserAgent) -> None:
        self.ua = ua
        self.held: list[tuple[Request, ServerTransaction]] = []
        ua.serve(self)

    def on_request(self, req: Request, txn: ServerTransaction | None, source: Address) -> None:
        if txn is not None:
            self.held.append((req, txn))

    def on_ack_timeout(self, dialog: Dialog) -> None:
        pass

    def on_2xx_retransmission(self, resp: Response) -> None:
        pass

    def trunk_address(self, ip: str) -> bool:
        return False


async def test_a_call_being_set_up_is_not_shed_when_its_invite_comes_again() -> None:
    ua = UserAgent(load=LoadMonitor(threshold_s=0.2))
    tu = Holding(ua)
    await ua.start("127.0.0.1", 0)
    c = await SipClient.open(("127.0.0.1", ua.port))
    try:
        calling, arriving = c.new_dialog(), c.new_dialog()
        invite = c.request("INVITE", calling, ruri=f"sip:x@127.0.0.1:{ua.port}")
        c.send(invite)
        async with asyncio.timeout(5):
            while not tu.held:
                await asyncio.sleep(0.01)
        ua.load.shedding = True  # overloaded from now on
        c.send(invite)  # our answer is slow to come: the caller sends it again
        c.send(c.request("INVITE", arriving, ruri=f"sip:y@127.0.0.1:{ua.port}"))
        first = await c.recv(timeout=2)
        assert isinstance(first, Response) and first.status == 503
        assert first.call_id == arriving.call_id  # only the new call is refused
        [(req, txn)] = tu.held
        ua.respond(txn, make_response(req, 486))
        answers = []
        with contextlib.suppress(TimeoutError):
            while True:
                msg = await c.recv(timeout=0.5)
                if isinstance(msg, Response) and msg.status >= 200:
                    answers.append((msg.call_id, msg.status))
        assert (calling.call_id, 486) in answers
        assert (calling.call_id, 503) not in answers
    finally:
        c.close()
        await ua.close()


async def test_a_refused_invite_that_comes_again_is_refused_again_once_load_falls() -> None:
    ua = UserAgent(load=LoadMonitor(threshold_s=0.2))
    tu = Holding(ua)
    await ua.start("127.0.0.1", 0)
    c = await SipClient.open(("127.0.0.1", ua.port))
    try:
        refused = c.new_dialog()
        invite = c.request("INVITE", refused, ruri=f"sip:x@127.0.0.1:{ua.port}")
        ua.load.shedding = True
        c.send(invite)
        first = await c.recv(timeout=2)
        assert isinstance(first, Response) and first.status == 503
        ua.load.shedding = False
        c.send(invite)  # a copy still on its way when the load fell
        again = await c.recv(timeout=2)
        assert isinstance(again, Response) and again.status == 503
        assert again.call_id == refused.call_id and not tu.held  # no call was started
        assert first.to.tag and again.to.tag == first.to.tag  # one refusal (§8.2.6.2)
        c.send(c.request("INVITE", c.new_dialog(), ruri=f"sip:y@127.0.0.1:{ua.port}"))
        async with asyncio.timeout(5):  # a new call is taken again
            while not tu.held:
                await asyncio.sleep(0.01)
    finally:
        c.close()
        await ua.close()


def test_requests_that_waited_to_be_read_count_as_lag() -> None:
    m = LoadMonitor(threshold_s=0.2)
    t = 0.0
    for _ in range(10):  # the loop's timers are on time, but requests wait 0.4 s
        m.waited(0.1)
        m.waited(0.4)
        t += SAMPLE_S
        m.observe(0.0, t)
    assert m.shedding
    for _ in range(20):  # they are read at once again
        m.waited(0.001)
        t += SAMPLE_S
        m.observe(0.0, t)
    assert not m.shedding


def test_the_monitor_smooths_and_has_hysteresis() -> None:
    m = LoadMonitor(threshold_s=0.2)
    samples = iter(range(1, 100))

    def observe(lag_s: float) -> None:
        m.observe(lag_s, next(samples) * SAMPLE_S)

    observe(1.0)  # one slow moment
    assert not m.shedding and m.lag_s == 0.2 * 1.0
    for _ in range(5):
        observe(0.5)
    assert m.shedding and m.retry_after() >= 4
    for _ in range(6):  # back under the threshold, not yet under half of it
        observe(0.12)
    assert 0.1 < m.lag_s < 0.2 and m.shedding
    for _ in range(10):
        observe(0.0)
    assert not m.shedding and m.retry_after() == 1


async def test_a_flood_is_refused_statelessly_and_a_malformed_invite_still_gets_its_4xx(
        ) -> None:
    ua = UserAgent(load=LoadMonitor(threshold_s=0.2))
    tu = Holding(ua)
    await ua.start("127.0.0.1", 0)
    c = await SipClient.open(("127.0.0.1", ua.port))
    try:
        ua.load.shedding = True
        refused = c.new_dialog()
        invite = c.request("INVITE", refused, ruri=f"sip:x@127.0.0.1:{ua.port}")
        c.send(invite)
        data, _ = await c.sock.recv(timeout=2)
        first = parse_message(data)
        assert isinstance(first, Response) and first.status == 503
        assert first.to.tag and first.headers.get("Retry-After")
        assert "received" not in first.top_via.params  # it came from where it says
        assert first.top_via.params.get("rport") == str(c.sock.port)
        # A stateless refusal (RFC 3261 §8.2.7): not sent again unasked, though not ACKed
        # for longer than Timer G's first wait, and no transaction made for it.
        with pytest.raises(TimeoutError):
            await c.sock.recv(timeout=0.5 + 0.3)
        assert not ua.layer.server
        c.send(invite)  # a copy: the same answer, tag and all
        again, _ = await c.sock.recv(timeout=2)
        assert again == data
        ack = (invite.split(b"\r\n\r\n")[0].replace(b"INVITE sip:", b"ACK sip:", 1)
               .replace(b" INVITE\r\n", b" ACK\r\n")
               .replace(b"To: <sip:assistant@127.0.0.1>",
                        f"To: <sip:assistant@127.0.0.1>;tag={first.to.tag}".encode())
               .replace(b"Content-Type: application/sdp\r\n", b"") + b"\r\n\r\n")
        c.send(ack)  # ignored: nothing reaches the transaction user, nothing answers
        with pytest.raises(TimeoutError):
            await c.sock.recv(timeout=0.3)
        # A malformed new INVITE is answered by the full parser, as without load.
        c.send(c.request("INVITE", c.new_dialog(), ruri=f"sip:x@127.0.0.1:{ua.port}",
                         extra="Max-Forwards: 70\r\n"))
        bad = await c.recv(timeout=2)
        assert isinstance(bad, Response) and bad.status == 400
        ua.load.shedding = False
        c.send(invite)  # still on its way when the load fell: refused as before
        late, _ = await c.sock.recv(timeout=2)
        assert late == data and not tu.held
    finally:
        c.close()
        await ua.close()


async def test_under_a_cap_some_new_calls_are_taken_and_the_rest_refused() -> None:
    ua = UserAgent(load=LoadMonitor(threshold_s=0.2, cap_per_s=50.0))
    Busy486(ua, None)
    await ua.start("127.0.0.1", 0)
    c = await SipClient.open(("127.0.0.1", ua.port))
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        for _ in range(40):  # 200 a second, four times the cap
            c.send(c.request("INVITE", c.new_dialog(), ruri=f"sip:x@127.0.0.1:{ua.port}"))
            await asyncio.sleep(0.005)
        elapsed = loop.time() - start
        got: dict[str, int] = {}
        with contextlib.suppress(TimeoutError):
            while len(got) < 40:
                msg = await c.recv(timeout=1.0)
                if isinstance(msg, Response) and msg.status >= 200:
                    got.setdefault(msg.call_id, msg.status)
    finally:
        c.close()
        await ua.close()
    taken = sum(status == 486 for status in got.values())
    assert len(got) == 40 and set(got.values()) == {486, 503}
    assert 2 <= taken <= 3 + 50 * (elapsed + 0.05), (taken, elapsed)
    assert ua.stats["shed"] == 40 - taken
