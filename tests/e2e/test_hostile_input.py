"""Malformed and hostile SIP: the right response or silence, and the server keeps serving."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from atende.sip.message import Response, StreamFramer, parse_message
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.baresip import Baresip
from tests.peers.sipclient import UdpSocket


def request(port: int, *, start: str | None = None, drop: str | None = None,
            replace: tuple[str, str] | None = None, extra: str = "", body: bytes = b"",
            cl: str | None = None, method: str = "OPTIONS") -> bytes:
    branch = "z9hG4bK" + secrets.token_hex(6)
    call_id = secrets.token_hex(8)
    lines = [
        start or f"{method} sip:assistant@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport",
        "Max-Forwards: 70",
        "From: <sip:hostile@127.0.0.1>;tag=h1",
        "To: <sip:assistant@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:hostile@127.0.0.1:{port}>",
    ]
    if drop:
        lines = [ln for ln in lines if not ln.startswith(drop + ":")]
    text = "\r\n".join(lines) + "\r\n" + extra
    text += f"Content-Length: {len(body) if cl is None else cl}\r\n\r\n"
    data = text.encode("utf-8", "surrogateescape") + body
    if replace:
        data = data.replace(replace[0].encode("latin-1"), replace[1].encode("latin-1"))
    return data


def cases(port: int) -> list[tuple[str, bytes, int | None]]:
    """(name, datagram, expected status or None for 'dropped')."""
    return [
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200), None),
        ("empty-lines", b"\r\n\r\n", None),
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
        ("bad-version", request(port, start="OPTIONS sip:assistant@127.0.0.1 SIP/7.0"), 505),
        ("tel-uri", request(port, start="OPTIONS tel:+15551234 SIP/2.0"), 416),
        ("bad-uri", request(port, start="OPTIONS sip:@@ SIP/2.0"), 400),
        ("no-call-id", request(port, drop="Call-ID"), 400),
        ("no-from", request(port, drop="From"), 400),
        ("no-cseq", request(port, drop="CSeq"), 400),
        ("no-via", request(port, drop="Via"), None),
        ("cseq-mismatch", request(port, replace=("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")), 400),
        ("cseq-garbage", request(port, replace=("CSeq: 1 OPTIONS", "CSeq: x OPTIONS")), 400),
        ("cl-not-a-number", request(port, cl="ten"), 400),
        # RFC 3261 §18.3: a request shorter than its Content-Length gets 400
        ("cl-too-long", request(port, body=b"v=0\r\n", cl="500"), 400),
        ("cl-negative", request(port, cl="-5"), 400),
        ("non-utf8", request(port, replace=("hostile@", "host\xff\xfe@")), 400),
        ("huge-header", request(port, extra="X-Junk: " + "A" * 50000 + "\r\n"), 513),
        ("many-headers", request(port, extra="".join(f"X-H{i}: v\r\n" for i in range(300))),
         513),
        ("bad-header-line", request(port, extra="this line has no colon\r\n"), 400),
        ("bad-max-forwards", request(port, replace=("Max-Forwards: 70", "Max-Forwards: x")),
         400),
        ("unterminated-quote", request(port, replace=("From: <", 'From: "open <')), 400),
        ("invite-bad-sdp", request(port, method="INVITE", body=b"\xff\xfe\x00garbage",
                                   extra="Content-Type: application/sdp\r\n"), 400),
        ("invite-no-contact", request(port, method="INVITE", drop="Contact"), 400),
        ("unknown-method", request(port, method="XYZZY"), 501),
        ("response-garbage", b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n", None),
        ("stray-response", b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx"
                           b"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: zz\r\n"
                           b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", None),
        ("stray-ack", request(port, method="ACK"), None),
        ("keepalive", b"\r\n\r\n", None),
        ("nul-bytes", bytes(64), None),
        *hardening_cases(port),
    ]


def hardening_cases(port: int) -> list[tuple[str, bytes, int | None]]:
    """Issue 16, items 1-3: what used to raise in the parser, go unanswered, or be taken."""
    sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           b"m=audio 4000 RTP/AVP 0\r\n")
    sdp_type = "Content-Type: application/sdp\r\n"
    return [
        ("cl-superscript", request(port, cl="\u00b2"), 400),
        ("port-circled", request(port, start="OPTIONS sip:assistant@127.0.0.1:5\u246060 SIP/2.0"),
         400),
        ("via-open-quote", request(port, replace=(";rport", ';x="open')), None),
        ("start-leading-space", request(port, start=" OPTIONS sip:assistant@127.0.0.1 SIP/2.0"),
         400),
        ("start-two-spaces", request(port, start="OPTIONS  sip:assistant@127.0.0.1 SIP/2.0"),
         400),
        ("two-content-lengths", request(port, extra="Content-Length: 4\r\n"), 400),
        ("two-call-ids", request(port, extra="Call-ID: second\r\n"), 400),
        ("two-tos", request(port, extra="t: <sip:other@127.0.0.1>\r\n"), 400),
        ("two-max-forwards", request(port, extra="Max-Forwards: 9\r\n"), 400),
        ("via-with-spaces", request(port, replace=("Via: SIP/2.0/UDP", "Via: SIP / 2.0 / UDP")),
         200),
        ("user-reserved", request(
            port, start="OPTIONS sip:user;par=u%40example.net@127.0.0.1 SIP/2.0"), 200),
        ("invite-accept-html", request(port, method="INVITE", body=sdp,
                                       extra=sdp_type + "Accept: text/html\r\n"), 406),
        ("invite-sdp-port", request(port, method="INVITE", body=sdp.replace(b"4000", b"99999"),
                                    extra=sdp_type), 400),
        ("invite-sdp-host", request(port, method="INVITE", body=sdp.replace(
            b"c=IN IP4 127.0.0.1", b"c=IN IP4 media.example.com"), extra=sdp_type), 400),
    ]


class TcpPeer:
    """A SIP peer on one TCP connection to atende."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer()
        self.pending: list[bytes] = []
        self.port = writer.get_extra_info("sockname")[1]

    @classmethod
    async def open(cls, port: int) -> TcpPeer:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, **kw: Any) -> None:
        """A request made by ``request``, its Via saying TCP."""
        self.writer.write(request(self.port, **kw).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))

    async def reply(self) -> Response | None:
        """The next response, or None when atende closed the connection."""
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            if not data:
                return None
            self.pending.extend(self.framer.feed(data))
        msg = parse_message(self.pending.pop(0), stream=True)
        assert isinstance(msg, Response)
        return msg


