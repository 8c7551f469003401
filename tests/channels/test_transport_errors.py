"""A peer that cannot be reached over a connection fails the request at once, saying why
(RFC 3261 §17.1.4), instead of after 32 s of retransmission timers."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from atende.channels.sip.tls import ensure_self_signed, server_context
from atende.channels.sip.ua import UserAgent
from atende.sip.dialog import Dialog
from atende.sip.headers import Headers
from atende.sip.message import Request, Response, make_response
from atende.sip.transaction import Address, ServerTransaction
from atende.sip.uri import SipUri
from tests.peers.net import free_port


def options(port: int) -> Request:
    h = Headers()
    for name, value in [("Max-Forwards", "70"), ("From", "<sip:a@127.0.0.1>;tag=1"),
                        ("To", "<sip:b@127.0.0.1>"), ("Call-ID", "t1"), ("CSeq", "1 OPTIONS")]:
        h.add(name, value)
    return Request("OPTIONS", SipUri("127.0.0.1", "b", port), h)


class Answer200:
    def __init__(self, ua: UserAgent) -> None:
        self.ua = ua
        ua.serve(self)

    def on_request(self, req: Request, txn: ServerTransaction | None, source: Address) -> None:
        if txn is not None:
            self.ua.respond(txn, make_response(req, 200))

    def on_ack_timeout(self, dialog: Dialog) -> None:
        pass

    def on_2xx_retransmission(self, resp: Response) -> None:
        pass


async def test_refused_tcp_connection_fails_fast() -> None:
    ua = UserAgent()
    await ua.start("127.0.0.1", 0)
    try:
        port = free_port()
        async with asyncio.timeout(5):
            resp = await ua.request(options(port), ("tcp", "127.0.0.1", port))
        assert resp.status == 503 and resp.reason.startswith("TCP connection failed")
        assert ua.layer.client == {}
    finally:
        await ua.close()


async def test_untrusted_tls_certificate_fails_fast_and_says_so(tmp_path: Path) -> None:
    server, client = UserAgent(), UserAgent()
    Answer200(server)
    cert, key = ensure_self_signed(tmp_path, ["127.0.0.1"])
    await server.start("127.0.0.1", 0, 0, server_context(cert, key))
    await client.start("127.0.0.1", 0)
    try:
        assert server.transport.tls_port
        target = ("tls", "127.0.0.1", server.transport.tls_port)
        async with asyncio.timeout(5):
            resp = await client.request(options(target[2]), target)
        assert resp.status == 503 and "TLS certificate not trusted" in resp.reason
        # Trusting it (as with tls_verify: false) lets the request through, over TLS.
        client.transport.set_tls_peer("127.0.0.1", target[2], "127.0.0.1", verify=False)
        async with asyncio.timeout(5):
            resp = await client.request(options(target[2]), target)
        assert resp.status == 200
        conn = client.transport.connections[target]
        assert conn.transport is not None
        assert isinstance(conn.transport.get_extra_info("ssl_object"), ssl.SSLObject)
    finally:
        await client.close()
        await server.close()
