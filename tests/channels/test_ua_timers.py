"""The user agent repeats a 2xx to an INVITE until its ACK (RFC 3261 §13.3.1.4: at T1,
doubling up to T2) and gives up after 64·T1, telling the transaction user; however many
calls are up, only the dialogs with a 2xx to repeat are timed. Real UDP; the clock is
the test's."""

from __future__ import annotations

import asyncio
import socket

from atende.channels.sip.ua import UserAgent
from atende.sip.dialog import Dialog
from atende.sip.message import Request, Response, make_response, parse_message
from atende.sip.transaction import Address, ServerTransaction


class Calls:
    """The transaction user: answers each INVITE 200 in a dialog the agent tracks."""

    def __init__(self, ua: UserAgent) -> None:
        self.ua = ua
        self.dialogs: dict[str, Dialog] = {}
        self.ack_timeouts: list[str] = []
        ua.serve(self)

    def on_request(self, req: Request, txn: ServerTransaction | None, source: Address) -> None:
        if txn is None or req.method != "INVITE":
            return
        dialog = Dialog.for_uas(req, f"t-{req.call_id}", "<sip:atende@127.0.0.1>")
        self.dialogs[req.call_id] = dialog
        self.ua.track(dialog)
        ok = make_response(req, 200, to_tag=dialog.local_tag)
        ok.headers.add("Contact", "<sip:atende@127.0.0.1>")
        dialog.start_2xx(ok, self.ua.now(), source)
        self.ua.respond(txn, ok)

    def on_ack_timeout(self, dialog: Dialog) -> None:
        self.ack_timeouts.append(dialog.call_id)

    def on_2xx_retransmission(self, resp: Response) -> None:
        pass


def invite(call_id: str, port: int) -> bytes:
    return (f"INVITE sip:atende@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:caller@127.0.0.1>;tag=f{call_id}\r\nTo: <sip:atende@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:{port}>\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


async def test_a_2xx_is_repeated_until_acked_and_given_up_on_after_64_t1() -> None:
    now = [0.0]
    ua = UserAgent(clock=lambda: now[0])
    calls = Calls(ua)
    await ua.start("127.0.0.1", 0)
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    phone.setblocking(False)
    port = phone.getsockname()[1]
    loop = asyncio.get_running_loop()

    async def oks(count: int) -> list[str]:
        """The Call-IDs of the next ``count`` 200 OKs the phone receives."""
        got: list[str] = []
        async with asyncio.timeout(5):
            while len(got) < count:
                msg = parse_message(await loop.sock_recv(phone, 65535))
                if isinstance(msg, Response) and msg.status == 200:
                    got.append(msg.call_id)
        return got

    try:
        for call_id in ("acked", "silent", *(f"up{i}" for i in range(200))):
            phone.sendto(invite(call_id, port), ("127.0.0.1", ua.port))
            await oks(1)
        for i in range(200):  # calls up, ACKed: nothing to repeat for them
            calls.dialogs[f"up{i}"].on_ack()
        now[0] = 0.5  # T1: both unanswered 200s go again
        ua.tick()
        assert sorted(await oks(2)) == ["acked", "silent"]
        calls.dialogs["acked"].on_ack()
        for at, expected in [(1.5, ["silent"]), (3.5, ["silent"]), (7.5, ["silent"]),
                             (11.5, ["silent"])]:  # 2·T1, 4·T1, then every T2
            now[0] = at - 0.01
            ua.tick()
            try:  # not yet (loopback UDP is in the phone's buffer once sent)
                early = phone.recv(65535)
            except BlockingIOError:
                early = b""
            assert early == b""
            now[0] = at
            ua.tick()
            assert await oks(1) == expected
        assert calls.ack_timeouts == []
        now[0] = 32.0  # 64·T1: given up on, and the call is told
        ua.tick()
        assert calls.ack_timeouts == ["silent"]
        now[0] = 40.0
        ua.tick()
        assert calls.ack_timeouts == ["silent"]  # once
    finally:
        phone.close()
        await ua.close()
