"""Digest authentication against published vectors, and our server role."""

from __future__ import annotations

import pytest

from atende.sip.auth import (
    AuthError,
    Challenge,
    ChallengeResponder,
    DigestClient,
    DigestServer,
    Verdict,
    challenge_in,
    digest_response,
    parse_auth_params,
    pick_challenge,
)
from atende.sip.headers import Headers
from atende.sip.message import Response


def test_rfc2617_md5_qop_auth_vector() -> None:
    assert digest_response("MD5", "Mufasa", "Circle Of Life", "testrealm@host.com",
                           "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html",
                           "auth", "00000001", "0a4f113b") == "6629fae49393a05397450978507c4ef1"


def test_rfc2069_md5_without_qop_vector() -> None:
    assert digest_response("MD5", "Mufasa", "CircleOfLife", "testrealm@host.com",
                           "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html"
                           ) == "1949323746fe6a43ef61f9606e7febea"


def test_sha256_without_qop_vector() -> None:  # curl's test 2061 (RFC 7616 algorithm)
    assert digest_response("SHA-256", "testuser", "testpass", "testrealm", "1053604145",
                           "GET", "/2061") == (
        "9dc55255f1a2537b838311674b621d45346b862a81631bb20e4ce356ef25062d")


def test_challenge_parsing_and_choice() -> None:
    md5 = 'Digest realm="asterisk", nonce="abc", qop="auth,auth-int", opaque="o", stale=TRUE'
    ch = Challenge.parse(md5)
    assert (ch.realm, ch.nonce, ch.algorithm, ch.qop, ch.opaque, ch.stale) == (
        "asterisk", "abc", "MD5", ("auth", "auth-int"), "o", True)
    sha = 'Digest realm="asterisk", nonce="def", algorithm=SHA-256, qop="auth"'
    assert pick_challenge([md5, sha]) == Challenge.parse(sha)  # RFC 8760: prefer SHA-256
    assert pick_challenge(['Digest realm="r", nonce="n", algorithm=SHA-512-256']) is None
    with pytest.raises(AuthError):
        Challenge.parse('Basic realm="x"')
    with pytest.raises(AuthError):
        Challenge.parse('Digest nonce="x"')


def test_client_counts_nonce_uses() -> None:
    client = DigestClient("ai", "s3cret")
    ch = Challenge("pbx", "n1", "MD5", ("auth",))
    first = parse_auth_params(client.authorize(ch, "REGISTER", "sip:pbx", cnonce="c"))[1]
    second = parse_auth_params(client.authorize(ch, "REGISTER", "sip:pbx", cnonce="c"))[1]
    assert (first["nc"], second["nc"]) == ("00000001", "00000002")
    assert first["response"] != second["response"]
    assert first["response"] == digest_response("MD5", "ai", "s3cret", "pbx", "n1",
                                                "REGISTER", "sip:pbx", "auth", "00000001", "c")
    fresh = parse_auth_params(client.authorize(Challenge("pbx", "n2", "MD5", ("auth",)),
                                               "REGISTER", "sip:pbx"))[1]
    assert fresh["nc"] == "00000001"


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_server_accepts_right_password_only(algorithm: str) -> None:
    server = DigestServer("atende", nonce_ttl=60)
    users = {"carrier": "Sup3r-Secret-Pass"}
    (ch,) = [c for c in server.challenges(100.0) if f"algorithm={algorithm}" in c]
    challenge = Challenge.parse(ch)
    good = DigestClient("carrier", "Sup3r-Secret-Pass").authorize(challenge, "INVITE",
                                                                  "sip:x@h")
    assert server.verify(good, "INVITE", users, 110.0) == Verdict(True, "carrier")
    bad = DigestClient("carrier", "wrong").authorize(challenge, "INVITE", "sip:x@h")
    v = server.verify(bad, "INVITE", users, 110.0)
    assert not v.ok and v.reason == "wrong password"
    assert not server.verify(good, "BYE", users, 110.0).ok  # method is covered


