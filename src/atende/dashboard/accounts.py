"""Who may sign in to the dashboard, in pure functions: passwords kept as scrypt hashes,
the rules a new password must meet, session tokens, and the limiter that slows down
someone guessing passwords (the time is passed in, so it is deterministic to test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

ROLES = ("admin", "viewer")
MIN_PASSWORD = 10
# scrypt's cost: ~50 ms and 16 MiB per check on this machine class (RFC 7914's
# interactive-login figures)
_N, _R, _P = 2 ** 14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(("scrypt", str(_N), str(_R), str(_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()))


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (False for anything that
    is not a hash of ours)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=32)
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def password_problem(password: str, username: str) -> str | None:
    """What is wrong with a new password, in words, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    if len(set(password)) < 4:
        return "the password needs more than a few different characters"
    if username and username.lower() in password.lower():
        return "the password must not contain the user name"
    return None


def new_token() -> str:
    """A session or CSRF token: 256 random bits."""
    return secrets.token_urlsafe(32)


def token_id(token: str) -> str:
    """How a session token is kept: its SHA-256 (256 random bits need no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass
class LoginLimiter:
    """Failed sign-ins per client address and per user name: after ``max_failures``
    within ``window_s`` the next tries wait until the oldest failure leaves the window."""

    max_failures: int = 5
    window_s: float = 300.0
    max_keys: int = 10_000  # past it, keys with no failure in the window are forgotten
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def wait_s(self, keys: tuple[str, ...], now: float) -> float:
        """How long these keys (address, user name) must wait before trying again."""
        worst = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                worst = max(worst, times[0] + self.window_s - now)
        return worst

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        if len(self._failures) >= self.max_keys:
            for key in list(self._failures):
                self._recent(key, now)
        for key in keys:
            self._recent(key, now)
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        """The key's failures within the window (a key with none is dropped)."""
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times
