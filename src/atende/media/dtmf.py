"""RFC 4733 telephone-events: decoding received DTMF and encoding DTMF to send."""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENTS = "0123456789*#ABCD"


def event_to_digit(event: int) -> str | None:
    if 0 <= event < len(EVENTS):
        return EVENTS[event]
    if event == 16:
        return "flash"
    return None


@dataclass(frozen=True)
class DtmfEvent:
    """A key press received as RFC 4733 events."""

    digit: str
    duration_ms: int


@dataclass(frozen=True)
class EventPayload:
    """An RFC 4733 telephone-event payload."""

    event: int
    end: bool
    volume: int
    duration: int  # in timestamp units

    @classmethod
    def parse(cls, data: bytes) -> EventPayload:
        if len(data) < 4:
            raise ValueError("telephone-event payload shorter than 4 octets")
        event, flags, duration = struct.unpack_from("!BBH", data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def encode(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F),
                           self.duration & 0xFFFF)


class DtmfReceiver:
    """Turns telephone-event packets into one DtmfEvent per key press.

    An event is identified by its RTP timestamp; the end packet is sent three times and
    must be reported once. If the end packets are all lost, the event is reported when the
    next one begins. A key press is believed only once two packets of it agree (the same
    known event, durations that do not go back): a lone packet, stray or malformed,
    presses nothing.
    """

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self._current_ts: int | None = None
        self._current: EventPayload | None = None
        self._packets = 0  # of the current event that agree with each other
        self._broken = False  # the current event's packets disagreed: it is not reported
        self._reported: set[int] = set()

    def on_packet(self, timestamp: int, payload: bytes) -> list[DtmfEvent]:
        """ValueError for a payload too short to be an event."""
        ev = EventPayload.parse(payload)
        out: list[DtmfEvent] = []
        if timestamp != self._current_ts:
            if self._current is not None and self._believable():
                out.extend(self._report(self._current_ts, self._current))
            self._current_ts, self._current = timestamp, None
            self._packets, self._broken = 0, False
        before = self._current
        if event_to_digit(ev.event) is None or ev.duration == 0 or (
                before is not None and (ev.event != before.event
                                        or ev.duration < before.duration)):
            self._broken = True
            return out
        self._current = ev
        self._packets += 1
        if ev.end and self._believable():
            out.extend(self._report(timestamp, ev))
        return out

    def _believable(self) -> bool:
        return (not self._broken and self._packets >= 2
                and self._current_ts not in self._reported)

    def _report(self, ts: int | None, ev: EventPayload) -> list[DtmfEvent]:
        if ts is None:
            return []
        self._reported.add(ts)
        if len(self._reported) > 64:
            self._reported = {ts}
        digit = event_to_digit(ev.event)
        if digit is None:
            return []
        return [DtmfEvent(digit, ev.duration * 1000 // self.clock_rate)]


def dtmf_payloads(digit: str, duration_ms: int = 160, packet_ms: int = 20,
                  clock_rate: int = 8000) -> list[tuple[bytes, bool]]:
    """Payloads to send for one key press, all with the same RTP timestamp:
    (payload, marker). Three end packets, as RFC 4733 §2.5.1.4 recommends."""
    event = EVENTS.index(digit.upper())
    step = packet_ms * clock_rate // 1000
    total = duration_ms * clock_rate // 1000
    out: list[tuple[bytes, bool]] = []
    dur = step
    while dur < total:
        out.append((EventPayload(event, False, 10, dur).encode(), not out))
        dur += step
    for _ in range(3):
        out.append((EventPayload(event, True, 10, total).encode(), not out))
    return out
