"""A CANCEL that comes while the router is still deciding on the call (admission awaits
the directory, or the count of places over all nodes): the caller gets 487 at once, and
the router is told the call ended only once it has decided, so a place it took meanwhile
is given back. (Told at the CANCEL, the router gave back nothing, then took the place
for good.) A real user agent and SIP channel on loopback, a raw test client."""

from __future__ import annotations

import asyncio

from atende.channels.leg import CallInfo, CallLeg, Rejection, Ringing
from atende.channels.sip.gate import Admit, GateResult
from atende.channels.sip.server import SipChannel
from atende.channels.sip.ua import UserAgent
from atende.media.ports import PortAllocator
from atende.sip.message import Request, Response
from atende.sip.transaction import Address
from tests.peers.sipclient import SipClient, sdp_offer


class OpenGate:
    def check(self, req: Request, source: Address, now: float) -> GateResult:
        return Admit(trunk_id=None)

    def trunk_address(self, source_ip: str) -> bool:
        return False


class SlowRouter:
    """Takes a place for each call it admits, after ``decide`` is set (as CallEngine
    takes one after awaiting its directory); gives it back when told the call ended."""

    def __init__(self) -> None:
        self.deciding = asyncio.Event()
        self.decide = asyncio.Event()
        self.places: set[str] = set()
        self.ended: list[tuple[str, str]] = []

    async def admit(self, info: CallInfo) -> Rejection | None:
        self.deciding.set()
        await self.decide.wait()
        self.places.add(info.id)
        return None

    async def answering(self, info: CallInfo, caller: Ringing) -> None:
        raise AssertionError("a cancelled call is not rung")

    def connected(self, leg: CallLeg) -> None:
        raise AssertionError("a cancelled call is not answered")

    def ended_before_answer(self, info: CallInfo, cause: str) -> None:
        self.places.discard(info.id)
        self.ended.append((info.id, cause))


def cancel_for(invite: bytes) -> bytes:
    """The CANCEL of ``invite`` (as the test client sent it): its Via, Call-ID, tags
    and CSeq number, no body."""
    return (invite.replace(b"INVITE sip:", b"CANCEL sip:", 1)
            .replace(b" INVITE\r\n", b" CANCEL\r\n")
            .replace(b"Content-Type: application/sdp\r\n", b"")
            .split(b"Content-Length:")[0] + b"Content-Length: 0\r\n\r\n")


async def test_a_call_cancelled_while_being_admitted_gives_its_place_back() -> None:
    ua = UserAgent()
    channel = SipChannel(ua, PortAllocator(31800, 31899), OpenGate(), media_host="127.0.0.1")
    router = SlowRouter()
    channel.serve(router)  # type: ignore[arg-type]
    await ua.start("127.0.0.1", 0)
    c = await SipClient.open(("127.0.0.1", ua.port))
    try:
        d = c.new_dialog()
        invite = c.request("INVITE", d, body=sdp_offer("127.0.0.1", 4000),
                           ruri=f"sip:ai@127.0.0.1:{ua.port}")
        c.send(invite)
        async with asyncio.timeout(5):
            await router.deciding.wait()
        c.send(cancel_for(invite))
        finals = {}
        async with asyncio.timeout(5):
            while len(finals) < 2:
                msg = await c.recv()
                if isinstance(msg, Response) and msg.status >= 200:
                    finals[msg.cseq.method] = msg.status
        assert finals == {"CANCEL": 200, "INVITE": 487}
        assert router.ended == []  # not yet: the router has not decided
        router.decide.set()
        async with asyncio.timeout(5):
            while not router.ended:
                await asyncio.sleep(0.01)
        assert [cause for _, cause in router.ended] == ["cancelled"]
        assert router.places == set()  # the place it took was given back
    finally:
        c.close()
        await ua.close()
