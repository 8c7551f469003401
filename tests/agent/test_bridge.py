"""Two legs joined by the channel-neutral bridge, on in-memory legs."""

from __future__ import annotations

import asyncio

from atende.channels.bridge import MAX_QUEUED_MS, bridge
from atende.channels.leg import CallInfo
from atende.channels.memory import MemoryLeg
from atende.media.audio import FRAME_BYTES
from tests.agent.conftest import wait_for


def leg(name: str) -> MemoryLeg:
    return MemoryLeg(CallInfo(name, "memory", "inbound", name, "atende"))


async def test_audio_crosses_over_and_one_hang_up_ends_both() -> None:
    a, b = leg("a"), leg("b")
    b.start()
    joined = asyncio.get_running_loop().create_task(bridge(a, b))
    frame_a, frame_b = b"\x01\x00" * (FRAME_BYTES // 2), b"\x02\x00" * (FRAME_BYTES // 2)
    a.heard(frame_a, 0.0)
    b.heard(frame_b, 0.0)
    await wait_for(lambda: any(f == frame_a for _, f in b.sent), timeout=2)
    assert a.outbound.pending_bytes == FRAME_BYTES  # b's frame waits for a's pacer
    # A burst (a network stall flushed) is cut to what keeps the delay bounded.
    for _ in range(30):
        a.heard(frame_a, 0.1)
    await asyncio.sleep(0)
    await wait_for(lambda: a.events.empty())
    assert b.outbound.pending_bytes <= MAX_QUEUED_MS * 32
    await a.hangup("remote_hangup")
    assert await asyncio.wait_for(joined, 2) is a
    assert b.ended and b.end_cause == "bridge_ended"
