"""The calls atende is handling now, and the room for more: what admission, the queue, the
API and the metrics read. One place counts calls against ATENDE_MAX_CALLS and each trunk's
max_concurrent_calls, for calls coming in and going out alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from atende.agent.brain import RuleSet
from atende.agent.profile import AssistantProfile
from atende.agent.realtime_session import RealtimeSession
from atende.agent.session import AgentSession
from atende.aio import BackgroundTasks
from atende.calls.automation import CallJob
from atende.channels.leg import CallInfo, CallLeg
from atende.telephony.trunks import TrunkConfig


@dataclass
class LiveCall:
    """A call from the moment it is admitted or reserved until it ends: who talks on it,
    its leg and session once connected, and what the conversation settled."""

    assistant: AssistantProfile
    info: CallInfo
    leg: CallLeg | None = None
    session: AgentSession | RealtimeSession | None = None
    task: asyncio.Task[None] | None = None
    limit: asyncio.TimerHandle | None = None
    job: CallJob | None = None
    rules: RuleSet | None = None  # what the assistant says and hears; set at placing
    outcome: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)  # asked to stop by the API
    attempt: int = 1  # of a queued call


class Counted(Protocol):
    """Limits counted over all atende nodes (cluster/places.py: in Redis)."""

    @property
    def counting(self) -> bool: ...

    async def take(self, name: str, limit: int, member: str) -> bool | None: ...

    def give(self, name: str, member: str) -> None: ...


def _place(trunk_id: str) -> str:
    return f"trunk:{trunk_id}"


class LiveCalls:
    """The registry of live calls and of the channels their trunks give them besides (the
    second leg of a bridged transfer)."""

    def __init__(self, max_calls: int,
                 share: Callable[[int], int] = lambda limit: limit,
                 counted: Counted | None = None) -> None:
        self.max_calls = max_calls
        # This node's part of a trunk's max_concurrent_calls when several atende nodes
        # share the trunks and cannot count them together (cluster/nodes.py: the parts
        # add up to the limit) ...
        self._share = share
        # ... and the count over all nodes, when they can (Redis)
        self._counted = counted
        self._calls: dict[str, LiveCall] = {}
        # Second legs on a trunk (bridged transfers), from dialling to hang-up: leg id →
        # trunk id. They hold a channel of the trunk but run no agent.
        self._channels: dict[str, str] = {}
        # call id → the leg it is bridged to, and that leg's channel
        self._joined: dict[str, tuple[CallLeg, str]] = {}
        self._placed: dict[str, str] = {}  # call or leg id → trunk id, counted in Redis
        self._freed: list[Callable[[LiveCall], None]] = []
        self._tasks = BackgroundTasks()

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._calls

    def __iter__(self) -> Iterator[LiveCall]:
        return iter(list(self._calls.values()))

    def get(self, call_id: str) -> LiveCall | None:
        return self._calls.get(call_id)

    def add(self, call: LiveCall) -> None:
        """A call that takes no place on a trunk (tests, and calls without one)."""
        self._calls[call.info.id] = call

    async def take(self, call: LiveCall, trunk: TrunkConfig | None) -> tuple[str, str] | None:
        """Give ``call`` a place if there is one (this node's, and one of ``trunk``'s
        over all nodes): None, or why not (cause, words)."""
        problem = self.capacity_problem(trunk)
        if problem is not None:
            return problem
        self._calls[call.info.id] = call  # holds its place here while the others are asked
        problem = await self._count(call.info.id, trunk)
        if problem is not None:
            self._calls.pop(call.info.id, None)
        return problem

    def release(self, call_id: str) -> None:
        """The call no longer holds a place: whoever waits for one is told."""
        if (call := self._calls.pop(call_id, None)) is not None:
            self._give(call_id)
            for listener in self._freed:
                listener(call)

    async def take_channel(self, leg_id: str, trunk: TrunkConfig) -> tuple[str, str] | None:
        """A place on ``trunk`` for a call's second leg (a bridged transfer), or why not."""
        problem = self._trunk_problem(trunk)
        if problem is not None:
            return problem
        self._channels[leg_id] = trunk.id
        problem = await self._count(leg_id, trunk)
        if problem is not None:
            self._channels.pop(leg_id, None)
        return problem

    def give_channel(self, leg_id: str) -> None:
        if self._channels.pop(leg_id, None) is not None:
            self._give(leg_id)

    def join(self, call_id: str, leg: CallLeg, channel: str) -> None:
        """``leg``, which holds the channel taken as ``channel``, is bridged to the call
        ``call_id`` from now."""
        self._joined[call_id] = (leg, channel)

    def joined_to(self, call_id: str) -> CallLeg | None:
        joined = self._joined.get(call_id)
        return joined[0] if joined else None

    def unjoin(self, call_id: str) -> None:
        """The bridge is over: the second leg's channel on the trunk is free again."""
        if (joined := self._joined.pop(call_id, None)) is not None:
            self.give_channel(joined[1])

    def on_freed(self, listener: Callable[[LiveCall], None]) -> None:
        """Call ``listener`` with the call whenever a place comes free (the queue's
        wake-up)."""
        self._freed.append(listener)

    def held(self) -> dict[str, list[str]]:
        """The places this node holds in the count over all nodes, by limit."""
        out: dict[str, list[str]] = {}
        for member, trunk_id in self._placed.items():
            out.setdefault(_place(trunk_id), []).append(member)
        return out

    def capacity_problem(self, trunk: TrunkConfig | None) -> tuple[str, str] | None:
        """Why another call (on ``trunk``, if any) cannot start now, as far as this node
        knows: (cause, words) or None. The same limits for calls coming in and going out."""
        if len(self._calls) >= self.max_calls:
            return ("busy",
                    f"atende is handling {len(self._calls)} calls already (ATENDE_MAX_CALLS)")
        return self._trunk_problem(trunk)

    def _on_trunk(self, trunk_id: str) -> int:
        return sum(1 for c in self._calls.values() if c.info.extra.get("trunk_id") ==
                   trunk_id) + sum(1 for t in self._channels.values() if t == trunk_id)

    def _trunk_problem(self, trunk: TrunkConfig | None) -> tuple[str, str] | None:
        if trunk is None:
            return None
        # A bridged transfer's second leg holds a channel of its trunk too (no agent: it
        # does not count towards ATENDE_MAX_CALLS, which is about speech engines).
        on_trunk = self._on_trunk(trunk.id)
        limit = trunk.max_concurrent_calls
        together = self._counted is not None and self._counted.counting
        mine = limit if together else self._share(limit)
        if on_trunk >= mine:
            here = ("" if mine == limit else f" on this node, its part of {limit}")
            return ("trunk_busy", f"trunk {trunk.name!r} is at its "
                    f"max_concurrent_calls ({on_trunk}{here})")
        return None

    async def _count(self, member: str, trunk: TrunkConfig | None) -> tuple[str, str] | None:
        """Take ``member``'s place on ``trunk`` in the count over all nodes (it already
        holds one here)."""
        if trunk is None or self._counted is None:
            return None
        limit = trunk.max_concurrent_calls
        taken = await self._counted.take(_place(trunk.id), limit, member)
        if taken:
            self._placed[member] = trunk.id
            return None
        if taken is False:
            return ("trunk_busy", f"trunk {trunk.name!r} is at its max_concurrent_calls "
                    f"({limit}, over all atende nodes)")
        # The others cannot be asked: this node's part, counting this one.
        on_trunk, mine = self._on_trunk(trunk.id), self._share(limit)
        if on_trunk > mine:
            return ("trunk_busy", f"trunk {trunk.name!r} is at its max_concurrent_calls "
                    f"({on_trunk - 1} on this node, its part of {limit})")
        self._placed[member] = trunk.id  # counted with the others' once Redis is back
        return None

    def _give(self, member: str) -> None:
        if self._counted is not None and (trunk_id := self._placed.pop(member, None)):
            self._counted.give(_place(trunk_id), member)

    def cancel(self, call_id: str) -> str | None:
        """Stop a call being dialled (its dialer sees the event and CANCELs) or hang up one
        in progress. Returns what it was doing ("dialing", "in_progress"), or None if it
        is not live."""
        call = self._calls.get(call_id)
        if call is None or call.cancel.is_set():
            return None
        call.cancel.set()
        if call.leg is None:
            return "dialing"
        self._tasks.spawn(call.leg.hangup("cancelled"))
        return "in_progress"

    def leg(self, call_id: str) -> CallLeg | None:
        """The leg of a call in progress, or None."""
        call = self._calls.get(call_id)
        if call is None or call.leg is None or call.leg.ended:
            return None
        return call.leg
