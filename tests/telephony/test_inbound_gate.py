"""Calls relayed by a SIP proxy in front of atende (ATENDE_SIP_PROXIES, Kamailio's
dispatcher) are judged by where they came to the proxy from, not by the proxy."""

from __future__ import annotations

from cryptography.fernet import Fernet

from atende.channels.sip.gate import Admit, Refuse
from atende.channels.sip.ua import UserAgent
from atende.sip.message import Request, parse_message
from atende.store.secrets import SecretBox
from atende.telephony.guard import DirectCallPolicy
from atende.telephony.inbound import InboundGate
from atende.telephony.trunks import TrunkManager


def invite(*vias: str) -> Request:
    lines = [f"Via: {v}" for v in vias]
    msg = parse_message(("\r\n".join([
        "INVITE sip:ai@atende.test SIP/2.0", *lines, "Max-Forwards: 69",
        "From: <sip:caller@example.test>;tag=a", "To: <sip:ai@atende.test>",
        "Call-ID: c1", "CSeq: 1 INVITE", "Contact: <sip:caller@10.1.2.3>",
        "Content-Length: 0"]) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def gate(proxies: tuple[str, ...]) -> InboundGate:
    trunks = TrunkManager(UserAgent(), SecretBox(Fernet.generate_key()))
    return InboundGate(trunks, DirectCallPolicy(["10.0.0.0/8"]), proxies=proxies)


PROXY_VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy"


def test_a_relayed_call_is_judged_by_its_caller() -> None:
    g = gate(("127.0.0.1/32",))
    source = ("udp", "127.0.0.1", 5060)
    from_lan = invite(PROXY_VIA, "SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bKa;rport=5060")
    assert g.origin(from_lan, "127.0.0.1") == "10.1.2.3"
    assert isinstance(g.check(from_lan, source, 0.0), Admit)
    outside = invite(PROXY_VIA, "SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKb")
    assert isinstance(g.check(outside, source, 0.0), Refuse)
    # Behind NAT the caller's Via is wrong: the proxy's received= says where it was.
    natted = invite(PROXY_VIA, "SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bKc;"
                               "received=203.0.113.9")
    assert g.origin(natted, "127.0.0.1") == "203.0.113.9"
    assert isinstance(g.check(natted, source, 0.0), Refuse)
    # The proxy's own request (one Via) is its own.
    assert g.origin(invite(PROXY_VIA), "127.0.0.1") == "127.0.0.1"
    # A proxy is never blocked and has a trunk's rate limit; its callers are not.
    assert g.trunk_address("127.0.0.1") and not g.trunk_address("10.1.2.3")


def test_vias_from_anyone_else_are_not_believed() -> None:
    forged = invite("SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKd",
                    "SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bKe")
    for g in (gate(()), gate(("127.0.0.1/32",))):
        assert g.origin(forged, "203.0.113.9") == "203.0.113.9"
        assert isinstance(g.check(forged, ("udp", "203.0.113.9", 5060), 0.0), Refuse)
