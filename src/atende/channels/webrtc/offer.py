"""A call to a browser: atende makes the offer, the browser answers it, then ICE and DTLS
connect. The signalling that carries the two SDPs is the caller's business (the bridge's
page asks for calls by long poll); this is the peer connection and its leg.

    offer = WebRtcOffer(info)
    sdp = await offer.make(addresses)   # every ICE candidate in it: nothing is trickled
    await offer.accept(answer_sdp)      # ValueError: the answer cannot be used
    if await offer.connected(within):   # the leg carries audio from here
        use(offer.leg)
    else:
        await offer.close("connection_failed")"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from atende.channels.leg import CallInfo
from atende.channels.webrtc.ice import addresses_for_call
from atende.channels.webrtc.leg import WebRtcLeg

log = logging.getLogger(__name__)


class WebRtcOffer:
    """One call to a browser, from our offer until its leg ends."""

    def __init__(self, info: CallInfo) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.leg = WebRtcLeg(info, pc)
        self._up = asyncio.Event()
        self._down = asyncio.Event()  # failed or closed, connected or not

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self.leg.listen(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            log.info("call %s: browser connection %s", info.id, state)
            if state == "connected":
                self._up.set()
            elif state in ("failed", "closed"):
                self._down.set()
                if self._up.is_set() and not self.leg.ended:
                    await self.leg.finish("remote_hangup" if state == "closed"
                                          else "connection_lost")

    async def make(self, addresses: Sequence[str] = ()) -> str:
        """Our offer, with its ICE candidates on ``addresses`` (empty: the default)."""
        pc = self.leg.pc
        pc.addTrack(self.leg.track)
        with addresses_for_call(addresses):
            await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        """Take the browser's answer (ValueError: it cannot be used)."""
        try:
            await self.leg.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        except Exception as exc:  # whatever aiortc makes of a bad answer
            raise ValueError(f"the browser's answer cannot be used: {exc}") from None

    async def connected(self, within: float) -> bool:
        """Whether the browser is connected within ``within`` seconds (False as soon as
        the connection fails or the leg ends)."""
        waits = [asyncio.ensure_future(e.wait()) for e in (self._up, self._down,
                                                            self.leg.done)]
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        return self._up.is_set() and not self._down.is_set() and not self.leg.ended

    async def close(self, cause: str) -> None:
        """End the call (whatever state it got to)."""
        await self.leg.finish(cause)
