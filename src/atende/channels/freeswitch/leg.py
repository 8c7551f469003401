"""A call FreeSWITCH carries: controlled over its outbound event socket, the caller's audio
from mod_audio_stream, the assistant's played by FreeSWITCH (channels/freeswitch/playout.py
says what is shipped when, and what the caller has heard)."""

from __future__ import annotations

import asyncio
import logging
import re

from atende.aio import BackgroundTasks
from atende.channels.freeswitch.audio_stream import TAG, AudioStream
from atende.channels.freeswitch.esl import EslChannel
from atende.channels.freeswitch.playout import (
    Action,
    Break,
    Heard,
    Playout,
    Ship,
    Stalled,
)
from atende.channels.leg import CallInfo, CallLeg, PlayoutDone, PlayoutStarted, TransferResult
from atende.esl import commands
from atende.esl.message import EslError, EslEvent
from atende.media.audio import FRAME_BYTES, FRAME_MS, SAMPLE_RATE
from atende.media.recording import ASSISTANT
from atende.media.resample import StreamResampler

log = logging.getLogger(__name__)

HANGUP_WAIT_S = 5.0
STREAM_END_GRACE_S = 1.0
# FreeSWITCH's causes for an end the caller chose (anything else is logged as it is).
_CALLER_ENDED = {"NORMAL_CLEARING", "ORIGINATOR_CANCEL", "NORMAL_UNSPECIFIED"}
_DIGIT = re.compile(r"[0-9A-Da-d*#]")
_TARGET = re.compile(r"[0-9A-Za-z+*#._@-]{1,64}")  # what uuid_transfer takes as one word


def stream_rate(variables: dict[str, str]) -> int:
    """The rate the dialplan asked mod_audio_stream for (``… mono 16k`` in the command
    ``api_on_answer`` runs); 16 kHz when it cannot be told."""
    command = variables.get("api_on_answer", "")
    found = re.search(r"\b(?:mono|mixed|stereo)\s+(8k|16k|\d{4,5})\b", command)
    if found is None:
        return SAMPLE_RATE
    word = found.group(1)
    return {"8k": 8000, "16k": 16000}.get(word) or int(word)


