"""A minimal raw SIP/RTP client for protocol-level tests: we craft every byte ourselves so
tests can send exactly the message (or the garbage) they mean to."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from atende.sip.message import Message, Response, parse_message
from atende.sip.sdp import SessionDescription, parse_sdp


class _Queue(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait((data, (str(addr[0]), int(addr[1]))))


class UdpSocket:
    def __init__(self, transport: asyncio.DatagramTransport, proto: _Queue) -> None:
        self.transport = transport
        self.proto = proto
        self.host, self.port = transport.get_extra_info("sockname")[:2]

    @classmethod
    async def open(cls, host: str = "127.0.0.1", port: int = 0) -> UdpSocket:
        t, p = await asyncio.get_running_loop().create_datagram_endpoint(
            _Queue, local_addr=(host, port))
        return cls(t, p)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)

    async def recv(self, timeout: float = 5) -> tuple[bytes, tuple[str, int]]:
        return await asyncio.wait_for(self.proto.queue.get(), timeout)

    def close(self) -> None:
        self.transport.close()


def sdp_offer(host: str, port: int, formats: str = "0 8 101", attrs: str = "",
              direction: str = "sendrecv", version: int = 1) -> bytes:
    rtpmap = "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n" if "101" in formats \
        else ""
    return (f"v=0\r\no=tester 1 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\n"
            f"t=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n{rtpmap}{attrs}a={direction}\r\n"
            ).encode()


@dataclass
class Dialog:
    call_id: str
    from_tag: str
    to_tag: str = ""
    cseq: int = 1
    remote_sdp: SessionDescription | None = None
    branch: str = field(default_factory=lambda: "z9hG4bK" + secrets.token_hex(6))
    # Through a proxy that record-routes: the route set and the remote target (§12.1.2)
    route: list[str] = field(default_factory=list)
    target: str | None = None


class SipClient:
    """Speaks SIP over one UDP socket to one server."""

    def __init__(self, sock: UdpSocket, server: tuple[str, int], user: str = "tester") -> None:
        self.sock = sock
        self.server = server
        self.user = user

    @classmethod
    async def open(cls, server: tuple[str, int], host: str = "127.0.0.1",
                   user: str = "tester") -> SipClient:
        return cls(await UdpSocket.open(host), server, user)

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, d: Dialog, *, ruri: str | None = None, body: bytes = b"",
                content_type: str | None = "application/sdp", extra: str = "",
                new_branch: bool = True, cseq: int | None = None) -> bytes:
        if new_branch:
            d.branch = "z9hG4bK" + secrets.token_hex(6)
        host, port = self.sock.host, self.sock.port
        routed = bool(d.route) and bool(d.to_tag) and method != "CANCEL"
        if routed:
            extra = "".join(f"Route: {r}\r\n" for r in d.route) + extra
        ruri = ruri or (d.target if routed and d.target else None) or \
            f"sip:assistant@{self.server[0]}:{self.server[1]}"
        to_tag = f";tag={d.to_tag}" if d.to_tag else ""
        ctype = f"Content-Type: {content_type}\r\n" if body and content_type else ""
        return (
            f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch={d.branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{self.user}@{host}>;tag={d.from_tag}\r\n"
            f"To: <sip:assistant@{self.server[0]}>{to_tag}\r\n"
            f"Call-ID: {d.call_id}\r\n"
            f"CSeq: {d.cseq if cseq is None else cseq} {method}\r\n"
            f"Contact: <sip:{self.user}@{host}:{port}>\r\n"
            f"{ctype}{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    def new_dialog(self) -> Dialog:
        return Dialog(secrets.token_hex(8) + "@test", secrets.token_hex(4))

    def send(self, data: bytes) -> None:
        self.sock.send(data, self.server)

    async def recv(self, timeout: float = 5) -> Message:
        while True:
            data, _ = await self.sock.recv(timeout)
            # RTCP goes to a caller's RTP port + 1, which these tests do not hold: a SIP
            # socket the system happened to put there gets another call's reports.
            if not (data and 0x80 <= data[0] <= 0xBF):
                return parse_message(data)

    async def response(self, status: int | None = None, timeout: float = 5) -> Response:
        """The next response (requests from the server are skipped)."""
        while True:
            msg = await self.recv(timeout)
            if isinstance(msg, Response) and (status is None or msg.status == status):
                return msg

    async def final(self, timeout: float = 5) -> Response:
        while True:
            r = await self.response(timeout=timeout)
            if r.status >= 200:
                return r

    async def call(self, d: Dialog, body: bytes, extra: str = "", ruri: str | None = None
                   ) -> Response:
        """INVITE → final response; on 2xx, records the To tag and SDP and sends the ACK."""
        self.send(self.request("INVITE", d, body=body, extra=extra, ruri=ruri))
        final = await self.final()
        if 200 <= final.status < 300:
            d.to_tag = final.to.tag or ""
            d.remote_sdp = parse_sdp(final.body)
            d.route = list(reversed(final.headers.get_all("Record-Route")))
            contact = final.headers.get("Contact") or ""
            d.target = contact[contact.find("<") + 1:contact.find(">")] if "<" in contact \
                else contact.split(";")[0].strip() or None
            self.send(self.request("ACK", d, body=b""))
        d.cseq += 1
        return final
