"""SIGTERM with calls up and peers that never answer our BYE (issue 16.18): every call is
hung up at once, and atende exits by ATENDE_SHUTDOWN_TIMEOUT_S instead of ~32 s per call,
one after another."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from atende.sip.message import Request
from tests.peers.atende import AtendeProcess
from tests.peers.sipclient import SipClient, UdpSocket, sdp_offer


async def bye_for(client: SipClient) -> Request:
    while True:
        msg = await client.recv(5)
        if isinstance(msg, Request) and msg.method == "BYE":
            return msg


async def test_sigterm_ends_all_calls_at_once_and_exits_by_the_deadline(
        tmp_path: Path) -> None:
    atende = AtendeProcess(tmp_path / "stopping", (24000, 24999),
                           ATENDE_SHUTDOWN_TIMEOUT_S="3")
    atende.start()
    clients: list[SipClient] = []
    media: list[UdpSocket] = []
    try:
        for _ in range(3):
            client = await SipClient.open(("127.0.0.1", atende.sip_port))
            rtp = await UdpSocket.open()
            clients.append(client)
            media.append(rtp)
            ok = await client.call(client.new_dialog(), sdp_offer("127.0.0.1", rtp.port))
            assert ok.status == 200
        assert atende.proc is not None
        started = time.monotonic()
        atende.proc.send_signal(signal.SIGTERM)
        # Each of them is sent its BYE right away (none answers: they are deaf peers).
        await asyncio.gather(*(bye_for(c) for c in clients))
        assert time.monotonic() - started < 2
        code = await asyncio.to_thread(atende.proc.wait, 30)
        took = time.monotonic() - started
        assert code == 0, atende.log()[-2000:]
        assert took < 3 + 3, f"exited {took:.1f} s after SIGTERM"
    finally:
        for c in clients:
            c.close()
        for m in media:
            m.close()
        if atende.alive():
            atende.kill()
