"""The WebRTC channel: a browser sends its SDP offer (over the dashboard's HTTPS, which is
the signalling), atende answers, and the call is a CallLeg like any other — admitted by
the router, connected once ICE and DTLS are up, ended when either side hangs up or the
connection fails."""

from __future__ import annotations

import asyncio
import logging

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from atende.aio import BackgroundTasks
from atende.channels.leg import CallInfo, CallRouter, Rejection
from atende.channels.webrtc.leg import WebRtcLeg

log = logging.getLogger(__name__)
CONNECT_S = 20.0  # ICE and DTLS must be up within this, or the call is given up


class CallRefused(Exception):
    """The router would not take the call (the reason in words)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.value.replace("_", " "))
        self.rejection = rejection


class WebRtcChannel:
    """Browser calls, each a WebRtcLeg handed to the router once connected."""

    def __init__(self) -> None:
        self.router: CallRouter | None = None
        self.legs: dict[str, WebRtcLeg] = {}  # connected calls
        self._watch = BackgroundTasks()

    def serve(self, router: CallRouter) -> None:
        self.router = router

    async def answer(self, info: CallInfo, offer_sdp: str) -> str:
        """Take a browser's offer for the call ``info``: the SDP answer (with every ICE
        candidate in it: atende does not trickle). CallRefused if the router will not
        take the call; ValueError if the offer cannot be used."""
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
            if state == "connected" and not connected.is_set():
                connected.set()
                self.legs[info.id] = leg
                router.connected(leg)
            elif state in ("failed", "closed") and not leg.ended:
                if connected.is_set():
                    await leg.finish("remote_hangup" if state == "closed"
                                     else "connection_lost")
                else:
                    await self._never_connected(leg, router)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            pc.addTrack(leg.track)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            # Whatever the library makes of a bad offer, the call reserved for it must end
            # (ended first, so that the closed state is then no news).
            await leg.finish("bad_offer")
            router.ended_before_answer(info, "bad_offer")
            raise ValueError(f"the browser's offer cannot be used: {exc}") from None
        self._watch.spawn(self._give_up_unless(leg, connected))
        return pc.localDescription.sdp

    async def _give_up_unless(self, leg: WebRtcLeg, connected: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(connected.wait(), CONNECT_S)
        except TimeoutError:
            if not leg.ended and self.router is not None:
                log.info("call %s: the browser never connected", leg.info.id)
                await self._never_connected(leg, self.router)
            return
        await leg.done.wait()
        self.legs.pop(leg.info.id, None)

    @staticmethod
    async def _never_connected(leg: WebRtcLeg, router: CallRouter) -> None:
        """A call whose browser never got through: over, and its place given back."""
        await leg.finish("connection_failed")
        router.ended_before_answer(leg.info, "connection_failed")

    async def hangup(self, call_id: str, cause: str = "remote_hangup") -> bool:
        """The browser hung up (its button): whether there was such a call."""
        leg = self.legs.get(call_id)
        if leg is None:
            return False
        await leg.finish(cause)
        return True

    async def close(self) -> None:
        for leg in list(self.legs.values()):
            await leg.hangup("shutdown")
        self._watch.cancel_all()
