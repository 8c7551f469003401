"""The offline, rule-based brain: a greeting, intents matched by phrases, a fallback.

It is deliberately predictable: businesses write the phrases and replies, and the same
words always get the same answer.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from atende.agent.actions import CallActions
from atende.providers.tts.base import split_sentences


@dataclass(frozen=True)
class Intent:
    """One thing a rule-based assistant listens for and how it answers."""

    name: str
    phrases: tuple[str, ...]
    reply: str
    # "hangup" ends the call after the reply; "transfer" hands the caller to
    # ``destination`` (one of the assistant's transfer destinations) after it.
    action: str | None = None
    outcome: str | None = None  # what the call achieved when this intent is heard
    extract: tuple[str, ...] = ()  # fields taken from what was said (see EXTRACTORS)
    destination: str | None = None


@dataclass(frozen=True)
class BrainReply:
    """What the rule brain answers to one thing the caller said."""

    text: str
    intent: str | None
    action: str | None = None
    outcome: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    destination: str | None = None


@dataclass
class RuleSet:
    """What a rule-based assistant says and listens for: greeting, intents with their phrases
    and replies, and the fallback line."""

    greeting: str
    intents: list[Intent] = field(default_factory=list)
    fallback: str = "Sorry, I did not catch that. Could you say it another way?"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        intents = [
            Intent(
                name=str(i["name"]),
                phrases=tuple(str(p) for p in i.get("phrases", [])),
                reply=str(i["reply"]),
                action=i.get("action"),
                outcome=i.get("outcome"),
                extract=tuple(str(f) for f in i.get("extract", [])),
                destination=i.get("destination"),
            )
            for i in data.get("intents", [])
        ]
        return cls(str(data.get("greeting", "")), intents,
                   str(data.get("fallback", cls.fallback)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "greeting": self.greeting,
            "fallback": self.fallback,
            "intents": [
                {"name": i.name, "phrases": list(i.phrases), "reply": i.reply,
                 "action": i.action, "outcome": i.outcome, "extract": list(i.extract),
                 **({"destination": i.destination} if i.destination else {})}
                for i in self.intents
            ],
        }


    def rendered(self, context: Mapping[str, Any]) -> RuleSet:
        """The rules with ``{name}`` placeholders (``{caller_name}``, ``{task}``,
        ``{metadata.event_date}`` …) filled from ``context``; unknown ones become empty."""
        return RuleSet(
            render(self.greeting, context),
            [Intent(i.name, i.phrases, render(i.reply, context), i.action, i.outcome,
                    i.extract, i.destination) for i in self.intents],
            render(self.fallback, context),
        )


class _Lenient(string.Formatter):
    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        return kwargs.get(str(key), "")

    def get_field(self, field_name: str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        value: Any = kwargs
        for part in field_name.split("."):
            value = value.get(part, "") if isinstance(value, Mapping) else ""
        return value, field_name


def render(template: str, context: Mapping[str, Any]) -> str:
    """Fill ``{a}`` / ``{a.b}`` from ``context``; ``{{`` is a literal brace. Placeholders
    the brain fills itself at reply time (``{heard}``, ``{proposed_time}``) are kept."""
    keep = {"heard", "proposed_time", "proposed_time_phrase"}
    ctx = {**context, **{k: "{" + k + "}" for k in keep}}
    try:
        text = " ".join(_Lenient().format(template, **ctx).split())
        return re.sub(r" ([.,!?;:])", r"\1", text)  # an empty value before punctuation
    except (ValueError, IndexError):
        return template  # not a valid template: say it as written


_WEEKDAY = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_TIME_RE = re.compile(
    r"\b((?:(?:next|this|on)\s+)?(?:" + _WEEKDAY + r"|tomorrow|today|next week)"
    r"(?:\s+(?:morning|afternoon|evening))?"
    r"(?:\s+(?:at\s+)?\d{1,2}(?::\d{2})?\s*(?:am|pm|a m|p m|o clock|oclock)?)?"
    r"|(?:at\s+)?\d{1,2}(?::\d{2})?\s*(?:am|pm|a m|p m|o clock|oclock))\b")


def extract_time(heard: str) -> str | None:
    """A day and/or time said in passing ("can we do Thursday at 3 pm?")."""
    text = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", heard.lower())  # "3 p.m." as transcribed
    m = _TIME_RE.search(text)
    if m is None:
        return None
    found = m.group(1).replace("a m", "am").replace("p m", "pm")
    return " ".join(re.sub(r"(\d)(am|pm)\b", r"\1 \2", found).split())  # "3pm" → "3 pm"


EXTRACTORS: dict[str, Callable[[str], str | None]] = {"proposed_time": extract_time}


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("'", "")
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


# Intents' phrases, normalised once: every call of an assistant compiles the same ones.
_phrase = functools.lru_cache(maxsize=4096)(normalize)


class RuleBrain:
    """A brain without a model: answers by matching the caller's words against the assistant's
    intents."""

    def __init__(self, rules: RuleSet,
                 transfer_to: Callable[[str], tuple[str, bool] | None] = lambda _: None
                 ) -> None:
        self.rules = rules
        self._transfer_to = transfer_to  # a destination's (target, bridge), by name
        self._compiled = [
            (intent, [f" {_phrase(p)} " for p in intent.phrases if _phrase(p)])
            for intent in rules.intents
        ]

    def greeting(self) -> str:
        return self.rules.greeting

    async def respond(self, heard: str, actions: CallActions) -> AsyncGenerator[str, None]:
        reply = self.reply(heard)
        actions.intent(reply.intent)
        if reply.outcome is not None:
            actions.set_outcome(reply.outcome, reply.fields)
        if reply.action == "hangup":
            actions.end_after_speaking()
        for sentence in split_sentences(reply.text):
            yield sentence
        if reply.action == "transfer":
            where = self._transfer_to(reply.destination or "")
            result = await actions.transfer(*where) if where is not None else None
            if result is None or not result.ok:
                # Still on the line: say so, and the conversation goes on.
                actions.event("rule_transfer_failed", {
                    "destination": reply.destination,
                    "reason": result.reason if result else "no such destination"})
                yield TRANSFER_FAILED

    def said(self, text: str, interrupted: bool) -> None:
        pass  # the rules do not remember

    def reply(self, heard: str) -> BrainReply:
        text = f" {normalize(heard)} "
        best: tuple[int, Intent] | None = None
        for intent, phrases in self._compiled:
            for p in phrases:
                # The longest matching phrase wins: "opening hours" beats "open".
                if p in text and (best is None or len(p) > best[0]):
                    best = (len(p), intent)
        if best is None:
            return BrainReply(self.rules.fallback, None)
        intent = best[1]
        fields = {name: value for name in intent.extract
                  if (value := EXTRACTORS[name](heard)) is not None}
        text = intent.reply.replace("{heard}", heard.strip())
        proposed = fields.get("proposed_time")
        text = text.replace("{proposed_time_phrase}", f" for {proposed}" if proposed else "")
        text = text.replace("{proposed_time}", proposed or "")
        return BrainReply(" ".join(text.split()), intent.name, intent.action, intent.outcome,
                          fields, intent.destination)


TRANSFER_FAILED = "I am sorry, I could not put you through. Is there anything else I can do?"
INTENT_ACTIONS = (None, "hangup", "transfer")

DEFAULT_RULES = RuleSet(
    greeting="Hello, you have reached the atende assistant. How can I help you today?",
    intents=[
        Intent("hours", ("opening hours", "opening", "open", "hours", "close", "closing",
                         "closed"),
               "We are open Monday to Friday, from nine in the morning to six in the evening."),
        Intent("appointment", ("appointment", "book", "booking", "schedule", "reservation"),
               "I can help with that. Which day would suit you best?"),
        Intent("human", ("human", "person", "agent", "operator", "somebody", "someone"),
               "I am an automated assistant, but I can take a message for the team."),
        Intent("thanks", ("thank you", "thanks"), "You are welcome. Is there anything else?"),
        Intent("goodbye", ("bye", "goodbye", "that is all", "thats all", "nothing else"),
               "Thank you for calling. Goodbye!", "hangup"),
    ],
    fallback="Sorry, I did not quite get that. You can ask about our opening hours, "
    "or book an appointment.",
)

# Calls placed to get something done ("task"): the seed's core case, confirming an
# appointment. Assistants may carry their own under rules["task"].
DEFAULT_TASK_RULES = RuleSet(
    greeting="Hello {caller_name}. This is an automated call from the assistant. "
    "I am calling about the following: {task} Can you confirm?",
    intents=[
        Intent("confirm", ("yes", "yeah", "yep", "sure", "i confirm", "confirmed", "confirm",
                           "that works", "ill be there", "i will be there", "correct",
                           "sounds good", "of course", "absolutely"),
               "Thank you, that is confirmed. Have a nice day. Goodbye!", "hangup",
               "confirmed"),
        Intent("reschedule", ("reschedule", "re schedule", "another day", "another time",
                              "different time", "different day", "cant make it",
                              "cannot make it", "can not make it", "wont make it",
                              "cant come", "cannot come", "not able to come",
                              "change the time", "change the date", "move it", "postpone",
                              "later date"),
               "No problem. I have noted that you would like to reschedule"
               "{proposed_time_phrase}. Someone will get back to you to confirm the new "
               "time. Goodbye!", "hangup", "reschedule_requested", ("proposed_time",)),
        Intent("decline", ("no", "nope", "cancel", "not interested", "no thank you",
                           "no thanks", "dont want", "do not want", "dont call"),
               "Understood, I have noted that. Thank you for your time. Goodbye!", "hangup",
               "declined"),
        Intent("wrong_person", ("wrong number", "wrong person", "nobody by that name",
                                "no one by that name", "doesnt live here", "does not live here",
                                "not me", "you have the wrong"),
               "I am sorry for the trouble. I will make a note of it. Goodbye!", "hangup",
               "wrong_person"),
        Intent("goodbye", ("bye", "goodbye"), "Thank you. Goodbye!", "hangup"),
    ],
    fallback="Sorry, I did not catch that. Can you confirm, or would you like to "
    "reschedule?",
)
