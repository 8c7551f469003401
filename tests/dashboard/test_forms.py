"""The dashboard's form readers on what people (and scripts) type: numbers that are not
numbers, lists, switches, a cross-field rule's words on its field."""

from __future__ import annotations

from atende.dashboard import assistant_forms, automation_pages, trunk_forms
from atende.dashboard.web import whole


def form(**fields: str | list[str]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items()}


def test_whole_numbers_only() -> None:
    assert whole("5060") == 5060 and whole("007") == 7
    for text in ("", "²", "٣", "-1", "1.5", " 5", "1" * 10):
        assert whole(text) is None, text


def test_a_trunk_form_says_what_is_wrong_before_the_model_does() -> None:
    posted, fields = trunk_forms.read_form(form(
        kind="did", name="Line", number="+1 202 555 0190", port="²",
        use_outbound_proxy="on", outbound_proxy="", allowed_ips="10.0.0.1, 10.0.0.2\n"),
        "did", editing=False)
    assert "whole number" in posted.problems["port"]
    assert "switch it off" in posted.problems["outbound_proxy"]
    assert fields["allowed_ips"] == ["10.0.0.1", "10.0.0.2"]
    assert fields["enabled"] is False  # an unticked box is off
    # A rule across fields lands on the first field it names that the form has.
    posted, fields = trunk_forms.read_form(form(kind="extension", name="PBX", number="1000",
                                                country="US"), "extension", editing=False)
    assert trunk_forms.checked(posted, fields, editing=False) is None
    assert "needed for a extension trunk" in posted.problems["username"]


def test_the_task_call_and_assistant_forms_refuse_odd_numbers() -> None:
    payload, problems = automation_pages.read_call(form(
        phone_number="alice", max_attempts="²", metadata="a=1\nb = two words"))
    assert "whole number" in problems["max_attempts"]
    assert payload["metadata"] == {"a": "1", "b": "two words"}
    _, problems = assistant_forms.read_form(form(name="A", extension="1",
                                                 tt_end_of_turn_ms="٣"), None, [])
    assert "whole number" in problems["tt_end_of_turn_ms"]
    _, problems = assistant_forms.read_form(form(name="A", extension="1",
                                                 max_concurrent_calls="two"), None, [])
    assert "whole number, or empty for no limit" in problems["max_concurrent_calls"]
    payload, problems = assistant_forms.read_form(form(name="A", extension="1",
                                                       max_concurrent_calls="4"), None, [])
    assert payload["max_concurrent_calls"] == 4 and not problems
    payload, _ = assistant_forms.read_form(form(name="A", extension="1"), None, [])
    assert payload.get("max_concurrent_calls") is None  # empty: no limit of its own
