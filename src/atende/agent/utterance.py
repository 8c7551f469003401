"""One thing the assistant says on a call, sentence by sentence: what was queued, how much
of it began and finished playing, and what it does once said."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from atende.agent.actions import CallActions, Speech
from atende.providers.tts.base import split_sentences


@dataclass
class Utterance:
    """One thing the assistant says on a call: its sentences, how much of it was played, and
    what follows once it is heard."""

    uid: str
    caller_end_at: float | None  # loop time; None for the greeting
    stt_ms: int | None = None
    think_at: float | None = None  # loop time the brain was asked
    intent: str | None = None
    sentences: list[str] = field(default_factory=list)  # queued to play, in order
    started: int = 0  # how many of them began to play
    queued: int = 0
    done: int = 0
    completed: int = 0  # played to their end
    closed: bool = False  # no more sentences will come
    hangup: bool = False
    hangup_cause: str = "assistant_hangup"
    cut_by: float | None = None  # onset of the caller speech that barged in
    resumes: Utterance | None = None  # the cut utterance this one takes up again
    reply: bool = True  # the brain's (its memory follows); not a reprompt or a message
    first_audio_at: float | None = None
    last_audio_at: float | None = None
    played_ms: int = 0
    interrupted: bool = False
    finished: bool = False
    tts_ms: int | None = None  # synthesis of the first sentence
    llm_ms: int | None = None
    drained: asyncio.Event = field(default_factory=asyncio.Event)  # all queued audio played


def sentences(text: str | list[str], hangup: bool = False) -> Speech:
    """``text`` (or its sentences), to be said; then hang up if ``hangup``."""
    parts = split_sentences(text) if isinstance(text, str) else text

    async def say(actions: CallActions) -> AsyncGenerator[str, None]:
        if hangup:
            actions.end_after_speaking()
        for sentence in parts:
            yield sentence
    return say


def heard_before(utt: Utterance) -> list[str]:
    """The sentences heard in full of the utterances ``utt`` takes up again."""
    cut = utt.resumes
    return [] if cut is None else heard_before(cut) + cut.sentences[: cut.completed]