async def test_what_broke_the_parser_gets_400_over_tcp_and_the_connection_stays(
        atende: AtendeProcess) -> None:
    peer = await TcpPeer.open(atende.sip_port)
    try:
        for kw in ({"start": "OPTIONS sip:a@127.0.0.1:5\u246060 SIP/2.0"},
                   {"start": " OPTIONS sip:a@127.0.0.1 SIP/2.0"},
                   {"extra": "Call-ID: second\r\n"},
                   {"replace": (";rport", ';x="open')}):  # no usable Via: no answer
            peer.send(**kw)
            if "replace" not in kw:
                reply = await peer.reply()
                assert reply is not None and reply.status == 400, kw
        peer.send()
        reply = await peer.reply()
        assert reply is not None and reply.status == 200  # the same connection, still served
    finally:
        peer.writer.close()
    # A length that cannot be read leaves no way to find the next message: its 400, then
    # the connection is closed.
    for extra, cl in (("", "\u00b2"), ("Content-Length: 3\r\n", None)):
        peer = await TcpPeer.open(atende.sip_port)
        peer.send(extra=extra, cl=cl)
        reply = await peer.reply()
        assert reply is not None and reply.status == 400
        assert await peer.reply() is None
        peer.writer.close()
    assert atende.alive()


def call_id_of(raw: bytes) -> bytes | None:
    """The Call-ID a message says it has, read off its bytes (it may not parse)."""
    found = re.search(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", raw, re.IGNORECASE)
    return found.group(1).strip() if found else None


async def answered(sock: UdpSocket, target: tuple[str, int], data: bytes, port: int
                   ) -> int | None:
    """Send ``data`` then an OPTIONS probe, and return the status of the final answer to
    ``data`` (None: none). What the server can answer as it reads it comes before the
    probe's 200; an INVITE it takes in (to admit the call, or to read its offer) is
    answered when that is done, maybe after the probe, so one with a Call-ID is waited
    for by that Call-ID. Answers with another Call-ID are a late answer to an earlier
    case and are passed over."""
    probe = request(port)
    probe_call_id = parse_message(probe).call_id.encode()
    own = call_id_of(data)
    sock.send(data, target)
    sock.send(probe, target)
    probed = False
    while True:
        try:
            raw, _ = await sock.recv(5)
        except TimeoutError:
            assert probed, "the probe went unanswered"
            return None
        # Answers to broken requests may lack the headers they lacked: read the status line.
        assert raw.startswith(b"SIP/2.0 "), raw[:80]
        status = int(raw[8:11])
        theirs = call_id_of(raw)
        if theirs == probe_call_id:
            assert status == 200
            probed = True
            if not (data.startswith(b"INVITE ") and own is not None):
                return None
            continue
        if status >= 200 and (theirs is None or theirs == own):
            return status


async def test_malformed_corpus(atende: AtendeProcess, tmp_path: Path) -> None:
    sock = await UdpSocket.open()
    target = ("127.0.0.1", atende.sip_port)
    failures = []
    try:
        for name, data, expected in cases(sock.port):
            got = await answered(sock, target, data, sock.port)
            if got != expected:
                failures.append(f"{name}: expected {expected}, got {got}")
    finally:
        sock.close()
    assert not failures, failures
    assert atende.alive()

    # And it still takes a real call.
    phone = Baresip(tmp_path, speech_wav(tmp_path / "in.wav", [], tail_s=10),
                    account="<sip:afterhostile@127.0.0.1>;regint=0")
    await phone.start()
    try:
        await phone.command("dial", f"sip:assistant@127.0.0.1:{atende.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED")
    finally:
        await phone.stop()
    await atende.wait_for_call(lambda c: c["from_user"] == "afterhostile"
                               and c["status"] == "completed")


@pytest.mark.parametrize("size", [1, 100, 1400, 65000])
async def test_random_bytes_never_kill_the_server(atende: AtendeProcess, size: int) -> None:
    sock = await UdpSocket.open()
    try:
        for _ in range(20):
            junk = secrets.token_bytes(size)
            got = await answered(sock, ("127.0.0.1", atende.sip_port), junk, sock.port)
            assert got is None
    finally:
        sock.close()
    assert atende.alive()
