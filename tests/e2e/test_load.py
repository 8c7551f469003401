"""A small, bounded load: as many callers as atende takes at once call it together, each is
answered and hears its greeting, all hang up together, and nothing is left behind: every
call recorded as completed, no call counted active, no RTP socket left open."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from atende.media.rtp import looks_like_rtcp
from tests.peers.atende import AtendeProcess
from tests.peers.sipclient import SipClient, UdpSocket, sdp_offer

CALLERS = 10  # ATENDE_MAX_CALLS of the shared atende


def rtp_sockets(low: int, high: int) -> list[int]:
    """UDP ports between ``low`` and ``high`` that something on this host has bound."""
    ports = []
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                port = int(line.split()[1].rsplit(":", 1)[1], 16)
                if low <= port <= high:
                    ports.append(port)
    return ports


def active_calls(atende: AtendeProcess) -> float:
    text = atende.api.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("atende_calls_active "))
    return float(line.split()[1])


async def until(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def greeting_heard(media: UdpSocket) -> None:
    """RTP (not RTCP) arrives: the call's audio is flowing."""
    while True:
        data, _ = await media.recv(10)
        if not looks_like_rtcp(data):
            return


async def test_parallel_calls_are_answered_and_torn_down_leaving_nothing(
        atende: AtendeProcess) -> None:
    low, high = (int(atende.env[k]) for k in ("ATENDE_RTP_PORT_MIN", "ATENDE_RTP_PORT_MAX"))
    await until(lambda: active_calls(atende) == 0 and not rtp_sockets(low, high))
    run = uuid.uuid4().hex[:6]
    server = ("127.0.0.1", atende.sip_port)
    callers = [await SipClient.open(server, user=f"load{run}n{i}") for i in range(CALLERS)]
    media = [await UdpSocket.open() for _ in range(CALLERS)]
    dialogs = [c.new_dialog() for c in callers]
    try:
        answers = await asyncio.gather(*(
            c.call(d, sdp_offer("127.0.0.1", m.port))
            for c, d, m in zip(callers, dialogs, media, strict=True)))
        assert [a.status for a in answers] == [200] * CALLERS
        assert len(rtp_sockets(low, high)) >= CALLERS  # each call has its own
        await asyncio.gather(*(greeting_heard(m) for m in media))
        for c, d in zip(callers, dialogs, strict=True):
            c.send(c.request("BYE", d))
        finals = await asyncio.gather(*(c.final() for c in callers))
        assert [f.status for f in finals] == [200] * CALLERS

        def all_recorded() -> bool:
            ours = [c for c in atende.calls() if (c["from_user"] or "").startswith(f"load{run}")]
            return len(ours) == CALLERS and all(
                (c["status"], c["hangup_cause"]) == ("completed", "remote_hangup")
                for c in ours)

        await until(all_recorded)
        await until(lambda: active_calls(atende) == 0 and not rtp_sockets(low, high))
    finally:
        for c in callers:
            c.close()
        for m in media:
            m.close()


def test_the_server_runs_on_uvloop(atende: AtendeProcess) -> None:
    # ATENDE_EVENT_LOOP's default: libuv's loop is in the process.
    assert atende.proc is not None
    maps = open(f"/proc/{atende.proc.pid}/maps").read()
    assert "uvloop" in maps
