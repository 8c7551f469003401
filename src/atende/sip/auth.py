"""HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760), sans-IO.

Both roles: answering a 401/407 challenge as a client (MD5, SHA-256 and their -sess forms,
qop=auth or auth-int, nonce counts, stale nonces) and challenging/verifying as a server
with stateless, expiring nonces and replay protection on the nonce count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from atende.sip.grammar import split_commas, unquote
from atende.sip.message import Request, Response

SUPPORTED = ("SHA-256", "MD5")


class AuthError(ValueError):
    """A challenge or credentials that cannot be read or answered."""

    pass


def _h(algorithm: str, data: str) -> str:
    name = algorithm.upper().removesuffix("-SESS")
    if name == "MD5":
        return hashlib.md5(data.encode()).hexdigest()
    if name == "SHA-256":
        return hashlib.sha256(data.encode()).hexdigest()
    raise AuthError(f"unsupported digest algorithm {algorithm!r}")


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """``Digest realm="x", nonce="y", qop="auth,auth-int"`` → ("Digest", {...}). Keys are
    lower-cased; quoted values are unquoted."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    for part in split_commas(rest):
        key, sep, val = part.partition("=")
        if not sep:
            raise AuthError(f"bad auth parameter {part!r}")
        params[key.strip().lower()] = unquote(val.strip())
    return scheme, params


def digest_username(req: Request) -> str | None:
    """The username a request's Authorization (or Proxy-Authorization) tries, if any."""
    for name in ("Authorization", "Proxy-Authorization"):
        value = req.headers.get(name)
        if value is not None:
            try:
                return parse_auth_params(value)[1].get("username")
            except AuthError:
                return None
    return None


@dataclass(frozen=True)
class Challenge:
    """A digest challenge from a 401 or 407 (WWW-Authenticate or Proxy-Authenticate)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> Challenge:
        scheme, p = parse_auth_params(value)
        if scheme.lower() != "digest":
            raise AuthError(f"unsupported auth scheme {scheme!r}")
        if "realm" not in p or "nonce" not in p:
            raise AuthError("challenge without realm or nonce")
        qop = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
        return cls(p["realm"], p["nonce"], p.get("algorithm", "MD5").upper(), qop,
                   p.get("opaque"), p.get("stale", "").lower() == "true")

    @property
    def supported(self) -> bool:
        return self.algorithm.removesuffix("-SESS") in SUPPORTED and (
            not self.qop or bool({"auth", "auth-int"} & set(self.qop)))


def digest_response(algorithm: str, username: str, password: str, realm: str, nonce: str,
                    method: str, uri: str, qop: str | None = None, nc: str | None = None,
                    cnonce: str | None = None, body: bytes = b"") -> str:
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        body_hash = _h(algorithm, body.decode("latin-1"))
        ha2 = _h(algorithm, f"{method}:{uri}:{body_hash}")
    else:
        ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


def _q(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class DigestClient:
    """Answers challenges for one set of credentials, counting nonce uses (``nc``)."""

    username: str
    password: str = field(repr=False)  # never in logs or reprs
    _counts: dict[str, int] = field(default_factory=dict)
    last: Challenge | None = None

    def authorize(self, challenge: Challenge, method: str, uri: str, body: bytes = b"",
                  cnonce: str | None = None) -> str:
        if not challenge.supported:
            raise AuthError(f"cannot answer {challenge.algorithm} with qop {challenge.qop}")
        self.last = challenge
        qop = None
        if challenge.qop:
            qop = "auth" if "auth" in challenge.qop else "auth-int"
        nc_i = self._counts.get(challenge.nonce, 0) + 1
        self._counts = {challenge.nonce: nc_i}  # only the current nonce matters
        nc = f"{nc_i:08x}"
        cnonce = cnonce or secrets.token_hex(8)
        resp = digest_response(challenge.algorithm, self.username, self.password,
                               challenge.realm, challenge.nonce, method, uri, qop, nc,
                               cnonce, body)
        parts = [f"username={_q(self.username)}", f"realm={_q(challenge.realm)}",
                 f"nonce={_q(challenge.nonce)}", f"uri={_q(uri)}", f"response={_q(resp)}",
                 f"algorithm={challenge.algorithm}"]
        if qop:
            parts += [f"qop={qop}", f"nc={nc}", f"cnonce={_q(cnonce)}"]
        if challenge.opaque is not None:
            parts.append(f"opaque={_q(challenge.opaque)}")
        return "Digest " + ", ".join(parts)


def pick_challenge(values: list[str]) -> Challenge | None:
    """The strongest challenge we can answer among several (RFC 8760 §2.4: servers may
    offer one per algorithm; prefer SHA-256)."""
    usable: list[Challenge] = []
    for v in values:
        try:
            ch = Challenge.parse(v)
        except AuthError:
            continue
        if ch.supported:
            usable.append(ch)
    usable.sort(key=lambda c: 0 if c.algorithm.startswith("SHA-256") else 1)
    return usable[0] if usable else None


MAX_CHALLENGES = 2  # challenges answered in one attempt (a second only when stale)


def challenge_in(resp: Response) -> Challenge | None:
    """The challenge to answer in a 401 (``WWW-Authenticate``) or a 407
    (``Proxy-Authenticate``), or None when it offers none we can answer."""
    name = "Proxy-Authenticate" if resp.status == 407 else "WWW-Authenticate"
    return pick_challenge(resp.headers.get_all(name))


@dataclass
class ChallengeResponder:
    """Our side of digest authentication for a request and its retries (RFC 3261 §22.2,
    §22.3), so that every request we send gives up alike: credentials go again only when
    the last request carried none, the server says the nonce was stale, or (once per
    attempt) credentials reused from an earlier challenge met a new nonce. The last
    challenge answered is kept, so later requests can carry credentials at once."""

    client: DigestClient
    header: str | None = None  # Authorization or Proxy-Authorization, once we answered
    sent: bool = False  # the last request carried credentials
    rounds: int = 0  # challenges taken in this attempt

    def new_attempt(self) -> None:
        self.rounds = 0

    def credentials(self, method: str, uri: str) -> tuple[str, str] | None:
        """The header for the next request: the last challenge answered again (next
        nonce count), or None before any."""
        last = self.client.last
        self.sent = last is not None and self.header is not None
        if last is None or self.header is None:
            return None
        return self.header, self.client.authorize(last, method, uri)

    def retry(self, resp: Response) -> bool:
        """A 401/407 to our last request: True to send it again (with ``credentials``);
        False when it offers nothing we can answer or our credentials were refused."""
        challenge = challenge_in(resp)
        return challenge is not None and self.accept(challenge, resp.status)

    def accept(self, challenge: Challenge, status: int) -> bool:
        """A challenge in a 401/407 to our last request: True to send it again (with
        ``credentials``); False when our credentials were refused."""
        last = self.client.last
        retry = not self.sent or challenge.stale or (
            last is not None and challenge.nonce != last.nonce and self.rounds == 0)
        self.rounds += 1
        if not retry or self.rounds > MAX_CHALLENGES:
            self.header = None
            self.client.last = None
            return False
        self.client.last = challenge
        self.header = "Proxy-Authorization" if status == 407 else "Authorization"
        return True


# Server side ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """What checking a request's digest credentials found."""

    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""


