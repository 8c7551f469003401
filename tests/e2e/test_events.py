"""GET /v1/events: the live stream a dashboard or a CRM follows, read as a client would
(text/event-stream over HTTP), while real calls happen through kamailio."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_automation import TASK, place
from tests.e2e.test_outbound import (  # noqa: F401  (pbx and trunk are fixtures)
    pbx,
    phone,
    trunk,
)
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.kamailio import Kamailio

Event = dict[str, Any]  # {"event": kind, "id": …, "data": {…}}


class EventStream:
    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines
        self.seen: list[Event] = []

    async def next(self) -> Event:
        """The next event, per the SSE format: fields until a blank line; comments
        (keep-alives) skipped."""
        fields: dict[str, str] = {}
        async for line in self._lines:
            if not line:
                if "data" in fields:
                    event = {"event": fields.get("event", "message"), "id": fields.get("id"),
                             "data": json.loads(fields["data"])}
                    self.seen.append(event)
                    return event
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")

    async def until(self, kind: str, call_id: str, timeout: float = 60) -> list[Event]:
        """Events of ``call_id`` up to and including the first of ``kind``."""
        out: list[Event] = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next()
                if event["data"].get("call_id") != call_id:
                    continue
                out.append(event)
                if event["event"] == kind:
                    return out


@asynccontextmanager
async def events(a: AtendeProcess, headers: dict[str, str] | None = None,
                 **params: str) -> AsyncIterator[EventStream]:
    async with httpx.AsyncClient(base_url=a.base, headers=a.api.headers,
                                 timeout=httpx.Timeout(10, read=None)) as client:
        async with client.stream("GET", "/v1/events", params=params,
                                 headers=headers or {}) as r:
            assert r.status_code == 200, await r.aread()
            assert r.headers["content-type"].startswith("text/event-stream")
            yield EventStream(r.aiter_lines())


async def test_a_conversation_live(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "ana.wav", [(12.0, "Yes, I confirm.")], tail_s=25)
    ana = await phone(tmp_path, pbx, "alice", wav)
    try:
        async with events(atende) as stream:
            call = place(atende, phone_number="alice", task=TASK, caller_name="Ana",
                         trunk_id=trunk["id"])
            got = await stream.until("call.finished", call["id"], timeout=90)
    finally:
        await ana.stop()
    kinds = [e["event"] for e in got]
    assert kinds[:2] == ["call.dialing", "call.answered"] and kinds[-1] == "call.finished"
    assert kinds.index("call.outcome") < kinds.index("call.finished")
    turns = [e["data"] for e in got if e["event"] == "call.turn"]
    assert turns[0]["speaker"] == "assistant" and turns[0]["text"].startswith("Hello Ana.")
    assert any(t["speaker"] == "caller" for t in turns)
    outcome = next(e["data"] for e in got if e["event"] == "call.outcome")
    end = got[-1]["data"]
    assert outcome["outcome"] == end["outcome"] == "confirmed"
    assert end["status"] == "completed" and end["summary"] == "Ana confirmed."
    ids = [int(e["id"].split("-")[1]) for e in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # What the stream said is what the API keeps.
    stored = atende.call(call["id"])
    assert [t["text"] for t in stored["turns"]] == [t["text"] for t in turns]


async def test_retries_live_and_resuming_with_last_event_id(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any]) -> None:  # noqa: F811
    async with events(atende) as stream:
        call = place(atende, phone_number="bob", trunk_id=trunk["id"], max_attempts=2,
                     retry_after_seconds=1)
        got = await stream.until("call.finished", call["id"])
    assert [(e["event"], e["data"].get("attempt")) for e in got] == [
        ("call.dialing", 1), ("call.retry_scheduled", 1), ("call.dialing", 2),
        ("call.finished", None)]
    assert got[1]["data"]["sip_status"] == 480 and got[1]["data"]["next_attempt_at"]
    assert got[-1]["data"]["outcome"] == "no_answer"
    # A client that lost its connection after the first event catches up, and only on
    # this call's events when it asks for one call.
    async with events(atende, headers={"Last-Event-ID": got[0]["id"]},
                      call_id=call["id"]) as again:
        missed = [await again.next() for _ in range(3)]
    assert [e["id"] for e in missed] == [e["id"] for e in got[1:]]
    async with events(atende, headers={"Last-Event-ID": "0-1"}) as restarted:
        first = await restarted.next()
    assert first["event"] == "stream.reset" and "restarted" in first["data"]["reason"]
    r = atende.api.get("/v1/events", params={"call_id": "nope"})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = httpx.get(atende.base + "/v1/events", timeout=5)
    assert r.status_code == 401


async def test_a_revoked_key_loses_its_open_stream(atende: AtendeProcess) -> None:
    """Issue 16.15: revoking a key used to leave its /v1/events stream open for good."""
    env = atende.env

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "atende", "apikey", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=True)

    made = cli("create", "--name", "dashboard")
    key = made.stdout.strip()
    key_id = made.stderr.split("(id ")[1].split(",")[0]
    async with httpx.AsyncClient(base_url=atende.base, timeout=httpx.Timeout(10, read=30),
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async with client.stream("GET", "/v1/events") as r:
            assert r.status_code == 200
            stream = EventStream(r.aiter_lines())
            await asyncio.to_thread(cli, "revoke", key_id)
            revoked = asyncio.get_running_loop().time()
            event = await asyncio.wait_for(stream.next(), 15)
            while event["event"] != "stream.revoked":
                event = await asyncio.wait_for(stream.next(), 15)
            assert asyncio.get_running_loop().time() - revoked < 8
            try:
                await asyncio.wait_for(stream.next(), 5)
                raise AssertionError("the stream went on")
            except EOFError:
                pass  # and then it ends
    r = httpx.get(atende.base + "/v1/calls", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401
