"""The REGISTER client state machine on a fixed clock."""

from __future__ import annotations

from atende.sip.auth import DigestServer
from atende.sip.message import Request, Response, make_response, parse_message
from atende.sip.register import Registration, RegState

CONTACT = "sip:ai-1@192.0.2.1:5060"


def on_the_wire(req: Request) -> Request:
    """The request as a registrar receives it: the transport layer has added a Via."""
    wire = parse_message(req.encode().replace(
        b"\r\nMax-Forwards", b"\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKt\r\nMax-Forwards", 1))
    assert isinstance(wire, Request)
    return wire


class Registrar:
    """Enough of a registrar to answer REGISTERs: digest auth with our server role."""

    def __init__(self, password: str = "Right-Passw0rd", expires: int = 120,
                 status: int = 407) -> None:
        self.auth = DigestServer("pbx.example", nonce_ttl=100)
        self.password = password
        self.expires = expires
        self.status = status
        self.seen: list[Request] = []

    def handle(self, req: Request, now: float) -> Response:
        wire = on_the_wire(req)
        self.seen.append(wire)
        header = wire.headers.get("Authorization" if self.status == 401
                                  else "Proxy-Authorization")
        if header is not None:
            v = self.auth.verify(header, "REGISTER", {"ai": self.password}, now)
            if v.ok:
                ok = make_response(wire, 200, to_tag="r")
                expires = wire.headers.get("Expires")
                if expires != "0":
                    ok.headers.add("Contact", f"<{CONTACT}>;expires={self.expires}")
                return ok
            if not v.stale:
                return self._challenge(wire, now)
            return self._challenge(wire, now, stale=True)
        return self._challenge(wire, now)

    def _challenge(self, req: Request, now: float, stale: bool = False) -> Response:
        r = make_response(req, self.status, to_tag="r")
        name = "WWW-Authenticate" if self.status == 401 else "Proxy-Authenticate"
        for value in self.auth.challenges(now, stale=stale):
            r.headers.add(name, value)
        return r


def run(reg: Registration, pbx: Registrar, req: Request | None, now: float) -> None:
    while req is not None:
        req = reg.on_response(pbx.handle(req, now), now)


def make(password: str = "Right-Passw0rd") -> Registration:
    return Registration("ai", "pbx.example", "ai", password, CONTACT, expires=300)


def test_registers_answering_the_challenge_and_refreshes_before_expiry() -> None:
    reg, pbx = make(), Registrar()
    run(reg, pbx, reg.start(0.0), 0.0)
    assert reg.state == RegState.REGISTERED and reg.expires_at == 120.0
    assert [r.headers.get("Proxy-Authorization") is not None for r in pbx.seen] == [False,
                                                                                    True]
    assert pbx.seen[0].headers.get("Expires") == "300"
    assert pbx.seen[0].call_id == pbx.seen[1].call_id
    assert pbx.seen[1].cseq.number == pbx.seen[0].cseq.number + 1
    assert reg.next_deadline() == 60.0  # granted 120 s: refresh at half
    assert reg.due(59.0) is None
    refresh = reg.due(60.0)
    assert refresh is not None and refresh.headers.get("Proxy-Authorization")  # pre-emptive
    run(reg, pbx, refresh, 60.0)
    assert len(pbx.seen) == 3 and reg.state == RegState.REGISTERED and reg.expires_at == 180.0


def test_long_intervals_refresh_a_minute_early() -> None:
    reg, pbx = make(), Registrar(expires=3600)
    run(reg, pbx, reg.start(0.0), 0.0)
    assert reg.next_deadline() == 3540.0


def test_wrong_password_fails_with_a_reason_and_backs_off() -> None:
    reg, pbx = make("wrong"), Registrar()
    run(reg, pbx, reg.start(0.0), 0.0)
    assert reg.state == RegState.FAILED
    assert reg.reason == "407 after credentials: wrong username or password?"
    assert len(pbx.seen) == 2  # one challenge answered, no loop
    assert reg.next_deadline() == 30.0
    run(reg, pbx, reg.due(30.0), 30.0)
    assert reg.next_deadline() == 90.0  # 60 s later: backing off
    run(reg, pbx, reg.due(90.0), 90.0)
    assert reg.next_deadline() == 210.0
    assert len(pbx.seen) == 6


def test_stale_nonce_is_retried_silently() -> None:
    reg, pbx = make(), Registrar(expires=300)
    run(reg, pbx, reg.start(0.0), 0.0)
    refresh = reg.due(240.0)  # the cached nonce is now older than the PBX's 100 s TTL
    run(reg, pbx, refresh, 240.0)
    assert reg.state == RegState.REGISTERED and reg.failures == 0
    assert reg.stale_retries == 1
    assert len(pbx.seen) == 4  # pre-emptive (stale) + fresh answer


def test_www_authenticate_uses_authorization() -> None:
    reg, pbx = make(), Registrar(status=401)
    run(reg, pbx, reg.start(0.0), 0.0)
    assert reg.state == RegState.REGISTERED
    assert pbx.seen[1].headers.get("Authorization") is not None


def response(req: Request, status: int, **headers: str) -> Response:
    r = make_response(on_the_wire(req), status)
    for k, v in headers.items():
        r.headers.add(k.replace("_", "-"), v)
    return r


def test_interval_too_brief_retries_with_min_expires() -> None:
    reg = make()
    req = reg.start(0.0)
    again = reg.on_response(response(req, 423, Min_Expires="3600"), 0.0)
    assert again is not None and again.headers.get("Expires") == "3600"


def test_errors_in_plain_words_and_retry_after() -> None:
    reg = make()
    reg.on_response(response(reg.start(0.0), 403), 0.0)
    assert reg.state == RegState.FAILED and "refused this account" in reg.reason
    reg = make()
    reg.on_response(response(reg.start(0.0), 503, Retry_After="600"), 0.0)
    assert reg.next_deadline() == 600.0 and "503" in reg.reason
    reg = make()
    reg.start(0.0)
    reg.on_timeout(0.0)
    assert reg.last_status == 408 and "no answer from the PBX" in reg.reason


def test_password_never_appears_in_repr() -> None:
    reg = make("Very-Secret-123")
    assert "Very-Secret-123" not in repr(reg)
    assert "Very-Secret-123" not in repr(reg.auth)


def test_unregister() -> None:
    reg, pbx = make(), Registrar()
    run(reg, pbx, reg.start(0.0), 0.0)
    bye = reg.stop(10.0)
    assert bye is not None and bye.headers.get("Expires") == "0"
    run(reg, pbx, bye, 10.0)
    assert reg.state == RegState.UNREGISTERED and reg.next_deadline() is None
    assert make().stop(0.0) is None  # never registered: nothing to undo
