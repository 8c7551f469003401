"""How many calls one core carries with RTP both ways at 20 ms, and how far packet send
times stray from the 20 ms grid.

This process runs N real RtpEndpoints (decode, resample, encode, pacing); a child process
plays N callers: it sends each endpoint a G.711 packet every 20 ms and swallows what they
send back. It runs numpy as `atende serve` does, with OPENBLAS_NUM_THREADS=1 (started
without it, it starts itself again with it): the per-tick matrix products otherwise spin
a BLAS thread on every core, and a step at 1,000 calls measured 1.8 cores, not 0.9."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import socket
import sys
import time
from collections.abc import Callable

import numpy as np

from atende.media.dtmf import DtmfEvent
from atende.media.endpoint import RtpEndpoint
from atende.media.ports import PortAllocator
from atende.media.rtp import RtpPacket
from atende.memory import settle
from atende.sip.sdp import Codec, NegotiatedAudio

SECONDS = 6.0
SPEECH = (np.random.default_rng(0).normal(0, 3000, 16000 * 2)).astype(np.int16).tobytes()


def callers(ports: list[int], sink_port: int, seconds: float) -> None:
    """Every caller sends every 20 ms, each at its own phase of the 20 ms (independent
    phones are not in step: all of them at once would be a burst no real trunk sends).
    They stand for phones elsewhere, so they are not held to the core the endpoints may
    be pinned to (bench/nodes.py pins this process; the pinning is inherited)."""
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", sink_port))
    sink.setblocking(False)
    payload = bytes([0x55]) * 160
    start = time.monotonic()
    phase = [0.02 * i / len(ports) for i in range(len(ports))]
    n = 0
    while time.monotonic() - start < seconds:
        for i, port in enumerate(ports):
            wait = start + n * 0.02 + phase[i] - time.monotonic()
            if wait > 0.001:
                time.sleep(wait)
            s.sendto(RtpPacket(0, n & 0xFFFF, n * 160, i + 1, payload).encode(),
                     ("127.0.0.1", port))
        try:
            while True:
                sink.recv(2048)
        except BlockingIOError:
            pass
        n += 1


async def run(n: int, base: int = 40000) -> tuple[float, float, float, float, float]:
    # As `atende serve` does once started: what start-up made is kept out of the cyclic
    # collector's sight, or its full collections stall the loop (60 ms at 800 calls).
    settle()
    ports = PortAllocator(base, base + 9999)
    sink_port = base - 10
    endpoints = []
    pos = [0] * n

    def puller(i: int):  # type: ignore[no-untyped-def]
        def pull(nbytes: int, now: float) -> bytes | None:
            p = pos[i]
            pos[i] = (p + nbytes) % (len(SPEECH) - nbytes)
            return SPEECH[p : p + nbytes]
        return pull

    def ignore_audio(frame: bytes, at: float) -> None:
        pass

    def ignore_dtmf(ev: DtmfEvent, at: float) -> None:
        pass

    for i in range(n):
        ep = RtpEndpoint(ports, f"bench{i}", puller(i), ignore_audio, ignore_dtmf)
        ep.open("127.0.0.1")
        ep.configure(NegotiatedAudio(Codec("PCMU", 0), "127.0.0.1", sink_port, 101, 20,
                                     "sendrecv"))
        ep.record_send_times = True
        endpoints.append(ep)
    # Started before the callers send: until then each packet is decoded alone, and at
    # 1,200 calls that backlog outlasted the callers.
    for ep in endpoints:
        ep.start()
    child = mp.Process(target=callers, args=([e.port for e in endpoints], sink_port,
                                             SECONDS + 1))
    child.start()
    await asyncio.sleep(0.5)
    rx0 = sum(ep.packets_received for ep in endpoints)
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(SECONDS)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - t0)
    rx = (sum(ep.packets_received for ep in endpoints) - rx0) / n / (time.monotonic() - t0)
    devs: list[float] = []
    worst_gap = 0.0
    for ep in endpoints:
        t = np.array(ep.send_times[5:])
        if len(t) > 2:
            # The call's grid: 20 ms steps, placed where its packets sit (the median).
            steps = 0.02 * np.arange(len(t))
            grid = steps + float(np.median(t - steps))
            devs.extend(np.abs(t - grid) * 1000)
            worst_gap = max(worst_gap, float(np.max(np.diff(t))) * 1000)
    for ep in endpoints:
        ep.close()
    child.join()
    d = np.array(devs)
    return cpu, float(np.percentile(d, 50)), float(np.percentile(d, 99)), worst_gap, rx


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `atende serve` runs on (ATENDE_EVENT_LOOP: uvloop unless asyncio)."""
    if os.environ.get("ATENDE_EVENT_LOOP", "uvloop") == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def measure(n: int, base: int = 40000) -> bool:
    """Run ``n`` calls, print their figures; whether they meet the issue's bar: RTP both
    ways (all 50 packets a second in), p99 deviation from the 20 ms grid at most 2 ms,
    no gap over 40 ms, on less than a core."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        cpu, p50, p99, gap, rx = runner.run(run(n, base))
    ok = cpu < 0.95 and p99 <= 2 and gap <= 40 and rx > 48
    print(f"{n:>6} {cpu:>6.2f} {p50:>11.2f} {p99:>11.2f} {gap:>13.1f} {rx:>14.1f}"
          f"{' ok' if ok else ' over'}", flush=True)
    return ok


def main() -> None:
    """Calls step by step until the bar is missed; or `media_calls.py N [port base]`: N
    calls, once (RTP ports from the base on: several of these side by side)."""
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":  # read once, as numpy is imported
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  {**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    print(f"{'calls':>6} {'cores':>6} {'dev p50 ms':>11} {'dev p99 ms':>11} "
          f"{'worst gap ms':>13} {'in pkt/s/call':>14}")
    if len(sys.argv) > 1:
        measure(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40000)
        return
    best = 0
    for n in (25, 50, 100, 200, 300, 400, 600, 800, 1000, 1200, 1500):
        if not measure(n):
            break
        best = n
    print(f"one core carries about {best} calls with RTP both ways (under 95 % of a "
          f"core, p99 deviation from the 20 ms grid <= 2 ms, no gap over 40 ms); machine "
          f"has {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
