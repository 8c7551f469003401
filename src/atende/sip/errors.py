"""Errors raised by the sans-IO SIP core."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atende.sip.message import Message


class SipError(Exception):
    """Base class for SIP core errors."""


class SipParseError(SipError):
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
