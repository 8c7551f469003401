"""Who may use the bridge's calling page, and what a page may ask: the listener's
credentials over HTTP Basic, a token good for one call, or (with no credentials set) the
direct-call addresses; guessing counts towards the abuse guard."""

from __future__ import annotations

import base64

from atende.bridge.browser import check_call
from atende.bridge.page_auth import Caller, PageAuth, PageTokens
from atende.bridge.settings import BridgeConfig
from atende.telephony.abuse import AbuseGuard
from atende.telephony.guard import DirectCallPolicy

WITH_USER = BridgeConfig(enabled=True, listen_user="incoming_user",
                         listen_secret="incomingSecret123")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def auth(config: BridgeConfig, guard: AbuseGuard | None = None
         ) -> tuple[PageAuth, PageTokens]:
    tokens = PageTokens()
    return PageAuth(lambda: config, DirectCallPolicy(["10.0.0.0/8"]), tokens, guard), tokens


def test_the_listeners_credentials_open_the_page_and_guesses_count() -> None:
    guard = AbuseGuard(max_failures=3)
    page, _ = auth(WITH_USER, guard)
    ok = page.check("198.51.100.7", basic("incoming_user", "incomingSecret123"), None, 0.0)
    assert ok == Caller("incoming_user")
    assert page.check("198.51.100.7", None, None, 0.0) == 401
    for junk in ("Basic !!!", "Bearer incomingSecret123", basic("incoming_user", "nope")):
        assert page.check("198.51.100.7", junk, None, 1.0) == 401
    # Three wrong answers: the address is blocked, the right password no longer helps.
    assert page.check("198.51.100.7", basic("incoming_user", "incomingSecret123"), None,
                      2.0) == 403
    assert page.check("198.51.100.8", basic("incoming_user", "incomingSecret123"), None,
                      2.0) == Caller("incoming_user")


def test_without_credentials_only_the_direct_addresses_may_call() -> None:
    page, _ = auth(BridgeConfig(enabled=True))
    assert page.check("10.1.2.3", None, None, 0.0) == Caller("browser")
    assert page.check("198.51.100.7", None, None, 0.0) == 403
    assert page.check("198.51.100.7", basic("anyone", "anything"), None, 0.0) == 403


def test_a_token_opens_the_page_for_its_one_call_until_it_expires() -> None:
    page, tokens = auth(WITH_USER)
    token, grant = tokens.issue("1001", now=100.0)
    found = page.check("198.51.100.7", None, token, 101.0)
    assert isinstance(found, Caller) and found.grant == grant and grant.to == "1001"
    assert page.check("198.51.100.7", None, token, 100.0 + 121) == 401  # expired
    assert page.check("198.51.100.7", None, "made-up", 101.0) == 401
    other, second = tokens.issue("1002", now=100.0)
    assert other != token and second.call_id != grant.call_id


def test_what_a_page_may_ask_to_call() -> None:
    assert check_call("1001", "v=0\r\n") is None
    assert check_call("+5511999990000", "v=0\r\n") is None
    for to in ("", "bob@evil.example", "sip:bob", "a b", "x" * 65):
        assert (check_call(to, "v=0\r\n") or "").startswith("to:"), to
    for sdp in ("", "hello", "v=0\r\n" + "a" * 20_000):
        assert (check_call("1001", sdp) or "").startswith("sdp:")
