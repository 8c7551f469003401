"""The calls atende is handling now, and the room for more: what admission, the queue, the
API and the metrics read. One place counts calls against ATENDE_MAX_CALLS and each trunk's
and assistant's max_concurrent_calls, for calls coming in and going out alike (those two
over all atende nodes, with cluster/places.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
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


@dataclass(frozen=True)
class Limit:
    """A limit a call counts against: a trunk's channels or an assistant's calls."""

    name: str  # what the count over all nodes knows it by
    limit: int
    what: str  # in words
    cause: str  # a call refused by it ends with this hang-up cause
    count: Callable[[], int]  # how many hold a place here now


class LiveCalls:
    """The registry of live calls and of the channels their trunks give them besides (the
    second leg of a bridged transfer)."""

    def __init__(self, max_calls: int,
                 share: Callable[[int], int] = lambda limit: limit,
                 counted: Counted | None = None) -> None:
        self.max_calls = max_calls
        # This node's part of a trunk's or an assistant's max_concurrent_calls when
        # several atende nodes cannot count them together (cluster/nodes.py: the parts
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
        self._placed: dict[str, list[str]] = {}  # call or leg id → its limits' names
        # The places held here under each limit, counted as they are taken and given back
        # (admission must not walk every live call): limit name → count, and what each
        # call or leg counts under.
        self._here: Counter[str] = Counter()
        self._counts_under: dict[str, tuple[str, ...]] = {}
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

    async def take(self, call: LiveCall, trunk: TrunkConfig | None) -> tuple[str, str] | None:
        """Give ``call`` a place if there is one (this node's, one of ``trunk``'s and one
        of its assistant's, those over all nodes): None, or why not (cause, words)."""
        limits = self._limits(call.assistant, trunk)
        problem = self._busy() or self._local_problem(limits)
        if problem is not None:
            return problem
        self._calls[call.info.id] = call  # holds its place here while the others are asked
        trunk_id = call.info.extra.get("trunk_id")
        self._hold(call.info.id, (f"trunk:{trunk_id}",) * bool(trunk_id)
                   + (f"assistant:{call.assistant.id}",))
        problem = await self._count(call.info.id, limits)
        if problem is not None:
            self._calls.pop(call.info.id, None)
            self._unhold(call.info.id)
        elif call.info.id not in self._calls:  # released meanwhile (its caller gave up)
            self._give(call.info.id)
        return problem

    def release(self, call_id: str) -> None:
        """The call no longer holds a place: whoever waits for one is told."""
        if (call := self._calls.pop(call_id, None)) is not None:
            self._unhold(call_id)
            self._give(call_id)
            for listener in self._freed:
                listener(call)

    async def take_channel(self, leg_id: str, trunk: TrunkConfig) -> tuple[str, str] | None:
        """A place on ``trunk`` for a call's second leg (a bridged transfer), or why not."""
        limits = self._limits(None, trunk)
        problem = self._local_problem(limits)
        if problem is not None:
            return problem
        self._channels[leg_id] = trunk.id
        self._hold(leg_id, (f"trunk:{trunk.id}",))
        problem = await self._count(leg_id, limits)
        if problem is not None:
            self._channels.pop(leg_id, None)
            self._unhold(leg_id)
        elif leg_id not in self._channels:  # given back meanwhile
            self._give(leg_id)
        return problem

    def give_channel(self, leg_id: str) -> None:
        if self._channels.pop(leg_id, None) is not None:
            self._unhold(leg_id)
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
        """The places this node holds in the counts over all nodes, by limit."""
        out: dict[str, list[str]] = {}
        for member, names in self._placed.items():
            for name in names:
                out.setdefault(name, []).append(member)
        return out

    def capacity_problem(self, trunk: TrunkConfig | None) -> tuple[str, str] | None:
        """Why another call (on ``trunk``, if any) cannot start now, as far as this node
        knows: (cause, words) or None. The same limits for calls coming in and going out."""
        return self._busy() or self._local_problem(self._limits(None, trunk))

    def _busy(self) -> tuple[str, str] | None:
        if len(self._calls) >= self.max_calls:
            return ("busy",
                    f"atende is handling {len(self._calls)} calls already (ATENDE_MAX_CALLS)")
        return None

    def _hold(self, member: str, names: tuple[str, ...]) -> None:
        self._counts_under[member] = names
        self._here.update(names)

    def _unhold(self, member: str) -> None:
        for name in self._counts_under.pop(member, ()):
            self._here[name] -= 1
            if self._here[name] <= 0:
                del self._here[name]

    def _limits(self, assistant: AssistantProfile | None, trunk: TrunkConfig | None
                ) -> list[Limit]:
        out = []
        if trunk is not None:
            # A bridged transfer's second leg holds a channel of its trunk too (no agent: it
            # does not count towards ATENDE_MAX_CALLS, which is about speech engines).
            name = f"trunk:{trunk.id}"
            out.append(Limit(name, trunk.max_concurrent_calls, f"trunk {trunk.name!r}",
                             "trunk_busy", partial(self._here.__getitem__, name)))
        if assistant is not None and assistant.max_calls is not None:
            name = f"assistant:{assistant.id}"
            out.append(Limit(name, assistant.max_calls, f"assistant {assistant.name!r}",
                             "assistant_busy", partial(self._here.__getitem__, name)))
        return out

    def _local_problem(self, limits: list[Limit]) -> tuple[str, str] | None:
        """Whether a limit is reached as far as this node can tell: all of it, when the
        nodes count together (the count over all nodes then decides), else its part."""
        together = self._counted is not None and self._counted.counting
        for lim in limits:
            held, mine = lim.count(), lim.limit if together else self._share(lim.limit)
            if held >= mine:
                here = "" if mine == lim.limit else f" on this node, its part of {lim.limit}"
                return (lim.cause, f"{lim.what} is at its max_concurrent_calls ({held}{here})")
        return None

    async def _count(self, member: str, limits: list[Limit]) -> tuple[str, str] | None:
        """Take ``member``'s place under each limit in the count over all nodes (it
        already holds one here); all or none."""
        if self._counted is None or not limits:
            return None
        placed: list[str] = []
        problem = None
        for lim in limits:
            taken = await self._counted.take(lim.name, lim.limit, member)
            if taken is False:
                problem = (lim.cause, f"{lim.what} is at its max_concurrent_calls "
                           f"({lim.limit}, over all atende nodes)")
            elif taken is None and (held := lim.count()) > self._share(lim.limit):
                # The others cannot be asked: this node's part, counting this one.
                problem = (lim.cause, f"{lim.what} is at its max_concurrent_calls "
                           f"({held - 1} on this node, its part of {lim.limit})")
            if problem is not None:
                for name in placed:
                    self._counted.give(name, member)
                return problem
            # Taken (or within this node's part: counted with the others' once Redis is
            # back, as the keep-alive puts it there)
            placed.append(lim.name)
        self._placed[member] = placed
        return None

    def _give(self, member: str) -> None:
        if self._counted is not None:
            for name in self._placed.pop(member, ()):
                self._counted.give(name, member)

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
