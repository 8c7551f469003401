"""REFER targets, NOTIFY progress and sipfrag bodies (RFC 3515, RFC 3420)."""

from __future__ import annotations

import pytest

from atende.sip.message import Request, parse_message
from atende.sip.refer import (
    ReferError,
    notify_progress,
    parse_sipfrag,
    refer_target,
    sipfrag,
)


def request(method: str, headers: str, body: bytes = b"") -> Request:
    raw = (f"{method} sip:atende@192.0.2.1 SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
           "From: <sip:alice@example.com>;tag=a\r\nTo: <sip:atende@192.0.2.1>;tag=b\r\n"
           f"Call-ID: c1\r\nCSeq: 7 {method}\r\n{headers}"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    return msg


def test_refer_target_plain_and_with_replaces() -> None:
    t = refer_target(request("REFER", "Refer-To: <sip:bob@pbx.example.com>\r\n"))
    assert str(t.uri) == "sip:bob@pbx.example.com" and t.headers == ()
    replaces = "abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2"
    t = refer_target(request("REFER", f"r: <sip:bob@pbx.example.com?Replaces={replaces}>\r\n"))
    assert str(t.uri) == "sip:bob@pbx.example.com"
    assert t.headers == (("Replaces", "abc@host;to-tag=1;from-tag=2"),)


@pytest.mark.parametrize(("headers", "status"), [
    ("", 400),
    ("Refer-To: <sip:a@x>\r\nRefer-To: <sip:b@x>\r\n", 400),
    ("Refer-To: <mailto:bob@example.com>\r\n", 400),
    ("Refer-To: <sip:bob@x?Subject=hi>\r\n", 403),
])
def test_bad_refer_targets(headers: str, status: int) -> None:
    with pytest.raises(ReferError) as err:
        refer_target(request("REFER", headers))
    assert err.value.status == status


def notify(state: str, body: bytes, event: str = "refer",
           ctype: str = "message/sipfrag;version=2.0") -> Request:
    return request("NOTIFY", f"Event: {event}\r\nSubscription-State: {state}\r\n"
                   f"Content-Type: {ctype}\r\n", body)


def test_notify_progress() -> None:
    p = notify_progress(notify("active;expires=60", sipfrag(180, "Ringing")))
    assert (p.status, p.reason, p.final) == (180, "Ringing", False)
    p = notify_progress(notify("active;expires=60", b"SIP/2.0 200 OK\r\n"))
    assert (p.status, p.final) == (200, True)
    p = notify_progress(notify("terminated;reason=noresource", sipfrag(486, "Busy Here")))
    assert (p.status, p.final) == (486, True)
    p = notify_progress(request("NOTIFY", "Event: refer;id=7\r\n"
                                "Subscription-State: terminated;reason=timeout\r\n"))
    assert (p.status, p.reason, p.final) == (0, "timeout", True)


@pytest.mark.parametrize(("req", "status"), [
    (lambda: notify("active", sipfrag(100, "Trying"), event="presence"), 489),
    (lambda: notify("active", b"hello"), 400),
    (lambda: notify("active", sipfrag(100, "Trying"), ctype="text/plain"), 415),
])
def test_bad_notifies(req, status: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ReferError) as err:
        notify_progress(req())
    assert err.value.status == status


def test_sipfrag_round_trip() -> None:
    assert parse_sipfrag(sipfrag(603, "Decline")) == (603, "Decline")
    assert parse_sipfrag(b"SIP/2.0 100\r\n") == (100, "")
