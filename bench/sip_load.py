"""Signalling under load with the caller in another process, as issue 17 measures it: SIPp
(Debian's sip-tester, its built-in `uac` scenario: INVITE → 100/180 → 200 → ACK → BYE →
200, no media) against `atende serve` started here with its defaults, except that the
per-address rate limit and the call limit are lifted (they would refuse a load generator
long before atende runs out of breath) and it keeps its data in a temporary folder.

Rates double step by step until fewer than 99.9 % of calls succeed, then go up from the
last rate carried in quarters of it, to the first that fails. Per step: calls/s
offered and completed, success, INVITE → 200 p50/p95 (SIPp's own timing), atende's CPU
seconds per 1,000 calls (from /proc, its process only) and its event loop's CPU
milliseconds per call (its main thread: one core at most, so about 1,000 / that is the
most calls a second one process can take), its RSS, and the load average.
`python bench/sip_load.py [seconds per step] [first rate]`."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU seconds of process ``pid`` so far, or of one of its threads."""
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Step:
    rate: int
    calls: int
    ok: int
    wall_s: float
    cpu_s: float
    setup_ms: list[float]
    rss_mb: float
    load: float
    refused: int = 0  # answered 503 (atende's overload control)
    timed_out: int = 0  # no answer in time, or retransmitted until SIPp gave up
    loop_s: float = 0.0  # CPU seconds of atende's main thread (its event loop)

    @property
    def success(self) -> float:
        return self.ok / max(1, self.calls)

    def line(self) -> str:
        p50, p95 = (np.percentile(self.setup_ms, q) if self.setup_ms else float("nan")
                    for q in (50, 95))
        return (f"{self.rate:>6} | {self.ok / self.wall_s:>8.0f} | {self.success:>8.2%} | "
                f"{p50:>6.1f} / {p95:>6.1f} ms | {self.cpu_s * 1000 / max(1, self.ok):>8.2f} | "
                f"{self.loop_s * 1000 / max(1, self.ok):>7.2f} | "
                f"{self.rss_mb:>6.0f} MB | {self.load:>4.2f} | {self.refused:>7} | "
                f"{self.timed_out:>9}")


