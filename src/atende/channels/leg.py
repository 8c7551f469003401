"""The call leg: what the agent sees of any call, whatever carries it.

Audio on a leg is atende's internal format (media/audio.py); each channel converts once at
its edge. A leg delivers events (audio, DTMF, hold, playout progress, end)
on one queue and takes audio to play, a clear (barge-in), DTMF to send and a hang-up.
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from atende.media.audio import SAMPLE_RATE
from atende.media.recording import ASSISTANT, CALLER, WavRecorder


@dataclass(frozen=True)
class AudioIn:
    """A 20 ms frame of the party's audio."""

    pcm: bytes  # one 20 ms frame
    at: float


@dataclass(frozen=True)
class DtmfIn:
    """A key the party pressed."""

    digit: str
    duration_ms: int
    at: float


@dataclass(frozen=True)
class HoldChanged:
    """The party put us on hold or took us off it."""

    on_hold: bool
    at: float


@dataclass(frozen=True)
class PlayoutStarted:
    """The first audio of a marked segment left us (e.g. the first RTP packet was sent)."""

    mark: str
    at: float


@dataclass(frozen=True)
class PlayoutDone:
    """A marked segment finished playing, or was cut (barge-in), after ``played_ms``."""

    mark: str
    at: float
    played_ms: int
    interrupted: bool


@dataclass(frozen=True)
class LegEnded:
    """The call is over, and why."""

    cause: str  # e.g. remote_hangup, local_hangup, cancelled, rtp_timeout, ack_timeout
    at: float


@dataclass(frozen=True)
class HandedOver:
    """The leg now belongs to something else (a bridge to the party it was transferred
    to): the agent stops listening and speaking on it, without hanging up."""

    at: float


LegEvent = (AudioIn | DtmfIn | HoldChanged | PlayoutStarted | PlayoutDone | LegEnded
            | HandedOver)


@dataclass
class CallInfo:
    """Channel-neutral facts about a call."""

    id: str
    channel: str
    direction: str  # inbound | outbound
    from_uri: str
    to_uri: str
    from_user: str | None = None
    from_display: str | None = None
    to_user: str | None = None
    remote_address: str | None = None
    external_id: str | None = None  # the channel's own id for the call (SIP Call-ID …)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferResult:
    """How a blind transfer ended, in channel-neutral words."""

    outcome: str  # transferred | failed | refused | timeout
    status: int | None  # the channel's status code (SIP: the REFER's or the target's)
    reason: str
    progress: tuple[int, ...] = ()  # statuses reported while the target was called

    @property
    def ok(self) -> bool:
        return self.outcome == "transferred"


class Rejection(Enum):
    """Why a call is refused, in channel-neutral words; each channel maps it to its own."""

    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Refused:
    """Refuse a call that rang with this status, in SIP terms (as DialOutcome.sip_status;
    other channels map it): a bridge passing its callee's answer back to the caller."""

    status: int  # 400–699
    reason: str


class Ringing(Protocol):
    """What the caller of a call that rings hears before it is answered."""

    def ringing(self) -> None:
        """It rings (SIP: 180)."""

    def early_media(self) -> CallLeg | None:
        """What is played to the returned leg is heard before the answer (SIP: 183 with
        SDP), and its events are the caller's audio; the same leg is connected at the
        answer. None: this call cannot have early media."""


class CallRouter(Protocol):
    """What a channel asks of the application about each incoming call."""

    async def admit(self, info: CallInfo) -> Rejection | None: ...

    async def answering(self, info: CallInfo, caller: Ringing) -> Refused | None:
        """The admitted call may ring: tell ``caller`` what it should hear meanwhile,
        and return when the call is to be answered (None) or refused. A channel that
        cannot ring (or that answers at once) need not ask."""
        ...

    def connected(self, leg: CallLeg) -> None: ...

    def ended_before_answer(self, info: CallInfo, cause: str) -> None: ...

    def decide_transfer(self, info: CallInfo, target: str) -> str | None:
        """Whether the other party may transfer this call to ``target``: None if it may,
        else the reason it may not (the router keeps a record of refusals)."""
        ...

    async def take_transfer(self, leg: CallLeg, target: str,
                            headers: tuple[tuple[str, str], ...]) -> tuple[int | None, str]:
        """Call ``target`` on behalf of ``leg``'s call (the other party transferred us);
        returns the final status of that call and its reason."""
        ...


