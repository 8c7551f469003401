"""The offline, rule-based brain: a greeting, intents matched by phrases, a fallback.

It is deliberately predictable: businesses write the phrases and replies, and the same
words always get the same answer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Intent:
    name: str
    phrases: tuple[str, ...]
    reply: str
    action: str | None = None  # "hangup" ends the call after the reply


@dataclass(frozen=True)
class BrainReply:
    text: str
    intent: str | None
    action: str | None = None


@dataclass
class RuleSet:
    greeting: str
    intents: list[Intent] = field(default_factory=list)
    fallback: str = "Sorry, I did not catch that. Could you say it another way?"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleSet:
        intents = [
            Intent(
                name=str(i["name"]),
                phrases=tuple(str(p) for p in i.get("phrases", [])),
                reply=str(i["reply"]),
                action=i.get("action"),
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
                {"name": i.name, "phrases": list(i.phrases), "reply": i.reply, "action": i.action}
                for i in self.intents
            ],
        }


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("'", "")
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


class RuleBrain:
    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._compiled = [
            (intent, [f" {normalize(p)} " for p in intent.phrases if normalize(p)])
            for intent in rules.intents
        ]

    def greeting(self) -> str:
        return self.rules.greeting

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
        return BrainReply(intent.reply.replace("{heard}", heard.strip()), intent.name,
                          intent.action)


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
