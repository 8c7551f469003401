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
