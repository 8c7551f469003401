"""Dialogs (RFC 3261 §12) and the UAS 2xx retransmission schedule (§13.3.1.4)."""

from __future__ import annotations

from atende.sip.dialog import Dialog, DialogState
from atende.sip.headers import CSeq
from atende.sip.message import Request, make_response, parse_message
from atende.sip.transaction import T1, T2


def invite() -> Request:
    raw = (
        b"INVITE sip:assistant@192.0.2.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
        b"Record-Route: <sip:proxy2.example.com;lr>, <sip:proxy1.example.com;lr>\r\n"
        b'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
        b"To: <sip:assistant@192.0.2.1>\r\n"
        b"Call-ID: c1\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@10.0.0.1:5062>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    return msg


def test_uas_dialog_from_invite() -> None:
    req = invite()
    d = Dialog.for_uas(req, "local1", "<sip:atende@192.0.2.1>")
    assert req.from_.tag == "a1"  # the message's parsed From is left as it was
    assert d.id == ("c1", "local1", "a1")
    assert d.remote_target.host == "10.0.0.1" and d.remote_target.port == 5062
    assert d.route_set == ["<sip:proxy2.example.com;lr>", "<sip:proxy1.example.com;lr>"]
    assert d.next_hop().host == "proxy2.example.com"
    bye = d.create_request("BYE")
    assert bye.uri == d.remote_target
    assert bye.headers.get_all("Route") == d.route_set
    assert bye.from_.tag == "local1" and bye.to.tag == "a1"
    assert bye.to.display == "Alice"
    first = bye.cseq.number
    assert d.create_request("INFO").cseq.number == first + 1


def test_remote_cseq_must_increase() -> None:
    d = Dialog.for_uas(invite(), "l", "<sip:x@y>")
    assert d.accept_remote_cseq(CSeq(11, "INVITE"))
    assert not d.accept_remote_cseq(CSeq(11, "BYE"))
    assert not d.accept_remote_cseq(CSeq(5, "BYE"))
    assert d.accept_remote_cseq(CSeq(11, "ACK"))  # ACK reuses the INVITE's number
    assert d.accept_remote_cseq(CSeq(12, "BYE"))


def test_2xx_is_retransmitted_until_ack() -> None:
    d = Dialog.for_uas(invite(), "l", "<sip:x@y>")
    ok = make_response(invite(), 200, to_tag="l")
    d.start_2xx(ok, 0.0, ("udp", "10.0.0.1", 5060))
    sent: list[float] = []
    t = 0.0
    while (nxt := d.next_deadline()) is not None and nxt < 8.0:
        t = nxt
        resend, timed_out = d.tick(t)
        assert not timed_out
        if resend is not None:
            sent.append(t)
    assert sent == [T1, 3 * T1, 7 * T1, 15 * T1]
    d.on_ack()
    assert d.state == DialogState.CONFIRMED
    assert d.next_deadline() is None


def test_2xx_gives_up_without_ack() -> None:
    d = Dialog.for_uas(invite(), "l", "<sip:x@y>")
    d.start_2xx(make_response(invite(), 200, to_tag="l"), 0.0, ("udp", "10.0.0.1", 5060))
    gaps = []
    last = 0.0
    while True:
        t = d.next_deadline()
        assert t is not None
        _resend, timed_out = d.tick(t)
        if timed_out:
            assert t == 64 * T1
            break
        gaps.append(t - last)
        last = t
    assert max(gaps) == T2


def test_no_retransmission_on_tcp() -> None:
    d = Dialog.for_uas(invite(), "l", "<sip:x@y>")
    d.start_2xx(make_response(invite(), 200, to_tag="l"), 0.0, ("tcp", "10.0.0.1", 5060))
    assert d.tick(10.0) == (None, False)
    assert d.tick(64 * T1) == (None, True)


def test_dialog_creating_responses_echo_record_route() -> None:
    """§12.1.1: without the echo, the caller's in-dialog requests bypass its proxies."""
    rr = ["<sip:proxy2.example.com;lr>", "<sip:proxy1.example.com;lr>"]
    for status in (180, 200):
        assert make_response(invite(), status, to_tag="l").headers.get_all("Record-Route") == rr
    for status in (100, 486):
        assert make_response(invite(), status, to_tag="l").headers.get_all("Record-Route") == []
