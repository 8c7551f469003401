"""A call leg carried by SIP signalling and RTP media."""

from __future__ import annotations

import asyncio
from typing import Protocol

from atende.aio import BackgroundTasks
from atende.channels.leg import CallInfo, CallLeg, TransferResult
from atende.media.dtmf import DtmfEvent
from atende.media.endpoint import RtpEndpoint
from atende.media.ports import PortAllocator

DTMF_MS = 160  # how long each key is pressed


class Signalling(Protocol):
    """The in-dialog requests a leg needs from its SIP channel."""

    async def send_bye(self, leg: SipLeg) -> None: ...

    async def refer(self, leg: SipLeg, target: str, wait_s: float) -> TransferResult: ...

    def hold(self, leg: SipLeg, on_hold: bool) -> None: ...

    async def send_info_dtmf(self, leg: SipLeg, digit: str, duration_ms: int) -> None: ...


class SipLeg(CallLeg):
    """A call leg carried by SIP signalling and RTP media: what the agent sees of a SIP call."""

    def __init__(self, info: CallInfo, ports: PortAllocator, signalling: Signalling,
                 rtp_timeout: float = 0.0) -> None:
        super().__init__(info)
        self._signalling = signalling
        self.media = RtpEndpoint(ports, f"atende@{info.id}", self._pull,
                                 self._on_audio, self._on_dtmf,
                                 on_timeout=self._on_rtp_timeout, rtp_timeout=rtp_timeout)
        self._tasks = BackgroundTasks()
        self._closing = False

    def trust_host(self, host: str) -> None:
        """Allow symmetric-RTP latching to media coming from ``host`` (the signalling
        peer: behind NAT, RTP comes from its public address, not the one in SDP)."""
        self.media.trusted_hosts.add(host)

    @property
    def wire_codec(self) -> str | None:
        neg = self.media.neg
        return neg.codec.name if neg is not None and neg.codec.name in ("PCMU", "PCMA") \
            else None

    def media_counts(self) -> tuple[int, int]:
        return self.media.packets_received, self.media.sender.packets_sent

    def carry_to(self, other: CallLeg | None) -> bool:
        if other is None:
            self.media.relay_to(None)
            return False
        if not isinstance(other, SipLeg) or self.recorder or other.recorder:
            return False
        ours, theirs = self.media.neg, other.media.neg
        if (ours is None or theirs is None or ours.codec.name != theirs.codec.name
                or ours.ptime_ms != theirs.ptime_ms):
            return False
        self.media.relay_to(other.media)
        return True

    def reception(self) -> dict[str, float]:
        stats = self.media.stats
        return {"packets": stats.received, "lost": stats.lost,
                "jitter_ms": round(stats.jitter * 1000 / stats.clock_rate, 1)}

    def _on_audio(self, frame: bytes, at: float) -> None:
        if not self.on_hold and not self.ended:
            self.heard(frame, at)

    def _on_dtmf(self, ev: DtmfEvent, at: float) -> None:
        self.key_pressed(ev.digit, ev.duration_ms, at)

    def _pull(self, nbytes: int, now: float) -> bytes | None:
        frame, events = self.pull(nbytes, now)
        for ev in events:  # playout progress, for the agent
            self.events.put_nowait(ev)
        return frame

    def _on_rtp_timeout(self) -> None:
        self._tasks.spawn(self.hangup("rtp_timeout"))

    def clear(self) -> None:
        super().clear()
        self.media.reset_outbound()

    async def hold(self, on_hold: bool) -> None:
        """A re-INVITE offering sendonly (hold) or sendrecv (resume)."""
        if not self.ended:
            self._signalling.hold(self, on_hold)

    async def hangup(self, cause: str = "local_hangup") -> None:
        if self.ended or self._closing:
            return
        self._closing = True
        try:
            await self._signalling.send_bye(self)
        finally:
            self.finish(cause)

    def finish(self, cause: str) -> None:
        """The call is over (whoever ended it): stop media and tell the agent."""
        self._ended(cause)
        self.media.close()

    async def send_dtmf(self, digits: str) -> None:
        """RFC 4733 events when the party agreed to them, else SIP INFO
        (application/dtmf-relay), the way older PBXs and phones take keys."""
        for d in digits:
            if self.ended:
                return
            if self.media.sends_dtmf:
                self.media.send_dtmf(d)
            else:
                await self._signalling.send_info_dtmf(self, d, DTMF_MS)
            await asyncio.sleep(0.25)  # inter-digit pause, as a keypad would

    async def transfer(self, target: str, wait_s: float = 60.0) -> TransferResult:
        if self.ended or self._closing:
            return TransferResult("failed", None, "the call has ended")
        result = await self._signalling.refer(self, target, wait_s)
        if result.ok:
            await self.hangup("transferred")
        return result
