"""SIP messages: parsing from bytes, serializing to bytes, and stream framing (RFC 3261 §7, §18.3).

Parsing is strict where a wrong guess would be dangerous and lenient where peers commonly
deviate (bare LF line ends, leading CRLFs). When a request is wrong but still carries the
headers needed to answer it, the partial message travels with the error so the UA can send
the right 4xx/5xx; otherwise the input is dropped.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar, cast

from atende.sip.grammar import is_digits, is_token
from atende.sip.headers import CSeq, Headers, Via, canonical_name
from atende.sip.uri import NameAddr, SipUri, UriError

MAX_DATAGRAM = 65535
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_COUNT = 200
MAX_BODY_BYTES = 256 * 1024
V = TypeVar("V")

class SipParseError(Exception):
    """A message that cannot be accepted.

    ``status`` is the response a UAS should send for it (400, 505, 513, 416 …) when
    ``message`` — whatever could be parsed — carries enough headers to build a response.
    ``message`` is None when nothing usable was parsed: such input is dropped silently,
    as RFC 3261 §18 requires for messages we cannot answer.
    """

    def __init__(self, reason: str, status: int = 400, message: Message | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.message = message


REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}

_STATUS_RE = re.compile(r"^SIP/2\.0 ([1-6][0-9][0-9]) ?(.*)$")
# RFC 3261 §7.1: Method SP Request-URI SP SIP-Version, one space each, nothing around.
_REQUEST_RE = re.compile(r"([^\s]+) ([^\s]+) (SIP/[^\s]+)")
# A request may carry each of these once (RFC 3261 §20: not a comma-separated list).
SINGLE_HEADERS = ("Call-ID", "From", "To", "CSeq", "Max-Forwards", "Content-Length",
                  "Content-Type")
_SINGLE = frozenset(SINGLE_HEADERS)


# A header's view: the value it was parsed from, what that gave, and the headers (and
# their version) it was last found in, which tells at a glance that it still holds.
_Seen = tuple[str, object, Headers, int]


class _Fields:
    """Typed views of the headers every message carries. Each is parsed once for as long
    as its header's value stays the same (the layers above ask for them again and again),
    so a view is shared: read it, never change it (change a copy, and set the header)."""

    headers: Headers
    views: dict[str, _Seen]

    def _view(self, name: str, parse: Callable[[str], V]) -> V:
        h = self.headers
        seen = self.views.get(name)
        if seen is not None and seen[2] is h and seen[3] == h.version:
            return cast(V, seen[1])  # nothing changed in the headers since
        raw = h.get(name) or ""
        value = cast(V, seen[1]) if seen is not None and seen[0] == raw else parse(raw)
        self.views[name] = (raw, value, h, h.version)
        return value

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        return self._view("CSeq", CSeq.parse)

    @property
    def top_via(self) -> Via:
        return self._view("Via", Via.parse)

    @property
    def from_(self) -> NameAddr:
        return self._view("From", NameAddr.parse)

    @property
    def to(self) -> NameAddr:
        return self._view("To", NameAddr.parse)

    @property
    def contact(self) -> NameAddr:
        """The first Contact (ValueError for none or a malformed one)."""
        return self._view("Contact", NameAddr.parse)


@dataclass
class Request(_Fields):
    """A SIP request."""

    method: str
    uri: SipUri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    views: dict[str, _Seen] = field(default_factory=dict, init=False, repr=False,
                                    compare=False)

    @property
    def is_request(self) -> bool:
        return True

    def encode(self) -> bytes:
        return _encode(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)


@dataclass
class Response(_Fields):
    """A SIP response."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    views: dict[str, _Seen] = field(default_factory=dict, init=False, repr=False,
                                    compare=False)

    @property
    def is_request(self) -> bool:
        return False

    def encode(self) -> bytes:
        reason = self.reason or REASONS.get(self.status, "")
        return _encode(f"SIP/2.0 {self.status} {reason}", self.headers, self.body)


Message = Request | Response


def _encode(start: str, headers: Headers, body: bytes) -> bytes:
    lines = [start]
    for name, value in headers:
        if name != "Content-Length":
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


