"""Header storage and the typed views of the headers the core needs (Via, CSeq)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from atende.sip.grammar import format_params, is_digits, parse_params, split_commas
from atende.sip.uri import HOST_PORT, port_number, split_hostport

# RFC 3261 §7.3.3 and later RFCs' compact forms.
COMPACT: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_SPECIAL_CASE = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
}

# Headers whose grammar is a comma-separated list, so several values may share one line.
# (WWW-Authenticate and friends contain commas inside one value: never split those.)
MULTI_VALUE = frozenset(
    {
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow-Events",
        "Content-Encoding",
        "In-Reply-To",
    }
)


# Names seen, canonical: every message carries the same few dozen. Bounded in count and
# length, since a peer may send any names it likes.
_CANONICAL: dict[str, str] = {}


def canonical_name(name: str) -> str:
    known = _CANONICAL.get(name)
    if known is not None:
        return known
    canonical = _canonical(name)
    if len(name) <= 32 and len(_CANONICAL) < 1024:
        _CANONICAL[name] = canonical
    return canonical


def _canonical(name: str) -> str:
    name = name.strip()
    low = name.lower()
    if low in COMPACT:
        return COMPACT[low]
    if low in _SPECIAL_CASE:
        return _SPECIAL_CASE[low]
    return "-".join(p.capitalize() for p in low.split("-"))


class Headers:
    """Ordered, case-insensitive multi-map of header fields."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        self.version = 0  # counts the changes: a value read at one version still holds
        for name, value in items or []:
            self.add(name, value)

    @classmethod
    def parsed(cls, fields: list[tuple[str, str]]) -> Headers:
        """The headers of a message read: (canonical name, stripped value) pairs in their
        order, taken as they are."""
        h = cls()
        h._items = fields
        return h

    def add(self, name: str, value: str) -> None:
        self.version += 1
        self._items.append((canonical_name(name), value.strip()))

    def set(self, name: str, value: str) -> None:
        """Replace every field of ``name`` with one, keeping the first one's position."""
        self.version += 1
        cname = canonical_name(name)
        for i, (n, _) in enumerate(self._items):
            if n == cname:
                self._items[i] = (cname, value)
                self._items = [
                    it for j, it in enumerate(self._items) if j <= i or it[0] != cname
                ]
                return
        self._items.append((cname, value))

    def remove(self, name: str) -> None:
        self.version += 1
        cname = canonical_name(name)
        self._items = [it for it in self._items if it[0] != cname]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value (of a list header, the first of its first field's list)."""
        cname = _CANONICAL.get(name) or canonical_name(name)  # a known name: no call
        multi = cname in MULTI_VALUE
        for n, v in self._items:
            if n != cname:
                continue
            if not multi:
                return v
            values = split_commas(v)
            if values:
                return values[0]
        return default

    def get_all(self, name: str) -> list[str]:
        """All values, with comma-separated list headers split into separate values."""
        cname = canonical_name(name)
        out: list[str] = []
        for n, v in self._items:
            if n != cname:
                continue
            if cname in MULTI_VALUE:
                out.extend(split_commas(v))
            else:
                out.append(v)
        return out

    def insert_first(self, name: str, value: str) -> None:
        self.version += 1
        self._items.insert(0, (canonical_name(name), value))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        cname = _CANONICAL.get(name) or canonical_name(name)
        for n, _ in self._items:
            if n == cname:
                return True
        return False

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h


_VIA_RE = re.compile(r"\s*([^\s/]+)\s*/\s*([^\s/]+)\s*/\s*([^\s/]+)\s+(\S.*)", re.S)
# The usual Via, "SIP/2.0/UDP host:port;params" with no spaces, a host name or IPv4
# address, no quotes: read in one match, to what the general parse gives for it.
_USUAL_VIA_RE = re.compile(r"SIP/2\.0/([A-Z]+) " + HOST_PORT + r"((?:;[^;\s\"<>]*)*)")


@dataclass
class Via:
    """A Via header value (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> Via:
        """ValueError for a value that is not a Via. Whitespace is allowed around the
        slashes, the colon and the semicolons (RFC 3261 §7.3.1 SWS, RFC 4475 §3.1.1.1)."""
        usual = _USUAL_VIA_RE.fullmatch(value)
        if usual is None:
            return cls.parse_any(value)
        transport, host, port_s, paramstr = usual.groups()
        return cls(transport, host, port_number(port_s),
                   parse_params(paramstr) if paramstr else {})

    @classmethod
    def parse_any(cls, value: str) -> Via:
        """Any Via, step by step (``parse`` reads the usual ones in one match)."""
        m = _VIA_RE.match(value)
        if m is None or m.group(1).upper() != "SIP" or m.group(2) != "2.0":
            raise ValueError(f"bad Via protocol {value[:30]!r}")
        sent_by, _, paramstr = m.group(4).partition(";")
        host, port = split_hostport("".join(sent_by.split()))
        return cls(m.group(3).upper(), host, port, parse_params(paramstr))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"SIP/2.0/{self.transport} {host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def received_from(self, host: str, port: int) -> Via:
        """This Via as the receiver of its request from ``host``:``port`` marks it:
        'received' when its sent-by host is another (RFC 3261 §18.2.1), 'rport' filled in
        when asked for (RFC 3581). Itself when there is nothing to mark."""
        moved = self.host != host
        if not moved and "rport" not in self.params:
            return self
        params = dict(self.params)
        if moved:
            params["received"] = host
        if "rport" in params:
            params["rport"] = str(port)
        return Via(self.transport, self.host, self.port, params)


@dataclass(frozen=True)
class CSeq:
    """A CSeq header value: sequence number and method."""

    number: int
    method: str

    @classmethod
    def parse(cls, value: str) -> CSeq:
        num, _, method = value.strip().partition(" ")
        method = method.strip()
        if not is_digits(num) or len(num) > 10 or not method or int(num) >= 2**31:
            raise ValueError(f"bad CSeq {value!r}")
        return cls(int(num), method.upper())

    def __str__(self) -> str:
        return f"{self.number} {self.method}"
