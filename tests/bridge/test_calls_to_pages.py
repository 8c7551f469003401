"""Calls to the bridge's page (the SIP server's calls to ``sipExtension``), without HTTP:
a real aiortc peer connection stands in for the browser. It asks for calls, gets our
offer, answers it; audio then flows both ways over loopback. A page may also decline, the
caller may give up, nobody may answer; only the first answer is taken."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from fractions import Fraction

import aioice.ice
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from av.audio.frame import AudioFrame

from atende.bridge.browser import BrowserCall, BrowserCalls
from atende.channels.dialer import DialOutcome
from atende.channels.leg import AudioIn, CallInfo
from atende.channels.webrtc.channel import WebRtcChannel
from atende.channels.webrtc.ice import offer_addresses
from atende.media.audio import FRAME_SAMPLES, SAMPLE_RATE


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    before = aioice.ice.get_host_addresses
    offer_addresses(["127.0.0.1"])
    yield
    aioice.ice.get_host_addresses = before


@pytest.fixture
async def calls(loopback_ice: None) -> AsyncIterator[BrowserCalls]:
    found = BrowserCalls(WebRtcChannel(), lambda: ["127.0.0.1"], time.monotonic)
    yield found
    await found.close()


class Tone(MediaStreamTrack):
    """The browser's microphone: a 440 Hz tone, 20 ms a frame, in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        self._start = self._start if self._start is not None else loop.time()
        await asyncio.sleep(max(0.0, self._start + self._pts / SAMPLE_RATE - loop.time()))
        t = (self._pts + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
        pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        return frame


class Browser:
    """The page's side: answers our offer with a tone for a microphone, and counts the
    frames it hears."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.heard_loud = 0
        self._reading: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._reading = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if np.abs(frame.to_ndarray()).max() > 1000:
                self.heard_loud += 1

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        self.pc.addTrack(Tone())
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def close(self) -> None:
        await self.pc.close()
        if self._reading is not None:
            self._reading.cancel()


def info() -> CallInfo:
    return CallInfo(id="c1", channel="webrtc", direction="outbound", from_uri="sip:carol@pbx",
                    to_uri="webrtc:carol", to_user="carol")


@dataclass
class Ringing:
    """A call ringing the pages: its id as a page got it, and its caller's giving up."""

    outcome: asyncio.Task[DialOutcome]
    call_id: str
    cancel: asyncio.Event

    def call(self, calls: BrowserCalls) -> BrowserCall:
        found = calls.get(self.call_id)
        assert found is not None
        return found


async def _ringing(calls: BrowserCalls, ring_timeout: float = 10.0) -> Ringing:
    page = asyncio.ensure_future(calls.incoming("", 5))
    await asyncio.sleep(0)
    assert calls.present() and calls.watching() == 1
    cancel = asyncio.Event()
    ring = asyncio.ensure_future(calls.ring(info(), "Bob", cancel, ring_timeout))
    offered = await page
    assert offered is not None and offered.state == "incoming"
    shown = offered.shown()
    assert shown["from"] == "Bob" and shown["direction"] == "in"
    assert shown["sdp"].startswith("v=0") and "127.0.0.1" in shown["sdp"]
    return Ringing(ring, offered.id, cancel)


async def test_a_page_answers_and_audio_flows_both_ways(calls: BrowserCalls) -> None:
    assert not calls.present()
    ringing = await _ringing(calls)
    call_id = ringing.call_id
    browser = Browser()
    try:
        taken = await calls.take(call_id, await browser.answer(ringing.call(calls).sdp))
        assert not isinstance(taken, tuple) and taken.state == "connecting"
        # A second page is too late.
        assert await calls.take(call_id, "v=0\r\n") == (409, "that call was answered "
                                                              "already, or is over")
        outcome = await asyncio.wait_for(ringing.outcome, 15)
        assert outcome.status == "answered" and outcome.sip_status == 200
        leg = outcome.leg
        assert leg is not None and ringing.call(calls).state == "answered"
        assert calls.to_pages() == 1
        # What the page's microphone sends reaches the leg, as 20 ms frames at 16 kHz.
        loud = 0
        async with asyncio.timeout(10):
            while loud < 10:
                ev = await leg.events.get()
                if isinstance(ev, AudioIn) and np.abs(np.frombuffer(ev.pcm, np.int16)).max() > 3000:
                    loud += 1
        # What the leg plays reaches the page.
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
        leg.play((np.sin(2 * np.pi * 700 * t) * 8000).astype(np.int16).tobytes())
        async with asyncio.timeout(10):
            while browser.heard_loud < 10:
                await asyncio.sleep(0.05)
        # The page hangs up: the leg ends, the call shows it ended.
        assert await calls.end(call_id)
        async with asyncio.timeout(5):
            await leg.done.wait()
            while ringing.call(calls).state != "ended":
                await asyncio.sleep(0.01)
        assert calls.to_pages() == 0
    finally:
        await browser.close()


async def test_a_page_declines(calls: BrowserCalls) -> None:
    ringing = await _ringing(calls)
    assert await calls.end(ringing.call_id)
    outcome = await asyncio.wait_for(ringing.outcome, 5)
    assert (outcome.status, outcome.sip_status, outcome.leg) == ("rejected", 603, None)
    assert ringing.call(calls).reason == "declined"
    assert calls.to_pages() == 0


async def test_nobody_answers_in_time(calls: BrowserCalls) -> None:
    ringing = await _ringing(calls, ring_timeout=0.3)
    outcome = await asyncio.wait_for(ringing.outcome, 5)
    assert outcome.status == "no_answer" and outcome.leg is None
    shown = ringing.call(calls).shown()
    assert shown["state"] == "ended" and shown["reason"] == "not answered"
    assert await calls.take(ringing.call_id, "v=0\r\n") == (404, "no such call to answer")


async def test_the_caller_gives_up_while_it_rings(calls: BrowserCalls) -> None:
    ringing = await _ringing(calls)
    ringing.cancel.set()
    outcome = await asyncio.wait_for(ringing.outcome, 5)
    assert outcome.status == "cancelled"
    assert ringing.call(calls).reason == "the caller hung up"


async def test_a_bad_answer_is_refused_and_the_call_rings_on(calls: BrowserCalls) -> None:
    ringing = await _ringing(calls)
    call_id = ringing.call_id
    assert await calls.take(call_id, "hello") == (
        400, "sdp: the browser's answer is not an SDP answer")
    assert ringing.call(calls).state == "incoming"
    # An SDP aiortc cannot use: the call fails, and the caller is told the page could not.
    problem = await calls.take(call_id, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
    assert isinstance(problem, tuple) and problem[0] == 400
    outcome = await asyncio.wait_for(ringing.outcome, 5)
    assert (outcome.status, outcome.sip_status) == ("failed", 480)


async def test_a_page_is_present_a_moment_after_it_asked(calls: BrowserCalls) -> None:
    assert await calls.incoming("", 0.05) is None
    assert calls.present() and calls.watching() == 0


async def test_closing_leaves_a_ringing_call_to_its_caller(calls: BrowserCalls) -> None:
    """At shutdown the call is not declined (603 would tell the SIP server "never"): its
    caller's side ends it."""
    ringing = await _ringing(calls)
    await calls.close()
    assert ringing.call(calls).state == "incoming" and not ringing.outcome.done()
    ringing.cancel.set()
    outcome = await asyncio.wait_for(ringing.outcome, 5)
    assert outcome.status == "cancelled"