# Header names as a message's lines wrote them (before the colon, spaces and all) →
# canonical: like headers._CANONICAL, bounded the same way, but holding only names that
# passed as tokens, so a line may be taken on its name alone.
_NAMES: dict[str, str] = {}


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = data.find(sep)
        if idx >= 0:
            return data[:idx], data[idx + len(sep) :]
    return data, b""


def parse_message(data: bytes, *, stream: bool = False) -> Message:
    """Parse one complete message. ``stream`` tells that it came over TCP/TLS, where the
    framer already cut the body by Content-Length."""
    if len(data) > MAX_DATAGRAM and not stream:
        raise SipParseError("message too large", 513)
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    head, body = _split_head(data)
    if len(head) > MAX_HEADER_BYTES:
        # Too big to trust any part of it: answer 513 only if we can cheaply find the headers.
        raise SipParseError("header section too large", 513, _salvage(head[:MAX_HEADER_BYTES]))
    errors: list[tuple[str, int]] = []
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
        errors.append(("header section is not valid UTF-8", 400))

    raw_lines = text.replace("\r\n", "\n").split("\n")
    start, header_lines = raw_lines[0], raw_lines[1:]
    fields: list[tuple[str, str]] = []
    foldable = False  # the last line was a header a continuation line may extend
    for line in header_lines:
        if line[:1] in (" ", "\t"):
            if not foldable:
                errors.append(("continuation line before any header", 400))
                continue
            last, value = fields[-1]
            fields[-1] = (last, value + " " + line.strip())  # RFC 3261 §7.3.1 folding
            continue
        written, sep, value = line.partition(":")
        name = _NAMES.get(written) if sep else None
        if name is None:
            stripped = written.strip()
            if not sep or not is_token(stripped):
                errors.append((f"malformed header line {line[:40]!r}", 400))
                foldable = False
                continue
            name = canonical_name(stripped)
            if len(written) <= 32 and len(_NAMES) < 1024:
                _NAMES[written] = name
        fields.append((name, value.strip()))
        foldable = True
    if len(fields) > MAX_HEADER_COUNT:
        errors.append(("too many header fields", 513))
    headers = Headers.parsed(fields)

    msg: Message
    request_line = _REQUEST_RE.fullmatch(start)
    status_match = _STATUS_RE.match(start)
    if status_match:
        msg = Response(int(status_match.group(1)), status_match.group(2), headers, body)
    elif request_line and is_token(request_line.group(1)):
        method, uri_s, version = request_line.groups()
        try:
            uri = SipUri.parse(uri_s)
        except UriError as exc:
            bad_scheme = ":" in uri_s and uri_s.split(":", 1)[0].lower() not in ("sip", "sips")
            placeholder = Request(method, SipUri("invalid"), headers, body)
            if bad_scheme:
                raise SipParseError(
                    f"unsupported URI scheme: {uri_s[:40]}", 416, placeholder
                ) from None
            raise SipParseError(f"bad Request-URI: {exc}", 400, placeholder) from None
        msg = Request(method, uri, headers, body)
        if version.strip() != "SIP/2.0":
            raise SipParseError(f"unsupported version {version[:20]!r}", 505, msg)
    else:
        raise SipParseError(f"bad start line {start[:60]!r}", 400, _answerable(start, headers))

    single = _check_single(headers)
    errors.extend(single or _check_body_length(headers, msg, stream))
    errors.extend(_check_mandatory(msg))
    if errors:
        reason, status = errors[0]
        raise SipParseError(reason, status, msg)
    return msg


def _check_body_length(headers: Headers, msg: Message, stream: bool) -> list[tuple[str, int]]:
    cl = headers.get("Content-Length")
    if cl is None:
        if stream:
            return [("Content-Length is required on stream transports", 400)]
        return []
    if not is_digits(cl):
        return [(f"bad Content-Length {cl[:20]!r}", 400)]
    length = int(cl)
    if length > MAX_BODY_BYTES:
        return [("body too large", 513)]
    if length > len(msg.body):
        # RFC 3261 §18.3: a datagram shorter than its Content-Length is an error: a
        # response is discarded, a request should get a 400.
        raise SipParseError("body shorter than Content-Length", 400,
                            msg if isinstance(msg, Request) else None)
    msg.body = msg.body[:length]
    return []


