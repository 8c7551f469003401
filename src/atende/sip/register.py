"""A SIP registration (RFC 3261 §10) as a sans-IO state machine: atende registering a
contact with a PBX or carrier, answering digest challenges, refreshing before expiry and
backing off after failures. The driver sends the requests it returns and feeds back
responses and the time."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum

from atende.sip.auth import ChallengeResponder, DigestClient, challenge_in
from atende.sip.dialog import new_tag
from atende.sip.grammar import is_digits
from atende.sip.message import Request, Response
from atende.sip.requests import ALLOW, new_request
from atende.sip.uri import NameAddr, SipUri, UriError

MIN_BACKOFF = 30.0
MAX_BACKOFF = 1800.0


class RegState(Enum):
    """Where a registration stands."""

    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    UNREGISTERING = "unregistering"


def explain(status: int, reason: str, after_credentials: bool) -> str:
    """Plain words for why a registration failed."""
    if status in (401, 407):
        if after_credentials:
            return f"{status} after credentials: wrong username or password?"
        return f"{status}: the PBX asked for an authentication scheme we cannot answer"
    known = {
        403: "403 Forbidden: the PBX refused this account (check the username, and that "
             "the PBX allows registrations from this address)",
        404: "404 Not Found: the PBX does not know this user or domain",
        408: "408: no answer from the PBX (check its address, port, transport and firewall)",
        423: "423 Interval Too Brief: the PBX wants a longer registration interval",
        480: "480: the PBX is temporarily unavailable",
        503: "503 Service Unavailable: the PBX is overloaded or down",
    }
    if status == 503 and reason not in ("", "Service Unavailable"):
        return f"503: {reason}"  # our own, for a connection that failed: it says why
    return known.get(status, f"{status} {reason}".strip())


@dataclass
class Registration:
    """One registration of ours with a PBX or carrier (RFC 3261 §10), sans-IO: the REGISTER
    requests to send, challenges answered, refreshes before expiry and back-off after
    failures, with its state in plain words."""

    user: str  # the extension / username in the address of record
    domain: str  # the registrar's domain (AOR host)
    username: str  # authentication username (often the same as ``user``)
    password: str = field(repr=False)  # never in logs or reprs
    contact: str = ""  # our Contact URI, e.g. sip:ai-7f3a@192.0.2.1:5060
    expires: int = 300

    def __post_init__(self) -> None:
        self.call_id = secrets.token_hex(12) + "@atende"
        self.from_tag = new_tag()
        self.cseq = secrets.randbelow(10000) + 1
        self.auth = ChallengeResponder(DigestClient(self.username, self.password))
        self.state = RegState.UNREGISTERED
        self.expires_at: float | None = None
        self.last_status: int | None = None
        self.reason = "not started"
        self.failures = 0
        self.stale_retries = 0
        self.successes = 0
        self._due: float | None = None

    # building requests ------------------------------------------------------------------
    def _build(self, expires: int) -> Request:
        self.cseq += 1
        uri = SipUri(self.domain)
        aor = f"<sip:{self.user}@{self.domain}>"
        req = new_request("REGISTER", uri, f"{aor};tag={self.from_tag}", aor, self.call_id,
                          self.cseq, contact=f"<{self.contact}>",
                          headers=[("Expires", str(expires)), ("Allow", ALLOW)])
        # The last challenge answered again (next nonce count): saves a round trip per
        # refresh.
        credentials = self.auth.credentials("REGISTER", str(uri))
        if credentials is not None:
            req.headers.add(*credentials)
        return req

    def start(self, now: float) -> Request:
        self.state = RegState.REGISTERING
        self.auth.new_attempt()
        self._due = None
        return self._build(self.expires)

    def stop(self, now: float) -> Request | None:
        """Unregister (Expires: 0) if we are registered; None when there is nothing to undo."""
        self._due = None
        if self.state not in (RegState.REGISTERED, RegState.REGISTERING):
            self.state = RegState.UNREGISTERED
            return None
        self.state = RegState.UNREGISTERING
        self.auth.new_attempt()
        return self._build(0)

    # responses --------------------------------------------------------------------------
    def on_response(self, resp: Response, now: float) -> Request | None:
        """Feed the final response; returns a request to send at once (an answer to a
        challenge, or a retry with a longer interval), or None."""
        if resp.status < 200:
            return None
        self.last_status = resp.status
        if resp.status in (401, 407):
            return self._on_challenge(resp, now)
        if 200 <= resp.status < 300:
            self._on_success(resp, now)
            return None
        if resp.status == 423:
            min_expires = resp.headers.get("Min-Expires")
            if min_expires and is_digits(min_expires) and int(min_expires) > self.expires:
                self.expires = int(min_expires)
                return self._build(self.expires)
        retry_after = (resp.headers.get("Retry-After") or "").split(";")[0].strip()
        self._fail(explain(resp.status, resp.reason, self.auth.sent), now,
                   int(retry_after) if is_digits(retry_after) else None)
        return None

    def _on_challenge(self, resp: Response, now: float) -> Request | None:
        challenge = challenge_in(resp)
        if challenge is None:
            self._fail(explain(resp.status, resp.reason, False), now)
            return None
        was_sent = self.auth.sent
        if not self.auth.accept(challenge, resp.status):
            self._fail(explain(resp.status, resp.reason, True), now)
            return None
        if challenge.stale and was_sent:
            self.stale_retries += 1
        return self._build(0 if self.state == RegState.UNREGISTERING else self.expires)

    def _on_success(self, resp: Response, now: float) -> None:
        self.auth.new_attempt()
        if self.state == RegState.UNREGISTERING:
            self.state = RegState.UNREGISTERED
            self.expires_at = None
            self.reason = "unregistered"
            return
        granted = self._granted(resp)
        self.successes += 1
        self.state = RegState.REGISTERED
        self.failures = 0
        self.expires_at = now + granted
        self.reason = f"registered for {granted} s"
        # Refresh well before expiry, but not absurdly often for short intervals.
        self._due = now + max(granted * 0.5, granted - 60.0)

    def _granted(self, resp: Response) -> int:
        ours = self.contact
        for value in resp.headers.get_all("Contact"):
            try:
                na = NameAddr.parse(value)
            except (UriError, ValueError):
                continue
            if _same_contact(str(na.uri), ours) and is_digits(na.params.get("expires") or ""):
                return int(na.params["expires"] or 0)
        exp = resp.headers.get("Expires")
        if exp and is_digits(exp):
            return int(exp)
        return self.expires

    def on_timeout(self, now: float) -> None:
        self.last_status = 408
        self._fail(explain(408, "", False), now)

    def _fail(self, reason: str, now: float, retry_after: int | None = None) -> None:
        self.failures += 1
        self.reason = reason
        if self.state == RegState.UNREGISTERING:
            self.state = RegState.UNREGISTERED
            self._due = None
            return
        self.state = RegState.FAILED
        self.expires_at = None
        backoff = min(MIN_BACKOFF * 2 ** (self.failures - 1), MAX_BACKOFF)
        self._due = now + max(backoff, float(retry_after or 0))

    # time -------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        return self._due

    def due(self, now: float) -> Request | None:
        """The refresh or retry request when its time has come."""
        if self._due is None or now < self._due:
            return None
        self._due = None
        self.auth.new_attempt()
        if self.state == RegState.FAILED:
            self.state = RegState.REGISTERING
        return self._build(self.expires)


def _same_contact(a: str, b: str) -> bool:
    try:
        ua, ub = SipUri.parse(a), SipUri.parse(b)
    except UriError:
        return False
    return (ua.user, ua.host.lower(), ua.port or 5060) == (ub.user, ub.host.lower(),
                                                           ub.port or 5060)