def test_server_replay_stale_and_forged_nonces() -> None:
    server = DigestServer("atende", nonce_ttl=60)
    users = {"u": "p"}
    challenge = Challenge.parse(server.challenges(0.0)[0])
    client = DigestClient("u", "p")
    header = client.authorize(challenge, "INVITE", "sip:a@b")
    assert server.verify(header, "INVITE", users, 1.0).ok
    replay = server.verify(header, "INVITE", users, 2.0)
    assert not replay.ok and replay.reason == "replayed nonce count"
    assert server.verify(client.authorize(challenge, "INVITE", "sip:a@b"), "INVITE", users,
                         3.0).ok  # nc=2 is fine
    late = server.verify(client.authorize(challenge, "INVITE", "sip:a@b"), "INVITE", users,
                         61.0)
    assert not late.ok and late.stale
    other = DigestServer("atende")  # a different secret: our nonce is not its nonce
    forged = other.verify(header, "INVITE", users, 1.0)
    assert not forged.ok and forged.reason == "nonce not issued by us"
    assert server.verify('Digest username="u"', "INVITE", users, 1.0).reason == (
        "incomplete credentials")
    unknown = DigestClient("nobody", "p").authorize(challenge, "INVITE", "sip:a@b")
    assert server.verify(unknown, "INVITE", users, 1.0).reason == "unknown user"


def _challenged(status: int, *values: str) -> Response:
    resp = Response(status, "Unauthorized" if status == 401 else "Proxy Authentication "
                    "Required", Headers())
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    for value in values:
        resp.headers.add(name, value)
    return resp


def test_responder_answers_once_then_gives_up_on_refused_credentials() -> None:
    """One rule for every request we send (REGISTER, INVITE …): a challenge is answered
    when we sent no credentials; the same challenge again means they were refused."""
    server = DigestServer("pbx")
    responder = ChallengeResponder(DigestClient("ai", "right"))
    assert responder.credentials("INVITE", "sip:100@pbx") is None and not responder.sent
    challenge = challenge_in(_challenged(407, *server.challenges(0.0)))
    assert challenge is not None and responder.accept(challenge, 407)
    name, value = responder.credentials("INVITE", "sip:100@pbx") or ("", "")
    assert name == "Proxy-Authorization" and responder.sent
    assert server.verify(value, "INVITE", {"ai": "right"}, 1.0).ok
    again = challenge_in(_challenged(407, *server.challenges(1.0)))
    assert again is not None and not responder.accept(again, 407)
    assert responder.credentials("INVITE", "sip:100@pbx") is None  # forgotten


def test_responder_answers_stale_nonces_a_bounded_number_of_times() -> None:
    server = DigestServer("pbx")
    responder = ChallengeResponder(DigestClient("ai", "right"))
    first = challenge_in(_challenged(401, *server.challenges(0.0)))
    assert first is not None and responder.accept(first, 401)
    responder.credentials("REGISTER", "sip:pbx")
    stale = challenge_in(_challenged(401, *server.challenges(50.0, stale=True)))
    assert stale is not None and stale.stale and responder.accept(stale, 401)
    responder.credentials("REGISTER", "sip:pbx")
    assert not responder.accept(stale, 401)  # a server that only ever says stale


def test_responder_retries_reused_credentials_that_met_a_new_nonce() -> None:
    """Credentials sent at once with the last challenge (a registration refresh) may meet
    a new nonce without 'stale': answered once per attempt."""
    responder = ChallengeResponder(DigestClient("ai", "right"))
    old = Challenge("pbx", "n1", "MD5", ("auth",))
    assert responder.accept(old, 401)
    responder.new_attempt()
    assert responder.credentials("REGISTER", "sip:pbx") is not None
    new = Challenge("pbx", "n2", "MD5", ("auth",))
    assert responder.accept(new, 401)
    responder.credentials("REGISTER", "sip:pbx")
    assert not responder.accept(Challenge("pbx", "n3", "MD5", ("auth",)), 401)


def test_challenge_in_reads_the_header_of_its_status_and_skips_what_we_cannot_answer() -> None:
    sha = 'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth"'
    assert challenge_in(_challenged(401, sha)) == Challenge.parse(sha)
    proxy_only = _challenged(407, sha)
    proxy_only.status = 401  # a 401 carrying only Proxy-Authenticate: nothing to answer
    assert challenge_in(proxy_only) is None
    assert challenge_in(_challenged(401, 'Basic realm="x"')) is None