def _check_single(headers: Headers) -> list[tuple[str, int]]:
    names = [name for name, _ in headers if name in _SINGLE]
    if len(set(names)) == len(names):  # the usual case, found in one pass
        return []
    return [(f"more than one {name} header", 400) for name in SINGLE_HEADERS
            if names.count(name) > 1]


def _answerable(start: str, headers: Headers) -> Request | None:
    """For a request line we cannot read, a stand-in request to answer 400 to when its
    headers can be answered (CSeq names the method); None for a response or when they
    cannot: the message is dropped."""
    if start.lstrip().upper().startswith("SIP/"):
        return None
    try:
        method = CSeq.parse(headers.get("CSeq") or "").method
        msg = Request(method, SipUri("invalid"), headers)
        if _check_mandatory(msg) or _check_single(headers):
            return None
    except (SipParseError, ValueError):
        return None
    return msg


def _check_mandatory(msg: Message) -> list[tuple[str, int]]:
    errors: list[tuple[str, int]] = []
    h = msg.headers
    vias = h.get_all("Via")
    if not vias:
        # Without a Via there is nowhere to send a response: drop.
        raise SipParseError("missing Via", 400, None)
    # Checked through the message's views: what is parsed here is parsed once.
    try:
        msg.top_via  # noqa: B018
    except ValueError:
        raise SipParseError("malformed Via", 400, None) from None
    for name in ("From", "To", "Call-ID", "CSeq"):
        if not h.get(name):
            errors.append((f"missing {name} header", 400))
    if errors:
        return errors
    try:
        cseq = msg.cseq
    except ValueError:
        return [("malformed CSeq", 400)]
    if isinstance(msg, Request) and cseq.method != msg.method.upper():
        errors.append(("CSeq method does not match the request method", 400))
    views: tuple[tuple[str, Callable[[], NameAddr]], ...] = (
        ("From", lambda: msg.from_), ("To", lambda: msg.to))
    for name, view in views:
        try:
            view()
        except (UriError, ValueError):
            errors.append((f"malformed {name} header", 400))
    mf = h.get("Max-Forwards")
    if mf is not None and not is_digits(mf):
        errors.append(("malformed Max-Forwards", 400))
    return errors


def _salvage(head: bytes) -> Message | None:
    try:
        msg = parse_message(head + b"\r\n\r\n")
    except SipParseError as exc:
        return exc.message
    return msg


