"""Opening hours: weekly windows in the assistant's time zone (across DST), holidays, and
what a call outside them hears and does, on a live session (Whisper, Piper)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from atende.agent.brain import RuleBrain, RuleSet
from atende.agent.business_hours import BusinessHours, closed_opening, holiday, parse_window
from atende.agent.fallback import NOT_PUT_THROUGH, MessageTaker
from tests.agent.conftest import StartCall, wait_for

CLINIC = BusinessHours("Europe/Lisbon", {"mon": ["09:00-13:00", "14:00-18:00"],
                                         "sat": ["20:00-24:00"]},
                       holidays=("2026-12-25",))


@pytest.mark.parametrize(("utc", "open_"), [
    ("2026-11-23T09:00:00", True),  # Monday 09:00 in Lisbon (UTC+0 in winter)
    ("2026-11-23T08:59:59", False),
    ("2026-11-23T13:30:00", False),  # lunch
    ("2026-11-23T17:59:00", True),
    ("2026-11-23T18:00:00", False),  # windows end before their end time
    ("2026-06-01T08:30:00", True),  # Monday 09:30 in summer (UTC+1)
    ("2026-06-01T17:30:00", False),  # 18:30 in summer
    ("2026-11-24T10:00:00", False),  # Tuesday: not listed, closed
    ("2026-11-28T23:59:00", True),  # Saturday until midnight
    ("2026-12-25T10:00:00", False),  # a Friday, and a holiday anyway
    ("2026-12-28T10:00:00", True),
])
def test_open_by_the_local_clock(utc: str, open_: bool) -> None:
    assert CLINIC.is_open(datetime.fromisoformat(utc).replace(tzinfo=UTC)) is open_


def test_a_holiday_closes_a_day_that_would_be_open() -> None:
    monday = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert CLINIC.is_open(monday)
    assert not BusinessHours(CLINIC.timezone, CLINIC.weekly, ("2026-12-07",)).is_open(monday)


@pytest.mark.parametrize(("text", "says"), [
    ("9-17", "not a window such as 09:00-13:00"),
    ("18:00-09:00", "crosses midnight"),
    ("09:00-09:00", "ends after it starts"),
    ("22:00-24:30", "the day ends at 24:00"),
])
def test_bad_windows_say_what_to_fix(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_window(text)
    with pytest.raises(ValueError, match="not a date"):
        holiday("25/12/2026")


async def test_outside_hours_the_caller_leaves_a_message(
        start_call: StartCall, speech: Callable[[str], bytes]) -> None:
    hours = BusinessHours("UTC", {}, message="We are closed. Please leave a message.",
                          action="message")
    call = start_call(MessageTaker(), opening=closed_opening(hours, None))
    await call.greeting_heard()
    await call.say(speech("Please call me back tomorrow morning."))
    await asyncio.wait_for(call.task, 30)
    assert call.record.said("assistant")[0] == "We are closed. Please leave a message."
    ((outcome, fields),) = call.record.outcomes
    assert outcome == "message_taken" and "call me back" in fields["message"].lower()
    assert call.record.events == [("closed", {"action": "message"})]
    assert call.leg.end_cause == "assistant_hangup"


async def test_outside_hours_with_hangup_the_call_ends_after_the_message(
        start_call: StartCall) -> None:
    hours = BusinessHours("UTC", {})
    call = start_call(RuleBrain(RuleSet("Hello!")), opening=closed_opening(hours, None))
    await asyncio.wait_for(call.task, 30)
    assert call.record.said("assistant") == [hours.message]
    assert call.leg.end_cause == "closed"


async def test_a_transfer_that_fails_takes_a_message(start_call: StartCall) -> None:
    hours = BusinessHours("UTC", {}, message="We are closed.", action="transfer",
                          destination="desk")
    call = start_call(MessageTaker(), opening=closed_opening(hours, "sip:desk@127.0.0.1"))
    await wait_for(lambda: bool(call.record.said("assistant")))
    assert call.record.transfers == [("sip:desk@127.0.0.1", False)]  # after the message
    assert call.record.said("assistant") == [f"We are closed. {NOT_PUT_THROUGH}"]
    assert not call.leg.ended
