"""Kamailio as the SIP load balancer in front of atende nodes, run with the configuration
atende ships (deploy/kamailio/kamailio.cfg) and a dispatcher list of the test's nodes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.peers.debian import require
from tests.peers.kamailio import Kamailio

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "kamailio" / "kamailio.cfg"


class Balancer(Kamailio):
    def __init__(self, workdir: Path, nodes: list[int], probe_interval_s: int = 2,
                 fr_timer_ms: int = 1500) -> None:
        # A probe waits FR_TIMER for its answer. Longer than the interval, a probe sent
        # while a node was down timed out after the next one had found it back, and left
        # it out again (kamailio.cfg says so to operators).
        if fr_timer_ms >= 1000 * probe_interval_s:
            raise ValueError("the INVITE timer must be shorter than the probe interval")
        super().__init__(workdir, users={})
        self.nodes = nodes  # the nodes' SIP ports on 127.0.0.1
        # Every test caller is on 127.0.0.1: the flood limit is for the outside world.
        self.defines = {"PROBE_INTERVAL": str(probe_interval_s), "FR_TIMER": str(fr_timer_ms),
                        "FLOOD_PER_2S": "10000"}

    async def start(self) -> None:
        exe = require("kamailio")
        self.workdir.mkdir(parents=True, exist_ok=True)
        listing = self.workdir / "dispatcher.list"
        listing.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in self.nodes))
        defines = {**self.defines, "LISTEN": f"udp:127.0.0.1:{self.port}",
                   "DISPATCHER_LIST": f'"{listing}"'}
        args = [exe, "-f", str(SHIPPED), *(a for k, v in defines.items()
                                           for a in ("-A", f"{k}={v}"))]
        check = subprocess.run([*args, "-c"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("bad kamailio config:\n" + check.stderr[-3000:])
        out = open(self.log_path, "wb")
        self.proc = subprocess.Popen([*args, "-DD", "-E", "-P",
                                      str(self.workdir / "kamailio.pid"), "-Y",
                                      str(self.workdir)],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        await self._wait_ready()
