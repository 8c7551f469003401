"""Calling hours and the retry policy: pure functions of the time they are given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from atende.calls.hours import CallingHours, HoursError, country_zones, zones_for
from atende.calls.retry import RetryPolicy, first_attempt_at, next_attempt_at, retryable

LISBON = ZoneInfo("Europe/Lisbon")


def lisbon(*args: int) -> datetime:
    return datetime(*args, tzinfo=LISBON)  # type: ignore[misc]


def test_zones_come_from_the_number_or_the_trunks_country() -> None:
    assert zones_for("+351912345678", "US") == ("Atlantic/Azores", "Europe/Lisbon")
    assert zones_for("(202) 555-0123", "US") == ("America/New_York",)
    assert zones_for("+14155550123", "PT") == ("America/Los_Angeles",)
    # An extension is in the PBX's country: every zone of it.
    assert zones_for("201", "PT") == country_zones("PT")
    assert set(zones_for("alice", "PT")) == {"Europe/Lisbon", "Atlantic/Madeira",
                                              "Atlantic/Azores"}
    assert "America/Chicago" in zones_for("reception", "us")


def test_a_window_in_one_zone() -> None:
    h = CallingHours.parse({"start": "09:00", "end": "20:00",
                            "days": ["mon", "tue", "wed", "thu", "fri"]}, ("Europe/Lisbon",))
    friday_evening = lisbon(2026, 11, 20, 20, 0)  # end is exclusive
    assert h.is_open(lisbon(2026, 11, 20, 19, 59)) and not h.is_open(friday_evening)
    # Friday 20:00 → Monday 09:00 Lisbon (UTC+0 in November).
    assert h.next_open(friday_evening) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    inside = lisbon(2026, 11, 23, 10, 30)
    assert h.next_open(inside) == inside
    # Summer time: 09:00 Lisbon is 08:00 UTC.
    assert h.next_open(lisbon(2026, 7, 1, 6, 0)) == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def test_a_number_in_several_zones_keeps_to_the_hours_open_in_all() -> None:
    pt = ("Europe/Lisbon", "Atlantic/Azores")  # the Azores are an hour behind
    h = CallingHours.parse({"start": "09:00", "end": "20:00"}, pt)
    # 09:30 in Lisbon is 08:30 in the Azores: not yet.
    at = h.next_open(lisbon(2026, 11, 23, 9, 30))
    assert at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 09:00 in the Azores
    assert not h.is_open(lisbon(2026, 11, 23, 20, 30))  # closed in Lisbon, open in Azores
    with pytest.raises(HoursError, match="never open in all of"):
        CallingHours.parse({"start": "09:00", "end": "12:00"}, zones_for("reception", "US"))
    # An explicit zone overrides the number's.
    one = CallingHours.parse({"start": "09:00", "end": "12:00",
                              "timezone": "America/Chicago"}, zones_for("reception", "US"))
    assert one.zones == ("America/Chicago",)


def test_a_start_inside_a_dst_gap_opens_an_hour_later() -> None:
    # 2026-03-29: Lisbon jumps from 01:00 to 02:00.
    h = CallingHours.parse({"start": "01:30", "end": "05:00"}, ("Europe/Lisbon",))
    assert h.next_open(datetime(2026, 3, 29, 0, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 02:30 local, the first moment after


@pytest.mark.parametrize(("data", "words"), [
    ({"start": "9", "end": "20:00"}, "start must be a time of day"),
    ({"start": "09:00"}, "end must be a time of day"),
    ({"start": "20:00", "end": "09:00"}, "cannot cross midnight"),
    ({"start": "09:00", "end": "20:00", "days": ["funday"]}, "unknown day 'funday'"),
    ({"start": "09:00", "end": "20:00", "days": "mon"}, "days must be a list"),
    ({"start": "09:00", "end": "20:00", "timezone": "Mars/Olympus"}, "not an IANA"),
])
def test_bad_windows_say_what_to_fix(data: dict[str, object], words: str) -> None:
    with pytest.raises(HoursError, match=words):
        CallingHours.parse(data, ("Europe/Lisbon",))


def test_stored_form_round_trips() -> None:
    h = CallingHours.parse({"start": "08:15", "end": "17:45", "days": ["Sat", "sun"]},
                           ("Europe/Lisbon",))
    assert CallingHours.from_stored(h.to_stored()) == h
    assert h.to_api()["days"] == ["sat", "sun"]


def test_what_is_worth_another_attempt() -> None:
    assert retryable("no_answer", 480) and retryable("no_answer", 487)
    assert retryable("busy", 486) and retryable("interrupted", None)
    assert retryable("failed", None) and retryable("failed", 503)
    assert retryable("rejected", 603)  # declined by the callee: maybe later
    assert not retryable("rejected", 404) and not retryable("rejected", 484)
    assert not retryable("failed", 407)  # credentials refused: retrying cannot help
    assert not retryable("failed", 501)
    assert not retryable("cancelled", 487) and not retryable("answered", 200)


def test_next_attempt_follows_the_policy_and_the_hours() -> None:
    now = lisbon(2026, 11, 20, 19, 55)  # a Friday
    free = RetryPolicy(max_attempts=3, retry_after_s=120)
    assert next_attempt_at(free, 1, "no_answer", 480, now) == now + timedelta(seconds=120)
    assert next_attempt_at(free, 3, "no_answer", 480, now) is None  # that was the last
    assert next_attempt_at(free, 1, "rejected", 404, now) is None
    hours = CallingHours.parse({"start": "09:00", "end": "20:00",
                                "days": ["mon", "tue", "wed", "thu", "fri"]},
                               ("Europe/Lisbon",))
    kept = RetryPolicy(max_attempts=3, retry_after_s=120, hours=hours)
    # 19:57 would be inside the window; 120 s after 19:59 would not.
    assert next_attempt_at(kept, 1, "busy", 486, lisbon(2026, 11, 20, 19, 55)) == \
        lisbon(2026, 11, 20, 19, 57)
    assert next_attempt_at(kept, 1, "busy", 486, lisbon(2026, 11, 20, 19, 59)) == \
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert first_attempt_at(kept, lisbon(2026, 11, 21, 12, 0)) == \
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Saturday → Monday
    assert first_attempt_at(free, now) == now
