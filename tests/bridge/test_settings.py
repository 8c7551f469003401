"""The bridge's configuration read from both spellings, what is kept of the stored one,
and what a caller is told when the far side does not answer."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from atende.bridge.calls import refusal_for
from atende.bridge.settings import MASK, BridgeConfig, BridgeIn, from_seed, problems
from atende.channels.dialer import DialOutcome

STORED = BridgeConfig(enabled=True, sip_server="pbx.example:5060", sip_user="trunk",
                      sip_password="Server-Pass-1", listen_user="in",
                      listen_secret="Listen-Secret-1")


def test_the_seed_example_reads_as_our_settings() -> None:
    ours, unknown = from_seed({
        "enabled": True, "sipServer": "sip.example.com:5060", "sipUser": "whatsapp_trunk",
        "sipPass": "mySecurePassword123", "sipListenPort": 5080,
        "sipListenUser": "incoming_user", "sipListenSecret": "incomingSecret123",
        "sipExtension": "", "wasmServerPort": 9080, "wasmServerIP": "10.0.0.5",
        "chromeRemoteURL": "ws://10.1.0.7:9223", "nodeRemoteHelper": "http://10.1.0.7:3000"})
    assert unknown == {}
    config = BridgeIn.model_validate(ours).applied_to(BridgeConfig())
    assert config.server == ("sip.example.com", 5060)
    assert config.listen_secret == "incomingSecret123" and config.extension == ""
    assert config.shown_as_seed()["sipPass"] == MASK
    assert "mySecurePassword123" not in repr(config)


def test_secrets_are_kept_when_left_out_or_masked_and_cleared_when_empty() -> None:
    given = BridgeIn(enabled=True, sip_server="pbx.example", sip_user="trunk",
                     listen_user="in", listen_secret=MASK)
    kept = given.applied_to(STORED)
    assert (kept.sip_password, kept.listen_secret) == ("Server-Pass-1", "Listen-Secret-1")
    assert kept.server == ("pbx.example", 5060)
    cleared = BridgeIn(enabled=True, sip_server="pbx.example", sip_user="trunk",
                       sip_password="").applied_to(STORED)
    assert cleared.sip_password == "" and cleared.listen_secret == ""  # no listen_user
    with pytest.raises(ValueError, match="listen_secret: required"):
        BridgeIn(enabled=False, listen_user="in").applied_to(BridgeConfig())


@pytest.mark.parametrize(("field", "value"), [
    ("sip_server", "sip:pbx.example"), ("sip_server", "pbx.example:99999"),
    ("sip_server", "user@pbx.example"), ("sip_user", "two words"),
    ("listen_port", 0), ("listen_port", "5080"), ("webrtc_ip", "10.0.0"),
    ("chrome_remote_url", "ws://user:pw@10.1.0.7:9223"), ("node_remote_helper", "10.1.0.7"),
    ("sip_password", "line\nbreak"), ("extension", "70:01")])
def test_a_bad_value_is_named(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        BridgeIn.model_validate({"enabled": False, field: value})
    assert field in problems(caught.value)


def test_checks_across_fields_name_their_field() -> None:
    with pytest.raises(ValidationError) as caught:
        BridgeIn.model_validate({"enabled": True, "listen_port": 9080})
    assert set(problems(caught.value)) == {"sip_server"}
    with pytest.raises(ValidationError) as caught:
        BridgeIn.model_validate({"enabled": False, "listen_port": 9080})
    assert set(problems(caught.value)) == {"webrtc_port"}


@pytest.mark.parametrize(("status", "sip", "reason", "told"), [
    ("busy", 486, "486 Busy Here", 486), ("rejected", 404, "404 Not Found", 404),
    ("rejected", 603, "603 Decline", 603), ("failed", 407, "407 Proxy Auth", 502),
    ("failed", 503, "503 Service Unavailable", 500), ("no_answer", None, "", 480),
    ("failed", None, "no response", 408), ("no_answer", 487, "487", 480)])
def test_the_callers_answer_says_what_the_far_side_did(status: str, sip: int | None,
                                                       reason: str, told: int) -> None:
    assert refusal_for(DialOutcome(status, sip, reason)).status == told


@pytest.mark.parametrize("server", ["0" * 300, "0:5060", "1.2.3:5060", "-pbx.example",
                                    "a" * 64 + ".example", "pbx_1.example:5060"])
def test_a_server_that_is_no_host_name_is_refused(server: str) -> None:
    with pytest.raises(ValidationError) as caught:  # never handed to the resolver
        BridgeIn.model_validate({"enabled": True, "sip_server": server})
    assert "sip_server" in problems(caught.value)