class NotServing:
    """The router of a channel not yet serving: every call is refused as unavailable."""

    async def admit(self, info: CallInfo) -> Rejection | None:
        return Rejection.UNAVAILABLE

    async def answering(self, info: CallInfo, caller: Ringing) -> Refused | None:
        return Refused(480, "Temporarily Unavailable")

    def connected(self, leg: CallLeg) -> None:
        pass

    def ended_before_answer(self, info: CallInfo, cause: str) -> None:
        pass

    def decide_transfer(self, info: CallInfo, target: str) -> str | None:
        return "atende is not taking calls"

    async def take_transfer(self, leg: CallLeg, target: str,
                            headers: tuple[tuple[str, str], ...]) -> tuple[int | None, str]:
        return None, "atende is not taking calls"


@dataclass
class _Segment:
    mark: str | None
    data: bytes | bytearray
    offset: int = 0
    started: bool = False
    open: bool = False  # more audio of it is coming: it waits (in silence) for the rest


class OutboundAudio:
    """Audio waiting to be sent, in marked segments, read out by the channel's pacer."""

    def __init__(self) -> None:
        self._segments: deque[_Segment] = deque()

    def play(self, pcm: bytes, mark: str | None = None, more: bool = False) -> None:
        """Queue ``pcm``. ``more``: the segment ``mark`` goes on with the next play of the
        same mark (speech streamed as it is synthesised); it is done once a play of it
        comes without ``more``, so it is reported as one segment however it arrived."""
        seg = None if mark is None else next(
            (s for s in reversed(self._segments) if s.open and s.mark == mark), None)
        if seg is not None:
            if not isinstance(seg.data, bytearray):
                seg.data = bytearray(seg.data)
            seg.data += pcm
            seg.open = more
        elif pcm:
            self._segments.append(_Segment(mark, pcm, open=more))

    @property
    def pending_bytes(self) -> int:
        return sum(len(s.data) - s.offset for s in self._segments)

    @property
    def busy(self) -> bool:
        return bool(self._segments)

    def clear(self, now: float) -> list[LegEvent]:
        out: list[LegEvent] = []
        for seg in self._segments:
            if seg.mark is not None:
                out.append(PlayoutDone(seg.mark, now, _ms(seg.offset), interrupted=True))
        self._segments.clear()
        return out

    def read(self, nbytes: int, now: float) -> tuple[bytes | None, list[LegEvent]]:
        """Up to ``nbytes`` of audio (padded with silence), or None when nothing is queued."""
        if not self._segments:
            return None, []
        events: list[LegEvent] = []
        buf = bytearray()
        while self._segments and len(buf) < nbytes:
            seg = self._segments[0]
            if not seg.started:
                seg.started = True
                if seg.mark is not None:
                    events.append(PlayoutStarted(seg.mark, now))
            take = min(nbytes - len(buf), len(seg.data) - seg.offset)
            buf += seg.data[seg.offset : seg.offset + take]
            seg.offset += take
            if seg.offset >= len(seg.data):
                if seg.open:
                    break  # the rest of it is not here yet: silence until it is
                self._segments.popleft()
                if seg.mark is not None:
                    events.append(PlayoutDone(seg.mark, now, _ms(seg.offset), interrupted=False))
        if len(buf) < nbytes:
            buf += bytes(nbytes - len(buf))
        return bytes(buf), events


def _ms(nbytes: int) -> int:
    return nbytes * 1000 // (SAMPLE_RATE * 2)


