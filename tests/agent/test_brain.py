"""The rule-based brain."""

from __future__ import annotations

import pytest

from atende.agent.brain import (
    DEFAULT_RULES,
    DEFAULT_TASK_RULES,
    Intent,
    RuleBrain,
    RuleSet,
    extract_time,
    normalize,
)
from atende.agent.profile import AssistantProfile
from atende.calls.automation import CallJob, rules_for


def test_normalize_strips_case_accents_and_punctuation() -> None:
    assert normalize("  Olá, TUDO bem?! ") == "ola tudo bem"
    assert normalize("That's all.") == "thats all"


def test_default_rules() -> None:
    brain = RuleBrain(DEFAULT_RULES)
    assert brain.greeting().startswith("Hello")
    r = brain.reply("What are your opening hours?")
    assert r.intent == "hours" and "nine" in r.text
    assert brain.reply("I'd like to book an appointment").intent == "appointment"
    bye = brain.reply("No, that's all, bye.")
    assert bye.intent == "goodbye" and bye.action == "hangup"
    unknown = brain.reply("The weather is nice")
    assert unknown.intent is None and unknown.text == DEFAULT_RULES.fallback


def test_longest_phrase_wins_and_words_match_whole() -> None:
    rules = RuleSet("hi", [Intent("a", ("open",), "A"), Intent("b", ("open account",), "B")])
    brain = RuleBrain(rules)
    assert brain.reply("I want to open an account").intent == "a"
    assert brain.reply("please open account now").intent == "b"
    assert brain.reply("reopened").intent is None  # not a whole-word match


def test_heard_placeholder_and_round_trip() -> None:
    rules = RuleSet("hi", [Intent("echo", ("say",), "You said: {heard}")])
    assert RuleBrain(rules).reply(" say cheese ").text == "You said: say cheese"
    again = RuleSet.from_dict(rules.to_dict())
    assert again == rules


def task_brain(**context: object) -> RuleBrain:
    return RuleBrain(DEFAULT_TASK_RULES.rendered(context))


def test_task_rules_are_rendered_with_the_call() -> None:
    b = task_brain(caller_name="Ana", task="Confirm tomorrow's 10:00 appointment.",
                   metadata={"event_id": "e1"})
    assert b.greeting().startswith("Hello Ana. ")
    assert "Confirm tomorrow's 10:00 appointment. Can you confirm?" in b.greeting()
    nameless = task_brain(task="Confirm the visit.")
    assert nameless.greeting().startswith("Hello. This is")  # no dangling name
    rules = RuleSet("Order {metadata.order_id} for {caller_name}, {nothing.here} {{ok}}")
    assert rules.rendered({"metadata": {"order_id": 7}, "caller_name": "Rui"}).greeting \
        == "Order 7 for Rui, {ok}"


@pytest.mark.parametrize(("heard", "outcome", "fields"), [
    ("Yes, I confirm.", "confirmed", {}),
    ("Yeah, that works, I'll be there.", "confirmed", {}),
    ("I can't make it. Can we reschedule to Thursday at 3 pm?", "reschedule_requested",
     {"proposed_time": "thursday at 3 pm"}),
    ("Yes but I need to reschedule.", "reschedule_requested", {}),
    ("Could we move it to next Monday morning?", "reschedule_requested",
     {"proposed_time": "next monday morning"}),
    ("No, please cancel it.", "declined", {}),
    ("No, you have the wrong number.", "wrong_person", {}),
    ("Hmm, what is this about?", None, {}),
])
def test_task_outcomes(heard: str, outcome: str | None, fields: dict[str, str]) -> None:
    r = task_brain(caller_name="Ana", task="Confirm the appointment.").reply(heard)
    assert r.outcome == outcome and r.fields == fields
    if outcome is not None:
        assert r.action == "hangup"
    if fields:
        assert fields["proposed_time"] in r.text  # the reply repeats the proposed time


def test_extract_time() -> None:
    assert extract_time("maybe tomorrow afternoon?") == "tomorrow afternoon"
    assert extract_time("at 10:30 am works") == "at 10:30 am"
    assert extract_time("Can we do Thursday at 3 p.m.?") == "thursday at 3 pm"
    assert extract_time("Friday at 3pm then") == "friday at 3 pm"
    assert extract_time("no idea") is None


def test_a_transfer_rule_names_its_destination_and_round_trips() -> None:
    rules = RuleSet("hi", [Intent("sales", ("sales",), "One moment.", action="transfer",
                                  destination="sales")])
    reply = RuleBrain(rules).reply("sales please")
    assert (reply.action, reply.destination) == ("transfer", "sales")
    assert RuleSet.from_dict(rules.to_dict()) == rules
    assert "destination" not in DEFAULT_RULES.to_dict()["intents"][0]  # only when set


def test_an_assistants_rules_are_read_once_and_a_task_still_gets_its_own() -> None:
    own = {"greeting": "Hi there", "intents": [
        {"name": "hours", "phrases": ["open"], "reply": "Nine to five."}]}
    a = AssistantProfile(id="a1", name="Reception", rules=own)
    first, again = rules_for(a, None), rules_for(a, CallJob("+15550100"))
    assert first is again is a.rule_set  # one reading for every call without a task
    assert first == RuleSet.from_dict(own) and first.greeting == "Hi there"
    task = rules_for(a, CallJob("+15550100", task="Confirm the visit."))
    assert task is not first and "Confirm the visit." in task.greeting
    changed = AssistantProfile(id="a1", name="Reception", rules={**own, "greeting": "Hey"})
    assert rules_for(changed, None).greeting == "Hey"  # a new version, read anew
