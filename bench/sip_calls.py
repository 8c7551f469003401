"""Calls per second through the real SIP stack (UDP, transactions, dialogs, RTP sockets
opened per call) for INVITE → 200 → ACK → BYE → 200, with no audio and no agent.
Client and server share this process, so the figure is a floor."""

from __future__ import annotations

import asyncio
import time

from atende.channels.leg import CallInfo, CallLeg, Refused, Rejection, Ringing
from atende.channels.sip.server import SipChannel
from atende.channels.sip.ua import UserAgent
from atende.media.ports import PortAllocator
from atende.telephony.guard import DirectCallPolicy
from atende.telephony.inbound import DirectOnly
from tests.peers.sipclient import SipClient, sdp_offer

SECONDS = 5.0
WORKERS = 16


class Accept:
    async def admit(self, info: CallInfo) -> Rejection | None:
        return None

    async def answering(self, info: CallInfo, caller: Ringing) -> Refused | None:
        return None  # answered at once, without a 180

    def connected(self, leg: CallLeg) -> None:
        pass

    def ended_before_answer(self, info: CallInfo, cause: str) -> None:
        pass

    def decide_transfer(self, info: CallInfo, target: str) -> str | None:
        return "not in this benchmark"

    async def take_transfer(self, leg: CallLeg, target: str,
                            headers: tuple[tuple[str, str], ...]) -> tuple[int | None, str]:
        return None, "not in this benchmark"


async def worker(port: int, stop_at: float, latencies: list[float]) -> None:
    c = await SipClient.open(("127.0.0.1", port))
    loop = asyncio.get_running_loop()
    try:
        while loop.time() < stop_at:
            t0 = loop.time()
            d = c.new_dialog()
            ok = await c.call(d, sdp_offer("127.0.0.1", 9))
            assert ok.status == 200, ok.status
            c.send(c.request("BYE", d))
            assert (await c.final()).status == 200
            latencies.append(loop.time() - t0)
    finally:
        c.close()


async def main() -> None:
    ua = UserAgent()
    SipChannel(ua, PortAllocator(30000, 39999), DirectOnly(DirectCallPolicy()),
               media_host="127.0.0.1").serve(Accept())
    await ua.start("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    start = loop.time()
    cpu0 = time.process_time()
    await asyncio.gather(*(worker(ua.port, start + SECONDS, latencies) for _ in range(WORKERS)))
    wall = loop.time() - start
    cpu = time.process_time() - cpu0
    latencies.sort()
    print(f"{len(latencies) / wall:,.0f} calls/s ({WORKERS} concurrent clients, {wall:.1f} s, "
          f"{cpu / wall:.2f} cores used by client+server)")
    print(f"call setup+teardown p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")
    await ua.close()


if __name__ == "__main__":
    asyncio.run(main())