class FreeSwitchLeg(CallLeg):
    """One FreeSWITCH call as the agent sees it. ``start`` begins reading the caller's
    audio and the channel's events; the leg ends when FreeSWITCH hangs up, the event
    socket closes, or the audio stream is lost (then the call is hung up: nobody would be
    listening)."""

    def __init__(self, info: CallInfo, channel: EslChannel, stream: AudioStream,
                 frames: asyncio.Queue[bytes | None], rate: int) -> None:
        super().__init__(info)
        self.channel = channel
        self._stream = stream
        self._frames = frames
        self._resampler = StreamResampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
        self.playout = Playout(prefix=f"atende-{info.id[:8]}")
        self._ship: asyncio.Queue[Ship] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks = BackgroundTasks()
        self._closing = False  # we are hanging up or transferring: the end is ours
        self._hangup_cause = ""  # FreeSWITCH's, once it said
        self._hung_up = asyncio.Event()  # FreeSWITCH says the call is over
        self._bridged = asyncio.Event()  # joined to another party (after a transfer)

    @property
    def uuid(self) -> str:
        return self.channel.data.uuid

    def start(self) -> None:
        self._tasks.spawn(self._hear_caller())
        self._tasks.spawn(self._follow())
        self._tasks.spawn(self._send_pieces())

    # the caller's audio ------------------------------------------------------------------
    async def _hear_caller(self) -> None:
        loop = asyncio.get_running_loop()
        pending = bytearray()
        while True:
            frame = await self._frames.get()
            if frame is None:
                break
            if self._resampler is not None:
                frame = self._resampler.process(frame)
            pending += frame
            now = loop.time()
            n = len(pending) // FRAME_BYTES
            for i in range(n):  # a bigger buffer (STREAM_BUFFER_SIZE) comes in one go
                pcm = bytes(pending[i * FRAME_BYTES:(i + 1) * FRAME_BYTES])
                if not self.on_hold and not self.ended:
                    self.heard(pcm, now - (n - 1 - i) * FRAME_MS / 1000)
            del pending[:n * FRAME_BYTES]
        if self.ended or self._closing:
            return
        try:  # FreeSWITCH closes the stream of a call that ends, just before it says so
            async with asyncio.timeout(STREAM_END_GRACE_S):
                await self._hung_up.wait()
        except TimeoutError:
            log.warning("call %s: the audio stream from FreeSWITCH ended mid-call; hanging up",
                        self.info.id)
            await self.hangup("audio_stream_lost")

    # what the assistant says ------------------------------------------------------------
    def play(self, pcm: bytes, mark: str | None = None, more: bool = False) -> None:
        if self.ended:
            return
        self._apply(self.playout.play(pcm, mark, more, self._now()))

    def clear(self) -> None:
        self._apply(self.playout.clear(self._now()))

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, (PlayoutStarted, PlayoutDone)):
                self.events.put_nowait(action)
            elif isinstance(action, Ship):
                self._ship.put_nowait(action)
            elif isinstance(action, Heard):
                if self.recorder is not None:
                    self.recorder.add(ASSISTANT, action.pcm, action.at)
            elif isinstance(action, Break) and not self.ended:
                self._tasks.spawn(self._api(f"uuid_break {self.uuid} all"))
            elif isinstance(action, Stalled):
                log.warning("call %s: FreeSWITCH did not start playing reply piece %s in "
                            "%.1f s (see its log for mod_audio_stream errors); the reply is "
                            "dropped", self.info.id, action.piece_id, action.waited_s)
        self._wake.set()  # the playout's next deadline may have moved

    async def _send_pieces(self) -> None:
        while True:
            ship = await self._ship.get()
            try:
                await self._stream.send_audio(ship.piece.pcm, SAMPLE_RATE, tag=ship.piece.id)
            except ConnectionError as exc:
                log.warning("call %s: a reply could not be sent to FreeSWITCH (%s)",
                            self.info.id, exc)
                return

    def _file_written(self, event: EslEvent) -> None:
        try:
            body = event.json_body()
        except EslError as exc:
            log.warning("call %s: %s", self.info.id, exc)
            return
        if not isinstance(body, dict):
            return
        piece_id, path = str(body.get(TAG, "")), str(body.get("file", ""))
        piece = self.playout.file_ready(piece_id)
        if piece is None:
            if not self.playout.was_cut(piece_id):
                log.info("call %s: a file we did not send (%s), not played", self.info.id,
                         path[:80])
            return
        if not path:
            log.warning("call %s: FreeSWITCH wrote piece %s to no file", self.info.id, piece_id)
            return
        self._tasks.spawn(self._send(commands.execute("playback", path, event_uuid=piece.id)))

    # the channel's events ---------------------------------------------------------------
    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        get: asyncio.Task[EslEvent] = loop.create_task(self.channel.events.get())
        gone = loop.create_task(self.channel.ended.wait())
        try:
            while not self.ended:
                self._wake.clear()
                wake = loop.create_task(self._wake.wait())
                deadline = self.playout.deadline()
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait({get, gone, wake}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                if get in done:
                    if self._on_event(get.result()):
                        break
                    get = loop.create_task(self.channel.events.get())
                elif gone in done:
                    break
                self._apply(self.playout.tick(loop.time()))
        finally:
            get.cancel()
            gone.cancel()
        self._hung_up.set()
        if not self.ended and not self._closing:
            await self.finish(self._end_cause())

    def _end_cause(self) -> str:
        """Why the call ended, when FreeSWITCH ended it or its socket went."""
        cause = self._hangup_cause
        if not cause and not self.channel.said_disconnect:
            log.warning("call %s: the event socket closed without a hangup (FreeSWITCH "
                        "stopped, or the stream broke)", self.info.id)
            return "esl_lost"
        return "remote_hangup" if not cause or cause in _CALLER_ENDED else cause.lower()

    def _on_event(self, event: EslEvent) -> bool:
        """Act on one of the channel's events; True when it says the call is over."""
        now = self._now()
        app_id = event.headers.get("Application-UUID", "")
        if event.name == "CHANNEL_EXECUTE" and app_id:
            self._apply(self.playout.started(app_id, now))
        elif event.name == "CHANNEL_EXECUTE_COMPLETE" and app_id:
            self._apply(self.playout.finished(app_id, now))
        elif event.name == "DTMF":
            digit = event.headers.get("DTMF-Digit", "")
            samples = event.headers.get("DTMF-Duration", "0")
            if _DIGIT.fullmatch(digit):
                duration = int(samples) // 8 if samples.isdigit() else 0
                self.key_pressed(digit.upper(), duration, now)
        elif event.name == "CHANNEL_BRIDGE":
            self._bridged.set()
        elif event.name == "CHANNEL_HANGUP":
            self._hangup_cause = event.headers.get("Hangup-Cause", "")
            log.info("call %s: FreeSWITCH hung up (%s)", self.info.id, self._hangup_cause)
            return True
        elif event.subclass == "mod_audio_stream::play":
            self._file_written(event)
        elif event.subclass in ("mod_audio_stream::error", "mod_audio_stream::disconnect"):
            log.warning("call %s: mod_audio_stream says %s: %s", self.info.id,
                        event.subclass.partition("::")[2], event.body[:200])
        return False

    # commands ---------------------------------------------------------------------------
    async def _send(self, command: bytes) -> bool:
        try:
            reply = await self.channel.send(command)
        except (ConnectionError, TimeoutError) as exc:
            log.info("call %s: %s", self.info.id, exc or "no reply from FreeSWITCH")
            return False
        if not reply.ok:
            log.warning("call %s: FreeSWITCH refused %r: %s", self.info.id,
                        command.split(b"\n")[0].decode(), (reply.reply_text
                                                          or reply.body.decode()[:200]))
        return reply.ok

    async def _api(self, line: str) -> bool:
        return await self._send(commands.api(line))

    async def hangup(self, cause: str = "local_hangup") -> None:
        if self.ended or self._closing:
            return
        self._closing = True
        if await self._send(commands.hangup("NORMAL_CLEARING")):
            try:  # until FreeSWITCH says it is done (the follow task sees that)
                async with asyncio.timeout(HANGUP_WAIT_S):
                    await self._hung_up.wait()
            except TimeoutError:
                log.warning("call %s: FreeSWITCH did not confirm the hangup", self.info.id)
        await self.finish(cause)

    async def finish(self, cause: str) -> None:
        """The call is over (whoever ended it): what was playing is reported cut, and the
        leg's tasks stop."""
        if self.ended:
            return
        self._apply([a for a in self.playout.clear(self._now())
                     if not isinstance(a, Break)])
        self._ended(cause)
        self._tasks.cancel_all()

    async def send_dtmf(self, digits: str) -> None:
        if not digits or not all(_DIGIT.fullmatch(d) for d in digits):
            raise ValueError(f"not DTMF digits: {digits[:20]!r}")
        await self._api(f"uuid_send_dtmf {self.uuid} {digits}")

    async def transfer(self, target: str, wait_s: float = 60.0) -> TransferResult:
        """Hand the call to ``target`` (an extension or number FreeSWITCH's dialplan
        routes, in the call's own context). Once FreeSWITCH takes it, it is no longer
        ours: the audio stream stops, and the leg ends as transferred when the target
        answers (or after ``wait_s``, the call still with FreeSWITCH)."""
        if self.ended or self._closing:
            return TransferResult("failed", None, "the call has ended")
        if not _TARGET.fullmatch(target):
            return TransferResult("refused", None, f"not an extension or number: {target!r}")
        context = self.channel.data.variables.get("context") or "default"
        self._closing = True
        await self._api(f"uuid_audio_stream {self.uuid} stop")
        if not await self._api(f"uuid_transfer {self.uuid} {target} XML {context}"):
            self._closing = False
            return TransferResult("failed", None, "FreeSWITCH refused the transfer")
        done = [asyncio.ensure_future(e.wait()) for e in (self._bridged, self._hung_up)]
        try:
            await asyncio.wait(done, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for d in done:
                d.cancel()
        if self._bridged.is_set():
            await self.finish("transferred")
            return TransferResult("transferred", 200, f"{target} answered", (200,))
        if self._hung_up.is_set():
            cause = self._hangup_cause or "the call ended"
            await self.finish("remote_hangup")
            return TransferResult("failed", None, f"the call ended while transferred ({cause})")
        await self.finish("transferred")
        return TransferResult("transferred", None,
                              f"FreeSWITCH has the call; {target} had not answered in "
                              f"{wait_s:g} s")
