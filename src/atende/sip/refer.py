"""REFER (RFC 3515) for transfers, without I/O: the Refer-To target, the implicit 'refer'
subscription's NOTIFYs and their message/sipfrag bodies (RFC 3420), in both roles."""

from __future__ import annotations

import re
from dataclasses import dataclass

from atende.sip.grammar import parse_params
from atende.sip.message import Request
from atende.sip.uri import NameAddr, SipUri, UriError

SIPFRAG = "message/sipfrag;version=2.0"
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6]\d\d)(?: (.*))?$")
# Refer-To headers a transferee may copy into its INVITE (RFC 3891 attended transfer).
PASSED_HEADERS = ("Replaces",)


class ReferError(ValueError):
    """A REFER or NOTIFY we cannot act on; ``status`` is the response to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ReferTarget:
    """Where a REFER sends us, with the headers to carry into the new call."""

    uri: SipUri  # without its embedded headers
    headers: tuple[tuple[str, str], ...] = ()  # e.g. (("Replaces", "…"),) for the INVITE


@dataclass(frozen=True)
class Progress:
    """One NOTIFY of a transfer: the referred call's status, and whether it is the last."""

    status: int
    reason: str
    final: bool


def refer_target(req: Request) -> ReferTarget:
    """The target of an incoming REFER (exactly one Refer-To, a SIP URI)."""
    values = req.headers.get_all("Refer-To")
    if len(values) != 1:
        raise ReferError(400, "Exactly one Refer-To header required")
    try:
        uri = NameAddr.parse(values[0]).uri
    except (UriError, ValueError):
        raise ReferError(400, "Bad Refer-To URI") from None
    headers: list[tuple[str, str]] = []
    if uri.headers:
        for part in uri.headers.split("&"):
            name, _, value = part.partition("=")
            canonical = next((h for h in PASSED_HEADERS if h.lower() == name.lower()), None)
            if canonical is None:
                raise ReferError(403, f"Refer-To header {name!r} not accepted")
            headers.append((canonical, _unescape(value)))
    uri = SipUri(uri.host, uri.user, uri.port, uri.scheme, None, dict(uri.params))
    return ReferTarget(uri, tuple(headers))


def _unescape(value: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def sipfrag(status: int, reason: str) -> bytes:
    return f"SIP/2.0 {status} {reason}\r\n".encode()


def parse_sipfrag(body: bytes) -> tuple[int, str]:
    line = body.decode("utf-8", "replace").lstrip().split("\n", 1)[0].strip()
    m = _STATUS_LINE.match(line)
    if m is None:
        raise ReferError(400, "NOTIFY body is not a SIP status line")
    return int(m.group(1)), (m.group(2) or "").strip()


def is_refer_event(event: str | None) -> bool:
    return (event or "").split(";", 1)[0].strip().lower() == "refer"


def notify_progress(req: Request) -> Progress:
    """What a NOTIFY of our REFER's subscription says (RFC 3515 §2.4.5)."""
    if not is_refer_event(req.headers.get("Event")):
        raise ReferError(489, "Bad Event")
    state, _, params = (req.headers.get("Subscription-State") or "").partition(";")
    terminated = state.strip().lower() == "terminated"
    if not req.body:
        if terminated:  # ended without telling us how the referred call went
            reason = parse_params(params).get("reason") or "subscription terminated"
            return Progress(0, reason, True)
        raise ReferError(400, "NOTIFY without a sipfrag body")
    ctype = (req.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if ctype != "message/sipfrag":
        raise ReferError(415, "Unsupported Media Type")
    status, reason = parse_sipfrag(req.body)
    return Progress(status, reason, terminated or status >= 200)
