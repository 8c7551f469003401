"""What is kept and told of each call: rows and events written through the store, the
same things published live, and the result webhook woken when a call's result is
written. Every part of calls/ records through one CallRecords."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from atende.calls.events import EventBus, finished_data
from atende.store.db import Store
from atende.store.writes import insert_event
from atende.webhooks.outbox import Deliverer, finish_call


class CallRecords:
    """Writes a call's events and final state, and publishes them to live watchers."""

    def __init__(self, store: Store, events: EventBus, deliverer: Deliverer | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.events = events
        self._deliverer = deliverer
        # Wall-clock seconds: when things happened to calls, for every record of the
        # calls engine (timers and audio timelines use the event loop's clock).
        self._clock = clock

    def wall(self) -> datetime:
        """The same clock as a time for the call's rows (started, answered, ended)."""
        return datetime.fromtimestamp(self._clock(), UTC)

    def event(self, call_id: str, kind: str, data: dict[str, Any], at: float | None = None
              ) -> None:
        """Something that happened on a call: kept with the call and sent live."""
        when = self._clock() if at is None else at
        self.store.submit(insert_event(call_id, when, kind, data))
        self.events.publish(call_id, f"call.{kind}", data, when)

    def finish(self, call_id: str, *, delivers: bool = True, **values: object) -> None:
        """The call's final state, and its result webhook if it has one (one write).
        ``delivers``: False when the call cannot have one (only calls placed for a job
        carry a webhook_url), so the webhook sender does not look for nothing."""
        now = self.wall()
        self.store.submit(finish_call(call_id, now, end_at=now, **values))
        self.announce_finished(call_id, values, delivers)

    def announce_finished(self, call_id: str, values: dict[str, Any], delivers: bool = True
                          ) -> None:
        """A call's final state was written: send its webhook and tell who is watching."""
        if delivers:
            self.result_ready()
        self.events.publish(call_id, "call.finished", finished_data(values))

    def result_ready(self) -> None:
        """A result webhook was written: send it now rather than at the next look."""
        if self._deliverer is not None:
            self._deliverer.wake()  # its next look at the store comes after the write
