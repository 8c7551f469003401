"""Form bodies from automation platforms, read as the JSON payload of POST /v1/calls."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fastapi import HTTPException

from atende.api.hooks import form_payload
from atende.api.outbound import CallCreate


def test_object_fields_as_json_or_one_field_per_key() -> None:
    body = urlencode([
        ("phone_number", "+351912345678"), ("task", "Confirm"), ("caller_name", ""),
        ("metadata[event_id]", "evt_1"), ("metadata.calendar", "main"),
        ("calling_hours[start]", "09:00"), ("calling_hours.end", "20:00"),
        ("calling_hours[days]", "mon, tue,wed"), ("max_attempts", "3")]).encode()
    payload = form_payload(body)
    assert payload == {"phone_number": "+351912345678", "task": "Confirm",
                       "metadata": {"event_id": "evt_1", "calendar": "main"},
                       "calling_hours": {"start": "09:00", "end": "20:00",
                                         "days": "mon, tue,wed"},
                       "max_attempts": "3"}
    call = CallCreate.model_validate(payload)
    assert call.calling_hours is not None and call.calling_hours.days == ["mon", "tue", "wed"]
    assert call.max_attempts == 3 and call.caller_name is None
    as_json = form_payload(urlencode({
        "phone_number": "201", "calling_hours": '{"start": "08:00", "end": "18:00"}',
        "metadata": '{"n": 1}'}).encode())
    assert as_json["calling_hours"] == {"start": "08:00", "end": "18:00"}
    assert as_json["metadata"] == {"n": 1}


@pytest.mark.parametrize(("fields", "words"), [
    ({"metadata": "{not json"}, "metadata: not valid JSON"),
    ({"calling_hours": "[1, 2]"}, "calling_hours: must be a JSON object"),
    ({"metadata[event_id": "x"}, "metadata[event_id: a form field for metadata"),
])
def test_bad_forms_say_what_to_fix(fields: dict[str, str], words: str) -> None:
    with pytest.raises(HTTPException) as err:
        form_payload(urlencode(fields).encode())
    assert err.value.status_code == 422 and words in str(err.value.detail)
