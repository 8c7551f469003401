"""The bridge's WebRTC side without its HTTP: the calls of the bridge's page, both ways,
each followed from its offer to its end.

A call the page places goes through the WebRTC channel to the bridge's router like a SIP
client's (the far leg is placed to ``sipServer``); the SDP answer is given once the far
side answers, so a browser is never connected to a call that rings on. The page follows
its call by asking for the next change of state (``wait``): calling → ringing →
answered (with the SDP answer) → ended, or refused/failed with why.

A call the SIP server makes to ``sipExtension`` rings the pages that wait for calls
(``incoming``, a long poll) when no SIP client is registered with the bridge (``ring``):
it carries our offer; the first page to answer takes it (incoming → connecting →
answered → ended); a page may decline it (603), and it ends unanswered when its caller
gives up or nobody answers in time."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from atende.aio import BackgroundTasks
from atende.bridge.page_auth import Caller, Grant
from atende.channels.dialer import DialOutcome
from atende.channels.leg import CallInfo, Rejection
from atende.channels.webrtc.channel import CONNECT_S, CallRefused, NotAnswered, WebRtcChannel
from atende.channels.webrtc.leg import WebRtcLeg
from atende.channels.webrtc.offer import WebRtcOffer
from atende.sip.grammar import is_user

log = logging.getLogger(__name__)
KEEP_ENDED_S = 60.0  # an ended call's last state stays readable this long
PRESENT_S = 2.0  # a page that asked for calls this recently is still there (between polls)
MAX_SDP = 20_000
FINAL = ("refused", "failed", "ended")
# What a router's rejection means to the browser, as SIP would say it.
REJECTED = {Rejection.NOT_FOUND: (404, "Not Found"), Rejection.BUSY: (486, "Busy Here"),
            Rejection.UNAVAILABLE: (480, "Temporarily Unavailable")}


@dataclass
class BrowserCall:
    """One browser's call as its page sees it."""

    id: str
    to: str
    # Placed by the page: (opening,) calling, ringing, answered, ended; refused, failed.
    # To the page: incoming, connecting, answered, ended; failed.
    state: str = "calling"
    sdp: str = ""  # what the page applies: our answer once answered, or our offer
    status: int | None = None  # SIP-style status of a refusal
    reason: str = ""
    direction: str = "out"  # "in": the SIP server's call to the page
    caller: str = ""  # who calls the page (its display name or number)
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def shown(self) -> dict[str, Any]:
        out: dict[str, Any] = {"call_id": self.id, "to": self.to, "state": self.state,
                               "direction": self.direction}
        if self.caller:
            out["from"] = self.caller
        if self.sdp:
            out["sdp"] = self.sdp
        if self.status is not None:
            out["status"] = self.status
        if self.reason:
            out["reason"] = self.reason
        return out

    def move(self, state: str, **what: Any) -> None:
        for name, value in what.items():
            setattr(self, name, value)
        self.state = state
        self.changed.set()
        self.changed = asyncio.Event()


def check_call(to: str, sdp: str) -> str | None:
    """What is wrong with a page's call request, if anything."""
    if not to or not is_user(to) or "@" in to or ":" in to or len(to) > 64:
        return "to: give the number or extension to call (letters, digits, + * # . - _)"
    if not sdp.startswith("v=0") or len(sdp) > MAX_SDP:
        return "sdp: the browser's offer is not an SDP offer"
    return None


