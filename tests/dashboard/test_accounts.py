"""Sign-in in pure functions: passwords as scrypt hashes, the rules for new ones, and the
limiter that slows down guessing (time passed in)."""

from __future__ import annotations

from atende.dashboard.accounts import (
    LoginLimiter,
    check_password,
    hash_password,
    password_problem,
)


def test_a_password_is_kept_as_a_salted_hash() -> None:
    one, two = hash_password("correct horse 7"), hash_password("correct horse 7")
    assert one != two and "correct" not in one  # salted; never the password itself
    assert check_password("correct horse 7", one) and check_password("correct horse 7", two)
    assert not check_password("correct horse 8", one)
    for broken in ("", "plain", "scrypt$1$2", "md5$1$1$1$AA==$AA==", "scrypt$x$8$1$AA==$AA=="):
        assert not check_password("anything", broken)


def test_new_passwords_are_told_what_is_wrong() -> None:
    assert password_problem("short", "ana") == "the password needs at least 10 characters"
    assert "different characters" in (password_problem("aaaaabbbbbb", "ana") or "")
    assert "user name" in (password_problem("Maria-2026-x!", "maria") or "")
    assert password_problem("a long passphrase", "ana") is None


def test_guessing_is_slowed_per_address_and_per_user() -> None:
    limiter = LoginLimiter(max_failures=3, window_s=60)
    keys = ("ip:10.0.0.9", "user:ana")
    for t in (0.0, 1.0, 2.0):
        assert limiter.wait_s(keys, t) == 0
        limiter.failed(keys, t)
    assert limiter.wait_s(keys, 3.0) == 57.0  # until the first failure leaves the window
    # Another address guessing the same user waits too; the address with another user too.
    assert limiter.wait_s(("ip:10.0.0.10", "user:ana"), 3.0) == 57.0
    assert limiter.wait_s(("ip:10.0.0.9", "user:bob"), 3.0) == 57.0
    assert limiter.wait_s(("ip:10.0.0.10", "user:bob"), 3.0) == 0
    assert limiter.wait_s(keys, 60.5) == 0  # the window moved on
    limiter.failed(keys, 61.0)
    limiter.succeeded(keys)
    assert limiter.wait_s(keys, 61.5) == 0


def test_the_limiter_forgets_old_guessers() -> None:
    limiter = LoginLimiter(max_failures=3, window_s=10, max_keys=100)
    for i in range(150):
        limiter.failed((f"ip:{i}",), float(i))
    assert len(limiter._failures) <= 111  # only keys seen in the last window survive