class Atende:
    """`atende serve` in a process of its own (``settings``: besides the bench's;
    ``cpus``: the cores it may run on, as taskset takes them)."""

    def __init__(self, folder: Path, settings: dict[str, str] | None = None,
                 cpus: str | None = None,
                 rtp_ports: tuple[int, int] = (30000, 49999)) -> None:
        self.folder = folder
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.api_port = free_port()
        env = {**os.environ, "ATENDE_DATA_DIR": str(folder / "data"),
               "ATENDE_BIND": "127.0.0.1", "ATENDE_SIP_PORT": str(self.sip_port),
               "ATENDE_SIP_TLS_PORT": "0", "ATENDE_API_PORT": str(self.api_port),
               "ATENDE_ESL_SERVER_PORT": "0", "ATENDE_LOG_LEVEL": "warning",
               "ATENDE_MAX_CALLS": "100000", "ATENDE_SIP_RATE_PER_S": "1000000",
               "ATENDE_RTP_PORT_MIN": str(rtp_ports[0]),
               "ATENDE_RTP_PORT_MAX": str(rtp_ports[1]), **(settings or {})}
        folder.mkdir(parents=True, exist_ok=True)
        self.log = (folder / "atende.log").open("wb")
        pin = ["taskset", "-c", cpus] if cpus else []
        self.proc = subprocess.Popen([*pin, sys.executable, "-m", "atende", "serve"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.api_port}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"atende exited: see {self.log.name}")
            time.sleep(0.3)
        raise RuntimeError("atende did not start")

    def metric(self, name: str) -> float:
        """One of the node's gauges, read from its /metrics."""
        key = (self.folder / "data" / "api.key").read_text().strip()
        text = httpx.get(f"http://127.0.0.1:{self.api_port}/metrics",
                         headers={"Authorization": f"Bearer {key}"}).text
        line = next(x for x in text.splitlines() if x.startswith(name + " "))
        return float(line.split()[1])

    def active_calls(self) -> float:
        return self.metric("atende_calls_active")

    def settle(self, limit_s: float = 60) -> None:
        """Wait until the calls of the last step are over and the overload control has
        let go (not shedding, no admission cap): a step after one that overloaded atende
        measures what it carries, not how it recovers from the step before."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit_s and (
                self.active_calls() > 0 or self.metric("atende_overload_shedding") > 0
                or self.metric("atende_admission_limit_per_second") != float("inf")):
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:  # after a storm it may have many calls to hang up first
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def sipp_step(atende: Atende, rate: int, seconds: float, folder: Path) -> Step:
    calls = max(1, int(rate * seconds))
    pid = atende.proc.pid
    cpu0, loop0, t0 = cpu_seconds(pid), cpu_seconds(pid, pid), time.monotonic()
    stat = folder / f"stat-{rate}.csv"
    run = subprocess.run(
        ["sipp", "-sn", "uac", "-s", "assistant", f"127.0.0.1:{atende.sip_port}",
         "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
         "-mi", "127.0.0.1", "-mp", str(free_port(socket.SOCK_DGRAM)),
         "-r", str(rate), "-m", str(calls), "-l", str(max(100, rate * 10)), "-d", "0",
         "-recv_timeout", "5000", "-timeout", f"{seconds * 3 + 20:.0f}s", "-nostdin",
         "-trace_stat", "-stf", str(stat), "-fd", "1",
         "-trace_rtt", "-rtt_freq", "1"],
        cwd=folder, capture_output=True, timeout=seconds * 3 + 60)
    wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    loop = cpu_seconds(pid, pid) - loop0
    rows = list(csv.DictReader(stat.open(), delimiter=";"))
    last = rows[-1] if rows else {}
    ok = int(last.get("SuccessfulCall(C)", 0))
    failed = int(last.get("FailedCall(C)", 0))
    # The uac scenario expects 100/180/200: a 503 ends a call as an unexpected message.
    refused = int(last.get("FailedUnexpectedMessage(C)", 0))
    timed_out = sum(int(last.get(k, 0)) for k in ("FailedTimeoutOnRecv(C)",
                                                  "FailedMaxUDPRetrans(C)"))
    setup = []
    for rtt in folder.glob("*_rtt.csv"):
        for row in csv.reader(rtt.open(), delimiter=";"):
            if len(row) >= 2 and row[1].replace(".", "", 1).isdigit():
                setup.append(float(row[1]))
        rtt.unlink()
    if run.returncode not in (0, 1):
        print(run.stdout.decode(errors="replace")[-2000:], run.stderr.decode()[-2000:])
    return Step(rate, max(calls, ok + failed), ok, wall, cpu, setup, rss_mb(pid),
                os.getloadavg()[0], refused, timed_out, loop)


def main() -> None:
    if shutil.which("sipp") is None:
        sys.exit("SIPp is not installed: `make bench` installs Debian's sip-tester")
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        atende = Atende(folder)
        try:
            idle_rss = rss_mb(atende.proc.pid)
            print(f"atende RSS after start-up: {idle_rss:.0f} MB")
            print("  rate | calls/s | success  |  INVITE→200 p50 / p95  | CPU-s/1000 |"
                  " loop ms |    RSS | load | refused | timed out")
            best = None
            while True:
                step = sipp_step(atende, rate, seconds, folder)
                print(step.line(), flush=True)
                if step.success < 0.999:
                    break
                best = step
                rate *= 2
            # Between the last rate carried and the first one not: a quarter step at a
            # time, so the highest rate is known to within 25 %, not 100 %.
            carried = best.rate if best is not None else 0
            for part in (1.25, 1.5, 1.75):
                if best is None:
                    break
                atende.settle()
                step = sipp_step(atende, int(carried * part), seconds, folder)
                print(step.line(), flush=True)
                if step.success < 0.999:
                    break
                best = step
            if best is not None:
                print(f"highest rate at ≥ 99.9 % success: {best.rate} calls/s offered, "
                      f"{best.ok / best.wall_s:.0f} completed per second")
                # Overload, as the issue asks: 2.5 times what it carried. What is not
                # served should be refused (503) rather than time out, and nothing may
                # be left behind once the storm is over.
                atende.settle()
                storm = sipp_step(atende, int(best.rate * 2.5), seconds, folder)
                print("storm at 2.5×:")
                print(storm.line(), flush=True)
                t0 = time.monotonic()
                while atende.active_calls() > 0 and time.monotonic() - t0 < 120:
                    time.sleep(0.5)
                print(f"calls still active {time.monotonic() - t0:.1f} s after the storm: "
                      f"{atende.active_calls():.0f}")
            time.sleep(35)  # lingering transactions expire (Timer H/J: 32 s)
            print(f"RSS after the last step and 35 s: {rss_mb(atende.proc.pid):.0f} MB "
                  f"(after start-up: {idle_rss:.0f} MB)")
        finally:
            atende.stop()


if __name__ == "__main__":
    main()
