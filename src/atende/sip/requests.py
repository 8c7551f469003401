"""The requests atende sends, built in one place (RFC 3261 §8.1.1): every new request,
in-dialog request, CANCEL and ACK gets its mandatory headers here, in one order. The Via
is the transport's to add when it sends (channels/sip/ua.py), except where the RFC says a
request repeats another's (CANCEL, and the ACK of a non-2xx final response)."""

from __future__ import annotations

from collections.abc import Iterable

from atende.sip.headers import Headers
from atende.sip.message import Request, Response
from atende.sip.uri import SipUri

MAX_FORWARDS = "70"
# What we take (and so advertise in INVITEs, REGISTERs and OPTIONS answers).
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY"


def new_request(method: str, uri: SipUri, from_: str, to: str, call_id: str, cseq: int, *,
                contact: str | None = None, route: Iterable[str] = (),
                headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None) -> Request:
    """A request with the headers §8.1.1 requires, then ``headers`` as given. ``from_``
    and ``to`` are whole header values (tags included); ``route`` the Route set."""
    h = Headers()
    for value in route:
        h.add("Route", value)
    h.add("Max-Forwards", MAX_FORWARDS)
    h.add("From", from_)
    h.add("To", to)
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        h.add("Contact", contact)
    for name, value in headers:
        h.add(name, value)
    if content_type is not None:
        h.add("Content-Type", content_type)
    return Request(method, uri, h, body)


def cancel_for(invite: Request) -> Request:
    """The CANCEL of our ``invite`` (§9.1): its Request-URI, top Via (same branch, so it
    matches the INVITE's transaction at the far end), Route, From, To and Call-ID, and
    its CSeq number."""
    req = new_request("CANCEL", invite.uri, invite.headers.get("From") or "",
                      invite.headers.get("To") or "", invite.call_id, invite.cseq.number,
                      route=invite.headers.get_all("Route"))
    req.headers.insert_first("Via", invite.headers.get_all("Via")[0])
    return req


def ack_for_failure(invite: Request, resp: Response) -> Request:
    """The ACK of a non-2xx final response to our ``invite``, part of its transaction
    (§17.1.1.3): the INVITE's top Via and Route, the response's To (with its tag)."""
    req = new_request("ACK", invite.uri, invite.headers.get("From") or "",
                      resp.headers.get("To") or "", invite.call_id, invite.cseq.number,
                      route=invite.headers.get_all("Route"))
    req.headers.insert_first("Via", invite.headers.get_all("Via")[0])
    return req
