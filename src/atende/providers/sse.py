"""Server-sent events (the WHATWG event-stream format), sans-IO: text in, events out.

Chat APIs stream their answers this way: OpenAI and Gemini send ``data:`` lines only,
Anthropic names each event with ``event:``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event."""

    data: str
    event: str = "message"
    id: str | None = None


class SseParser:
    """Splits a server-sent events stream into events, however its chunks arrive."""

    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, text: str) -> list[SseEvent]:
        """Events completed by ``text``; a partial line waits for the next call."""
        self._buffer += text
        out: list[SseEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return out
            line, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1]:]
            event = self._line(line)
            if event is not None:
                out.append(event)

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = SseEvent("\n".join(self._data), self._event or "message", self._id)
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None  # a comment: keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def _line_end(buffer: str) -> tuple[int, int] | None:
    """Where the first line ends and the next begins (CRLF, LF or CR end a line). A CR at
    the very end may be the first half of a CRLF, so it waits."""
    lf, cr = buffer.find("\n"), buffer.find("\r")
    if cr == -1 or (lf != -1 and lf < cr):
        return None if lf == -1 else (lf, lf + 1)
    if cr + 1 == len(buffer):
        return None
    return (cr, cr + 2) if buffer[cr + 1] == "\n" else (cr, cr + 1)
