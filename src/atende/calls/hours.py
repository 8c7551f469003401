"""Calling hours: the daily window in which a call may be placed, in the callee's time
zone(s). Pure functions of the time given; nothing here reads a clock.

A number whose country spans several zones (Australia, most of North America) gets all of
them, and a time is open only if it is open in every one: atende cannot know which of them
the person is in, so it keeps to the hours that are decent in all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_LOOKAHEAD_DAYS = 8  # a weekly schedule opens within a week or never


class HoursError(ValueError):
    """Calling hours that cannot be used, in words that say what to fix."""


@dataclass(frozen=True)
class CallingHours:
    """Weekly windows in a time zone when calls may be placed (a callee's calling hours)."""

    start: time
    end: time  # exclusive; windows do not cross midnight
    days: frozenset[int]  # 0 = Monday
    zones: tuple[str, ...]

    @classmethod
    def parse(cls, data: dict[str, Any], derived_zones: tuple[str, ...]) -> CallingHours:
        """From the API's {"start", "end", "days"?, "timezone"?}; the zones come from
        ``timezone`` when given, else from the number (``derived_zones``)."""
        start = _hhmm(data.get("start"), "start")
        end = _hhmm(data.get("end"), "end")
        if start >= end:
            raise HoursError("start must be earlier than end (a window cannot cross "
                             "midnight)")
        days = data.get("days") or list(DAYS)
        if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
            raise HoursError("days must be a list such as [\"mon\", \"tue\"]")
        unknown = [d for d in days if d.lower()[:3] not in DAYS]
        if unknown:
            raise HoursError(f"days: unknown day {unknown[0]!r} (use mon … sun)")
        zone = data.get("timezone")
        if zone is not None:
            if not isinstance(zone, str) or not known_zone(zone):
                raise HoursError(f"timezone: {zone!r} is not an IANA time zone such as "
                                 "Europe/Lisbon")
            zones: tuple[str, ...] = (zone,)
        else:
            zones = derived_zones
        if not zones:
            raise HoursError("timezone: cannot tell the callee's time zone from the number; "
                             "give one")
        hours = cls(start, end, frozenset(DAYS.index(d.lower()[:3]) for d in days), zones)
        if hours.next_open(datetime(2024, 1, 1, tzinfo=UTC)) is None:
            named = ", ".join(zones[:3]) + (f" and {len(zones) - 3} more" if len(zones) > 3
                                            else "")
            raise HoursError(f"the window is never open in all of {named} at once; give a "
                             "timezone or a wider window")
        return hours

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> CallingHours:
        return cls(_hhmm(data["start"], "start"), _hhmm(data["end"], "end"),
                   frozenset(int(d) for d in data["days"]), tuple(data["zones"]))

    def to_stored(self) -> dict[str, Any]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M"),
                "days": sorted(self.days), "zones": list(self.zones)}

    def to_api(self) -> dict[str, Any]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M"),
                "days": [DAYS[d] for d in sorted(self.days)], "timezones": list(self.zones)}

    def is_open(self, at: datetime) -> bool:
        for name in self.zones:
            local = at.astimezone(ZoneInfo(name))
            if local.weekday() not in self.days or not self.start <= local.time() < self.end:
                return False
        return True

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` if the window is open then, else the first moment it opens (in every
        zone at once), or None if it never does."""
        if self.is_open(at):
            return at
        candidates = sorted(opening for name in self.zones
                            for opening in _openings(self.start, ZoneInfo(name), at)
                            if opening > at)
        found = next((c for c in candidates if self.is_open(c)), None)
        return None if found is None else found.astimezone(UTC)


def _openings(start: time, zone: ZoneInfo, after: datetime) -> list[datetime]:
    """When the window starts in ``zone`` on each day from the day of ``after`` on."""
    first: date = after.astimezone(zone).date()
    out = []
    for offset in range(_LOOKAHEAD_DAYS + 1):
        day = first + timedelta(days=offset)
        local = datetime.combine(day, start, tzinfo=zone)
        # A start inside a DST gap does not exist that day: the hour after it does.
        out.append(local if _exists(local) else local + timedelta(hours=1))
    return out


def _exists(local: datetime) -> bool:
    utc = local.astimezone(UTC)
    return utc.astimezone(local.tzinfo).replace(tzinfo=None) == local.replace(tzinfo=None)


def _hhmm(value: object, name: str) -> time:
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None:
        raise HoursError(f"{name} must be a time of day as HH:MM, e.g. 09:00")
    return time(int(m.group(1)), int(m.group(2)))


def known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zones_for(number: str, country: str) -> tuple[str, ...]:
    """The time zones the callee may be in: from the number (as the trunk with ``country``
    would dial it), else every zone of ``country`` (an internal extension is in the PBX's
    country)."""
    try:
        parsed = phonenumbers.parse(number, country.upper() or None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_valid_number(parsed):
        found = tuple(z for z in number_zones.time_zones_for_number(parsed)
                      if z != number_zones.UNKNOWN_TIMEZONE and known_zone(z))
        if found:
            return found
        country = phonenumbers.region_code_for_number(parsed) or country
    return country_zones(country)


@cache
def country_zones(country: str) -> tuple[str, ...]:
    """The IANA zones of an ISO 3166 country, from the tz database's zone.tab."""
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    code = country.upper()
    out = []
    for line in table.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) >= 3 and cols[0] == code and known_zone(cols[2]):
            out.append(cols[2])
    return tuple(out)
