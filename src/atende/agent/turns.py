"""What a conversation produces: turns with timings, for storage and the API."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from atende.channels.leg import CallLeg, TransferResult


@dataclass
class Turn:
    """One turn of the conversation, with its timings, as reported to the observer."""

    speaker: str  # caller | assistant
    text: str
    started_at: float  # wall-clock seconds
    ended_at: float
    intent: str | None = None
    interrupted: bool = False
    latency_ms: int | None = None  # assistant turns: end of caller speech → first audio sent
    stt_ms: int | None = None
    llm_ms: int | None = None  # end of STT → the model's first token
    tts_ms: int | None = None
    played_ms: int | None = None


class SessionObserver(Protocol):
    """Who a session tells about the call (the calls engine): turns, DTMF, outcomes, holds,
    events, and who carries out transfers and call-backs."""

    def on_turn(self, call_id: str, turn: Turn) -> None: ...

    def on_dtmf(self, call_id: str, digit: str, at: float) -> None: ...

    def on_hold(self, call_id: str, on_hold: bool, at: float) -> None: ...

    def on_outcome(self, call_id: str, outcome: str, fields: dict[str, str]) -> None: ...

    def on_event(self, call_id: str, kind: str, data: dict[str, Any]) -> None: ...

    async def transfer_call(self, leg: CallLeg, to: str, bridge: bool = False
                            ) -> TransferResult:
        """Transfer the call to ``to`` (an extension, number or SIP URI): blind, or with
        ``bridge`` by calling ``to`` and joining the calls (the leg is then handed over)."""
        ...

    async def schedule_callback(self, call_id: str, at: datetime, number: str | None,
                                reason: str) -> dict[str, Any]:
        """See ``CallActions.schedule_callback``."""
        ...


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallReport:
    """Where a session reports its call's turns and events: the observer, if there is one.
    A turn that cannot be stored is logged; it never ends the call."""

    observer: SessionObserver | None
    call_id: str

    def turn(self, turn: Turn) -> None:
        if self.observer is not None:
            try:
                self.observer.on_turn(self.call_id, turn)
            except Exception:
                log.exception("could not record a turn")

    def event(self, kind: str, data: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer.on_event(self.call_id, kind, data)
