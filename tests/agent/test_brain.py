"""The rule-based brain."""

from __future__ import annotations

from atende.agent.brain import DEFAULT_RULES, Intent, RuleBrain, RuleSet, normalize


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
