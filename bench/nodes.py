"""One atende node against two (issue 21): do calls/s and media calls grow with the nodes?

Signalling: `atende serve` nodes on one PostgreSQL database and one Redis, as
docs/scaling.md runs them, each pinned to a core of its own (taskset): first one node
on core 0, then two on cores 0 and 1. SIPp's `uac` scenario (as bench/sip_load.py: no
media) calls them, one SIPp per node each offered the same rate, stepping up (RATES)
until fewer than 99.9 % of calls succeed. The callers, PostgreSQL and Redis are not
pinned: on a 2-core machine they take their CPU from the nodes' cores, the same for one
node and for two. No balancer: Kamailio would take its share of the two cores too, and
spreads calls evenly (tests/e2e/test_balancer.py); here each node is called directly.

Media: bench/media_calls.py's measure (RTP both ways, p99 deviation from the 20 ms grid)
run as one process pinned to core 0, then as two at once, on cores 0 and 1: the media
of a node is its own, so two nodes should carry twice the calls of one. Their callers
are not pinned (as SIPp is not, above).

`python bench/nodes.py [seconds per step] [first rate per node, default 100]`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from cryptography.fernet import Fernet
from sip_load import Atende, Step, sipp_step

from tests.peers.postgres import Postgres
from tests.peers.redis import Redis

HERE = Path(__file__).resolve().parent
RATES = (25, 50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000)  # per node, per step
MEDIA_CALLS = (100, 200, 300, 400, 500, 600, 800, 1000, 1200)


def machine_busy() -> float:
    """CPU-seconds the whole machine has spent busy (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def nodes(n: int, folder: Path, db: str, redis: str, key: str) -> list[Atende]:
    started = []
    for i in range(n):
        settings = {"ATENDE_DATABASE_URL": db, "ATENDE_REDIS_URL": redis,
                    "ATENDE_NODE_ID": f"bench-{i}", "ATENDE_SECRET_KEY": key}
        started.append(Atende(folder / f"node-{i}", settings, cpus=str(i),
                              rtp_ports=(30000 + 10000 * i, 39999 + 10000 * i)))
    return started


def signalling(n: int, seconds: float, rate: int, pg: Postgres, redis: Redis,
               folder: Path) -> tuple[int, float]:
    """The highest total rate at ≥ 99.9 % success with ``n`` nodes, and CPU-s/1,000."""
    running = nodes(n, folder, pg.new_database(), redis.url, Fernet.generate_key().decode())
    best: tuple[int, float] = (0, float("nan"))
    try:
        print(f"{n} node(s): rate per node | completed/s in all | success | "
              "INVITE→200 p50 / p95 | nodes' CPU-s per 1,000 | cores busy: all | nodes")
        with ThreadPoolExecutor(n) as pool:
            while True:
                busy0 = machine_busy()
                steps: list[Step] = list(pool.map(
                    sipp_step, running, [rate] * n, [seconds] * n, [a.folder for a in running]))
                busy = machine_busy() - busy0
                calls = sum(s.calls for s in steps)
                ok = sum(s.ok for s in steps)
                wall = max(s.wall_s for s in steps)
                cpu = sum(s.cpu_s for s in steps)
                setup = [ms for s in steps for ms in s.setup_ms]
                p50, p95 = (np.percentile(setup, q) if setup else float("nan")
                            for q in (50, 95))
                success = ok / max(1, calls)
                per_1000 = cpu * 1000 / max(1, ok)
                print(f"   {rate:>6} | {ok / wall:>8.0f} | {success:>8.2%} | "
                      f"{p50:>6.1f} / {p95:>6.1f} ms | {per_1000:>6.2f} | "
                      f"{busy / wall:>4.2f} | {cpu / wall:>4.2f}", flush=True)
                if success < 0.999:
                    break
                best = (rate * n, per_1000)
                rate = next((r for r in RATES if r > rate), rate * 2)
    finally:
        for a in running:
            a.stop()
    return best


def media(n: int) -> int:
    """Calls each of ``n`` pinned media processes carries at once, in all (the most at
    which every process met the bar)."""
    best = 0
    for calls in MEDIA_CALLS:
        procs = [subprocess.Popen(
            ["taskset", "-c", str(i), sys.executable, str(HERE / "media_calls.py"),
             str(calls), str(20000 + 12000 * i)], stdout=subprocess.PIPE, text=True)
            for i in range(n)]
        outs = [p.communicate()[0] for p in procs]
        ok = all(" ok" in out for out in outs)
        print(f"   {n} × {calls} calls: " + "; ".join(o.strip().splitlines()[-1]
                                                      for o in outs), flush=True)
        if not ok:
            break
        best = calls * n
    return best


def main() -> None:
    if shutil.which("sipp") is None or shutil.which("taskset") is None:
        sys.exit("SIPp and taskset are needed: `make bench` installs Debian's sip-tester")
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pg, redis = Postgres(), Redis(folder / "redis")
        pg.start()
        redis.start()
        try:
            one = signalling(1, seconds, rate, pg, redis, folder / "one")
            two = signalling(2, seconds, rate, pg, redis, folder / "two")
        finally:
            redis.stop()
            pg.stop()
    print("media, one process per core:")
    m1, m2 = media(1), media(2)
    print(f"calls/s at ≥ 99.9 %: one node {one[0]} ({one[1]:.1f} CPU-s per 1,000), two "
          f"nodes {two[0]} ({two[1]:.1f}): ×{two[0] / max(1, one[0]):.2f}")
    print(f"media calls at p99 ≤ 2 ms: one core {m1}, two {m2}: ×{m2 / max(1, m1):.2f}")


if __name__ == "__main__":
    main()
