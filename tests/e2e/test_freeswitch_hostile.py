"""What a broken or hostile FreeSWITCH side can send atende's two FreeSWITCH sockets: a
call whose audio never comes, audio for no call, broken ESL framing mid-call, unknown
events, bad stream paths. Each gets a log line and ends that call only. A real FreeSWITCH
cannot be made to send these, so the test speaks the wire format itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from atende.channels.secretary import secretary_uuid
from tests.peers.atende import AtendeProcess, Call

PAIR_TIMEOUT_S = 5.0  # channels/freeswitch/channel.py


@pytest.fixture(scope="module")
def secretary(atende: AtendeProcess) -> str:
    default = next(a for a in atende.get("/v1/assistants") if a["is_default"])
    return secretary_uuid(str(default["id"]))


class FakeChannel:
    """FreeSWITCH's side of one outbound event socket: the channel data, then +OK to
    every command, kept for the test to read."""

    def __init__(self, call_uuid: str, secretary: str) -> None:
        self.uuid = call_uuid
        self.secretary = secretary
        self.commands: list[str] = []
        self.closed = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) == b"connect\n\n"
        self.writer.write(
            f"Event-Name: CHANNEL_DATA\nUnique-ID: {self.uuid}\n"
            "Caller-Caller-ID-Number: 5550100\nCaller-Destination-Number: 8000\n"
            f"variable_VOICE_AI_SECRETARY_UUID: {self.secretary}\n"
            "Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\n"
            "Control: full\n\n".encode())
        self._task = asyncio.get_running_loop().create_task(self._answer(reader))

    async def _answer(self, reader: asyncio.StreamReader) -> None:
        assert self.writer is not None
        try:
            while True:
                block = (await reader.readuntil(b"\n\n")).decode()
                length = next((int(line.split(":")[1]) for line in block.splitlines()
                               if line.lower().startswith("content-length:")), 0)
                if length:
                    await reader.readexactly(length)
                self.commands.append(block)
                if block.startswith("api "):
                    self.send(b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n")
                else:
                    self.send(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed.set()

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def event(self, name: str, **headers: str) -> None:
        body = "".join(f"{k.replace('_', '-')}: {v}\n" for k, v in
                       {"Event-Name": name, "Unique-ID": self.uuid, **headers}.items())
        self.send(f"Content-Type: text/event-plain\nContent-Length: {len(body)}\n\n"
                  f"{body}".encode())

    def hang_up(self) -> None:
        self.event("CHANNEL_HANGUP", Hangup_Cause="NORMAL_CLEARING")
        self.send(b"Content-Type: text/disconnect-notice\nContent-Disposition: linger\n\n")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def open_stream(atende: AtendeProcess, secretary: str, call_uuid: str
                      ) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{atende.audio_stream_port}/stream/{secretary}/"
                       f"{call_uuid}/5550100")
    await ws.send('{"from":"a test"}')
    return ws


async def stream_silence(ws: ClientConnection, seconds: float) -> None:
    with contextlib.suppress(ConnectionClosed):
        for _ in range(int(seconds * 50)):
            await ws.send(bytes(640))
            await asyncio.sleep(0.02)


def by_uuid(call_uuid: str) -> Any:
    def match(c: Call) -> bool:
        return bool(c["external_id"] == call_uuid)
    return match


async def test_a_call_whose_audio_never_comes_is_hung_up_and_recorded(
        atende: AtendeProcess, secretary: str) -> None:
    fs = FakeChannel(str(uuid.uuid4()), secretary)
    await fs.start(atende.esl_port)
    try:
        await asyncio.wait_for(fs.closed.wait(), PAIR_TIMEOUT_S + 5)
    finally:
        await fs.close()
    hangups = [c for c in fs.commands if "call-command: hangup" in c]
    assert hangups and "hangup-cause: NORMAL_TEMPORARY_FAILURE" in hangups[0]
    call = await atende.wait_for_call(
        lambda c: by_uuid(fs.uuid)(c) and c["status"] == "failed", timeout=5)
    assert call["hangup_cause"] == "no_audio_stream" and call["channel"] == "freeswitch"
    assert "no audio stream came" in atende.log()


async def test_audio_for_no_call_is_closed(atende: AtendeProcess, secretary: str) -> None:
    ws = await open_stream(atende, secretary, str(uuid.uuid4()))
    sending = asyncio.ensure_future(stream_silence(ws, PAIR_TIMEOUT_S + 5))
    await asyncio.wait_for(ws.wait_closed(), PAIR_TIMEOUT_S + 5)
    sending.cancel()
    assert ws.close_code == 1000 and ws.close_reason == "no call control for this stream"
    with pytest.raises(InvalidStatus) as refused:  # a path that names no call
        await connect(f"ws://127.0.0.1:{atende.audio_stream_port}/stream/x/../5550100")
    assert refused.value.response.status_code == 404


async def test_broken_framing_ends_that_call_and_not_the_other(
        atende: AtendeProcess, secretary: str) -> None:
    good, bad = (FakeChannel(str(uuid.uuid4()), secretary) for _ in range(2))
    streams = []
    for fs in (good, bad):  # audio first this time, then the control socket
        ws = await open_stream(atende, secretary, fs.uuid)
        streams.append((ws, asyncio.ensure_future(stream_silence(ws, 30))))
        await fs.start(atende.esl_port)
    try:
        for fs in (good, bad):
            await atende.wait_for_call(
                lambda c, u=fs.uuid: by_uuid(u)(c) and c["status"] == "in_progress")
        # Things FreeSWITCH never sends, but a stream may carry: ignored.
        good.event("NO_SUCH_EVENT")
        good.send(b"Content-Type: text/unknown\nContent-Length: 3\n\nabc")
        good.event("CUSTOM", Event_Subclass="mod_audio_stream::play")  # no body
        good.event("DTMF", DTMF_Digit="%0A", DTMF_Duration="x")  # not a key
        # A Content-Length that is not a number: this stream cannot be read any more.
        bad.send(b"Content-Type: text/event-plain\nContent-Length: 12x\n\n")
        await asyncio.wait_for(bad.closed.wait(), 10)
        ended = await atende.wait_for_call(
            lambda c: by_uuid(bad.uuid)(c) and c["status"] == "completed", timeout=10)
        assert atende.call(
            next(c["id"] for c in atende.calls() if c["external_id"] == good.uuid)
        )["status"] == "in_progress"
        assert not good.closed.is_set()
        # The greeting comes to the good call's stream, as FreeSWITCH would play it.
        reply = json.loads(await asyncio.wait_for(streams[0][0].recv(), 10))
        assert reply["type"] == "streamAudio" and reply["data"]["sampleRate"] == 16000
        good.hang_up()
        done = await atende.wait_for_call(
            lambda c: by_uuid(good.uuid)(c) and c["status"] == "completed", timeout=10)
    finally:
        for fs in (good, bad):
            await fs.close()
        for ws, sending in streams:
            sending.cancel()
            await ws.close()
    assert done["hangup_cause"] == "remote_hangup"
    assert ended["hangup_cause"] == "esl_lost"
    assert "bad Content-Length" in atende.log()