class CallLeg(abc.ABC):
    """One party of a call, as the agent sees it."""

    def __init__(self, info: CallInfo) -> None:
        self.info = info
        self.events: asyncio.Queue[LegEvent] = asyncio.Queue()
        self.outbound = OutboundAudio()
        self.on_hold = False
        self.ended = False
        self.end_cause: str | None = None
        self.recorder: WavRecorder | None = None  # set when the call is recorded
        self.done = asyncio.Event()  # set when the leg ends

    def heard(self, pcm: bytes, at: float) -> None:
        """A frame of the party's audio (the channel calls this): to the agent, and to the
        recording."""
        if self.recorder is not None:
            self.recorder.add(CALLER, pcm, at)
        self.events.put_nowait(AudioIn(pcm, at))

    def key_pressed(self, digit: str, duration_ms: int, at: float) -> None:
        """A key the party pressed (the channel calls this)."""
        self.events.put_nowait(DtmfIn(digit, duration_ms, at))

    def hold_changed(self, on_hold: bool, at: float) -> None:
        """The party put us on hold or took us off it (the channel calls this): nothing
        queued is sent to a party that holds us."""
        self.on_hold = on_hold
        if on_hold:
            self.clear()
        self.events.put_nowait(HoldChanged(on_hold, at))

    def pull(self, nbytes: int, now: float) -> tuple[bytes | None, list[LegEvent]]:
        """The next audio to send, for the channel's pacer (None: nothing queued); what is
        sent, silence included, goes to the recording."""
        frame, events = self.outbound.read(nbytes, now)
        if self.recorder is not None:
            self.recorder.add(ASSISTANT, frame if frame is not None else bytes(nbytes), now)
        return frame, events

    @property
    def wire_codec(self) -> str | None:
        """PCMU or PCMA when the party's audio is G.711 (8 kHz) on the wire, so a vendor
        can be given the phone's own format; None otherwise."""
        return None

    def media_counts(self) -> tuple[int, int]:
        """(received, sent): units of audio on the wire so far (RTP packets on SIP), for
        telling whether audio flowed both ways; (0, 0) where the channel does not count."""
        return 0, 0

    def carry_to(self, other: CallLeg | None) -> bool:
        """Send this party's audio to ``other`` as it arrives, without decoding it, when
        both carry audio alike (two SIP legs with one codec); True if it will. None:
        stop. Keys, hold and the end still come as events; no recording is made of what
        is carried so (a recorded leg is never carried)."""
        return False

    def reception(self) -> dict[str, float] | None:
        """How the party's audio arrived: ``packets``, ``lost`` and interarrival
        ``jitter_ms`` (RFC 3550 §6.4.1); None where the channel does not measure it."""
        return None

    def play(self, pcm: bytes, mark: str | None = None, more: bool = False) -> None:
        """Queue 16 kHz PCM to be sent to the party (``more``: see OutboundAudio.play)."""
        self.outbound.play(pcm, mark, more)

    def hand_over(self) -> None:
        """Tell whoever listens on the leg (the agent) to let go of it: see HandedOver."""
        self.events.put_nowait(HandedOver(self._now()))

    def clear(self) -> None:
        """Drop queued audio at once (barge-in). Reports interrupted segments."""
        for ev in self.outbound.clear(self._now()):
            self.events.put_nowait(ev)

    async def hold(self, on_hold: bool) -> None:
        """Put the party on hold (we stop listening to it) or take it off hold: a bridge
        passes on the other party's hold. Channels that cannot say so do nothing."""
        return None

    @abc.abstractmethod
    async def hangup(self, cause: str = "local_hangup") -> None: ...

    @abc.abstractmethod
    async def send_dtmf(self, digits: str) -> None: ...

    @abc.abstractmethod
    async def transfer(self, target: str, wait_s: float = 60.0) -> TransferResult:
        """Blind transfer: ask the party to call ``target`` (a channel address, or a user
        or number the channel qualifies) instead. The leg ends if it succeeds."""

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _ended(self, cause: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.end_cause = cause
        self.done.set()
        for ev in self.outbound.clear(self._now()):
            self.events.put_nowait(ev)
        self.events.put_nowait(LegEnded(cause, self._now()))
