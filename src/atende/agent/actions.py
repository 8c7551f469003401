"""What a brain may do on a call (``CallActions``, given to it each turn by the session),
and what the session asks of a brain (``Brain``). The rule brain and the LLM brain both
act through the same actions, so outcomes, hang-ups and transfers work alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from atende.channels.leg import CallLeg, TransferResult

if TYPE_CHECKING:
    from atende.agent.turns import SessionObserver
    from atende.aio import BackgroundTasks


class CallActions(Protocol):
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


async def transfer_when_heard(heard: asyncio.Event, observer: SessionObserver | None,
                              leg: CallLeg, tasks: BackgroundTasks, target: str,
                              bridge: bool = False) -> TransferResult:
    """Transfer ``leg`` to ``target`` once ``heard`` is set (the announcement was played).
    The transfer runs in ``tasks``: it outlives the session loop, which ends with the leg
    when the transfer succeeds."""
    await heard.wait()
    if observer is None:
        return TransferResult("refused", None, "this call cannot be transferred")
    result: TransferResult = await asyncio.shield(
        tasks.spawn(observer.transfer_call(leg, target, bridge)))
    return result


async def schedule_callback(observer: SessionObserver | None, leg: CallLeg, at: datetime,
                            number: str | None, reason: str) -> dict[str, Any]:
    if observer is None:
        return {"error": "call backs cannot be scheduled on this call"}
    return await observer.schedule_callback(leg.info.id, at, number, reason)
