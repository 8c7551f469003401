"""Small lexical helpers for SIP header grammar (RFC 3261 §25): tokens, quoted strings,
comma-separated lists and ``;name=value`` parameters."""

from __future__ import annotations

import re

TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_DIGITS_RE = re.compile(r"[0-9]+")
# RFC 3261 §25.1 user: unreserved / escaped / user-unreserved. No quote, backslash, space,
# line break, "<", ">", "@" or ":" can get through into a header we write.
_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")


def is_token(s: str) -> bool:
    return bool(TOKEN_RE.match(s))


def is_user(s: str) -> bool:
    """Whether ``s`` may stand as the user part of a SIP URI as it is."""
    return _USER_RE.fullmatch(s) is not None


def is_digits(s: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes "²" or "①", which ``int`` refuses."""
    return _DIGITS_RE.fullmatch(s) is not None


def unquote(s: str) -> str:
    """Strip the quotes of a quoted-string and resolve its backslash escapes."""
    s = s.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        out: list[str] = []
        i, body = 0, s[1:-1]
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                out.append(body[i + 1])
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    return s


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_outside_quotes(s: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not inside a quoted string or an ``<…>`` URI."""
    if '"' not in s and "<" not in s:  # most values: nothing to step over
        return s.split(sep)
    parts: list[str] = []
    buf: list[str] = []
    in_quotes = False
    in_angle = False
    escaped = False
    for ch in s:
        if escaped:
            buf.append(ch)
            escaped = False
            continue
        if in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
            buf.append(ch)
            continue
        if ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == sep and not in_angle:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    if in_quotes:
        raise ValueError("unterminated quoted string")
    parts.append("".join(buf))
    return parts


def split_commas(value: str) -> list[str]:
    """The values of a comma-separated list header; with an unterminated quote, the whole
    field as one value, for the parser of that header to refuse."""
    if "," not in value:  # one value: the top Via is asked for many times a message
        value = value.strip()
        return [value] if value else []
    try:
        parts = split_outside_quotes(value, ",")
    except ValueError:
        parts = [value]
    return [p.strip() for p in parts if p.strip()]


def parse_params(s: str) -> dict[str, str | None]:
    """Parse ``;a=b;c;d="x y"`` (leading semicolon optional). Names are lower-cased
    because parameter names are case-insensitive; values keep their case."""
    params: dict[str, str | None] = {}
    for part in split_outside_quotes(s, ";"):
        part = part.strip()
        if not part:
            continue
        if "=" in part:
            name, _, value = part.partition("=")
            params[name.strip().lower()] = value.strip()
        else:
            params[part.lower()] = None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())
