"""The FreeSWITCH channel: each call reaches atende twice — its control over the event
socket (the dialplan's ``socket``), its audio over mod_audio_stream's WebSocket (started by
``api_on_answer``) — in either order. The two are paired by FreeSWITCH's call UUID; a call
whose other half does not come within ``pair_timeout_s`` is ended and logged."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atende.aio import all_before
from atende.channels.freeswitch.audio_stream import AudioStream, AudioStreamServer
from atende.channels.freeswitch.esl import ChannelData, EslChannel, EslOutboundServer
from atende.channels.freeswitch.leg import FreeSwitchLeg, stream_rate
from atende.channels.freeswitch.rtp_mode import BRIDGE_VARIABLE, bridge_to_sip
from atende.channels.leg import CallInfo, CallRouter, Rejection
from atende.channels.secretary import (
    DOMAIN_VARIABLE,
    SECRETARY_VARIABLE,
    assistant_id,
    known_uuid,
)
from atende.esl import commands
from atende.media.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

PAIR_TIMEOUT_S = 5.0
ORIGINATED = "atende_originated"  # set on the calls atende places through FreeSWITCH

# How a refusal is told to FreeSWITCH (Q.850 cause names, which it maps to SIP codes).
HANGUP_CAUSES = {
    Rejection.NOT_FOUND: "UNALLOCATED_NUMBER",
    Rejection.FORBIDDEN: "CALL_REJECTED",
    Rejection.BUSY: "USER_BUSY",
    Rejection.UNAVAILABLE: "NORMAL_TEMPORARY_FAILURE",
}


@dataclass
class _Stream:
    stream: AudioStream
    frames: asyncio.Queue[bytes | None]
    claimed: asyncio.Event


class StreamPairs:
    """Audio streams waiting for their call's event socket, by FreeSWITCH call UUID."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._offered: dict[str, _Stream] = {}
        self._waiting: dict[str, asyncio.Future[_Stream]] = {}

    async def offer(self, stream: AudioStream, frames: asyncio.Queue[bytes | None]) -> None:
        """Hand this stream to its call; closed when no call claims it in time."""
        key = stream.target.call_uuid
        entry = _Stream(stream, frames, asyncio.Event())
        waiter = self._waiting.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(entry)
            return
        if key in self._offered:
            log.warning("call %s: a second audio stream for it, refused", key)
            await stream.close("this call already has a stream")
            return
        self._offered[key] = entry
        try:
            async with asyncio.timeout(self.timeout_s):
                await entry.claimed.wait()
        except TimeoutError:
            log.warning("call %s: its audio stream came, but no event socket for it within "
                        "%g s (is the dialplan's socket action there?); stream closed", key,
                        self.timeout_s)
            await stream.close("no call control for this stream")
        finally:
            if self._offered.get(key) is entry:
                del self._offered[key]

    async def claim(self, call_uuid: str, ended: asyncio.Event) -> _Stream | None:
        """The stream of this call: at once if it came first, else when it comes (None:
        not within the timeout, or the call ended meanwhile)."""
        key = call_uuid.lower()
        entry = self._offered.pop(key, None)
        if entry is None:
            waiter: asyncio.Future[_Stream] = asyncio.get_running_loop().create_future()
            self._waiting[key] = waiter
            gone = asyncio.ensure_future(ended.wait())
            either: list[asyncio.Future[Any]] = [waiter, gone]
            try:
                await asyncio.wait(either, timeout=self.timeout_s,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
                self._waiting.pop(key, None)
            if not waiter.done():
                waiter.cancel()
                return None
            entry = waiter.result()
        entry.claimed.set()
        return entry


class FreeSwitchChannel:
    """Takes FreeSWITCH's calls (event socket + audio stream) and gives each to the
    router as a ``FreeSwitchLeg``."""

    def __init__(self, pair_timeout_s: float = PAIR_TIMEOUT_S) -> None:
        self.esl = EslOutboundServer(self._control)
        self.audio = AudioStreamServer(self._stream)
        self.pairs = StreamPairs(pair_timeout_s)
        self.router: CallRouter | None = None
        self.legs: dict[str, FreeSwitchLeg] = {}
        # Calls atende originated, by FreeSWITCH UUID: handed back to their dialer (a leg,
        # or why there is none), not to the router.
        self._expected: dict[str, tuple[CallInfo, asyncio.Future[FreeSwitchLeg | str]]] = {}

    def expect(self, call_uuid: str, info: CallInfo) -> asyncio.Future[FreeSwitchLeg | str]:
        """The leg of a call atende is originating, once FreeSWITCH hands it over."""
        handed: asyncio.Future[FreeSwitchLeg | str] = \
            asyncio.get_running_loop().create_future()
        self._expected[call_uuid.lower()] = (info, handed)
        return handed

    def forget(self, call_uuid: str) -> None:
        self._expected.pop(call_uuid.lower(), None)

    def serve(self, router: CallRouter) -> None:
        self.router = router

    async def start(self, host: str, esl_port: int, audio_port: int) -> None:
        await self.esl.start(host, esl_port)
        await self.audio.start(host, audio_port)

    async def close(self, deadline: float) -> None:
        """Hang up the calls (until ``deadline``) and stop listening."""
        await all_before([leg.hangup("shutdown") for leg in list(self.legs.values())],
                         deadline)
        await self.esl.close()
        await self.audio.close()

    async def _stream(self, stream: AudioStream, frames: asyncio.Queue[bytes | None]) -> None:
        await self.pairs.offer(stream, frames)

    async def _control(self, channel: EslChannel) -> None:
        router = self.router
        data = channel.data
        expected = self._expected.pop(data.uuid.lower(), None)
        if expected is not None:
            await self._hand_back(channel, *expected)
            return
        if data.variables.get(ORIGINATED) == "true":
            log.warning("FreeSWITCH call %s: atende placed it, but its dialer had given up "
                        "waiting for it; hanging up", data.uuid)
            await channel.send(commands.hangup("NORMAL_TEMPORARY_FAILURE"))
            return
        if router is None:  # not serving yet
            await channel.send(commands.hangup("NORMAL_TEMPORARY_FAILURE"))
            return
        if BRIDGE_VARIABLE in data.variables:  # AUDIO_MODE=rtp: admitted at the SIP port
            await bridge_to_sip(channel)
            return
        paired = await self.pairs.claim(data.uuid, channel.ended)
        info = call_info(data, paired.stream if paired else None)
        rejection = await router.admit(info)
        if rejection is not None:
            if rejection is Rejection.NOT_FOUND and "assistant_id" in info.extra:
                log.warning("call %s (%s): the dialplan names secretary %s, which atende "
                            "does not have (`atende freeswitch dialplan` prints the right "
                            "one); hanging up", info.id, data.uuid,
                            info.extra["assistant_id"])
            await _refuse(channel, paired, HANGUP_CAUSES[rejection])
            return
        if paired is None or channel.ended.is_set():
            cause = "caller_gone" if channel.ended.is_set() else "no_audio_stream"
            if cause == "no_audio_stream":
                log.warning("call %s (%s): no audio stream came within %g s (is "
                            "mod_audio_stream loaded, and api_on_answer set?); hanging up",
                            info.id, data.uuid, self.pairs.timeout_s)
            await _refuse(channel, paired, "NORMAL_TEMPORARY_FAILURE")
            router.ended_before_answer(info, cause)
            return
        leg = FreeSwitchLeg(info, channel, paired.stream, paired.frames,
                            stream_rate(data.variables))
        try:
            # Answered by the dialplan already (that started the stream); answering again
            # is harmless and covers a dialplan that only pre-answered.
            await channel.send(commands.execute("answer"))
        except (ConnectionError, TimeoutError):
            router.ended_before_answer(info, "caller_gone")
            raise
        await self._run(leg, paired, lambda: router.connected(leg))

    async def _hand_back(self, channel: EslChannel, info: CallInfo,
                         handed: asyncio.Future[FreeSwitchLeg | str]) -> None:
        """A call atende originated, answered: its leg goes to the dialer that waits."""
        data = channel.data
        paired = await self.pairs.claim(data.uuid, channel.ended)
        info.external_id = data.uuid
        if paired is None:
            if not handed.done():
                handed.set_result("no audio stream came for it (is mod_audio_stream loaded?)")
            return
        leg = FreeSwitchLeg(info, channel, paired.stream, paired.frames, SAMPLE_RATE)
        if handed.done():  # the dialer gave up meanwhile
            await _refuse(channel, paired, "NORMAL_TEMPORARY_FAILURE")
            return
        await self._run(leg, paired, lambda: handed.set_result(leg))

    async def _run(self, leg: FreeSwitchLeg, paired: _Stream, begin: Callable[[], None]
                   ) -> None:
        """The call's life, once it has both halves: ``begin`` hands the leg over."""
        self.legs[leg.info.id] = leg
        try:
            leg.start()
            begin()
            await leg.done.wait()
        finally:
            del self.legs[leg.info.id]
            if leg.end_cause != "transferred":
                await paired.stream.close("call over")


async def _refuse(channel: EslChannel, paired: _Stream | None, cause: str) -> None:
    if not channel.ended.is_set():
        try:
            await channel.send(commands.hangup(cause))
        except (ConnectionError, TimeoutError):
            pass
    if paired is not None:
        await paired.stream.close("call refused")


def call_info(data: ChannelData, stream: AudioStream | None) -> CallInfo:
    """The call in channel-neutral words. The secretary (assistant) is the one the
    dialplan named, in a channel variable or the stream's path."""
    secretary = data.variables.get(SECRETARY_VARIABLE) or (
        stream.target.secretary if stream is not None else "")
    caller = data.caller_id_number or (stream.target.caller_id if stream else "")
    said = data.variables.get(DOMAIN_VARIABLE) or data.variables.get("domain_uuid", "")
    domain = known_uuid(said)
    host = data.variables.get("domain_name") or "freeswitch"
    extra = {"freeswitch_uuid": data.uuid}
    if named := assistant_id(secretary):
        extra["assistant_id"] = named
    elif secretary:
        log.warning("FreeSWITCH call %s: %s=%r is not a UUID", data.uuid, SECRETARY_VARIABLE,
                    secretary[:80])
    if domain:
        extra["domain_uuid"] = domain
    elif said:
        log.warning("FreeSWITCH call %s: %s=%r is not a UUID", data.uuid, DOMAIN_VARIABLE,
                    said[:80])
    return CallInfo(
        id=uuid.uuid4().hex, channel="freeswitch", direction="inbound",
        from_uri=f"sip:{caller}@{host}" if caller else "", to_uri=f"sip:{data.destination}@{host}",
        from_user=caller or None, from_display=data.caller_id_name or None,
        to_user=data.destination or None, remote_address=data.variables.get("network_addr"),
        external_id=data.uuid, extra=extra)
