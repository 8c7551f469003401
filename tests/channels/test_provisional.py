"""What a caller hears before the answer (RFC 3261 §17.2.1, §13.3.1.1): a call answered at
once gets its 200 and nothing before it (a 100 or a 180 would only cost messages); one
whose admission takes longer than TRYING_AFTER_S gets a 100 (Trying) meanwhile, before
the caller's INVITE would be sent again; and a configured ring time rings (180). A real
user agent and SIP channel on loopback, a raw test client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from atende.channels.leg import CallInfo, CallLeg, Refused, Rejection, Ringing
from atende.channels.sip.overload import LoadMonitor
from atende.channels.sip.server import TRYING_AFTER_S, SipChannel
from atende.channels.sip.ua import UserAgent
from atende.media.ports import PortAllocator
from atende.sip.message import Response
from tests.channels.test_cancel_admission import OpenGate, cancel_for
from tests.peers.sipclient import SipClient, sdp_offer


class Router:
    """Admits every call once ``decide`` is set and answers it at once."""

    def __init__(self) -> None:
        self.decide = asyncio.Event()
        self.legs: list[CallLeg] = []

    async def admit(self, info: CallInfo) -> Rejection | None:
        await self.decide.wait()
        return None

    async def answering(self, info: CallInfo, caller: Ringing) -> Refused | None:
        return None

    def connected(self, leg: CallLeg) -> None:
        self.legs.append(leg)

    def ended_before_answer(self, info: CallInfo, cause: str) -> None:
        raise AssertionError("every call is answered")


@contextlib.asynccontextmanager
async def answering(router: Router, ua: UserAgent, answer_delay: float = 0.0
                    ) -> AsyncIterator[SipClient]:
    """A SIP channel on ``ua`` serving ``router``, and a client to call it; the calls
    hung up after."""
    channel = SipChannel(ua, PortAllocator(31900, 31999), OpenGate(), media_host="127.0.0.1",
                         answer_delay=answer_delay)
    channel.serve(router)  # type: ignore[arg-type]
    await ua.start("127.0.0.1", 0)
    c = await SipClient.open(("127.0.0.1", ua.port))
    try:
        yield c
    finally:
        for leg in router.legs:
            await leg.hangup()
        c.close()
        await channel.close(asyncio.get_running_loop().time())  # BYEs unanswered: no wait
        await ua.close()


async def statuses_until_answered(router: Router, answer_delay: float = 0.0,
                                  decide_after: float = 0.0) -> list[tuple[int, float]]:
    """The responses to one INVITE up to its 200, each with when it came."""
    ua = UserAgent()
    loop = asyncio.get_running_loop()
    async with answering(router, ua, answer_delay) as c:
        d = c.new_dialog()
        sent = loop.time()
        c.send(c.request("INVITE", d, body=sdp_offer("127.0.0.1", 4000),
                         ruri=f"sip:ai@127.0.0.1:{ua.port}"))
        if decide_after:
            loop.call_later(decide_after, router.decide.set)
        else:
            router.decide.set()
        got: list[tuple[int, float]] = []
        async with asyncio.timeout(5):
            while not got or got[-1][0] < 200:
                msg = await c.recv()
                if isinstance(msg, Response):
                    got.append((msg.status, loop.time() - sent))
        return got


async def test_a_call_answered_at_once_gets_its_200_alone() -> None:
    got = await statuses_until_answered(Router())
    assert [status for status, _ in got] == [200]


async def test_a_call_slow_to_admit_gets_a_100_meanwhile() -> None:
    got = await statuses_until_answered(Router(), decide_after=0.4)
    assert [status for status, _ in got] == [100, 200]
    trying_at, answered_at = got[0][1], got[1][1]
    assert TRYING_AFTER_S <= trying_at < 0.3 <= answered_at  # well before T1 (500 ms)


async def test_a_ring_time_rings_once_then_answers() -> None:
    got = await statuses_until_answered(Router(), answer_delay=0.3)
    assert [status for status, _ in got] == [180, 200]  # the 180 went first: no 100
    assert got[1][1] - got[0][1] >= 0.29


async def test_an_answered_call_absorbs_its_invite_again_and_a_late_cancel() -> None:
    """After its 200 the INVITE's transaction only lingers for copies (kept as plain
    values by the layer): a copy of the INVITE is absorbed, overloaded or not, and a
    CANCEL that crossed the 200 is answered 200 and changes nothing (RFC 3261 §9.2),
    not 481 as for an INVITE never seen."""
    router = Router()
    router.decide.set()
    ua = UserAgent(load=LoadMonitor(threshold_s=0.2))
    async with answering(router, ua) as c:
        invite = c.request("INVITE", c.new_dialog(), body=sdp_offer("127.0.0.1", 4000),
                           ruri=f"sip:ai@127.0.0.1:{ua.port}")
        c.send(invite)
        ok = await c.final()
        assert ok.status == 200 and ua.layer.lingering.held and not ua.layer.server
        ua.load.shedding = True  # overloaded now: new calls would be refused
        c.send(invite)
        c.send(cancel_for(invite))
        answers = []
        with contextlib.suppress(TimeoutError):
            while True:
                msg = await c.recv(timeout=0.7)
                if isinstance(msg, Response):
                    answers.append((msg.cseq.method, msg.status))
        assert ("CANCEL", 200) in answers
        assert all(status == 200 for _, status in answers)  # no 503, no 481, no 487
        assert len(router.legs) == 1 and not router.legs[0].ended
