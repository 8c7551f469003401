"""The ESL reader and commands against a real FreeSWITCH (the peer in
../shared/peers/freeswitch/), over its inbound Event Socket: the greeting, auth, a
blocking API call, an event subscription and a background job whose result comes back as
an event with a body of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

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