class BrowserCalls:
    """The calls placed from the bridge's page, followed until a while after they end."""

    def __init__(self, channel: WebRtcChannel, addresses: Callable[[], Sequence[str]],
                 now: Callable[[], float]) -> None:
        self.channel = channel
        self._addresses = addresses  # ICE host candidates (wasmServerIP when set)
        self._now = now
        self._calls: dict[str, BrowserCall] = {}
        self._offers: dict[str, WebRtcOffer] = {}  # calls to a page, until they end
        self._offered = asyncio.Event()  # set (and replaced) as a call to the pages comes
        self._watching = 0  # pages asking for calls now
        self._last_watch: float | None = None
        self._tasks = BackgroundTasks()

    def get(self, call_id: str) -> BrowserCall | None:
        return self._calls.get(call_id)

    def expect(self, grant: Grant) -> BrowserCall:
        """A call a page atende opens is to place (``opening`` until it does; failed if
        it does not before the grant expires)."""
        call = BrowserCall(grant.call_id, grant.to, state="opening")
        self._calls[call.id] = call
        self._tasks.spawn(self._unless_placed(call, grant.expires - self._now()))
        return call

    async def _unless_placed(self, call: BrowserCall, within: float) -> None:
        await asyncio.sleep(max(0.0, within))
        if call.state == "opening":
            call.move("failed", reason="the page did not place the call")
        if call.state in FINAL:  # never placed (or hung up before): forgotten from here
            await self._forget_later(call)

    def start(self, to: str, sdp: str, caller: Caller, remote: str | None) -> BrowserCall:
        """Place the call (it goes on in the background; follow it with ``wait``)."""
        call_id = caller.grant.call_id if caller.grant is not None else uuid.uuid4().hex
        call = self._calls.get(call_id)
        if call is not None and call.state == "opening":
            call.move("calling")
        else:
            call = BrowserCall(call_id, to)
            self._calls[call_id] = call
        info = CallInfo(id=call_id, channel="webrtc", direction="inbound",
                        from_uri=f"webrtc:{caller.name}", from_user=caller.name,
                        to_uri=f"webrtc:{to}", to_user=to, remote_address=remote)
        self._tasks.spawn(self._run(call, info, sdp))
        return call

    async def _run(self, call: BrowserCall, info: CallInfo, sdp: str) -> None:
        def ringing() -> None:
            if call.state == "calling":
                call.move("ringing")

        try:
            answer = await self.channel.answer(info, sdp, self._addresses(), ringing)
        except NotAnswered as exc:
            call.move("refused", status=exc.refused.status, reason=exc.refused.reason)
        except CallRefused as exc:
            status, reason = REJECTED.get(exc.rejection, (403, "Forbidden"))
            call.move("refused", status=status, reason=reason)
        except ValueError as exc:
            call.move("failed", reason=str(exc))
        except Exception:
            log.exception("bridge browser call %s failed", call.id)
            call.move("failed", reason="the bridge could not place the call")
        else:
            call.move("answered", sdp=answer)
            await self.channel.wait_ended(call.id)
            call.move("ended")
        await self._forget_later(call)

    async def wait(self, call_id: str, seen: str, within: float) -> BrowserCall | None:
        """The call once its state is other than ``seen`` (or as it is after
        ``within`` seconds)."""
        call = self._calls.get(call_id)
        if call is None:
            return None
        if call.state == seen and call.state not in FINAL:
            try:
                async with asyncio.timeout(within):
                    await call.changed.wait()
            except TimeoutError:
                pass
        return call

    async def end(self, call_id: str) -> bool:
        """The page hung up, or gave up while it rang (or before it called), or declined
        a call to it."""
        call = self._calls.get(call_id)
        if call is None or call.state in FINAL:
            return False
        if call.direction == "in":
            return await self._end_incoming(call)
        if call.state == "opening":
            call.move("ended", reason="hung up before the page called")
            return True
        return await self.channel.hangup(call_id)

    # calls to the page ------------------------------------------------------------------
    def watching(self) -> int:
        """How many pages are asking for calls now."""
        return self._watching

    def to_pages(self) -> int:
        """How many calls ring the pages or are answered there."""
        return len(self._offers)

    def present(self) -> bool:
        """Whether a page waits for calls (asking now, or a moment ago: between asks)."""
        last = self._last_watch
        return self._watching > 0 or (last is not None and self._now() - last < PRESENT_S)

    async def incoming(self, seen: str, within: float) -> BrowserCall | None:
        """The next call ringing the pages, other than ``seen`` (the last one this page
        was shown); None when none comes within ``within`` seconds."""
        self._watching += 1
        try:
            async with asyncio.timeout(within):
                while True:
                    call = next((c for c in self._calls.values() if c.direction == "in"
                                 and c.state == "incoming" and c.id != seen), None)
                    if call is not None:
                        self._last_watch = self._now()
                        return call
                    await self._offered.wait()
        except TimeoutError:
            self._last_watch = self._now()  # (not when cancelled: the page went away)
            return None
        finally:
            self._watching -= 1

    async def ring(self, info: CallInfo, caller: str, cancel: asyncio.Event,
                   ring_timeout: float) -> DialOutcome:
        """Ring the pages with the call ``info`` from ``caller``: answered (its leg
        connected) when a page takes it, else why not — declined by a page, not taken
        within ``ring_timeout``, given up by the caller (``cancel``), or the page's
        connection never came up. Never raises for what a page does."""
        offer = WebRtcOffer(info)
        try:
            sdp = await offer.make(self._addresses())
        except BaseException as exc:
            await offer.close("failed")
            if not isinstance(exc, Exception):
                raise
            log.exception("bridge call %s: no offer could be made for the page", info.id)
            return DialOutcome("failed", 500, "500 No offer for the page")
        call = BrowserCall(info.id, info.to_user or "", state="incoming", sdp=sdp,
                           direction="in", caller=caller)
        self._calls[call.id] = call
        self._offers[call.id] = offer
        self._offered.set()
        self._offered = asyncio.Event()
        log.info("bridge call %s: ringing the calling page", info.id)
        outcome: DialOutcome | None = None
        try:
            outcome = await self._until_answered(call, offer, cancel, ring_timeout)
        finally:
            if outcome is None or outcome.leg is None:
                self._offers.pop(call.id, None)
                if call.state not in FINAL:
                    call.move("ended", reason="the caller hung up" if cancel.is_set()
                              else "not answered")
                await offer.close(outcome.status if outcome else "failed")
                self._tasks.spawn(self._forget_later(call))
        if outcome.leg is not None:
            self._tasks.spawn(self._follow_answered(call, offer.leg))
        return outcome

    async def _until_answered(self, call: BrowserCall, offer: WebRtcOffer,
                              cancel: asyncio.Event, ring_timeout: float) -> DialOutcome:
        gave_up = asyncio.ensure_future(cancel.wait())
        try:
            try:
                async with asyncio.timeout(ring_timeout):
                    while call.state == "incoming" and not cancel.is_set():
                        changed = asyncio.ensure_future(call.changed.wait())
                        await asyncio.wait((changed, gave_up),
                                           return_when=asyncio.FIRST_COMPLETED)
                        changed.cancel()
            except TimeoutError:
                pass
            if call.state == "connecting" and not cancel.is_set():
                up = asyncio.ensure_future(offer.connected(CONNECT_S))
                await asyncio.wait((up, gave_up), return_when=asyncio.FIRST_COMPLETED)
                up.cancel()
                if not cancel.is_set() and up.done() and up.result():
                    call.move("answered", sdp="")
                    return DialOutcome("answered", 200, "200 OK", leg=offer.leg)
        finally:
            gave_up.cancel()
        if cancel.is_set():
            return DialOutcome("cancelled", None, "the caller hung up")
        if call.state == "incoming":
            return DialOutcome("no_answer", None, "not answered on the page")
        if call.status == 603:
            return DialOutcome("rejected", 603, "603 Decline")
        if call.state == "connecting":
            call.move("failed", reason="the connection to the bridge did not come up")
        return DialOutcome("failed", 480, "480 The page could not connect")

    async def take(self, call_id: str, sdp: str) -> BrowserCall | tuple[int, str]:
        """A page answers the call ``call_id`` with ``sdp``: the call (connecting), or
        the HTTP status and why not."""
        call, offer = self._calls.get(call_id), self._offers.get(call_id)
        if call is None or call.direction != "in" or offer is None:
            return 404, "no such call to answer"
        if call.state != "incoming":
            return 409, "that call was answered already, or is over"
        if not sdp.startswith("v=0") or len(sdp) > MAX_SDP:
            return 400, "sdp: the browser's answer is not an SDP answer"
        call.move("connecting", sdp="")
        try:
            await offer.accept(sdp)
        except ValueError as exc:
            call.move("failed", reason=str(exc))
            return 400, f"sdp: {exc}"
        return call

    async def _end_incoming(self, call: BrowserCall) -> bool:
        if call.state == "incoming":
            log.info("bridge call %s: declined on the page", call.id)
            call.move("ended", status=603, reason="declined")
            return True
        offer = self._offers.get(call.id)
        if offer is None:
            return False
        if call.state == "connecting":  # hung up before the connection came up
            call.move("ended", status=603, reason="hung up on the page")
        await offer.close("remote_hangup")
        return True

    async def _follow_answered(self, call: BrowserCall, leg: WebRtcLeg) -> None:
        await leg.done.wait()
        self._offers.pop(call.id, None)
        call.move("ended")
        await self._forget_later(call)

    async def _forget_later(self, call: BrowserCall) -> None:
        await asyncio.sleep(KEEP_ENDED_S)  # the page may still ask how it ended
        self._calls.pop(call.id, None)

    async def close(self) -> None:
        for call in list(self._calls.values()):
            # A call still ringing the pages ends with its caller's side (the listener's
            # close): declining it here would tell the SIP server 603, "never".
            if call.state != "incoming":
                await self.end(call.id)
        self._tasks.cancel_all()
