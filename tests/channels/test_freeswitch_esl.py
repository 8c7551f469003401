"""The ESL reader and commands against a real FreeSWITCH (the peer in
../shared/peers/freeswitch/), over its inbound Event Socket: the greeting, auth, a
blocking API call, an event subscription and a background job whose result comes back as
an event with a body of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from atende.channels.freeswitch.esl import ChannelData, EslChannel, EslOutboundServer
from atende.esl import commands
from atende.esl.message import EslMessage, EslReader
from tests.peers.freeswitch import PASSWORD, FreeSwitch


@pytest.fixture(scope="module")
def freeswitch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeSwitch]:
    fs = FreeSwitch(tmp_path_factory.mktemp("freeswitch"))
    try:
        fs.start()
        yield fs
    finally:
        fs.stop()


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
