"""A registrar for a few accounts (RFC 3261 §10.3), sans-IO: REGISTER in, the response
and the bindings out. Used by the bridge: the client on its listener side registers with
it, so that calls for that side know where the client is.

A binding remembers the address the REGISTER came from as well as its Contact: requests
go back to that address (a client behind NAT is reachable only there, RFC 3581)."""

from __future__ import annotations

from dataclasses import dataclass

from atende.sip.auth import DigestServer
from atende.sip.message import Request, Response, make_response
from atende.sip.transaction import Address
from atende.sip.uri import NameAddr, SipUri, UriError

MIN_EXPIRES = 60
MAX_EXPIRES = 3600
MAX_BINDINGS = 10  # per account: a phone, a softphone, a spare


@dataclass(frozen=True)
class Binding:
    """Where an account's client can be reached, until ``expires_at``."""

    contact: SipUri
    source: Address  # where its REGISTER came from: our requests go there
    expires_at: float


class Registrar:
    """Bindings of the accounts it is given passwords for, refreshed by REGISTER."""

    def __init__(self, digest: DigestServer) -> None:
        self.digest = digest
        self._bindings: dict[str, dict[str, Binding]] = {}  # user → contact → binding

    def register(self, req: Request, source: Address, passwords: dict[str, str],
                 now: float) -> Response:
        user = req.to.uri.user or ""
        if user not in passwords:
            return make_response(req, 404, "Not Found")
        header = req.headers.get("Authorization")
        verdict = (self.digest.verify(header, "REGISTER", {user: passwords[user]}, now)
                   if header else None)
        if verdict is None or not verdict.ok or verdict.username != user:
            challenge = make_response(req, 401)
            for value in self.digest.challenges(now, stale=bool(verdict and verdict.stale)):
                challenge.headers.add("WWW-Authenticate", value)
            return challenge
        default = _expires(req.headers.get("Expires"), MAX_EXPIRES)
        if default is None:
            return make_response(req, 400, "Bad Expires")
        contacts = [c.strip() for c in req.headers.get_all("Contact") if c.strip()]
        bindings = self._bindings.setdefault(user, {})
        self._expire(now)
        if contacts == ["*"]:
            if default != 0:
                return make_response(req, 400, "Contact * needs Expires: 0")
            bindings.clear()
            return make_response(req, 200)
        for text in contacts:
            try:
                contact = NameAddr.parse(text)
            except (UriError, ValueError):
                return make_response(req, 400, "Bad Contact")
            expires = _expires(contact.params.get("expires"), default)
            if expires is None:
                return make_response(req, 400, "Bad Contact expires")
            key = str(contact.uri)
            if expires == 0:
                bindings.pop(key, None)
                continue
            if expires < MIN_EXPIRES:
                brief = make_response(req, 423, "Interval Too Brief")
                brief.headers.add("Min-Expires", str(MIN_EXPIRES))
                return brief
            if key not in bindings and len(bindings) >= MAX_BINDINGS:
                return make_response(req, 403, "Too many registered contacts")
            bindings[key] = Binding(contact.uri, source, now + min(expires, MAX_EXPIRES))
        ok = make_response(req, 200)
        for key, b in bindings.items():
            ok.headers.add("Contact", f"<{key}>;expires={max(0, int(b.expires_at - now))}")
        return ok

    def latest(self, user: str, now: float) -> Binding | None:
        """The most recently refreshed live binding of ``user``."""
        self._expire(now)
        live = list(self._bindings.get(user, {}).values())
        return max(live, key=lambda b: b.expires_at) if live else None

    def forget(self, keep: set[str]) -> None:
        """Drop the bindings of accounts not in ``keep`` (their credentials changed)."""
        for user in list(self._bindings):
            if user not in keep:
                del self._bindings[user]

    def _expire(self, now: float) -> None:
        for bindings in self._bindings.values():
            for key in [k for k, b in bindings.items() if b.expires_at <= now]:
                del bindings[key]


def _expires(value: str | None, default: int) -> int | None:
    if value is None:
        return default
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    return int(value)
