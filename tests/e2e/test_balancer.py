"""Two atende nodes behind Kamailio, run with the configuration atende ships
(deploy/kamailio/): new calls are spread over both; a node killed with calls up is left
out (the next call that tries it goes to the other within Kamailio's INVITE timer), and
its calls are closed by the survivor; a node stopped cleanly drains: it answers the
balancer's probes and new INVITEs 503, keeps its calls until their callers hang up, then
exits."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from tests.peers.atende import AtendeProcess
from tests.peers.balancer import Balancer
from tests.peers.postgres import Postgres
from tests.peers.sipclient import Dialog, SipClient, UdpSocket, sdp_offer

LEASE_S = 3
FR_TIMER_MS = 1500


@dataclass
class Caller:
    client: SipClient
    dialog: Dialog
    rtp: UdpSocket
    setup_s: float

    async def hang_up(self) -> int:
        self.client.send(self.client.request("BYE", self.dialog))
        return (await self.client.final()).status

    def close(self) -> None:
        self.client.close()
        self.rtp.close()


async def call(balancer: Balancer, callers: list[Caller]) -> Caller:
    client = await SipClient.open(("127.0.0.1", balancer.port))
    rtp = await UdpSocket.open()
    d = client.new_dialog()
    started = time.monotonic()
    ok = await client.call(d, sdp_offer("127.0.0.1", rtp.port))
    caller = Caller(client, d, rtp, time.monotonic() - started)
    callers.append(caller)
    assert ok.status == 200, ok.status
    return caller


async def nodes_of(node: AtendeProcess, placed: list[Caller]) -> dict[str, dict[str, Any]]:
    """Each caller's call as the API of ``node`` shows it (any node's shows every
    node's calls), by Call-ID, once all are recorded."""
    wanted = {c.dialog.call_id for c in placed}
    for _ in range(100):
        found = {c["external_id"]: c for c in await asyncio.to_thread(node.calls)
                 if c["external_id"] in wanted}
        if len(found) == len(wanted):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(wanted) - len(found)} call(s) not recorded")


def node(tmp_path: Path, name: str, rtp: tuple[int, int], db: str, key: str
         ) -> AtendeProcess:
    return AtendeProcess(
        tmp_path / name, rtp, ATENDE_NODE_ID=name, ATENDE_DATABASE_URL=db,
        ATENDE_SECRET_KEY=key, ATENDE_NODE_LEASE_S=str(LEASE_S), ATENDE_MAX_CALLS="40",
        ATENDE_SIP_PROXIES="127.0.0.1/32", ATENDE_DRAIN_TIMEOUT_S="60")


async def test_calls_are_spread_failed_over_and_drained(postgres: Postgres,
                                                        tmp_path: Path) -> None:
    db, key = postgres.new_database(), Fernet.generate_key().decode()
    a = node(tmp_path, "node-a", (31400, 31699), db, key)
    b = node(tmp_path, "node-b", (31700, 31999), db, key)
    callers: list[Caller] = []
    a.start()
    (b.workdir / "data").mkdir(parents=True)
    (b.workdir / "data" / "api.key").write_text(a.api_key)
    b.start()
    balancer = Balancer(tmp_path / "balancer", [a.sip_port, b.sip_port],
                        fr_timer_ms=FR_TIMER_MS)
    await balancer.start()
    try:
        # Spread: round robin over both nodes.
        first = [await call(balancer, callers) for _ in range(40)]
        on = await nodes_of(b, first)
        assert Counter(c["node_id"] for c in on.values()) == {"node-a": 20, "node-b": 20}

        # node-a dies with its twenty calls up.
        a.kill()
        a_calls = [c for c in first if on[c.dialog.call_id]["node_id"] == "node-a"]
        b_calls = [c for c in first if c not in a_calls]
        after = [await call(balancer, callers) for _ in range(10)]
        on = await nodes_of(b, after)
        assert {c["node_id"] for c in on.values()} == {"node-b"}
        b_calls += after
        # The first of them waited for node-a's silence (Kamailio's INVITE timer).
        assert max(c.setup_s for c in after) < FR_TIMER_MS / 1000 + 1.0
        deadline = time.monotonic() + 4 * LEASE_S + 10
        while True:  # node-b takes node-a over and closes its calls
            states = {(c["status"], c["hangup_cause"])
                      for c in (await nodes_of(b, a_calls)).values()}
            if states == {("failed", "interrupted")}:
                break
            assert time.monotonic() < deadline, states
            await asyncio.sleep(0.3)
        for c in a_calls:
            c.close()

        # node-a comes back and is probed in again.
        a.start()
        while True:
            probe = await call(balancer, callers)
            landed = (await nodes_of(b, [probe]))[probe.dialog.call_id]["node_id"]
            assert await probe.hang_up() == 200
            if landed == "node-a":
                break

        # node-b is stopped cleanly: it drains.
        assert b.proc is not None
        b.proc.send_signal(signal.SIGTERM)
        while True:
            health = httpx.get(b.base + "/health", timeout=5)
            if health.status_code == 503:
                break
            await asyncio.sleep(0.1)
        shown = health.json()["checks"]["node"]
        assert (shown["id"], shown["state"]) == ("node-b", "draining")
        assert shown["live_calls"] >= len(b_calls)  # (a probe's call may still be ending)
        late = [await call(balancer, callers) for _ in range(6)]
        on = await nodes_of(a, late)
        assert {c["node_id"] for c in on.values()} == {"node-a"}
        assert b.alive()  # its calls go on
        assert {c["status"] for c in (await nodes_of(a, b_calls)).values()} == \
            {"in_progress"}
        # Its callers hang up; then it stops by itself, nothing cut off.
        assert [await c.hang_up() for c in b_calls] == [200] * len(b_calls)
        assert await asyncio.to_thread(b.proc.wait, 30) == 0
        done = await nodes_of(a, b_calls)
        assert {c["status"] for c in done.values()} == {"completed"}
        assert "interrupted" not in {c["hangup_cause"] for c in done.values()}
    except BaseException:
        # What the nodes and the balancer logged, shown beside the failure.
        for name, text in (("node-a", a.log()), ("node-b", b.log()),
                           ("balancer", balancer.log())):
            print(f"--- {name}, last lines ---\n{text[-4000:]}")
        raise
    finally:
        for c in callers:
            c.close()
        await balancer.stop()
        a.stop()
        b.stop()
