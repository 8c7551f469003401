"""The WebRTC channel: a browser sends its SDP offer (over the dashboard's HTTPS or the
bridge's page, which is the signalling), atende answers, and the call is a CallLeg like
any other — admitted by the router, answered when the router says (at once for an
assistant, when the far side answers for the bridge), connected once ICE and DTLS are up,
ended when either side hangs up or the connection fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import NoReturn

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from atende.aio import BackgroundTasks
from atende.channels.leg import CallInfo, CallLeg, CallRouter, Refused, Rejection
from atende.channels.webrtc.ice import addresses_for_call
from atende.channels.webrtc.leg import WebRtcLeg

log = logging.getLogger(__name__)
CONNECT_S = 20.0  # ICE and DTLS must be up within this, or the call is given up


class CallRefused(Exception):
    """The router would not take the call (the reason in words)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.value.replace("_", " "))
        self.rejection = rejection


class NotAnswered(Exception):
    """The router refused the call after admitting it (the bridge's far side did not
    answer, or the caller gave up): its status and reason, as SIP would say them."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(f"{refused.status} {refused.reason}".strip())
        self.refused = refused


class _Progress:
    """What the router tells a browser while the call rings: there is no early media
    before the browser's connection is answered, so the ringing is all it hears of."""

    def __init__(self, on_ringing: Callable[[], None] | None) -> None:
        self._on_ringing = on_ringing

    def ringing(self) -> None:
        if self._on_ringing is not None:
            self._on_ringing()

    def early_media(self) -> CallLeg | None:
        self.ringing()
        return None


class WebRtcChannel:
    """Browser calls, each a WebRtcLeg handed to the router once connected."""

    def __init__(self) -> None:
        self.router: CallRouter | None = None
        self.legs: dict[str, WebRtcLeg] = {}  # answered calls (connecting or connected)
        self._up: set[str] = set()  # those connected
        self._ringing: dict[str, CallInfo] = {}  # admitted, not answered yet
        self._watch = BackgroundTasks()

    def serve(self, router: CallRouter) -> None:
        self.router = router

    async def answer(self, info: CallInfo, offer_sdp: str, addresses: Sequence[str] = (),
                     on_ringing: Callable[[], None] | None = None) -> str:
        """Take a browser's offer for the call ``info``: the SDP answer (with every ICE
        candidate in it, on ``addresses`` when given: atende does not trickle), once the
        router answers. CallRefused if the router will not take the call, NotAnswered if
        it refuses it later (``on_ringing`` is told when it rings meanwhile); ValueError
        if the offer cannot be used."""
        router = self.router
        if router is None:
            raise CallRefused(Rejection.UNAVAILABLE)
        rejection = await router.admit(info)
        if rejection is not None:
            raise CallRefused(rejection)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        leg = WebRtcLeg(info, pc)
        connected = asyncio.Event()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                leg.listen(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            log.info("call %s: browser connection %s", info.id, state)
            if state == "connected" and not connected.is_set() and not leg.ended:
                connected.set()
                self._up.add(info.id)
                router.connected(leg)
            elif state in ("failed", "closed") and not leg.ended:
                if connected.is_set():
                    await leg.finish("remote_hangup" if state == "closed"
                                     else "connection_lost")
                else:
                    await self._never_connected(leg, router)

        try:
            # Read before anything is asked of the router: a bad offer rings no one.
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except Exception as exc:
            await self._unusable(leg, router, exc)
        self._ringing[info.id] = info
        try:
            refused = await router.answering(info, _Progress(on_ringing))
        finally:
            self._ringing.pop(info.id, None)
        if refused is not None:
            await leg.finish("not_answered")  # (the router recorded why)
            raise NotAnswered(refused)
        try:
            pc.addTrack(leg.track)
            with addresses_for_call(addresses):
                await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            await self._unusable(leg, router, exc)
        self.legs[info.id] = leg
        self._watch.spawn(self._give_up_unless(leg, connected))
        return pc.localDescription.sdp

    @staticmethod
    async def _unusable(leg: WebRtcLeg, router: CallRouter, exc: Exception) -> NoReturn:
        """Whatever the library makes of a bad offer, the call reserved for it must end
        (ended first, so that the closed state is then no news)."""
        await leg.finish("bad_offer")
        router.ended_before_answer(leg.info, "bad_offer")
        raise ValueError(f"the browser's offer cannot be used: {exc}") from None

    async def _give_up_unless(self, leg: WebRtcLeg, connected: asyncio.Event) -> None:
        try:
            try:
                async with asyncio.timeout(CONNECT_S):
                    await connected.wait()
            except TimeoutError:
                if not leg.ended and self.router is not None:
                    log.info("call %s: the browser never connected", leg.info.id)
                    await self._never_connected(leg, self.router)
            await leg.done.wait()
        finally:
            self.legs.pop(leg.info.id, None)
            self._up.discard(leg.info.id)

    @staticmethod
    async def _never_connected(leg: WebRtcLeg, router: CallRouter,
                               cause: str = "connection_failed") -> None:
        """A call whose browser never got through: over, and its place given back."""
        await leg.finish(cause)
        router.ended_before_answer(leg.info, cause)

    async def wait_ended(self, call_id: str) -> None:
        """Until the answered call ``call_id`` has ended."""
        leg = self.legs.get(call_id)
        if leg is not None:
            await leg.done.wait()

    async def hangup(self, call_id: str, cause: str = "remote_hangup") -> bool:
        """The browser hung up (its button), or gave up while it rang: whether there was
        such a call."""
        info = self._ringing.pop(call_id, None)
        if info is not None and self.router is not None:
            self.router.ended_before_answer(info, "cancelled")  # answering() then returns
            return True
        leg = self.legs.get(call_id)
        if leg is None or leg.ended:
            return False
        if call_id not in self._up and self.router is not None:
            await self._never_connected(leg, self.router, "cancelled")
        else:
            await leg.finish(cause)
        return True

    async def close(self) -> None:
        for leg in list(self.legs.values()):
            await leg.hangup("shutdown")
        self._watch.cancel_all()
