"""The one builder of the requests we send: mandatory headers (RFC 3261 §8.1.1), and the
CANCEL and non-2xx ACK that repeat their INVITE's transaction (§9.1, §17.1.1.3)."""

from __future__ import annotations

from atende.sip.message import Request, Response, parse_message
from atende.sip.requests import ack_for_failure, cancel_for, new_request
from atende.sip.uri import SipUri

VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-abc;rport"


def invite() -> Request:
    req = new_request("INVITE", SipUri("pbx.example", user="100"),
                      "<sip:ai@pbx.example>;tag=t1", "<sip:100@pbx.example>", "c1@atende", 7,
                      contact="<sip:ai@127.0.0.1:5060>", route=["<sip:proxy.example;lr>"],
                      headers=[("Allow", "INVITE, BYE"), ("Replaces", "x;to-tag=a;from-tag=b")],
                      body=b"v=0\r\n", content_type="application/sdp")
    req.headers.insert_first("Via", VIA)
    return req


def test_a_new_request_has_every_mandatory_header_and_parses_back() -> None:
    req = invite()
    parsed = parse_message(req.encode())
    assert isinstance(parsed, Request)
    assert [name for name, _ in parsed.headers][:8] == [
        "Via", "Route", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact"]
    assert parsed.cseq.number == 7 and parsed.cseq.method == "INVITE"
    assert parsed.headers.get("Replaces") == "x;to-tag=a;from-tag=b"
    assert parsed.headers.get("Content-Type") == "application/sdp" and parsed.body == b"v=0\r\n"


def test_cancel_repeats_the_invites_via_route_and_cseq_number() -> None:
    req = invite()
    cancel = cancel_for(req)
    assert cancel.method == "CANCEL" and cancel.uri == req.uri
    assert cancel.headers.get_all("Via") == [VIA]
    assert cancel.headers.get_all("Route") == ["<sip:proxy.example;lr>"]
    assert (cancel.cseq.number, cancel.cseq.method) == (7, "CANCEL")
    assert cancel.headers.get("To") == "<sip:100@pbx.example>" and not cancel.body
    assert "Contact" not in cancel.headers and "Replaces" not in cancel.headers


def test_ack_of_a_failure_takes_the_responses_to_tag() -> None:
    req = invite()
    resp = Response(486, "Busy Here")
    resp.headers.add("To", "<sip:100@pbx.example>;tag=far")
    ack = ack_for_failure(req, resp)
    assert ack.method == "ACK" and (ack.cseq.number, ack.cseq.method) == (7, "ACK")
    assert ack.headers.get("To") == "<sip:100@pbx.example>;tag=far"
    assert ack.headers.get_all("Via") == [VIA]
    assert ack.headers.get("From") == "<sip:ai@pbx.example>;tag=t1"
