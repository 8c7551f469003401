"""The ESL reader and commands against a real FreeSWITCH (the peer in
../shared/peers/freeswitch/), over its inbound Event Socket: the greeting, auth, a
blocking API call, an event subscription and a background job whose result comes back as
an event with a body of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from atende.channels.freeswitch.audio_stream import (
    AudioStream,
    AudioStreamServer,
    StreamTarget,
    parse_path,
)
from atende.channels.freeswitch.esl import ChannelData, EslChannel, EslOutboundServer
from atende.channels.freeswitch.inbound import EslInbound, EslUnavailable
from atende.esl import commands
from atende.esl.message import EslMessage, EslReader
from tests.peers.freeswitch import PASSWORD, FreeSwitch, running
from tests.peers.net import free_port


@pytest.fixture(scope="module")
def freeswitch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeSwitch]:
    with running(tmp_path_factory.mktemp("freeswitch")) as fs:
        yield fs


class Inbound:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.esl = EslReader()
        self.pending: list[EslMessage] = []

    async def next(self) -> EslMessage:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, "FreeSWITCH closed the socket"
            self.pending.extend(self.esl.feed(data))
        return self.pending.pop(0)

    async def ask(self, command: bytes) -> EslMessage:
        self.writer.write(command)
        return await self.next()


async def test_inbound_event_socket_of_a_real_freeswitch(freeswitch: FreeSwitch) -> None:
    fs = Inbound(*await asyncio.open_connection("127.0.0.1", freeswitch.esl_port))
    try:
        assert (await fs.next()).content_type == "auth/request"
        assert (await fs.ask(commands.auth(PASSWORD))).ok
        status = await fs.ask(commands.api("status"))
        assert status.content_type == "api/response" and b"is ready" in status.body
        found = await fs.ask(commands.api("module_exists mod_audio_stream"))
        assert found.body.strip() == b"true"
        assert (await fs.ask(commands.events(["BACKGROUND_JOB"]))).ok
        queued = await fs.ask(commands.bgapi("eval hello there", "job-1"))
        assert queued.ok and queued.headers.get("Job-UUID") == "job-1"
        done = await fs.next()
        event = done.event()
        assert event is not None and event.name == "BACKGROUND_JOB"
        assert event.headers["Job-UUID"] == "job-1" and event.body == "hello there"
        missing = await fs.ask(commands.api("uuid_kill no-such-call"))
        assert not missing.ok
    finally:
        fs.writer.close()


async def test_a_wrong_password_is_refused(freeswitch: FreeSwitch) -> None:
    fs = Inbound(*await asyncio.open_connection("127.0.0.1", freeswitch.esl_port))
    try:
        await fs.next()
        refused = await fs.ask(commands.auth("not-the-password"))
        assert refused.content_type == "command/reply" and not refused.ok
    finally:
        fs.writer.close()


async def test_a_channel_handed_over_on_the_outbound_socket(freeswitch: FreeSwitch) -> None:
    """FreeSWITCH connects once per call: the channel data, the channel's events, an
    application run to its end, the hangup and the disconnect notice."""
    seen: asyncio.Queue[tuple[ChannelData, list[str], bool]] = asyncio.Queue()

    async def control(channel: EslChannel) -> None:
        names: list[str] = []
        assert (await channel.send(commands.execute(
            "playback", "tone_stream://%(200,0,440)", event_uuid="tone-1"))).ok
        while True:  # until the tone has played
            event = await asyncio.wait_for(channel.events.get(), 10)
            names.append(event.name)
            if (event.name == "CHANNEL_EXECUTE_COMPLETE"
                    and event.headers.get("Application-UUID") == "tone-1"):
                break
        assert (await channel.send(commands.hangup("NORMAL_CLEARING"))).ok
        while "CHANNEL_HANGUP" not in names:
            names.append((await asyncio.wait_for(channel.events.get(), 10)).name)
        await asyncio.wait_for(channel.ended.wait(), 10)  # linger: the notice comes last
        await seen.put((channel.data, names, channel.ended.is_set()))

    server = EslOutboundServer(control)
    await server.start("127.0.0.1", 0)
    fs = Inbound(*await asyncio.open_connection("127.0.0.1", freeswitch.esl_port))
    try:
        await fs.next()
        assert (await fs.ask(commands.auth(PASSWORD))).ok
        placed = await fs.ask(commands.bgapi(
            "originate {atende_secretary='front desk'}"
            f"loopback/7777/default &socket('127.0.0.1:{server.port} async full')", "job-2"))
        assert placed.ok
        data, names, ended = await asyncio.wait_for(seen.get(), 30)
    finally:
        fs.writer.close()
        await server.close()
    assert data.uuid and data.destination == "7777"
    assert data.variables["atende_secretary"] == "front desk"  # URL-decoded
    assert "CHANNEL_EXECUTE" in names and names.count("CHANNEL_EXECUTE_COMPLETE") >= 1
    assert names[-1] == "CHANNEL_HANGUP" and ended


@pytest.mark.parametrize("sent", [
    b"",                                              # silence
    b"this is not ESL\n\n",                           # garbage
    b"Content-Type: command/reply\nReply-Text: %2BOK\n\n",  # no channel in it
    b"Content-Type: command/reply\nContent-Length: 9999999999\n\n",
])
async def test_what_is_not_a_channel_is_closed_and_never_controlled(sent: bytes) -> None:
    controlled: list[EslChannel] = []

    async def control(channel: EslChannel) -> None:
        controlled.append(channel)

    server = EslOutboundServer(control, connect_timeout_s=0.5)
    await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) == b"connect\n\n"
        writer.write(sent)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
        writer.close()
    finally:
        await server.close()
    assert controlled == []


async def test_mod_audio_stream_reaches_our_websocket_and_takes_replies(
        freeswitch: FreeSwitch) -> None:
    """The caller's audio of a real call, as mod_audio_stream streams it (metadata first,
    then 20 ms frames of 16 kHz L16), and a streamAudio reply that the module turns into a
    file and a mod_audio_stream::play event."""
    secretary = "3f2e8c1a-0b7d-4e55-9a61-1c2d3e4f5a6b"
    got: asyncio.Queue[tuple[AudioStream, list[bytes]]] = asyncio.Queue()

    async def on_stream(stream: AudioStream, frames: asyncio.Queue[bytes | None]) -> None:
        heard = []
        while len(heard) < 10:
            frame = await frames.get()
            assert frame is not None
            heard.append(frame)
        await stream.send_audio(bytes(1600), 8000)  # 100 ms of silence to play
        await got.put((stream, heard))
        while await frames.get() is not None:
            pass

    server = AudioStreamServer(on_stream)
    await server.start("127.0.0.1", 0)
    fs = Inbound(*await asyncio.open_connection("127.0.0.1", freeswitch.esl_port))
    try:
        await fs.next()
        assert (await fs.ask(commands.auth(PASSWORD))).ok
        assert (await fs.ask(commands.events([], ["mod_audio_stream::play"]))).ok
        placed = await fs.ask(commands.api("originate loopback/7777/default &park"))
        assert placed.body.startswith(b"+OK "), placed.body
        uuid = placed.body.decode().split()[1]
        url = f"ws://127.0.0.1:{server.port}/stream/{secretary}/{uuid}/1000"
        started = await fs.ask(commands.api(
            f'uuid_audio_stream {uuid} start {url} mono 16k {{"from":"test"}}'))
        assert started.ok, started.body
        stream, heard = await asyncio.wait_for(got.get(), 15)
        assert stream.target == StreamTarget(secretary, uuid, "1000")
        assert stream.metadata == '{"from":"test"}'
        assert {len(f) for f in heard} == {640}  # 20 ms at 16 kHz, 16-bit mono
        async with asyncio.timeout(15):  # a lost event fails here rather than hanging
            while True:
                event = (await fs.next()).event()
                if event is not None and event.subclass == "mod_audio_stream::play":
                    break
        played = event.json_body()
        assert isinstance(played, dict) and played["sampleRate"] == 8000
        assert str(played["file"]).endswith(".r8") and event.uuid == uuid
        await fs.ask(commands.api(f"uuid_kill {uuid}"))
    finally:
        fs.writer.close()
        await server.close()


def test_stream_paths_name_a_call() -> None:
    ok = parse_path("/stream/3F2E8C1A-0B7D-4E55-9A61-1C2D3E4F5A6B/"
                    "9a1b2c3d-0000-4000-8000-000000000001/+351912345678")
    assert ok == StreamTarget("3f2e8c1a-0b7d-4e55-9a61-1c2d3e4f5a6b",
                              "9a1b2c3d-0000-4000-8000-000000000001", "+351912345678")
    for bad in ("/stream/x/y/z", "/other/3f2e8c1a-0b7d-4e55-9a61-1c2d3e4f5a6b/"
                "9a1b2c3d-0000-4000-8000-000000000001/1", "/stream/../etc/passwd/1",
                "/stream/3f2e8c1a-0b7d-4e55-9a61-1c2d3e4f5a6b/"
                "9a1b2c3d-0000-4000-8000-000000000001/1000<script>"):
        with pytest.raises(ValueError):
            parse_path(bad)


async def test_a_stream_for_no_call_is_refused_at_the_handshake() -> None:
    async def on_stream(stream: AudioStream, frames: asyncio.Queue[bytes | None]) -> None:
        raise AssertionError("no stream should get this far")

    server = AudioStreamServer(on_stream)
    await server.start("127.0.0.1", 0)
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{server.port}/stream/nope/nope/1"):
                pass
        assert refused.value.response.status_code == 404
    finally:
        await server.close()


async def test_the_inbound_connection_runs_api_and_background_commands(
        freeswitch: FreeSwitch) -> None:
    esl = EslInbound("127.0.0.1", freeswitch.esl_port, PASSWORD)
    esl.start()
    try:
        await asyncio.wait_for(esl.connected(), 10)
        assert esl.state.connected and esl.state.detail == "connected"
        assert "is ready" in await esl.api("status")
        assert await esl.bgapi("eval over the background", 10) == "over the background"
    finally:
        await esl.close()
    with pytest.raises(EslUnavailable):
        await esl.api("status")


async def test_a_wrong_password_or_no_freeswitch_is_told_and_retried(
        freeswitch: FreeSwitch) -> None:
    wrong = EslInbound("127.0.0.1", freeswitch.esl_port, "not-it", backoff=(0.05,))
    nobody = EslInbound("127.0.0.1", free_port(), PASSWORD, backoff=(0.05,))
    for esl in (wrong, nobody):
        esl.start()
    try:
        async with asyncio.timeout(10):
            while "ESL_PASSWORD" not in wrong.state.detail or nobody.state.detail.startswith(
                    "not connected"):
                await asyncio.sleep(0.05)
        assert not wrong.state.connected and not nobody.state.connected
        assert "refused" in nobody.state.detail or "failed" in nobody.state.detail
        with pytest.raises(EslUnavailable, match="ESL_PASSWORD"):
            await wrong.api("status")
    finally:
        for esl in (wrong, nobody):
            await esl.close()


async def test_closing_the_event_socket_ends_it_whenever_it_is_closed() -> None:
    """Closing must end the connection's task whatever it is awaiting at that moment: with
    asyncio.wait_for on Python 3.11, a cancellation that lands just as a read completes was
    swallowed, the task reconnected for ever and close() never returned (a CI run hung)."""
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        if await reader.read(4096):
            writer.write(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for yields in range(60):  # close at every point of the connect-refuse-retry cycle
            esl = EslInbound("127.0.0.1", port, "not-it", backoff=(0.0,))
            esl.start()
            for _ in range(yields):
                await asyncio.sleep(0)
            async with asyncio.timeout(2):
                await esl.close()
            assert esl._task is not None and esl._task.done()
    finally:
        server.close()
