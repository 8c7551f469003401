"""An in-process call leg: audio in from a buffer, audio out paced on a 20 ms clock into a
list. Used to exercise and measure the agent without any network protocol."""

from __future__ import annotations

import asyncio

from atende.channels.leg import (
    CallInfo,
    CallLeg,
    TransferResult,
)
from atende.media.audio import FRAME_BYTES, FRAME_MS


class MemoryLeg(CallLeg):
    """A call leg in memory, paced like a phone line: for benchmarks and tests of the agent
    without a network."""

    def __init__(self, info: CallInfo) -> None:
        super().__init__(info)
        self.sent: list[tuple[float, bytes]] = []  # (time, frame) of non-silent output
        self._pacer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pacer = asyncio.get_running_loop().create_task(self._pace())

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        while not self.ended:
            now = loop.time()
            frame, events = self.pull(FRAME_BYTES, now)
            for ev in events:
                self.events.put_nowait(ev)
            if frame is not None:
                self.sent.append((now, frame))
            next_t += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_t - loop.time()))

    async def speak(self, pcm: bytes) -> float:
        """Feed caller audio in real time; returns the loop time of its last frame."""
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        at = next_t
        for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
            at = loop.time()
            self.heard(pcm[i : i + FRAME_BYTES], at)
            next_t += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_t - loop.time()))
        return at

    async def hangup(self, cause: str = "local_hangup") -> None:
        self._ended(cause)
        if self._pacer is not None:
            self._pacer.cancel()

    async def send_dtmf(self, digits: str) -> None:
        raise NotImplementedError("an in-memory leg has no DTMF path")

    async def transfer(self, target: str, wait_s: float = 60.0) -> TransferResult:
        return TransferResult("refused", None, "an in-memory leg cannot be transferred")
