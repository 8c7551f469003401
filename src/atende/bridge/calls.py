"""Each bridge call as two legs: the router of the bridge's SIP channel. A call admitted on
the listener is placed to the other side (the SIP server, or a client registered with
the bridge when the SIP server calls its extension); the caller hears it ring when the
callee rings, is answered when the callee answers, and gets the callee's refusal
otherwise. Answered, the two legs are joined (channels/bridge.py) until either hangs up.

Each side has its own dialog (a B2BUA): nothing of one side's SIP reaches the other but
what is mapped on purpose (ringing, the final status, the audio, the keys, the hang-up).
One call record per bridged call, channel ``bridge``."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from atende.aio import BackgroundTasks
from atende.bridge.settings import BridgeConfig
from atende.bridge.transcript import Transcripts
from atende.calls.records import CallRecords
from atende.channels.bridge import bridge, early_media
from atende.channels.dialer import DialOutcome
from atende.channels.leg import CallInfo, CallLeg, Refused, Rejection, Ringing
from atende.channels.sip.outbound import SipDial
from atende.sip.sdp import SUPPORTED_CODECS
from atende.sip.transaction import Address
from atende.sip.uri import SipUri
from atende.store.writes import insert_call, update_call

log = logging.getLogger(__name__)


class Placer(Protocol):
    """Places the far leg (the bridge's SipDialer)."""

    async def dial(self, d: SipDial, cancel: asyncio.Event | None = None,
                   progress: Callable[[str, CallLeg], None] | None = None
                   ) -> DialOutcome: ...


class Assistants(Protocol):
    """Who answers a bridge call the far side did not take (the calls engine)."""

    async def adopt(self, info: CallInfo, assistant_id: str) -> Rejection | None: ...

    def connected(self, leg: CallLeg) -> None: ...

    def ended_before_answer(self, info: CallInfo, cause: str) -> None: ...


class Pages(Protocol):
    """Browsers that wait for calls on the bridge's page (browser.BrowserCalls)."""

    def present(self) -> bool: ...

    async def ring(self, info: CallInfo, caller: str, cancel: asyncio.Event,
                   ring_timeout: float) -> DialOutcome: ...


@dataclass(frozen=True)
class Target:
    """Where a call admitted on the listener goes: the Request-URI, the first hop, who we
    are there and our credentials (none towards a client registered with us). With no
    first hop, the browsers waiting on the bridge's page (``ruri`` names the extension)."""

    ruri: SipUri
    address: Address | None
    from_uri: str
    username: str = ""
    password: str = field(default="", repr=False)
    direction: str = "inbound"  # as the SIP server sees it: into it, or out of it
    srtp: bool = False  # offer SRTP only

    @property
    def to_uri(self) -> str:
        return f"webrtc:{self.ruri.user}" if self.address is None else str(self.ruri)


# Where an admitted call goes: a Target, or why it goes nowhere.
Route = Callable[[CallInfo], Awaitable[Target | Rejection]]


def refusal_for(outcome: DialOutcome) -> Refused:
    """What the caller is told when the far side did not answer: its own status where it
    means the same to the caller, else a status about the bridge's part."""
    status = outcome.sip_status
    if status is None:
        if outcome.status == "no_answer":
            return Refused(480, "No Answer")
        return Refused(408, "The SIP server did not answer")
    if status in (401, 407):
        # Our credentials, not the caller's: the bridge is misconfigured.
        return Refused(502, "The SIP server refused the bridge's credentials")
    if status == 503:
        return Refused(500, "The SIP server is unavailable")  # as a proxy would (§16.7)
    if 300 <= status < 400 or status == 487:
        return Refused(480, "Temporarily Unavailable")
    if 400 <= status < 700:
        return Refused(status, outcome.reason.partition(" ")[2] or "")
    return Refused(500, "Unexpected answer from the SIP server")


@dataclass
class _Call:
    """A bridge call while it lasts."""

    info: CallInfo
    target: Target
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    far: CallLeg | None = None  # the leg we placed, once answered
    adopted: bool = False  # an assistant answers it instead (the far side did not)


class BridgeCalls:
    """The bridge channel's router: admits calls while the bridge is enabled, places each
    one's far leg, and joins the two when it answers."""

    def __init__(self, config: Callable[[], BridgeConfig], route: Route, placer: Placer,
                 records: CallRecords, assistants: Assistants | None = None,
                 transcripts: Transcripts | None = None, pages: Pages | None = None) -> None:
        self._config = config
        self._pages = pages
        self._route = route
        self._placer = placer
        self._records = records
        self._assistants = assistants
        self._transcripts = transcripts
        self._calls: dict[str, _Call] = {}
        self._accepting = True
        self._idle = asyncio.Event()  # set while no call is in progress
        self._idle.set()
        self._tasks = BackgroundTasks()

    def __len__(self) -> int:
        return len(self._calls)

    def stop_accepting(self) -> None:
        """New calls are refused from now on (the listener moved, or closes); the calls in
        progress go on."""
        self._accepting = False

    async def wait_idle(self) -> None:
        """Until no call is left."""
        await self._idle.wait()
        await self._tasks.wait()

    def _forget(self, call_id: str) -> _Call | None:
        call = self._calls.pop(call_id, None)
        if not self._calls:
            self._idle.set()
        return call

    # the channel's router ---------------------------------------------------------------
    async def admit(self, info: CallInfo) -> Rejection | None:
        if not (self._accepting and self._config().enabled):
            return Rejection.UNAVAILABLE
        target = await self._route(info)
        if isinstance(target, Rejection):
            return target
        self._calls[info.id] = _Call(info, target)
        self._idle.clear()
        now = self._records.wall()
        self._records.store.submit(insert_call(
            id=info.id, channel="bridge", direction=target.direction,
            from_uri=info.from_uri, to_uri=target.to_uri, from_user=info.from_user,
            from_display=info.from_display, to_user=target.ruri.user,
            remote_address=info.remote_address, external_id=info.external_id,
            status="ringing", invite_at=now, node_id=self._records.store.node_id))
        self._records.events.publish(info.id, "call.ringing", {
            "direction": target.direction, "from": info.from_uri, "to": target.to_uri,
            "channel": "bridge"})
        return None

    async def answering(self, info: CallInfo, caller: Ringing) -> Refused | None:
        call = self._calls.get(info.id)
        if call is None:
            return Refused(500, "Server Internal Error")
        target = call.target
        to_page = target.address is None
        far_info = CallInfo(id=uuid.uuid4().hex, channel="webrtc" if to_page else "sip",
                            direction="outbound", from_uri=target.from_uri,
                            to_uri=target.to_uri, to_user=target.ruri.user,
                            extra={"bridge_of": info.id})
        display = info.from_display or info.from_user
        self._records.event(info.id, "bridge_dialing", {"to": target.to_uri})
        if target.address is None:
            outcome = await self._ring_pages(far_info, display or "", call.cancel, caller)
        else:
            dial = SipDial(far_info, target.ruri, target.from_uri, target.address,
                           target.username, target.password,
                           ring_timeout=self._config().ring_timeout_s, display=display,
                           codecs=SUPPORTED_CODECS,  # the far side may speak none of ours
                           srtp=target.srtp)
            outcome = await self._dial(dial, call.cancel, caller)
        return await self._answered_or_refused(call, outcome)

    async def _ring_pages(self, far_info: CallInfo, caller_name: str, cancel: asyncio.Event,
                          caller: Ringing) -> DialOutcome:
        if self._pages is None:
            return DialOutcome("failed", 480, "480 No calling page")
        caller.ringing()  # (a page has no early media to give)
        return await self._pages.ring(far_info, caller_name, cancel,
                                      self._config().ring_timeout_s)

    async def _dial(self, dial: SipDial, cancel: asyncio.Event, caller: Ringing
                    ) -> DialOutcome:
        """Place the far leg to a SIP peer, the caller hearing its ringing or early media."""
        early: list[asyncio.Task[None]] = []

        def progress(kind: str, far: CallLeg) -> None:
            if kind == "ringing":
                caller.ringing()
            elif kind == "early_media" and not early:
                near = caller.early_media()
                if near is not None:  # the caller hears the far side before the answer
                    early.append(asyncio.ensure_future(early_media(near, far)))
                else:
                    caller.ringing()

        try:
            return await self._placer.dial(dial, cancel, progress)
        finally:
            for task in early:
                task.cancel()
            await asyncio.gather(*early, return_exceptions=True)

    async def _answered_or_refused(self, call: _Call, outcome: DialOutcome) -> Refused | None:
        info, target = call.info, call.target
        if outcome.leg is None:
            taken = await self._fall_back(call, outcome)
            if taken:
                return None  # an assistant answers instead
            refused = refusal_for(outcome)
            log.info("bridge call %s: %s did not answer (%s): %d to the caller", info.id,
                     target.to_uri, outcome.reason, refused.status)
            self._forget(info.id)
            if taken is None and not call.cancel.is_set():  # (else the engine recorded it)
                self._records.finish(info.id, delivers=False, status=outcome.status,
                                     hangup_cause=f"far_{outcome.status}",
                                     sip_status=outcome.sip_status)
            return refused
        if call.cancel.is_set():  # the caller gave up as the far side answered
            await outcome.leg.hangup("cancelled")
            return Refused(487, "Request Terminated")
        call.far = outcome.leg
        return None

    async def _fall_back(self, call: _Call, outcome: DialOutcome) -> bool | None:
        """Whether the configured assistant takes the call the far side did not: True, or
        False when it could not (the engine recorded why), or None when none was asked."""
        config = self._config()
        if (self._assistants is None or not config.assistant_id or call.cancel.is_set()
                or outcome.status not in config.assistant_when):
            return None
        if await self._assistants.adopt(call.info, config.assistant_id) is not None:
            return False
        self._records.event(call.info.id, "assistant_answers", {
            "far_outcome": outcome.status, "far_status": outcome.sip_status,
            "assistant_id": config.assistant_id})
        call.adopted = True
        log.info("bridge call %s: %s, so assistant %s answers", call.info.id,
                 outcome.reason or outcome.status, config.assistant_id)
        return True

    def connected(self, leg: CallLeg) -> None:
        call = self._calls.get(leg.info.id)
        if call is not None and call.adopted:
            self._forget(leg.info.id)
            self._assistants_of(call).connected(leg)
            return
        if call is None or call.far is None:
            self._tasks.spawn(leg.hangup("bridge_gone"))
            return
        self._tasks.spawn(self._joined(call, leg, call.far))

    def ended_before_answer(self, info: CallInfo, cause: str) -> None:
        call = self._forget(info.id)
        if call is None:
            return
        if call.adopted:
            self._assistants_of(call).ended_before_answer(info, cause)
            return
        call.cancel.set()
        if call.far is not None:
            self._tasks.spawn(call.far.hangup(cause))
        status = "cancelled" if cause == "cancelled" else "failed"
        self._records.finish(info.id, delivers=False, status=status, hangup_cause=cause)

    def _assistants_of(self, call: _Call) -> Assistants:
        assert self._assistants is not None  # only adopted calls get here
        return self._assistants

    def decide_transfer(self, info: CallInfo, target: str) -> str | None:
        return "the bridge does not take transfers: transfer on the SIP server instead"

    async def take_transfer(self, leg: CallLeg, target: str,
                            headers: tuple[tuple[str, str], ...]) -> tuple[int | None, str]:
        return 403, "the bridge does not take transfers"

    # a joined call ----------------------------------------------------------------------
    async def _joined(self, call: _Call, near: CallLeg, far: CallLeg) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._records.store.submit(update_call(call.info.id, status="in_progress",
                                               answer_at=self._records.wall()))
        self._records.event(call.info.id, "bridge_answered", {"to": far.info.to_uri})
        transcript = (self._transcripts.for_call(call.info.id)
                      if self._transcripts is not None and self._config().transcribe
                      else None)

        def listen(leg: CallLeg, pcm: bytes, at: float) -> None:
            assert transcript is not None
            transcript.heard("caller" if leg is near else "callee", pcm, at)

        try:
            first = await bridge(near, far, listen=listen if transcript else None)
        except Exception:
            log.exception("bridge call %s failed", call.info.id)
            first = near
            for leg in (near, far):
                if not leg.ended:
                    await leg.hangup("bridge_error")
        finally:
            self._forget(call.info.id)
        if transcript is not None:
            await transcript.close()  # its turns are written before the call is finished
        who = "caller" if first is near else "callee"
        self._records.event(call.info.id, "bridge_ended", {
            "hung_up_first": who, "seconds": round(loop.time() - started, 1),
            # What each side's audio was like when it reached the bridge.
            "from_caller": near.reception(), "from_callee": far.reception()})
        cause = first.end_cause or "bridge_ended"
        self._records.finish(call.info.id, delivers=False, status="completed",
                             hangup_cause=cause if who == "caller" else f"far_{cause}")

    async def close(self) -> None:
        """Hang up every bridged call (the SIP channels' own close ends the legs)."""
        for call in list(self._calls.values()):
            call.cancel.set()
        await self._tasks.wait()
