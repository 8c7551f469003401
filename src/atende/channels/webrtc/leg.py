"""A call leg carried by a browser's WebRTC peer connection."""

from __future__ import annotations

import asyncio
import logging
import re

from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame

from atende.aio import BackgroundTasks
from atende.channels.leg import CallInfo, CallLeg, TransferResult
from atende.channels.webrtc.audio import Incoming, outgoing
from atende.media.audio import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES

log = logging.getLogger(__name__)


class LegTrack(MediaStreamTrack):
    """What the browser hears: the leg's queued audio, paced on a 20 ms clock (silence
    when nothing is queued)."""

    kind = "audio"

    def __init__(self, leg: WebRtcLeg) -> None:
        super().__init__()
        self._leg = leg
        self._pts = 0
        self._next: float | None = None
        self.frames_sent = 0

    async def recv(self) -> Frame:
        if self.readyState != "live" or self._leg.ended:
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.time()
        else:
            self._next += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, self._next - loop.time()))
        pcm, events = self._leg.pull(FRAME_BYTES, loop.time())
        for ev in events:  # playout progress, for the agent
            self._leg.events.put_nowait(ev)
        frame = outgoing(pcm if pcm is not None else bytes(FRAME_BYTES), self._pts)
        self._pts += FRAME_SAMPLES
        self.frames_sent += 1
        return frame


class WebRtcLeg(CallLeg):
    """A browser's call: its microphone in, the assistant out, over one peer connection."""

    def __init__(self, info: CallInfo, pc: RTCPeerConnection) -> None:
        super().__init__(info)
        self.pc = pc
        self.track = LegTrack(self)
        self.frames_received = 0
        self._tasks = BackgroundTasks()
        self._reception: dict[str, float] | None = None  # read as the connection closes
        self._finishing = False

    def listen(self, remote: MediaStreamTrack) -> None:
        """Take the browser's audio track: each 20 ms of it to the agent."""
        self._tasks.spawn(self._receive(remote))

    async def _receive(self, remote: MediaStreamTrack) -> None:
        incoming = Incoming()
        loop = asyncio.get_running_loop()
        while not self.ended:
            try:
                frame = await remote.recv()
            except MediaStreamError:
                return  # the browser stopped sending: the connection's state ends the leg
            self.frames_received += 1
            for pcm in incoming.frames(frame):  # type: ignore[arg-type]
                if not self.ended:
                    self.heard(pcm, loop.time())

    def media_counts(self) -> tuple[int, int]:
        return self.frames_received, self.track.frames_sent

    def reception(self) -> dict[str, float] | None:
        return self._reception

    async def _read_reception(self) -> None:
        """The browser's audio as it arrived (RTP packets, lost, jitter), from aiortc's
        statistics: they go with the connection, so they are read before it closes."""
        try:
            report = await self.pc.getStats()
        except Exception:  # a connection that never got far has none
            return
        found = [s for s in report.values() if getattr(s, "type", "") == "inbound-rtp"
                 and getattr(s, "kind", "") == "audio"]
        if not found:
            return
        stats = found[0]
        local = self.pc.localDescription
        rtpmap = re.search(r"a=rtpmap:\d+ [^/\s]+/(\d+)", local.sdp if local else "")
        clock = int(rtpmap.group(1)) if rtpmap else 48000
        self._reception = {"packets": stats.packetsReceived, "lost": stats.packetsLost,
                           "jitter_ms": round(stats.jitter * 1000 / clock, 1)}

    async def hangup(self, cause: str = "local_hangup") -> None:
        await self.finish(cause)

    async def finish(self, cause: str) -> None:
        """The call is over (whoever ended it): close the connection, tell the agent."""
        if self.ended or self._finishing:
            return
        self._finishing = True
        await self._read_reception()  # before anyone learns it ended, and reads them
        self._ended(cause)
        self.track.stop()
        await self.pc.close()
        self._tasks.cancel_all()

    async def send_dtmf(self, digits: str) -> None:
        # A browser has no keypad to play tones to; the tool's result says it was sent.
        log.info("call %s: DTMF %r not sent: a browser call has no keypad", self.info.id,
                 digits)

    async def transfer(self, target: str, wait_s: float = 60.0) -> TransferResult:
        return TransferResult("refused", None, "a browser call cannot be transferred")
