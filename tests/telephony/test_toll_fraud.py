"""The toll-fraud guard of a trunk's destinations (issue 16.12): on an extension trunk only
what the extension pattern matches goes out as an extension; everything else is a phone
number and meets the allowed countries."""

from __future__ import annotations

from dataclasses import replace

import pytest

from atende.telephony.trunks import DestinationError, TrunkConfig

PT_EXTENSION = TrunkConfig(
    id="t1", name="Office", kind="extension", number="200", username="200", password="x",
    host="pbx.example.com", port=None, transport="udp", domain=None, outbound_proxy=None,
    contact_user="tabc", inbound_auth="ip", allowed_ips=(), assistant_id=None,
    max_concurrent_calls=10, number_format="national", country="PT", allowed_countries=("PT",),
    accept_transfers=False, tls_verify=True, enabled=True)


@pytest.mark.parametrize("to", [
    "90012025550123",   # a PBX's outside-line prefix in front of a US number
    "00012025550123",
    "0012025550123#",
    "0012025550123",    # the US, written the Portuguese way
    "+1 202 555 0123",
    "1234567",          # too long for an extension, not a Portuguese number
    "*0012025550123",
    "10'; DROP",
    "bob@evil.example",
])
def test_what_an_extension_trunk_refuses(to: str) -> None:
    with pytest.raises(DestinationError):
        PT_EXTENSION.dial_user(to)


@pytest.mark.parametrize(("to", "user"), [
    ("1000", "1000"),
    (" 42 ", "42"),
    ("912 345 678", "912345678"),
    ("+351 912-345-678", "912345678"),
    ("(21) 123 4567", "211234567"),
])
def test_what_an_extension_trunk_dials(to: str, user: str) -> None:
    assert PT_EXTENSION.dial_user(to) == user


def test_a_pattern_of_its_own_and_a_did_trunk() -> None:
    codes = replace(PT_EXTENSION, extension_pattern=r"[0-9]{3}|\*[0-9]{2}#?|[a-z]+")
    assert codes.dial_user("*97#") == "*97%23"  # "#" escaped in a SIP user part
    assert codes.dial_user("bob") == "bob"
    with pytest.raises(DestinationError):
        codes.dial_user("1000")  # not an extension here, and not a number either
    did = replace(PT_EXTENSION, kind="did", extension_pattern=r"[0-9]+")
    with pytest.raises(DestinationError, match="not a possible number"):
        did.dial_user("1000")  # DID trunks have no extensions, whatever the pattern
    us = replace(PT_EXTENSION, allowed_countries=("PT", "US"))
    assert us.dial_user("0012025550123") == "+12025550123"
