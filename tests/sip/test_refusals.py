"""New INVITEs refused for little (sip/refusals.py): read only as far as their 503 needs,
the same answer for every copy, and everything unusual left to the full parser."""

from __future__ import annotations

import pytest

from atende.sip.message import Request, Response, make_response, parse_message
from atende.sip.refusals import (
    KEEP_AFTER_ACK_S,
    KEEP_S,
    Refusals,
    invite_key,
    read_new_invite,
    refusal,
)
from atende.sip.transaction import TransactionLayer

SDP = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
       b"m=audio 6000 RTP/AVP 0\r\n")


def invite(change: tuple[str, str] | None = None, body: bytes = SDP) -> bytes:
    head = ("INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-77-1;rport\r\n"
            "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-proxy\r\n"
            "Max-Forwards: 70\r\n"
            "From: \"Alice\" <sip:alice@10.0.0.1:5061>;tag=a1\r\n"
            "To: <sip:service@127.0.0.1:5060>\r\n"
            "Call-ID: 77@10.0.0.1\r\n"
            "CSeq: 1 INVITE\r\n"
            "Contact: <sip:alice@10.0.0.1:5061>\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    if change is not None:
        assert change[0] in head
        head = head.replace(*change)
    return head.encode() + body


ACK = (b"ACK sip:service@127.0.0.1:5060 SIP/2.0\r\n"
       b"Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-77-1;rport\r\n"
       b"Max-Forwards: 70\r\nFrom: <sip:alice@10.0.0.1:5061>;tag=a1\r\n"
       b"To: <sip:service@127.0.0.1:5060>;tag=x\r\nCall-ID: 77@10.0.0.1\r\n"
       b"CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")


def test_a_new_invite_is_answered_as_the_full_path_answers_it() -> None:
    got = read_new_invite(invite())
    assert got is not None
    full = parse_message(invite())
    assert isinstance(full, Request)
    # The same transaction as the layer's: a copy of a call being set up is recognised.
    layer = TransactionLayer()
    layer.receive(full, ("udp", "10.0.0.1", 5061), 0.0)
    assert got.key in layer.server
    assert invite_key(ACK) == invite_key(invite()) == got.key
    answer = parse_message(refusal(got, ("192.0.2.7", 4000), "t1", 503, "Overloaded",
                                   [("Retry-After", "5")]))
    assert isinstance(answer, Response)
    expected = make_response(full, 503, to_tag="t1")
    assert (answer.status, answer.reason) == (503, "Overloaded")
    for name in ("From", "To", "Call-ID", "CSeq"):
        assert answer.headers.get(name) == expected.headers.get(name)
    assert answer.to.tag == "t1" and answer.headers.get("Retry-After") == "5"
    vias = answer.headers.get_all("Via")
    # Where it came from, on the top Via (RFC 3261 §18.2.1, RFC 3581); the rest as sent.
    assert vias == ["SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-77-1;rport=4000;"
                    "received=192.0.2.7", "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-proxy"]


@pytest.mark.parametrize("change", [
    ("To: <sip:service@127.0.0.1:5060>", "To: <sip:service@127.0.0.1:5060>;tag=b2"),
    ("To: <sip:service@127.0.0.1:5060>", "t: <sip:service@127.0.0.1:5060>"),  # compact
    ("CSeq: 1 INVITE\r\n", "CSeq: 1\r\n INVITE\r\n"),  # folded
    ("Call-ID: 77@10.0.0.1\r\n", "Call-ID: 77@10.0.0.1\r\nCall-ID: 78@10.0.0.1\r\n"),
    ("Max-Forwards: 70\r\n", ""),
    ("Max-Forwards: 70", "Max-Forwards: 0"),
    ("Max-Forwards: 70", "Max-Forwards: many"),
    ("CSeq: 1 INVITE", "CSeq: 1 OPTIONS"),
    ("CSeq: 1 INVITE", "CSeq: x INVITE"),
    ("From: \"Alice\" <sip:alice@10.0.0.1:5061>", "From: \"Alice <sip:alice@10.0.0.1:5061>"),
    ("INVITE sip:service@127.0.0.1:5060", "INVITE tel:+1555"),
    ("INVITE sip:service@127.0.0.1:5060 SIP/2.0", "INVITE sip:service@127.0.0.1:5060 SIP/3.0"),
    ("SIP/2.0/UDP 10.0.0.1:5061", "SIP/2.0/TCP 10.0.0.1:5061"),
    ("branch=z9hG4bK-77-1", "branch=old-2543"),
    ("SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-77-1;rport",
     "SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-77-1, SIP/2.0/UDP 10.0.0.8"),
    ("Contact: <sip:alice@10.0.0.1:5061>", "Contact <sip:alice@10.0.0.1:5061>"),
    ("Content-Length: ", "Content-Length: 9"),  # longer than the body
])
def test_anything_unusual_or_malformed_is_left_to_the_full_parser(
        change: tuple[str, str]) -> None:
    assert read_new_invite(invite()) is not None
    assert read_new_invite(invite(change)) is None


def test_other_messages_are_not_read() -> None:
    assert read_new_invite(ACK) is None
    assert read_new_invite(b"\r\n" + invite()) is None
    assert read_new_invite(invite().replace(b"\r\n\r\n", b"\r\n")) is None  # no end of head
    assert read_new_invite(invite().replace(b"Alice", "Alíce".encode("latin-1"))) is None
    assert invite_key(b"OPTIONS" + ACK[3:]) is None
    assert invite_key(ACK.replace(b"branch=z9hG4bK-77-1", b"branch=1")) is None


def test_refusals_are_kept_until_their_copies_stop_coming() -> None:
    refusals = Refusals()
    a, b = ("z9hG4bKa", "h:1", "INVITE"), ("z9hG4bKb", "h:1", "INVITE")
    refusals.add(a, b"503 a", 0.0)
    refusals.add(b, b"503 b", 1.0)
    assert refusals.answer(a) == b"503 a" and len(refusals) == 2
    assert not refusals.acked(("z9hG4bKc", "h:1", "INVITE"), 2.0)
    assert refusals.acked(b, 2.0)  # Timer I's wait from now on, not Timer H's
    refusals.expire(2.0 + KEEP_AFTER_ACK_S - 0.1)
    assert refusals.answer(b) == b"503 b"
    refusals.expire(2.0 + KEEP_AFTER_ACK_S)
    assert refusals.answer(b) is None and refusals.answer(a) == b"503 a"
    assert refusals.acked(a, 3.0)
    assert refusals.acked(a, 4.0)  # its copies are absorbed too, not kept longer
    refusals.expire(3.0 + KEEP_AFTER_ACK_S)
    assert refusals.answer(a) is None and len(refusals) == 0
    refusals.add(a, b"503 a", 10.0)
    refusals.expire(10.0 + KEEP_S - 0.1)
    assert refusals.answer(a) == b"503 a"
    refusals.expire(10.0 + KEEP_S)  # never ACKed: kept as long as Timer H
    assert len(refusals) == 0
