"""The registrar (sip/registrar.py) on a fixed clock, driven by our own REGISTER client
(sip/register.py): challenge, binding, refresh, expiry, removal and bad requests."""

from __future__ import annotations

from atende.sip.auth import DigestClient, DigestServer, pick_challenge
from atende.sip.message import Request, parse_message
from atende.sip.register import Registration, RegState
from atende.sip.registrar import MIN_EXPIRES, Registrar
from tests.sip.test_register import on_the_wire

SOURCE = ("udp", "192.0.2.1", 40000)
PASSWORDS = {"incoming_user": "incomingSecret123"}


def client(password: str = "incomingSecret123", expires: int = 300) -> Registration:
    return Registration("incoming_user", "bridge.example", "incoming_user", password,
                        "sip:incoming_user@10.0.0.9:5090", expires=expires)


def exchange(registrar: Registrar, reg: Registration, req: Request | None, now: float
             ) -> None:
    """Send ``req`` and every follow-up (the answer to a challenge) to the registrar."""
    while req is not None:
        req = reg.on_response(registrar.register(on_the_wire(req), SOURCE, PASSWORDS, now),
                              now)


def test_a_client_registers_after_the_challenge_and_is_found() -> None:
    registrar = Registrar(DigestServer("atende-bridge", algorithms=("MD5",)))
    reg = client()
    exchange(registrar, reg, reg.start(0.0), 0.0)
    assert reg.state == RegState.REGISTERED and reg.successes == 1
    found = registrar.latest("incoming_user", 1.0)
    assert found is not None and found.source == SOURCE
    assert str(found.contact) == "sip:incoming_user@10.0.0.9:5090"
    assert registrar.latest("incoming_user", 301.0) is None  # it expired
    assert registrar.latest("someone_else", 1.0) is None


def test_a_wrong_password_never_binds() -> None:
    registrar = Registrar(DigestServer("atende-bridge"))
    reg = client("Wrong-Password-1")
    exchange(registrar, reg, reg.start(0.0), 0.0)
    assert reg.state == RegState.FAILED and reg.last_status == 401
    assert registrar.latest("incoming_user", 1.0) is None


def test_unregistering_removes_the_binding() -> None:
    registrar = Registrar(DigestServer("atende-bridge"))
    reg = client()
    exchange(registrar, reg, reg.start(0.0), 0.0)
    exchange(registrar, reg, reg.stop(5.0), 5.0)
    assert registrar.latest("incoming_user", 6.0) is None


def _raw(contact: str, expires: str | None = None, user: str = "incoming_user") -> Request:
    extra = f"Expires: {expires}\r\n" if expires is not None else ""
    msg = parse_message((
        f"REGISTER sip:bridge.example SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:40000;branch=z9hG4bKx1\r\n"
        f"From: <sip:{user}@bridge.example>;tag=a\r\nTo: <sip:{user}@bridge.example>\r\n"
        f"Call-ID: r1@test\r\nCSeq: 1 REGISTER\r\nContact: {contact}\r\n{extra}"
        f"Content-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def test_the_rules_of_a_register_are_kept() -> None:
    server = DigestServer("atende-bridge")
    registrar = Registrar(server)
    assert registrar.register(_raw("<sip:x@10.0.0.9>", user="nobody"), SOURCE, PASSWORDS,
                              0).status == 404
    unauthenticated = registrar.register(_raw("<sip:x@10.0.0.9>"), SOURCE, PASSWORDS, 0)
    assert unauthenticated.status == 401
    assert unauthenticated.headers.get_all("WWW-Authenticate")
    # With credentials (made by our digest client from the challenge it got):
    challenge = pick_challenge(unauthenticated.headers.get_all("WWW-Authenticate"))
    assert challenge is not None
    client_ = DigestClient("incoming_user", "incomingSecret123")

    def send(contact: str, expires: str | None = None) -> int:
        req = _raw(contact, expires)
        req.headers.add("Authorization", client_.authorize(challenge, "REGISTER",
                                                          "sip:bridge.example"))
        return registrar.register(req, SOURCE, PASSWORDS, 10).status

    assert send("<sip:x@10.0.0.9>", str(MIN_EXPIRES - 1)) == 423
    assert send("<sip:x@10.0.0.9>", "soon") == 400
    assert send("*", "60") == 400  # * needs Expires: 0
    assert send("<sip:x@10.0.0.9>;expires=7200") == 200
    found = registrar.latest("incoming_user", 11)
    assert found is not None and found.expires_at == 10 + 3600  # capped
    assert send("*", "0") == 200
    assert registrar.latest("incoming_user", 11) is None