class DigestServer:
    """Challenges requests and verifies answers. Nonces carry their creation time and an
    HMAC, so they need no storage; an expired but genuine nonce is reported as stale
    (the client retries without asking its user), and nonce counts must increase."""

    def __init__(self, realm: str, secret: bytes | None = None, nonce_ttl: float = 300.0,
                 algorithms: tuple[str, ...] = SUPPORTED) -> None:
        self.realm = realm
        self.secret = secret or secrets.token_bytes(32)
        self.nonce_ttl = nonce_ttl
        self.algorithms = algorithms
        self._nc: OrderedDict[str, int] = OrderedDict()

    def nonce(self, now: float) -> str:
        stamp = f"{now:.3f}:{secrets.token_hex(6)}"
        mac = hmac.new(self.secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]
        return base64.urlsafe_b64encode(f"{stamp}:{mac}".encode()).decode().rstrip("=")

    def _nonce_time(self, nonce: str) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4)).decode()
            when, salt, mac = raw.split(":")
        except (ValueError, UnicodeDecodeError):
            return None
        good = hmac.new(self.secret, f"{when}:{salt}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good[:24], mac):
            return None
        try:
            return float(when)
        except ValueError:
            return None

    def challenges(self, now: float, stale: bool = False) -> list[str]:
        nonce = self.nonce(now)
        extra = ", stale=true" if stale else ""
        return [f'Digest realm={_q(self.realm)}, nonce={_q(nonce)}, algorithm={alg}, '
                f'qop="auth"{extra}' for alg in self.algorithms]

    def verify(self, header: str, method: str, password_for: dict[str, str] | None,
               now: float, body: bytes = b"") -> Verdict:
        try:
            scheme, p = parse_auth_params(header)
        except AuthError as exc:
            return Verdict(False, reason=str(exc))
        if scheme.lower() != "digest":
            return Verdict(False, reason="not Digest")
        username, nonce, uri, resp = [p.get(k) for k in ("username", "nonce", "uri",
                                                         "response")]
        if not (username and nonce and uri and resp):
            return Verdict(False, reason="incomplete credentials")
        if p.get("realm") != self.realm:
            return Verdict(False, username, reason="wrong realm")
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm not in self.algorithms:
            return Verdict(False, username, reason=f"algorithm {algorithm} not offered")
        created = self._nonce_time(nonce)
        if created is None:
            return Verdict(False, username, reason="nonce not issued by us")
        password = (password_for or {}).get(username)
        if password is None:
            return Verdict(False, username, reason="unknown user")
        qop = p.get("qop")
        nc = p.get("nc")
        if qop not in (None, "auth", "auth-int") or (qop and not (nc and p.get("cnonce"))):
            return Verdict(False, username, reason="bad qop parameters")
        expected = digest_response(algorithm, username, password, self.realm, nonce, method,
                                   uri, qop, nc, p.get("cnonce"), body)
        if not hmac.compare_digest(expected, resp.lower()):
            return Verdict(False, username, reason="wrong password")
        if now - created > self.nonce_ttl:
            return Verdict(False, username, stale=True, reason="stale nonce")
        if qop:
            try:
                count = int(nc or "", 16)
            except ValueError:
                return Verdict(False, username, reason="bad nonce count")
            if count <= self._nc.get(nonce, 0):
                return Verdict(False, username, reason="replayed nonce count")
            self._nc[nonce] = count
            self._nc.move_to_end(nonce)
            while len(self._nc) > 10000:
                self._nc.popitem(last=False)
        return Verdict(True, username)