class FramingError(SipParseError):
    """A stream that cannot be cut into messages any more. ``head``: the header section
    that broke it, so that it can be answered (400) before the connection is closed."""

    def __init__(self, reason: str, head: bytes) -> None:
        super().__init__(reason)
        self.head = head


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages by Content-Length (RFC 3261 §18.3).

    ``feed`` returns complete messages' bytes; the CRLF keep-alives of RFC 5626 §3.5.1 are
    reported as ``b"\\r\\n\\r\\n"`` pings so the transport can answer with a single CRLF.
    A stream that cannot be framed raises SipParseError: the connection must be closed.
    """

    # A ClassVar, so that it is read from the class when compiled too (mypyc makes plain
    # class attributes the defaults of instance slots).
    PING: ClassVar[bytes] = b"\r\n\r\n"

    def __init__(self) -> None:
        self._buf = bytearray()

    def pending(self) -> bool:
        """Whether part of a message is waiting for the rest (stray line ends aside)."""
        return bool(self._buf.strip(b"\r\n"))

    def feed(self, data: bytes) -> list[bytes]:
        self._buf.extend(data)
        out: list[bytes] = []
        while True:
            if self._buf.startswith(b"\r\n\r\n"):
                del self._buf[:4]
                out.append(self.PING)
                continue
            while self._buf[:2] == b"\r\n" and len(self._buf) >= 4:
                del self._buf[:2]
            idx = self._buf.find(b"\r\n\r\n")
            if idx < 0:
                if len(self._buf) > MAX_HEADER_BYTES:
                    raise SipParseError("header section too large", 513)
                return out
            head = bytes(self._buf[:idx])
            length = _content_length(head)
            if length is None:
                raise FramingError("missing or bad Content-Length on stream transport",
                                   head + b"\r\n\r\n")
            if length > MAX_BODY_BYTES:
                raise SipParseError("body too large", 513)
            total = idx + 4 + length
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


def _content_length(head: bytes) -> int | None:
    """The stream's body length; None when it is missing, not a number, or given twice
    (two lengths are two ways to cut the stream: refuse to choose)."""
    found = [line.partition(b":")[2].strip() for line in head.split(b"\r\n")[1:]
             if line.partition(b":")[1] and
             line.partition(b":")[0].strip().lower() in (b"content-length", b"l")]
    if len(found) != 1 or not found[0].isdigit():
        return None
    return int(found[0])


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """Build a response that copies Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2)."""
    h = Headers()
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        values = _raw_values(request.headers, name)
        # A request that (wrongly) carries two Call-IDs gets an answer that carries one.
        for value in values if name == "Via" else values[:1]:
            h.add(name, value)
    if 100 < status < 300:
        # Responses that may establish a dialog echo the proxies' Record-Route (§12.1.1),
        # or the peer's in-dialog requests would bypass them.
        for value in _raw_values(request.headers, "Record-Route"):
            h.add("Record-Route", value)
    if status != 100:
        # Every response but 100 to a request without a To tag carries one (RFC 3261
        # §8.2.6.2): the dialog's own when the caller gives it, else one derived from
        # the request, so that a copy of the request answered again (statelessly, too:
        # §8.2.7) gets the same tag.
        to = request.headers.get("To") or ""
        try:
            if request.to.tag is None:
                h.set("To", f"{to};tag={to_tag or _derived_tag(request)}")
        except (UriError, ValueError):
            pass
    if content_type:
        h.add("Content-Type", content_type)
    resp = Response(status, reason or REASONS.get(status, ""), h, body)
    # What the request's views read is what the copied headers hold (a view is used only
    # while its header's value is the one it was read from): not parsed a second time.
    resp.views.update(request.views)
    return resp


def mark_received(req: Request, host: str, port: int) -> None:
    """Say on ``req``'s top Via where it came from: 'received' when its sent-by host is
    another (RFC 3261 §18.2.1), 'rport' when asked for (RFC 3581). The responses then go
    back there."""
    via = req.top_via  # the message's shared view: read here, never changed
    marked = via.received_from(host, port)
    if marked is via:
        return  # it says so already: the Via stays as it came
    vias = req.headers.get_all("Via")
    vias[0] = str(marked)
    req.headers.remove("Via")
    for value in reversed(vias):
        req.headers.insert_first("Via", value)
    req.views["Via"] = (vias[0], marked, req.headers, req.headers.version)  # parsed already


def local_response(request: Request, status: int, reason: str | None = None) -> Response:
    """The response a transaction makes up for its own request when none came (Timer B
    or F's 408, a transport error's 503: RFC 3261 §8.1.3.1, §17.1.1.2). It never goes on
    the wire, and has no To tag: that is how its reader tells it from the peer's."""
    resp = make_response(request, status, reason)
    resp.headers.set("To", request.headers.get("To") or "")
    return resp


# Keyed by a secret of this process: tags are unguessable (RFC 3261 §19.3) and differ
# between requests, yet the same for copies of one request.
_TAG_KEY = secrets.token_bytes(16)


def _derived_tag(request: Request) -> str:
    h = request.headers
    seed = "\n".join((h.get("Via") or "", h.get("Call-ID") or "", h.get("From") or "",
                      h.get("CSeq") or ""))
    return hashlib.blake2s(seed.encode(errors="surrogateescape"), digest_size=6,
                           key=_TAG_KEY).hexdigest()


def _raw_values(headers: Headers, name: str) -> list[str]:
    return [v for n, v in headers if n == name]
