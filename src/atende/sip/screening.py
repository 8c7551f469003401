"""What a user agent server checks of a request before anything is set up for it
(RFC 3261 §8.2): required extensions, methods, a new INVITE's Contact and offer, and the
headers that say what we take. Pure functions: a request in, a refusal (or what to use)
out."""

from __future__ import annotations

from atende.sip.message import Request, Response, make_response
from atende.sip.requests import ALLOW
from atende.sip.sdp import NoCommonCodec, Offer, SdpError, parse_sdp
from atende.sip.uri import NameAddr, UriError

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
KNOWN_METHODS = frozenset({"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER",
                           "UPDATE", "PRACK"})


def unsupported(req: Request) -> Response | None:
    """420 for a request that requires an extension we lack (RFC 3261 §8.2.2.3)."""
    wanted = [o for o in req.headers.get_all("Require")
              if o.lower() not in SUPPORTED_EXTENSIONS]
    if not wanted:
        return None
    resp = make_response(req, 420)
    resp.headers.add("Unsupported", ", ".join(wanted))
    return resp


def not_allowed(req: Request) -> Response:
    """405 for a method we know but do not take here, 501 for one we do not know."""
    resp = make_response(req, 405 if req.method.upper() in KNOWN_METHODS else 501)
    resp.headers.add("Allow", ALLOW)
    return resp


def with_capabilities(resp: Response) -> Response:
    """What we take, on an OPTIONS answer or a 2xx to INVITE (RFC 3261 §11.2)."""
    resp.headers.add("Allow", ALLOW)
    resp.headers.add("Accept", "application/sdp")
    resp.headers.add("Accept-Language", "en")
    resp.headers.add("Supported", ", ".join(sorted(SUPPORTED_EXTENSIONS)))
    return resp


def screen_invite(req: Request) -> tuple[Offer | None, Response | None]:
    """A new INVITE checked before anything is set up for it: its offer (None: a delayed
    offer), or the response that refuses it (400 without a usable Contact, 415 for a body
    that is not SDP, 406 when the caller takes no SDP in our answer, 488 with no common
    codec, 400 for SDP we cannot read)."""
    contacts = req.headers.get_all("Contact")
    if not contacts:
        return None, make_response(req, 400, "Missing Contact")
    try:
        req.contact  # noqa: B018 (read once: the dialog reads it again)
        for route in req.headers.get_all("Record-Route"):  # the dialog's route set
            NameAddr.parse(route)
    except (UriError, ValueError):
        return None, make_response(req, 400, "Bad Contact or Record-Route")
    if not takes_sdp(req):
        resp = make_response(req, 406)
        resp.headers.add("Accept", "application/sdp")
        return None, resp
    if not req.body:
        return None, None
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/sdp":
        resp = make_response(req, 415)
        resp.headers.add("Accept", "application/sdp")
        return None, resp
    try:
        offer = Offer.of(parse_sdp(req.body))
    except NoCommonCodec:
        resp = make_response(req, 488)
        resp.headers.add("Warning", warning("no common codec: PCMU/PCMA required", 305))
        return None, resp
    except SdpError as exc:
        return None, make_response(req, 400, f"Bad SDP: {exc}"[:80])
    return offer, None


def takes_sdp(req: Request) -> bool:
    """Whether the request's Accept (if it has one) lets our answer carry SDP (RFC 3261
    §20.1: an Accept header present but empty takes nothing)."""
    if "Accept" not in req.headers:
        return True
    kinds = {a.split(";")[0].strip().lower() for a in req.headers.get_all("Accept")}
    return bool(kinds & {"application/sdp", "application/*", "*/*"})


def warning(text: str, code: int = 399) -> str:
    """A Warning header's value from us (RFC 3261 §20.43)."""
    return f'{code} atende "{warning_text(text)}"'


def warning_text(text: str) -> str:
    """Text for a Warning header's quoted string (RFC 3261 §20.43): no quotes or line
    breaks can break out of it."""
    return " ".join(text.replace('"', "'").replace("\\", "/").split())
