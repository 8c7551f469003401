"""ESL messages as FreeSWITCH sends them (mod_event_socket): a block of ``Name: value``
lines ending in a blank line, then, when the block has a ``Content-Length``, exactly that
many bytes of body. Header values may be URL-encoded (the channel data ``connect`` returns,
and every event in plain format). Sans-IO: bytes in, messages out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote

MAX_HEAD_BYTES = 256 * 1024  # channel data with every variable stays well under this
MAX_BODY_BYTES = 16 * 1024 * 1024  # api output (show channels …) can be long


class EslError(Exception):
    """A stream that cannot be read as ESL any more: the connection must be closed."""


@dataclass
class EslMessage:
    """One message from FreeSWITCH: a reply, an API result, an event, a notice."""

    headers: dict[str, str]  # values URL-decoded
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")

    @property
    def ok(self) -> bool:
        """A command/reply that says +OK (api/response: a body that does not say -ERR)."""
        if self.content_type == "api/response":
            return not self.body.startswith(b"-ERR")
        return self.reply_text.startswith("+OK")

    def event(self) -> EslEvent | None:
        """The event this message carries (plain or JSON), or None."""
        if self.content_type == "text/event-plain":
            return plain_event(self.body)
        if self.content_type == "text/event-json":
            return json_event(self.body)
        return None


@dataclass
class EslEvent:
    """A FreeSWITCH event: its headers and, for some (BACKGROUND_JOB, custom module
    events), a body of its own."""

    headers: dict[str, str]
    body: str = ""
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "")

    @property
    def subclass(self) -> str:
        return self.headers.get("Event-Subclass", "")

    @property
    def uuid(self) -> str:
        return self.headers.get("Unique-ID", "")

    def json_body(self) -> object:
        """The body as JSON (mod_audio_stream's events); EslError when it is not."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise EslError(f"event {self.name} {self.subclass}: body is not JSON") from exc


def header_block(text: str) -> dict[str, str]:
    """``Name: value`` lines, values URL-decoded. A line without a colon is refused: in
    ESL it can only mean a broken stream."""
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise EslError(f"not a header line: {line[:60]!r}")
        headers[name.strip()] = unquote(value.strip())
    return headers


def _length(headers: dict[str, str]) -> int:
    text = headers.get("Content-Length")
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit()):
        raise EslError(f"bad Content-Length {text[:20]!r}")
    if int(text) > MAX_BODY_BYTES:
        raise EslError(f"body of {text} bytes is past the limit")
    return int(text)


def plain_event(body: bytes) -> EslEvent:
    """An event in plain format: its header block, then (with an inner Content-Length)
    a blank line and its own body."""
    text = body.decode("utf-8", "replace")
    head, _, rest = text.replace("\r\n", "\n").partition("\n\n")
    headers = header_block(head)
    n = _length(headers)
    return EslEvent(headers, rest[:n] if n else "")


def json_event(body: bytes) -> EslEvent:
    """An event in JSON format: one object of header names to values; its own body, if
    any, under ``_body``."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise EslError("event-json body is not JSON") from exc
    if not isinstance(data, dict):
        raise EslError("event-json body is not an object")
    inner = str(data.pop("_body", ""))
    return EslEvent({str(k): str(v) for k, v in data.items()}, inner)


class EslReader:
    """Cuts FreeSWITCH's byte stream into messages. ``feed`` returns the complete ones;
    EslError when the stream is broken (then close the connection)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._head: dict[str, str] | None = None  # read, waiting for its body
        self._need = 0

    def feed(self, data: bytes) -> list[EslMessage]:
        self._buf.extend(data)
        out: list[EslMessage] = []
        while True:
            if self._head is None:
                while self._buf.startswith((b"\n", b"\r")):
                    del self._buf[:1]  # blank lines between messages
                end, sep = self._buf.find(b"\n\n"), 2
                crlf = self._buf.find(b"\r\n\r\n")
                if crlf >= 0 and (end < 0 or crlf < end):
                    end, sep = crlf, 4
                if end < 0:
                    if len(self._buf) > MAX_HEAD_BYTES:
                        raise EslError("header block past the limit")
                    return out
                head = bytes(self._buf[:end]).decode("utf-8", "replace")
                del self._buf[:end + sep]
                self._head = header_block(head)
                self._need = _length(self._head)
            if len(self._buf) < self._need:
                return out
            body = bytes(self._buf[:self._need])
            del self._buf[:self._need]
            out.append(EslMessage(self._head, body))
            self._head, self._need = None, 0
