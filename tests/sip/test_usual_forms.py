"""URIs and Vias of the usual shape are read in one match: what that gives must be what
the step-by-step parse gives, for every input, refusals included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atende.sip.headers import Via
from atende.sip.uri import SipUri, UriError

# Characters where the two ways could part: the separators, quotes, spaces, case.
_URI_CHARS = st.sampled_from(list("sipSIP:@;=?.-_0123456789abcXYZ \t\"<>[]%,&/"))

_URIS = [
    "sip:assistant@127.0.0.1:5060", "sip:127.0.0.1", "sips:a@example.com:5061;transport=tls",
    "sip:+15551234567@trunk.example.com;user=phone", "sip:a@host.", "sip:a@host:0",
    "sip:a@host:65535", "sip:a@host:65536", "sip:a@host:99999", "sip:a@host:00080",
    "sip:a@host:", "sip:a:pw@host", "sip:a;b=c@host", "sip:a?b@host", "sip:a@host?x=y",
    "sip:a@host;lr;maddr=1.2.3.4;;", "SIP:a@host", "sip:a b@host", "sip:a@ho st",
    "sip:a@-host", "sip:a@host-", "sip:a@[::1]:5060", "sip:@host", "sip:a@", "sip:",
    "tel:+1555", "sip:a@host;x=\"y;z\"", "sip:a@b@c", " sip:a@host ", "sip:a@host;X=Y",
    'sip:a"b@host', "sip:a<b@host", "sip:a>b@host", "sip:a\tb@host", "sip:a@host;x=<y>",
]

_VIAS = [
    "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1", "SIP/2.0/UDP host;rport;branch=z9hG4bK",
    "SIP/2.0/TCP host.:5060", "SIP/2.0/udp host", "sip/2.0/UDP host", "SIP/2.0/UDP host:0",
    "SIP/2.0/UDP host:70000", "SIP/2.0/UDP [::1]:5060", "SIP / 2.0 / UDP host : 5060",
    "SIP/2.0/UDP  host", "SIP/3.0/UDP host", "SIP/2.0/UDP host;received=\"x\"",
    "SIP/2.0/UDP host;;branch=a", "SIP/2.0/UDP ho_st;branch=A;RPORT", "SIP/2.0/UDP",
]


def _either(parse, text):  # type: ignore[no-untyped-def]
    try:
        return parse(text)
    except UriError as exc:
        return ("refused", type(exc))
    except ValueError as exc:
        return ("refused", type(exc))


@pytest.mark.parametrize("text", _URIS)
def test_a_uri_reads_the_same_either_way(text: str) -> None:
    assert _either(SipUri.parse, text) == _either(SipUri.parse_any, text)


@pytest.mark.parametrize("text", _VIAS)
def test_a_via_reads_the_same_either_way(text: str) -> None:
    assert _either(Via.parse, text) == _either(Via.parse_any, text)


_PART = st.text(_URI_CHARS, max_size=6)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(["sip", "sips", "SIP", "tel", ""]), _PART, _PART, _PART,
       st.sampled_from(["", ":", ":5060", ":0", ":65536", ":x"]), _PART)
def test_any_uri_reads_the_same_either_way(scheme: str, user: str, password: str,
                                           host: str, port: str, params: str) -> None:
    """Parts of the usual shape, each of them sometimes odd."""
    for text in (f"{scheme}:{user}@{host or 'h'}{port};{params}",
                 f"{scheme}:{user}:{password}@{host}{port}",
                 f"{scheme}:{host}{port}{params}", f"sip:{user}{host}{params}"):
        assert _either(SipUri.parse, text) == _either(SipUri.parse_any, text)


@settings(max_examples=400, deadline=None)
@given(st.text(_URI_CHARS, max_size=30))
def test_any_via_reads_the_same_either_way(tail: str) -> None:
    for text in ("SIP/2.0/UDP " + tail, "SIP/2.0/UDP host" + tail):
        assert _either(Via.parse, text) == _either(Via.parse_any, text)


def test_the_usual_forms_are_read() -> None:
    uri = SipUri.parse("sip:+15551234567@trunk.example.com:5070;user=phone;LR")
    assert (uri.user, uri.host, uri.port, uri.params) == (
        "+15551234567", "trunk.example.com", 5070, {"user": "phone", "lr": None})
    via = Via.parse("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport")
    assert (via.transport, via.host, via.port, via.branch) == (
        "UDP", "127.0.0.1", 5061, "z9hG4bK-1")
    assert "rport" in via.params
