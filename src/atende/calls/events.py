"""Live call events for whoever is watching (the SSE stream at /v1/events): published by
the engine and the queue as things happen, kept in a short backlog so that a client that
reconnects with Last-Event-ID misses nothing recent.

Event ids are "<epoch>-<n>": the epoch changes with every start of atende, so a client
coming back after a restart is told its place is gone instead of being given wrong
events.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

BACKLOG = 2000  # events kept for clients that reconnect
QUEUE = 1000  # events a slow client may fall behind before it is dropped
_LAGGED, _CLOSING = "lagged", "closing"  # in a subscriber's queue: why its stream ends


def finished_data(values: dict[str, Any]) -> dict[str, Any]:
    """What call.finished says, from the values a call is finished with."""
    keys = ("status", "outcome", "summary", "hangup_cause", "sip_status", "direction")
    return {k: values[k] for k in keys if k in values}


@dataclass(frozen=True)
class LiveEvent:
    """One live event of a call, as sent to watchers."""

    id: str
    seq: int
    at: float
    kind: str  # call.queued, call.dialing, call.answered, call.turn, … call.finished
    call_id: str | None
    data: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "at": self.at, **self.data}


@dataclass
class _Subscriber:
    call_id: str | None
    # One slot more than a client may fall behind: room for the notice that it did.
    queue: asyncio.Queue[LiveEvent | str] = field(
        default_factory=lambda: asyncio.Queue(QUEUE + 1))
    lagged: bool = False


class EventBus:
    """Live call events for whoever watches (the API's server-sent events), with a short
    history so a late subscriber misses nothing."""

    def __init__(self, backlog: int = BACKLOG) -> None:
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        self._backlog: deque[LiveEvent] = deque(maxlen=backlog)
        self._subscribers: list[_Subscriber] = []
        self._listeners: list[Callable[[str | None, str, dict[str, Any], float], None]] = []

    def on_publish(self, listener: Callable[[str | None, str, dict[str, Any], float], None]
                   ) -> None:
        """``listener`` (call_id, kind, data, at) for each event of this node's own calls
        (for the other nodes: cluster/shared.py)."""
        self._listeners.append(listener)

    def publish(self, call_id: str | None, kind: str, data: dict[str, Any] | None = None,
                at: float | None = None, remote: bool = False) -> LiveEvent:
        """An event for whoever watches; ``remote``: one of another node's calls (not
        passed on to the listeners again)."""
        self._seq += 1
        event = LiveEvent(f"{self.epoch}-{self._seq}", self._seq,
                          time.time() if at is None else at, kind, call_id, data or {})
        self._backlog.append(event)
        if not remote:
            for listener in self._listeners:
                listener(call_id, kind, event.data, event.at)
        for sub in self._subscribers:
            if sub.lagged or (sub.call_id is not None and sub.call_id != call_id):
                continue
            if sub.queue.qsize() < QUEUE:
                sub.queue.put_nowait(event)
            else:
                # Too slow: end its stream after what it has rather than hold memory or
                # the engine. It can come back with Last-Event-ID and catch up.
                sub.lagged = True
                sub.queue.put_nowait(_LAGGED)
        return event

    def close(self) -> None:
        """End every stream (atende is stopping): clients reconnect to the next start."""
        for sub in self._subscribers:
            while sub.queue.full():
                sub.queue.get_nowait()
            sub.queue.put_nowait(_CLOSING)

    def backlog_after(self, last_event_id: str | None, call_id: str | None
                      ) -> tuple[list[LiveEvent], str | None]:
        """What a client that saw ``last_event_id`` missed, and why it cannot have it all
        (None when it can)."""
        if not last_event_id:
            return [], None
        epoch, _, n = last_event_id.partition("-")
        if epoch != self.epoch or not n.isdigit():
            return [], "atende restarted since that event; what happened meanwhile is in " \
                "GET /v1/calls"
        seq = int(n)
        missed = [e for e in self._backlog
                  if e.seq > seq and (call_id is None or e.call_id == call_id)]
        oldest = self._backlog[0].seq if self._backlog else self._seq + 1
        if seq + 1 < oldest:
            return missed, "events were missed (the backlog is shorter than the gap); " \
                "what happened meanwhile is in GET /v1/calls"
        return missed, None

    def _notice(self, kind: str, seq: int, reason: str) -> LiveEvent:
        return LiveEvent(f"{self.epoch}-{seq}", seq, time.time(), kind, None,
                         {"reason": reason})

    def subscribe(self, call_id: str | None = None, last_event_id: str | None = None
                  ) -> AsyncGenerator[LiveEvent, None]:
        """Events as they happen from now on (after the backlog a reconnecting client
        missed). The stream ends when the client falls too far behind, with a
        ``stream.lagged`` event, or when atende stops."""
        sub = _Subscriber(call_id)
        # Registered now, not at the first read, and before the backlog is taken: nothing
        # falls in between.
        self._subscribers.append(sub)
        missed, gap = self.backlog_after(last_event_id, call_id)
        return self._stream(sub, missed, gap, self._seq)

    async def _stream(self, sub: _Subscriber, missed: list[LiveEvent], gap: str | None,
                      newest: int) -> AsyncGenerator[LiveEvent, None]:
        # ``newest``: the last event this client has; it is sent nothing older.
        try:
            if gap is not None:
                yield self._notice("stream.reset", newest, gap)
            for event in missed:
                newest = event.seq
                yield event
            while True:
                item = await sub.queue.get()
                if item == _CLOSING:
                    return
                if isinstance(item, str):
                    # Its id is the last event it got, so reconnecting resumes there.
                    yield self._notice("stream.lagged", newest, "this client fell too far "
                                       "behind; reconnect with Last-Event-ID")
                    return
                if item.seq > newest:
                    newest = item.seq
                    yield item
        finally:
            self._subscribers.remove(sub)
