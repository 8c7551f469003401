"""SIP and SIPS URIs (RFC 3261 §19.1) and name-addr values (From, To, Contact, Route)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from atende.sip.grammar import format_params, is_digits, parse_params, quote, unquote

# A host name or IPv4 address; with an optional port (its digits in the second group).
HOST = r"([A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9])?\.?)"
HOST_PORT = HOST + r"(?::([0-9]{1,5}))?"
_HOST_RE = re.compile("^" + HOST + "$")
_IPV6_RE = re.compile(r"^[0-9A-Fa-f:.]+$")
# The usual URI, "sip:user@host:port;params" with a host name or IPv4 address, no password
# and no headers, read in one match to what `SipUri.parse_any` reads it to. The user part
# excludes what parse_any refuses in it (and ":", a password's separator); the
# parameters are free of quotes. Anything else goes to parse_any.
_USUAL_RE = re.compile(r"(sips?):(?:([^@:\s\"<>]+)@)?" + HOST_PORT + r"((?:;[^;?\s\"<>@]*)*)")


# URIs parsed, by their text: a call's three SIP messages carry a dozen URIs between
# them, and the same few (ours, the trunk's, the caller's) come again and again.
MAX_PARSED = 1024
_PARSED: dict[str, SipUri] = {}


class UriError(ValueError):
    """A URI that cannot be parsed."""

    pass


@dataclass(frozen=True)
class SipUri:
    """A SIP or SIPS URI (RFC 3261 §19.1). Parsed ones are shared (the same text gives
    the same object): never change one's ``params``; make another."""

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    password: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        known = _PARSED.get(text)
        if known is not None:
            return known
        stripped = text.strip()
        usual = _USUAL_RE.fullmatch(stripped)
        if usual is None:
            uri = cls.parse_any(stripped)
        else:  # read in one match
            scheme, user, host, port_s, paramstr = usual.groups()
            uri = cls(host, user, port_number(port_s), scheme, None,
                      parse_params(paramstr) if paramstr else {}, None)
        if len(text) <= 256:
            if len(_PARSED) >= MAX_PARSED:
                _PARSED.clear()  # what a peer made up goes; the usual ones come back
            _PARSED[text] = uri
        return uri

    @classmethod
    def parse_any(cls, text: str) -> SipUri:
        """Any URI, step by step (``parse`` reads the usual ones in one match)."""
        text = text.strip()
        scheme, sep, rest = text.partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("sip", "sips"):
            raise UriError(f"unsupported URI scheme in {text!r}")
        user = password = None
        if "@" in rest:
            # The user part may hold "?", ";" and "=" (RFC 3261 §25.1 user-unreserved);
            # "@" is escaped everywhere but where it ends it.
            userinfo, _, rest = rest.partition("@")
            user, _, pw = userinfo.partition(":")
            password = pw or None
            if not user or any(c in userinfo for c in ' \t"<>'):
                raise UriError(f"bad user part in {text!r}")
        headers: str | None = None
        if "?" in rest:
            rest, _, headers = rest.partition("?")
        hostport, _, paramstr = rest.partition(";")
        host, port = _split_hostport(hostport)
        if not host:
            raise UriError(f"missing host in {text!r}")
        try:
            params = parse_params(paramstr)
        except ValueError as exc:  # an unterminated quote in a parameter
            raise UriError(f"bad parameters in {text[:60]!r}: {exc}") from None
        return cls(
            host=host,
            user=user,
            port=port,
            scheme=scheme,
            password=password,
            params=params,
            headers=headers,
        )

    def __str__(self) -> str:
        s = f"{self.scheme}:"
        if self.user is not None:
            s += self.user
            if self.password is not None:
                s += ":" + self.password
            s += "@"
        s += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            s += f":{self.port}"
        s += format_params(self.params)
        if self.headers:
            s += "?" + self.headers
        return s

    @property
    def transport(self) -> str:
        t = self.params.get("transport")
        return (t or "udp").lower()


def _split_hostport(hostport: str) -> tuple[str, int | None]:
    hostport = hostport.strip()
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise UriError("unterminated IPv6 reference")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UriError("garbage after IPv6 reference")
        port_s = rest[1:] if rest else ""
    else:
        host, _, port_s = hostport.partition(":")
    if port_s and not is_digits(port_s):
        raise UriError(f"bad port {port_s!r}")
    port = port_number(port_s)
    if not host or not (_HOST_RE.match(host) or (":" in host and _IPV6_RE.match(host))):
        raise UriError(f"bad host {host!r}")
    return host, port


def port_number(digits: str | None) -> int | None:
    """The port of ``digits`` (ASCII digits, or empty or None for no port); UriError for
    0 or one past 65535."""
    if not digits:
        return None
    port = int(digits)
    if not 0 < port < 65536:
        raise UriError(f"bad port {digits!r}")
    return port


def split_hostport(hostport: str) -> tuple[str, int | None]:
    """Public form for Via sent-by and similar ``host[:port]`` values."""
    return _split_hostport(hostport)


def _find_unquoted(text: str, char: str) -> int:
    if '"' not in text:
        return text.find(char)
    in_quotes = escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif in_quotes and ch == "\\":
            escaped = True
        elif ch == '"':
            in_quotes = not in_quotes
        elif ch == char and not in_quotes:
            return i
    return -1


@dataclass
class NameAddr:
    """``"Display" <uri>;params`` — the value of From, To, Contact, Route, Record-Route."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        lt = _find_unquoted(text, "<")
        if lt >= 0:
            display_raw = text[:lt].strip()
            uri_s, sep, tail = text[lt + 1 :].partition(">")
            if not sep:
                raise UriError(f"unterminated <uri> in {text!r}")
            if display_raw.startswith('"') and not (len(display_raw) > 1
                                                    and display_raw.endswith('"')):
                raise UriError(f"unterminated display name in {text!r}")
            display = unquote(display_raw) if display_raw else None
            return cls(SipUri.parse(uri_s), display, parse_params(tail))
        # addr-spec without brackets: parameters belong to the header, not the URI.
        uri_s, _, tail = text.partition(";")
        return cls(SipUri.parse(uri_s), None, parse_params(tail))

    def __str__(self) -> str:
        disp = f"{quote(self.display)} " if self.display else ""
        return f"{disp}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")
