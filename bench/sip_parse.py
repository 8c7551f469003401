"""SIP messages parsed per second (a 1 kB INVITE with SDP, and a 200 OK)."""

from __future__ import annotations

import time

from atende.sip.message import parse_message

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:assistant@192.0.2.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl\r\n'
    b"To: <sip:assistant@192.0.2.1>\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: bench\r\n"
    b"Content-Type: application/sdp\r\n"
    + f"Content-Length: {len(SDP)}\r\n\r\n".encode() + SDP
)
OK = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9\r\n"
    b"From: <sip:alice@example.com>;tag=9fxced76sl\r\nTo: <sip:bob@example.com>;tag=x\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.10\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
)


def rate(data: bytes, seconds: float = 2.0) -> float:
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            parse_message(data)
        n += 200
    return n / elapsed


if __name__ == "__main__":
    print(f"INVITE with SDP ({len(INVITE)} B): {rate(INVITE):,.0f} parses/s")
    print(f"200 OK ({len(OK)} B):            {rate(OK):,.0f} parses/s")
