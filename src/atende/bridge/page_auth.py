"""Who may use the bridge's calling page: a browser that knows the listener's credentials
(``sipListenUser`` and ``sipListenSecret``, over HTTP Basic), or a page atende opened
itself in a remote Chrome with a token good for that one call; with no listener
credentials set, the direct-call policy's addresses only (as on the SIP side). Guessing
counts towards the abuse guard."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from atende.bridge.settings import BridgeConfig
from atende.channels.sip.ua import Guard
from atende.telephony.guard import DirectCallPolicy

log = logging.getLogger(__name__)
TOKEN_TTL_S = 120.0  # a page atende opens must start its call within this


@dataclass(frozen=True)
class Grant:
    """What a token allows: the one call a page atende opened may place."""

    call_id: str
    to: str
    expires: float


class PageTokens:
    """Tokens for the pages atende opens in a remote Chrome (no password goes there)."""

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}

    def issue(self, to: str, now: float, call_id: str | None = None) -> tuple[str, Grant]:
        self._grants = {t: g for t, g in self._grants.items() if g.expires > now}
        token = secrets.token_urlsafe(24)
        grant = Grant(call_id or uuid.uuid4().hex, to, now + TOKEN_TTL_S)
        self._grants[token] = grant
        return token, grant

    def check(self, token: str, now: float) -> Grant | None:
        grant = self._grants.get(token)
        if grant is None or grant.expires <= now:
            return None
        return grant


@dataclass(frozen=True)
class Caller:
    """Who a request on the page comes from: ``grant`` when it holds a token."""

    name: str
    grant: Grant | None = None


class PageAuth:
    """Who may use the bridge's page."""

    REALM = "atende bridge"

    def __init__(self, config: Callable[[], BridgeConfig], direct: DirectCallPolicy,
                 tokens: PageTokens, guard: Guard | None) -> None:
        self._config = config
        self.direct = direct
        self.tokens = tokens
        self._guard = guard

    def check(self, ip: str, authorization: str | None, token: str | None,
              now: float) -> Caller | int:
        """The caller, or the HTTP status refusing it (401 asks for credentials)."""
        if self._guard is not None and self._guard.is_blocked(ip, now):
            return 403
        if token:
            grant = self.tokens.check(token, now)
            return Caller("chrome", grant) if grant is not None else 401
        config = self._config()
        if not config.listen_user:
            return Caller("browser") if self.direct.allows(ip) else 403
        if not authorization:
            return 401
        user, password = _basic(authorization)
        if (hmac.compare_digest(user.encode(), config.listen_user.encode())
                and hmac.compare_digest(password.encode(), config.listen_secret.encode())):
            return Caller(user)
        if self._guard is not None:
            self._guard.failure(ip, now, "bad bridge page credentials", user=user or None)
        log.warning("bridge page from %s: bad credentials", ip)
        return 401


def _basic(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password
