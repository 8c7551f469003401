"""Our requests answer a far end's digest challenge by one rule, whatever the method: a
PBX that challenges the BYE or REFER of a call we placed through it gets one answer with
the trunk's credentials, with a new CSeq; refused credentials are not sent again."""

from __future__ import annotations

import asyncio

from atende.channels.sip.ua import UserAgent
from atende.sip.auth import DigestClient, DigestServer
from atende.sip.dialog import Dialog
from atende.sip.message import Request, Response, make_response
from atende.sip.requests import new_request
from atende.sip.transaction import Address, ServerTransaction
from atende.sip.uri import SipUri


class ChallengingPbx:
    """Answers every request with a digest challenge until it carries the right one."""

    def __init__(self, ua: UserAgent, password: str) -> None:
        self.ua = ua
        ua.serve(self)
        self.password = password
        self.digest = DigestServer("pbx")
        self.seen: list[tuple[str, int, bool]] = []  # method, CSeq, had credentials

    def on_request(self, req: Request, txn: ServerTransaction | None, source: Address) -> None:
        if txn is None:
            return
        header = req.headers.get("Proxy-Authorization")
        self.seen.append((req.method, req.cseq.number, header is not None))
        now = self.ua.now()
        if header is not None and self.digest.verify(header, req.method,
                                                     {"ai": self.password}, now).ok:
            self.ua.respond(txn, make_response(req, 200))
            return
        resp = make_response(req, 407)
        for value in self.digest.challenges(now):
            resp.headers.add("Proxy-Authenticate", value)
        self.ua.respond(txn, resp)

    def on_ack_timeout(self, dialog: Dialog) -> None:
        pass

    def on_2xx_retransmission(self, resp: Response) -> None:
        pass


async def test_a_challenged_bye_is_answered_once_with_the_calls_credentials() -> None:
    pbx_ua, ours = UserAgent(), UserAgent()
    pbx = ChallengingPbx(pbx_ua, "right")
    await pbx_ua.start("127.0.0.1", 0)
    await ours.start("127.0.0.1", 0)
    address: Address = ("udp", "127.0.0.1", pbx_ua.port)
    cseq = iter(range(10, 20))

    def bye() -> Request:
        return new_request("BYE", SipUri("127.0.0.1", "100", pbx_ua.port),
                           "<sip:ai@pbx>;tag=a", "<sip:100@pbx>;tag=b", "call-1", next(cseq))

    try:
        async with asyncio.timeout(10):
            resp = await ours.request_with_credentials(bye(), bye, address,
                                                   DigestClient("ai", "right"))
            assert resp.status == 200
            assert pbx.seen == [("BYE", 10, False), ("BYE", 11, True)]
            pbx.seen.clear()
            refused = await ours.request_with_credentials(bye(), bye, address,
                                                          DigestClient("ai", "wrong"))
            assert refused.status == 407  # tried once: wrong credentials are not resent
            assert pbx.seen == [("BYE", 12, False), ("BYE", 13, True)]
            pbx.seen.clear()
            plain = await ours.request_with_credentials(bye(), bye, address, None)
            assert plain.status == 407 and pbx.seen == [("BYE", 14, False)]
    finally:
        await ours.close()
        await pbx_ua.close()
