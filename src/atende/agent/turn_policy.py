"""When the caller's sounds count as taking the turn, and what the assistant does when the
caller goes quiet. Pure data and functions; the session applies them."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Said while the assistant talks to show one is listening, not to take the turn (English,
# Portuguese, Spanish). "Yes" is left out: over the end of a question it is the answer.
BACKCHANNELS = (
    "uh-huh", "uh huh", "mm-hmm", "mm hmm", "mhm", "hmm", "mm", "uh", "um", "ah", "oh",
    "yeah", "yep", "ok", "okay", "right", "i see", "got it", "alright", "aha", "ahã",
    "hum", "pois", "pois é", "certo", "tá", "está bem", "vale", "ajá",
)
_WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")
_REPEATS = re.compile(r"(\w)\1+")


def _words(text: str) -> str:
    """Lower-case words, letters said longer written once: "Mmm", "mm" and "m" match."""
    return " ".join(_REPEATS.sub(r"\1", w) for w in _WORD.findall(text.lower()))


@dataclass(frozen=True)
class TurnPolicy:
    """How an assistant takes turns with a silent caller: when to reprompt, how often, and when
    to give up."""

    min_barge_in_ms: int = 150  # caller speech that stops the assistant
    backchannels: tuple[str, ...] = BACKCHANNELS
    reprompt_after_ms: int | None = 8000  # caller silence before "are you still there?"
    reprompt: str = "Are you still there?"
    max_reprompts: int = 2  # unanswered ones before the call is ended
    silence_goodbye: str = "I cannot hear anyone, so I will end the call now. Goodbye."

    def is_backchannel(self, text: str) -> bool:
        """Whether ``text`` is only listening noises ("uh-huh", "yeah, okay", "Mmm")."""
        words = _words(text)
        if not words:
            return False
        known = {_words(b) for b in self.backchannels}
        # Greedy: the longest known phrase at each point ("i see" before "i").
        rest = words.split()
        while rest:
            for n in range(min(3, len(rest)), 0, -1):
                if " ".join(rest[:n]) in known:
                    rest = rest[n:]
                    break
            else:
                return False
        return True


@dataclass
class SilenceWatch:
    """When a silent caller is reprompted, and when the call is given up: fed the time and
    whether the line is idle (nobody speaking, nothing being prepared), it says
    ``reprompt`` after ``reprompt_after_ms`` of idleness, and ``goodbye`` once
    ``max_reprompts`` went unanswered. Sans-IO: the session applies its verdicts."""

    policy: TurnPolicy
    idle_since: float | None = None
    reprompts: int = 0  # in a row, unanswered

    def tick(self, now: float, idle: bool) -> str | None:
        p = self.policy
        if p.reprompt_after_ms is None or not idle:
            self.idle_since = None
            return None
        if self.idle_since is None:
            self.idle_since = now
            return None
        if (now - self.idle_since) * 1000 < p.reprompt_after_ms:
            return None
        self.idle_since = None
        if self.reprompts >= p.max_reprompts:
            return "goodbye"
        self.reprompts += 1
        return "reprompt"

    def restart(self) -> None:
        """Something happened on the line: the silence starts again from now."""
        self.idle_since = None

    def answered(self) -> None:
        """The caller said or pressed something: the reprompts start again too."""
        self.idle_since = None
        self.reprompts = 0


class Keypad:
    """Keys the caller presses, gathered into one entry for a model that cannot hear them:
    the entry ends with ``#`` or after ``gap_s`` without another key."""

    def __init__(self, gap_s: float = 1.5) -> None:
        self.gap_s = gap_s
        self._keys = ""
        self._last = 0.0

    def press(self, key: str, at: float) -> str | None:
        self._keys += key
        self._last = at
        return self._take() if key == "#" else None

    def due(self, now: float) -> str | None:
        return self._take() if self._keys and now - self._last >= self.gap_s else None

    def _take(self) -> str:
        keys, self._keys = self._keys, ""
        return keys
