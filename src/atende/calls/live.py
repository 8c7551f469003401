"""The calls atende is handling now, and the room for more: what admission, the queue, the
API and the metrics read. One place counts calls against ATENDE_MAX_CALLS and each trunk's
max_concurrent_calls, for calls coming in and going out alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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


class LiveCalls:
    """The registry of live calls and of the legs joined to them by bridged transfers."""

    def __init__(self, max_calls: int,
                 share: Callable[[int], int] = lambda limit: limit) -> None:
        self.max_calls = max_calls
        # This node's part of a trunk's max_concurrent_calls when several atende nodes
        # share the trunks (cluster/nodes.py: the parts add up to the limit)
        self._share = share
        self._calls: dict[str, LiveCall] = {}
        # call id → the leg it is joined to (a channel of the trunk, while it lasts)
        self.bridged: dict[str, CallLeg] = {}
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
        self._calls[call.info.id] = call

    def release(self, call_id: str) -> None:
        """The call no longer holds a place: whoever waits for one is told."""
        if (call := self._calls.pop(call_id, None)) is not None:
            for listener in self._freed:
                listener(call)

    def on_freed(self, listener: Callable[[LiveCall], None]) -> None:
        """Call ``listener`` with the call whenever a place comes free (the queue's
        wake-up)."""
        self._freed.append(listener)

    def capacity_problem(self, trunk: TrunkConfig | None) -> tuple[str, str] | None:
        """Why another call (on ``trunk``, if any) cannot start now: (cause, words) or None.
        The same limits for calls coming in and calls going out."""
        if len(self._calls) >= self.max_calls:
            return ("busy",
                    f"atende is handling {len(self._calls)} calls already (ATENDE_MAX_CALLS)")
        if trunk is not None:
            # A bridged transfer holds a second channel of its trunk (no agent: it does
            # not count towards ATENDE_MAX_CALLS, which is about speech engines).
            legs = [c.info for c in self._calls.values()] + [
                leg.info for leg in self.bridged.values()]
            on_trunk = sum(1 for info in legs if info.extra.get("trunk_id") == trunk.id)
            mine = self._share(trunk.max_concurrent_calls)
            if on_trunk >= mine:
                here = ("" if mine == trunk.max_concurrent_calls else
                        f" on this node, its part of {trunk.max_concurrent_calls}")
                return ("trunk_busy", f"trunk {trunk.name!r} is at its "
                        f"max_concurrent_calls ({on_trunk}{here})")
        return None

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
