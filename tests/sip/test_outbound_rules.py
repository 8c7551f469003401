"""How final responses to our INVITEs become outcomes, and outbound-proxy routes."""

from __future__ import annotations

import pytest

from atende.channels.sip.outbound import route_for_proxy
from atende.sip.invite_client import classify
from atende.sip.uri import NameAddr


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(486, "busy"), (600, "busy"), (480, "no_answer"), (408, "no_answer"),
     (487, "no_answer"), (404, "rejected"), (403, "rejected"), (603, "rejected"),
     (484, "rejected"), (503, "failed"), (500, "failed"), (407, "failed")],
)
def test_classify(status: int, outcome: str) -> None:
    assert classify(status, "Reason", synthetic=False)[0] == outcome


def test_no_response_at_all_is_a_failure_in_plain_words() -> None:
    outcome, words = classify(408, "Request Timeout", synthetic=True)
    assert outcome == "failed" and "no response from the trunk" in words


def test_route_for_proxy_is_loose_routing() -> None:
    (route,) = route_for_proxy("proxy.example.com", 5070)
    na = NameAddr.parse(route)
    assert (na.uri.host, na.uri.port, na.uri.params) == ("proxy.example.com", 5070, {"lr": None})
