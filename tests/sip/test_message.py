"""RFC 3261 message parsing and serialization."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from atende.sip import headers, message, uri
from atende.sip.headers import CSeq, Headers, Via, canonical_name
from atende.sip.message import (
    Request,
    Response,
    SipParseError,
    StreamFramer,
    local_response,
    make_response,
    mark_received,
    parse_message,
)
from atende.sip.uri import NameAddr, SipUri, UriError

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def invite(extra: str = "", body: bytes = SDP, start: str = "INVITE sip:bob@example.com SIP/2.0",
           cl: str | None = None) -> bytes:
    head = (
        f"{start}\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice \\"A\\" Smith" <sip:alice@example.com>;tag=1928301774\r\n'
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
        "CSeq: 314159 INVITE\r\n"
        "Contact: <sip:alice@10.0.0.1>\r\n"
        "Content-Type: application/sdp\r\n"
        f"{extra}"
        f"Content-Length: {len(body) if cl is None else cl}\r\n\r\n"
    )
    return head.encode() + body


def test_parses_a_typical_invite() -> None:
    msg = parse_message(invite())
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri("example.com", "bob")
    assert msg.call_id == "a84b4c76e66710@pc33.example.com"
    assert msg.cseq == CSeq(314159, "INVITE")
    assert msg.from_.display == 'Alice "A" Smith'
    assert msg.from_.tag == "1928301774"
    assert msg.to.tag is None
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert "rport" in msg.top_via.params
    assert msg.body == SDP


def test_compact_forms_folding_and_multi_value_headers() -> None:
    raw = (
        b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070"
        b";branch=z9hG4bK2\r\n"
        b"Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\n"
        b"f: <sip:a@b>;tag=x\r\n"
        b"t: <sip:carol@chicago.com>\r\n"
        b"i: abc\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Subject: a folded\r\n"
        b"   subject line\r\n"
        b"k: timer,\r\n 100rel\r\n"
        b"l: 0\r\n\r\n"
    )
    msg = parse_message(raw)
    vias = msg.headers.get_all("Via")
    assert [Via.parse(v).host for v in vias] == ["a.example.com", "b.example.com",
                                                  "c.example.com"]
    assert Via.parse(vias[1]).port == 5070
    assert msg.headers.get("Subject") == "a folded subject line"
    assert msg.headers.get_all("Supported") == ["timer", "100rel"]
    assert msg.call_id == "abc"


def test_serialization_round_trips_and_fixes_content_length() -> None:
    msg = parse_message(invite())
    msg.body = b"v=0\r\n"
    again = parse_message(msg.encode())
    assert again.body == b"v=0\r\n"
    assert again.headers.get("Content-Length") == "5"
    assert again.headers.get("From") == msg.headers.get("From")


def test_datagram_body_longer_than_content_length_is_truncated() -> None:
    msg = parse_message(invite(cl="4"))
    assert msg.body == SDP[:4]


def test_response_parsing() -> None:
    raw = (b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
           b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: q\r\nCSeq: 1 INVITE\r\n"
           b"Content-Length: 0\r\n\r\n")
    msg = parse_message(raw)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (180, "Ringing")
    assert msg.to.tag == "2"


@pytest.mark.parametrize(
    ("data", "status", "answerable"),
    [
        (b"garbage\r\n\r\n", 400, False),
        (b"\x00\x01\x02\x03binary", 400, False),
        (invite(start="INVITE sip:bob@example.com SIP/3.0"), 505, True),
        (invite(start="INVITE tel:+12025550123 SIP/2.0"), 416, True),
        (invite(start="INVITE sip:@ SIP/2.0"), 400, True),
        (invite().replace(b"Call-ID: a84b4c76e66710@pc33.example.com\r\n", b""), 400, True),
        (invite().replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"), 400, True),
        (invite().replace(b"CSeq: 314159 INVITE", b"CSeq: abc INVITE"), 400, True),
        (invite(cl="abc"), 400, True),
        (invite(cl="9999"), 400, True),  # §18.3: a request shorter than its length: 400
        # Digits that str.isdigit takes and int refuses (issue 16.1)
        (invite(cl="\u00b2"), 400, True),
        (invite(start="INVITE sip:bob@example.com:5\u246060 SIP/2.0"), 400, True),
        (invite().replace(b"CSeq: 314159", "CSeq: 31415\u2460".encode()), 400, True),
        (invite(extra="Max-Forwards: \u00b2\r\n").replace(b"Max-Forwards: 70\r\n", b""),
         400, True),
        # A Via with an unterminated quote cannot be answered (nowhere to send it)
        (invite().replace(b";rport\r\n", b';x="abc\r\n'), 400, False),
        # RFC 3261 §7.1: one space between the request line's parts, none around them
        (invite(start=" INVITE sip:bob@example.com SIP/2.0"), 400, True),
        (invite(start="INVITE  sip:bob@example.com SIP/2.0"), 400, True),
        (invite(start="INVITE sip:bob@example.com SIP/2.0 "), 400, True),
        # A Request-URI parameter with an unterminated quote (found by the property test)
        (invite(start='INVITE sip:bob@example.com;x="open SIP/2.0'), 400, True),
        # Headers a request carries once (a second Content-Length is a smuggling attempt)
        (invite(extra="Content-Length: 0\r\n"), 400, True),
        (invite(extra="Call-ID: another@pc33\r\n"), 400, True),
        (invite(extra="f: <sip:eve@example.com>;tag=9\r\n"), 400, True),
        (invite(extra="To: <sip:carol@example.com>\r\n"), 400, True),
        (invite(extra="CSeq: 314160 INVITE\r\n"), 400, True),
        (invite(extra="Max-Forwards: 69\r\n"), 400, True),
        (invite().replace(b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n",
                          b""), 400, False),
        (invite().replace(b"Via: SIP/2.0/UDP", b"Via: HTTP/1.1/UDP"), 400, False),
        (invite().replace(b'"Alice', b'"Al\xff\xfeice'), 400, True),
        (invite(extra="X-Big: " + "a" * 40000 + "\r\n"), 513, True),
        (invite(extra="Bad Header Line\r\n"), 400, True),
        # A known name without its colon (names are remembered as written before it)
        (invite(extra="Via\r\n"), 400, True),
        (invite().replace(b"From: ", b"From: <sip:unterminated"), 400, True),
    ],
)
def test_malformed_messages(data: bytes, status: int, answerable: bool) -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(data)
    assert err.value.status == status
    assert (err.value.message is not None) == answerable
    if answerable:
        assert isinstance(err.value.message, Request)


def test_a_response_shorter_than_its_length_or_with_a_bad_status_line_is_dropped() -> None:
    ok = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
          b"To: <sip:c@d>;tag=2\r\nCall-ID: q\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    for data in (ok.replace(b"Length: 0", b"Length: 50"),
                 ok.replace(b"200 OK", "2\u0660\u0660 OK".encode()),
                 ok.replace(b"SIP/2.0 200", b" SIP/2.0 200")):
        with pytest.raises(SipParseError) as err:
            parse_message(data)
        assert err.value.message is None


def test_valid_though_unusual_requests_parse() -> None:
    """RFC 4475 §3.1.1: whitespace around a Via's separators, folded headers, reserved and
    escaped characters in the user part, a method nobody knows."""
    msg = parse_message(invite().replace(
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
        b"Via: SIP  /  2.0\r\n /UDP 10.0.0.1 : 5060 ; branch = z9hG4bK776asdhds ; rport"))
    assert (msg.top_via.transport, msg.top_via.host, msg.top_via.port, msg.top_via.branch) == (
        "UDP", "10.0.0.1", 5060, "z9hG4bK776asdhds")
    for user in ("user;par=u%40example.net", "sips%3Auser%40example.com", "a?b=c;d",
                 "!~*'()&=+$,;?/"):
        msg = parse_message(invite(start=f"INVITE sip:{user}@example.com SIP/2.0"))
        assert isinstance(msg, Request) and msg.uri.user == user, user
    msg = parse_message(invite(start="NEWMETHOD sip:bob@example.com SIP/2.0").replace(
        b"314159 INVITE", b"314159 NEWMETHOD"))
    assert isinstance(msg, Request) and msg.method == "NEWMETHOD"


def test_the_stream_framer_refuses_two_lengths() -> None:
    with pytest.raises(SipParseError):
        StreamFramer().feed(invite(extra="Content-Length: 3\r\n"))


def test_the_typed_headers_are_parsed_once_while_their_values_stay() -> None:
    msg = parse_message(invite())
    assert isinstance(msg, Request)
    # Parsed while the message was checked, and not again.
    assert msg.to is msg.to and msg.from_ is msg.from_ and msg.top_via is msg.top_via
    assert msg.cseq is msg.cseq and msg.contact is msg.contact
    before = msg.to
    msg.headers.set("To", "<sip:bob@example.com>;tag=xyz")
    assert msg.to is not before and msg.to.tag == "xyz" and before.tag is None
    msg.headers.remove("Via")
    msg.headers.add("Via", "SIP/2.0/TCP 10.0.0.2:5070;branch=z9hG4bKother")
    assert (msg.top_via.transport, msg.top_via.branch) == ("TCP", "z9hG4bKother")
    msg.headers.insert_first("Via", "SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKfirst")
    assert msg.top_via.branch == "z9hG4bKfirst"
    to = msg.to
    msg.headers.add("Subject", "other headers changed")  # To's value did not: kept
    assert msg.to is to
    msg.headers = msg.headers.copy()  # other headers, the same values: kept
    assert msg.to is to
    msg.headers.set("To", "<sip:carol@example.com>")  # in the copy
    assert msg.to.uri.user == "carol"


def test_a_response_reads_through_its_requests_views_where_its_headers_are_the_same() -> None:
    req = parse_message(invite())
    assert isinstance(req, Request)
    resp = make_response(req, 200, to_tag="ours")
    assert resp.from_ is req.from_ and resp.cseq is req.cseq and resp.top_via is req.top_via
    # The To gained a tag: read anew, the request's own untouched.
    assert resp.to is not req.to and resp.to.tag == "ours" and req.to.tag is None
    assert str(resp.to.uri) == str(req.to.uri)

def test_make_response_copies_dialog_headers_and_adds_to_tag() -> None:
    req = parse_message(invite())
    assert isinstance(req, Request)
    resp = make_response(req, 180, to_tag="abc")
    again = parse_message(resp.encode())
    assert isinstance(again, Response)
    assert again.to.tag == "abc"
    assert again.headers.get("Via") == req.headers.get("Via")
    assert again.cseq == req.cseq
    assert make_response(req, 100, to_tag="abc").to.tag is None  # 100 never carries a tag


def test_every_response_but_100_gets_a_to_tag_the_same_for_copies_of_a_request() -> None:
    # RFC 3261 §8.2.6.2: a refusal of a new request carries a To tag as an answer does;
    # a copy of the request answered again (§8.2.7, statelessly too) gets the same one.
    req = parse_message(invite())
    copy = parse_message(invite())
    other = parse_message(invite().replace(b"branch=z9hG4bK776asdhds", b"branch=z9hG4bKnew"))
    assert isinstance(req, Request) and isinstance(copy, Request) and isinstance(other, Request)
    tags = [parse_message(make_response(r, 486).encode()).to.tag for r in (req, copy, other)]
    assert tags[0] and len(tags[0]) >= 8
    assert tags[0] == tags[1] != tags[2]
    assert make_response(req, 503, "Overloaded").to.tag == tags[0]
    assert make_response(req, 100).to.tag is None
    assert make_response(req, 486, to_tag="mine").to.tag == "mine"
    # A request within a dialog keeps its own To, tag and all.
    tagged = parse_message(invite().replace(b"To: <sip:bob@example.com>",
                                             b"To: <sip:bob@example.com>;tag=theirs"))
    assert isinstance(tagged, Request)
    assert make_response(tagged, 481, to_tag="mine").to.tag == "theirs"
    # What a transaction makes up for its own request (Timer B's 408) has none: its
    # reader tells it from the peer's by that.
    assert local_response(req, 408).to.tag is None
    assert local_response(req, 408).headers.get("To") == "<sip:bob@example.com>"


def test_the_top_via_says_where_a_request_came_from() -> None:
    two = "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy\r\n"
    req = parse_message(invite(extra=two).replace(b";rport", b"").replace(
        b"Via: SIP/2.0/UDP 10.0.0.1:5060", b"Via: SIP/2.0/UDP  10.0.0.1:5060"))
    assert isinstance(req, Request)
    before = req.headers.get_all("Via")
    mark_received(req, "10.0.0.1", 5060)  # from where it says, no rport asked: untouched
    assert req.headers.get_all("Via") == before
    seen = req.top_via
    mark_received(req, "192.0.2.1", 4000)  # from elsewhere (RFC 3261 §18.2.1)
    assert req.headers.get_all("Via") == [
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;received=192.0.2.1",
        "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy"]
    assert "received" not in seen.params  # a view handed out before is not changed
    assert req.top_via.params["received"] == "192.0.2.1"
    asked = parse_message(invite())  # rport asked for (RFC 3581): filled in
    assert isinstance(asked, Request)
    mark_received(asked, "10.0.0.1", 5099)
    assert asked.top_via.params == {"branch": "z9hG4bK776asdhds", "rport": "5099"}
    assert asked.headers.get("Via") == ("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;"
                                        "rport=5099")


def test_stream_framer_cuts_by_content_length() -> None:
    a, b = invite(), invite(extra="X-Second: yes\r\n")
    framer = StreamFramer()
    data = a + b"\r\n\r\n" + b
    out: list[bytes] = []
    for i in range(0, len(data), 37):
        out.extend(framer.feed(data[i : i + 37]))
    assert out == [a, StreamFramer.PING, b]


def test_stream_framer_requires_content_length() -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError):
        framer.feed(invite().replace(b"Content-Length: ", b"X-Length: "))


def test_stream_parse_requires_content_length() -> None:
    data = invite().replace(b"Content-Length: ", b"X-Length: ")
    with pytest.raises(SipParseError):
        parse_message(data, stream=True)


def test_uris_and_name_addr() -> None:
    u = SipUri.parse("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x")
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sips", "alice", "secret",
                                                               "2001:db8::1", 5061)
    assert u.params == {"transport": "tcp", "lr": None}
    assert str(u) == "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x"
    na = NameAddr.parse("sip:bob@h;tag=9")  # addr-spec: params belong to the header
    assert na.tag == "9" and na.uri.params == {}
    na = NameAddr.parse('"a<b" <sip:x@y;transport=udp>;tag=1')
    assert na.display == "a<b" and na.uri.params == {"transport": "udp"} and na.tag == "1"


def test_uris_parsed_are_shared_unchangeable_and_bounded() -> None:
    a = SipUri.parse("sip:bob@example.com;transport=tcp")
    assert SipUri.parse("sip:bob@example.com;transport=tcp") is a
    assert SipUri.parse(" sip:bob@example.com;transport=tcp ") == a
    with pytest.raises(FrozenInstanceError):
        a.user = "eve"  # type: ignore[misc]
    for _ in range(2):  # a refusal is not remembered
        with pytest.raises(UriError):
            SipUri.parse("sip:bob@example.com:99999")
    for i in range(3000):  # a peer making up URIs
        assert SipUri.parse(f"sip:u{i}@example.com").user == f"u{i}"
    assert len(uri._PARSED) <= uri.MAX_PARSED
    long = f"sip:{'a' * 300}@example.com"
    assert SipUri.parse(long).user == "a" * 300 and long not in uri._PARSED


def test_header_names_are_canonical() -> None:
    assert canonical_name("call-id") == "Call-ID"
    assert canonical_name("i") == "Call-ID"
    assert canonical_name("CSEQ") == "CSeq"
    assert canonical_name("x-custom-thing") == "X-Custom-Thing"
    h = Headers([("v", "SIP/2.0/UDP a"), ("Via", "SIP/2.0/UDP b")])
    h.set("Via", "SIP/2.0/UDP c")
    assert h.get_all("Via") == ["SIP/2.0/UDP c"]
    assert "via" in h and "V" in h and "Route" not in h


def test_the_names_remembered_are_bounded_whatever_a_peer_sends() -> None:
    for i in range(3000):  # a peer making up header names
        assert canonical_name(f"x-made-up-{i}") == f"X-Made-Up-{i}"
    long = "x-" + "a" * 500
    assert canonical_name(long) == "X-A" + "a" * 499
    assert len(headers._CANONICAL) <= 1024 and long not in headers._CANONICAL
    assert canonical_name("cseq") == "CSeq"  # still right once full
    for i in range(3000):  # and in messages
        msg = parse_message(invite(extra=f"x-made-up-{i}: 1\r\nSUBJECT : {i}\r\n"))
        assert msg.headers.get(f"X-Made-Up-{i}") == "1"
        assert msg.headers.get("Subject") == str(i)
    assert len(message._NAMES) <= 1024
