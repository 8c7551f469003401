"""An assistant's opening hours: a weekly schedule in its time zone, with holidays, and what
it does with calls that come outside them. Pure functions of the time given."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from atende.agent.actions import CallActions, Speech
from atende.agent.fallback import NOT_PUT_THROUGH
from atende.providers.tts.base import split_sentences

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOSED_ACTIONS = ("hangup", "message", "transfer")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")
DEFAULT_CLOSED = "We are closed at the moment. Please call again during our opening hours."

def parse_window(text: str) -> tuple[time, time | None]:
    """"09:00-13:00" → (09:00, 13:00); an end of "24:00" is None (until midnight).
    ValueError says what to fix."""
    m = _WINDOW.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a window such as 09:00-13:00")
    start = time(int(m.group(1)), int(m.group(2)))
    if m.group(3) == "24":
        if m.group(4) != "00":
            raise ValueError(f"{text!r}: the day ends at 24:00")
        return start, None
    end = time(int(m.group(3)), int(m.group(4)))
    if end <= start:
        raise ValueError(f"{text!r}: a window ends after it starts (split one that "
                         "crosses midnight in two days' windows)")
    return start, end


@dataclass(frozen=True)
class BusinessHours:
    """When an assistant takes calls: weekly windows in its time zone, and holidays."""

    timezone: str
    weekly: dict[str, list[str]]  # "mon" → ["09:00-13:00", "14:00-18:00"]; absent: closed
    holidays: tuple[str, ...] = ()  # ISO dates, closed all day
    message: str = DEFAULT_CLOSED
    action: str = "hangup"  # hangup | message | transfer
    destination: str | None = None  # a transfer destination's name, for transfer

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> BusinessHours | None:
        """From the stored ``business_hours`` (the API's, whole), or None: always open."""
        if not data:
            return None
        closed = data.get("closed") or {}
        return cls(data["timezone"], {d: list(w) for d, w in data["weekly"].items()},
                   tuple(data.get("holidays") or ()), closed.get("message") or DEFAULT_CLOSED,
                   closed.get("action", "hangup"), closed.get("destination"))

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        if local.date().isoformat() in self.holidays:
            return False
        now = local.time().replace(tzinfo=None)
        for window in self.weekly.get(DAYS[local.weekday()], []):
            start, end = parse_window(window)
            if start <= now and (end is None or now < end):
                return True
        return False


def holiday(text: str) -> str:
    """An ISO date, checked; ValueError says what to fix."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"{text!r} is not a date such as 2026-12-25") from None


def closed_opening(hours: BusinessHours, target: str | None, bridge: bool = False) -> Speech:
    """What the assistant says and does first on a call outside its hours: the closed
    message, then hang up, or transfer to ``target`` (the destination's address). With
    ``message`` (and after a transfer that fails) the caller's next words are taken as a
    message; the session's brain must be a MessageTaker for that."""
    async def opening(actions: CallActions) -> AsyncGenerator[str, None]:
        actions.event("closed", {"action": hours.action})
        if hours.action == "hangup":
            actions.end_after_speaking()
        for sentence in split_sentences(hours.message):
            yield sentence
        if hours.action == "transfer" and target is not None:
            result = await actions.transfer(target, bridge)
            if not result.ok:
                yield NOT_PUT_THROUGH
    return opening
