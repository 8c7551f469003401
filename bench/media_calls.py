"""How many calls one core carries with RTP both ways at 20 ms, and how far packet send
times stray from the 20 ms grid.

This process runs N real RtpEndpoints (decode, resample, encode, pacing); a child process
plays N callers: it sends each endpoint a G.711 packet every 20 ms and swallows what they
send back."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import socket
import time

import numpy as np

from atende.media.dtmf import DtmfEvent
from atende.media.endpoint import PortAllocator, RtpEndpoint
from atende.media.rtp import RtpPacket
from atende.sip.sdp import Codec, NegotiatedAudio

SECONDS = 6.0
SPEECH = (np.random.default_rng(0).normal(0, 3000, 16000 * 2)).astype(np.int16).tobytes()


def callers(ports: list[int], sink_port: int, seconds: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", sink_port))
    sink.setblocking(False)
    payload = bytes([0x55]) * 160
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        for i, port in enumerate(ports):
            s.sendto(RtpPacket(0, n & 0xFFFF, n * 160, i + 1, payload).encode(),
                     ("127.0.0.1", port))
        try:
            while True:
                sink.recv(2048)
        except BlockingIOError:
            pass
        n += 1
        time.sleep(max(0.0, start + n * 0.02 - time.monotonic()))


async def run(n: int) -> tuple[float, float, float]:
    ports = PortAllocator(40000, 49999)
    sink_port = 39990
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
        await ep.open("127.0.0.1")
        ep.configure(NegotiatedAudio(Codec("PCMU", 0), "127.0.0.1", sink_port, 101, 20,
                                     "sendrecv"))
        ep.record_send_times = True
        endpoints.append(ep)
    child = mp.Process(target=callers, args=([e.port for e in endpoints], sink_port,
                                             SECONDS + 1))
    child.start()
    await asyncio.sleep(0.5)
    for ep in endpoints:
        ep.start()
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(SECONDS)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - t0)
    devs: list[float] = []
    for ep in endpoints:
        t = np.array(ep.send_times[5:])
        if len(t) > 2:
            grid = t[0] + 0.02 * np.arange(len(t))
            devs.extend(np.abs(t - grid) * 1000)
    received = sum(ep.packets_received for ep in endpoints)
    for ep in endpoints:
        await ep.close()
    child.join()
    assert received > 0, "no RTP came in"
    d = np.array(devs)
    return cpu, float(np.percentile(d, 50)), float(np.percentile(d, 99))


def main() -> None:
    print(f"{'calls':>6} {'cores':>6} {'dev p50 ms':>11} {'dev p99 ms':>11}")
    best = 0
    for n in (25, 50, 100, 200, 300):
        cpu, p50, p99 = asyncio.run(run(n))
        print(f"{n:>6} {cpu:>6.2f} {p50:>11.2f} {p99:>11.2f}", flush=True)
        if cpu < 0.95 and p99 < 10:
            best = n
        else:
            break
    print(f"one core carries about {best} calls with RTP both ways "
          f"(cpu < 95 % of a core and p99 grid deviation < 10 ms); machine has "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
