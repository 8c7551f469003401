"""What a conversation produces: turns with timings, for storage and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class Turn:
    speaker: str  # caller | assistant
    text: str
    started_at: float  # wall-clock seconds
    ended_at: float
    intent: str | None = None
    interrupted: bool = False
    latency_ms: int | None = None  # assistant turns: end of caller speech → first audio sent
    stt_ms: int | None = None
    tts_ms: int | None = None
    played_ms: int | None = None


class SessionObserver(Protocol):
    def on_turn(self, call_id: str, turn: Turn) -> None: ...

    def on_dtmf(self, call_id: str, digit: str, at: float) -> None: ...

    def on_hold(self, call_id: str, on_hold: bool, at: float) -> None: ...

    def on_outcome(self, call_id: str, outcome: str, fields: dict[str, str]) -> None: ...
