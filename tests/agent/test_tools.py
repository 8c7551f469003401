"""When the model asks to be called back: the time it gives, checked as a person would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from atende.agent.tools import OPTIONAL, ToolBox, callback_time

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def test_in_minutes_and_at_give_the_time() -> None:
    assert callback_time({"in_minutes": 90}, NOW) == NOW + timedelta(minutes=90)
    at = callback_time({"at": "2026-05-04T15:00:00-03:00"}, NOW)
    assert at == datetime(2026, 5, 4, 18, 0, tzinfo=UTC)
    assert callback_time({"at": "2026-05-05T09:30:00Z"}, NOW) == \
        datetime(2026, 5, 5, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("args", "says"), [
    ({}, "either in_minutes or at"),
    ({"in_minutes": 5, "at": "2026-05-05T09:30:00Z"}, "either in_minutes or at"),
    ({"in_minutes": 0}, "from 1 to"),
    ({"in_minutes": "soon"}, "from 1 to"),
    ({"in_minutes": True}, "from 1 to"),
    ({"at": "tomorrow at 3"}, "ISO 8601"),
    ({"at": "2026-05-04T15:00:00"}, "UTC offset"),
    ({"at": "2026-05-04T08:00:00Z"}, "in the past (it is now 2026-05-04T12:00+00:00)"),
    ({"at": "2026-12-04T08:00:00Z"}, "more than 90 days"),
])
def test_mistakes_are_explained_to_the_model(args: dict[str, object], says: str) -> None:
    why = callback_time(args, NOW)
    assert isinstance(why, str) and says in why


def test_schedule_callback_is_offered_only_when_named() -> None:
    assert "schedule_callback" in OPTIONAL
    assert "schedule_callback" not in [t.name for t in ToolBox(["end_call"]).specs]
    [spec] = ToolBox(["schedule_callback"]).specs
    assert spec.parameters["required"] == ["reason"]
