"""Digest authentication against published vectors, and our server role."""

from __future__ import annotations

import pytest

from atende.sip.auth import (
    AuthError,
    Challenge,
    DigestClient,
    DigestServer,
    Verdict,
    digest_response,
    parse_auth_params,
    pick_challenge,
)


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
