"""What the assistant does when a provider fails mid-call: never dead air. It says a line,
then goes on listening, hangs up, transfers to a person, or takes a message."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from atende.agent.actions import CallActions, Speech
from atende.providers.tts.base import split_sentences

FALLBACK_ACTIONS = ("continue", "hangup", "transfer", "message")
NOT_PUT_THROUGH = "I could not put you through. Please leave a message after this."


@dataclass(frozen=True)
class Fallback:
    """What an assistant does when its provider fails: what it says, and whether it goes on,
    transfers, hangs up or takes a message."""

    message: str = "I am sorry, I am having trouble understanding right now."
    action: str = "continue"  # one of FALLBACK_ACTIONS
    target: str | None = None  # where "transfer" sends the caller
    bridge: bool = False  # by calling the target and joining the calls

    def __post_init__(self) -> None:
        if self.action not in FALLBACK_ACTIONS:
            raise ValueError(f"fallback action must be one of {', '.join(FALLBACK_ACTIONS)}")
        if self.action == "transfer" and not self.target:
            raise ValueError("a transfer fallback needs a destination")

    def line(self) -> str:
        if self.action == "message":
            return f"{self.message} Please leave a message after this, and we will get back " \
                   "to you."
        return self.message


def fallback_speech(fb: Fallback) -> Speech:
    """What the assistant says and does when its provider fails: the fallback line, then
    the action. After ``message``, and after a transfer that did not go through, the
    caller's next words are a message: the session's brain must then be a MessageTaker."""
    async def speech(actions: CallActions) -> AsyncGenerator[str, None]:
        if fb.action == "hangup":
            actions.end_after_speaking()
        for sentence in split_sentences(fb.line()):
            yield sentence
        if fb.action == "transfer" and fb.target:
            result = await actions.transfer(fb.target, fb.bridge)
            if not result.ok:
                for sentence in split_sentences(NOT_PUT_THROUGH):
                    yield sentence
    return speech


class MessageTaker:
    """The brain after a "message" fallback: what the caller says next is the message."""

    def __init__(self, thanks: str = "Thank you, your message has been taken. Goodbye!"
                 ) -> None:
        self.thanks = thanks

    def greeting(self) -> str:
        return ""

    async def respond(self, heard: str, actions: CallActions) -> AsyncGenerator[str, None]:
        actions.intent("message")
        actions.set_outcome("message_taken", {"message": heard.strip()})
        actions.end_after_speaking()
        for sentence in split_sentences(self.thanks):
            yield sentence

    def said(self, text: str, interrupted: bool) -> None:
        pass
