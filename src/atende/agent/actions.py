"""What a brain may do on a call (``CallActions``, given to it each turn by the session),
and what the session asks of a brain (``Brain``). The rule brain and the LLM brain both
act through the same actions, so outcomes, hang-ups and transfers work alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Any, Protocol

from atende.agent.hold import HoldMusic, start_hold, stop_hold
from atende.agent.turns import CallReport, SessionObserver
from atende.aio import BackgroundTasks
from atende.channels.leg import CallLeg, TransferResult


class CallActions(Protocol):
    """What a brain may do on a call, given to it each turn by the session."""

    def intent(self, name: str | None) -> None:
        """Label the reply (the rule brain's matched intent), kept with the turn."""

    def set_outcome(self, outcome: str, fields: dict[str, str]) -> None: ...

    def end_after_speaking(self) -> None:
        """Hang up once what was said so far has been heard."""

    async def transfer(self, target: str, bridge: bool = False) -> TransferResult:
        """Transfer the caller to ``target`` once what was said has been heard: blind
        (the channel's own transfer, SIP REFER), or with ``bridge`` by calling ``target``
        and joining the two calls."""
        ...

    async def send_dtmf(self, digits: str) -> None:
        """Send DTMF once what was said has been heard (menus listen after prompts)."""

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Something worth keeping with the call (a tool call, a provider failure)."""

    async def schedule_callback(self, at: datetime, number: str | None, reason: str
                                ) -> dict[str, Any]:
        """Queue a call back at ``at`` to ``number`` (None: this call's other party), by
        the same assistant, about ``reason``: the new call's id, or an ``error``."""
        ...

    async def hold(self, max_s: float, reason: str) -> dict[str, Any]:
        """Put the caller on hold with music once what was said has been heard, until
        ``resume``, the assistant's next words, or ``max_s`` seconds."""
        ...

    async def resume(self) -> dict[str, Any]:
        """Take the caller off hold."""
        ...

    def first_token(self) -> None:
        """The model started answering (latency accounting)."""


class Brain(Protocol):
    """What a session asks of a brain: a greeting, and sentences in answer to what the caller
    said."""

    def greeting(self) -> str: ...

    def respond(self, heard: str, actions: CallActions) -> AsyncGenerator[str, None]:
        """Sentences to say in answer to ``heard``, as soon as each is ready; acting on
        the call through ``actions`` on the way. May raise ProviderError."""
        ...

    def said(self, text: str, interrupted: bool) -> None:
        """What the caller actually heard of the last reply (less than planned when the
        caller barged in), so the brain's memory matches the call."""


# Something to say, sentence by sentence as it is ready, acting on the call on the way.
Speech = Callable[[CallActions], AsyncGenerator[str, None]]


def _nothing() -> None:
    pass


def _no_intent(name: str | None) -> None:
    pass


class LegActions:
    """The CallActions both sessions give their brain or model. Each lands on the call
    once ``heard`` is set: what was said before it has been played. Where the pipeline and
    the realtime session differ (where an intent or a hang-up is noted, the model's
    latency), they pass their own callbacks."""

    def __init__(self, leg: CallLeg, heard: asyncio.Event, observer: SessionObserver | None,
                 report: CallReport, hold: HoldMusic, tasks: BackgroundTasks,
                 end_after_speaking: Callable[[], None],
                 intent: Callable[[str | None], None] = _no_intent,
                 first_token: Callable[[], None] = _nothing) -> None:
        self._leg = leg
        self._heard = heard
        self._observer = observer
        self._report = report
        self._hold = hold
        self._tasks = tasks  # a transfer outlives the session loop that asked for it
        self._end_after_speaking = end_after_speaking
        self._intent = intent
        self._first_token = first_token

    def intent(self, name: str | None) -> None:
        self._intent(name)

    def set_outcome(self, outcome: str, fields: dict[str, str]) -> None:
        if self._observer is not None:
            self._observer.on_outcome(self._leg.info.id, outcome, fields)

    def end_after_speaking(self) -> None:
        self._end_after_speaking()

    async def transfer(self, target: str, bridge: bool = False) -> TransferResult:
        await self._heard.wait()
        if self._observer is None:
            return TransferResult("refused", None, "this call cannot be transferred")
        # Shielded: the transfer goes on if the session loop ends (as it does once a
        # successful transfer ends the leg).
        result: TransferResult = await asyncio.shield(
            self._tasks.spawn(self._observer.transfer_call(self._leg, target, bridge)))
        return result

    async def send_dtmf(self, digits: str) -> None:
        await self._heard.wait()
        await self._leg.send_dtmf(digits)

    async def schedule_callback(self, at: datetime, number: str | None, reason: str
                                ) -> dict[str, Any]:
        if self._observer is None:
            return {"error": "call backs cannot be scheduled on this call"}
        return await self._observer.schedule_callback(self._leg.info.id, at, number, reason)

    async def hold(self, max_s: float, reason: str) -> dict[str, Any]:
        await self._heard.wait()
        return start_hold(self._hold, max_s, reason)

    async def resume(self) -> dict[str, Any]:
        return stop_hold(self._hold)

    def event(self, kind: str, data: dict[str, Any]) -> None:
        self._report.event(kind, data)

    def first_token(self) -> None:
        self._first_token()
