"""Two atende nodes on one PostgreSQL database, each its own process: a trunk made through
one is used by both; queued calls are placed by whichever node takes them, each exactly
once, and never more at once than the trunk's max_concurrent_calls over both nodes; one
node is killed (kill -9) halfway, and the other takes it over: the calls it had live are
closed, each result webhook is made once, and no call is left live. An extension trunk
is registered by one node; when it dies, the other registers it and takes the
extension's calls."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet

from tests.e2e.test_outbound import AI_PASS, USERS
from tests.peers.atende import AtendeProcess
from tests.peers.carrier import RingingCarrier
from tests.peers.kamailio import Kamailio
from tests.peers.postgres import Postgres
from tests.peers.sipclient import SipClient, UdpSocket, sdp_offer
from tests.peers.webhook import webhook_receiver

CALLS = 200
LEASE_S = 3
TRUNK_LIMIT = 10


def number(n: int) -> str:
    return f"+1202555{1000 + n:04d}"


def exists(dialled: str) -> bool:
    """A quarter of the numbers ring (until the call's ring timeout); the others do not
    exist."""
    return int(dialled[-2:]) % 4 == 1


def node(tmp_path: Path, name: str, rtp: tuple[int, int], db: str, key: str
         ) -> AtendeProcess:
    return AtendeProcess(
        tmp_path / name, rtp, ATENDE_NODE_ID=name, ATENDE_DATABASE_URL=db,
        # What every node must share: the key of the secrets at rest (the trunk's
        # password is stored encrypted) and, with it, the webhooks' signing key.
        ATENDE_SECRET_KEY=key, ATENDE_NODE_LEASE_S=str(LEASE_S), ATENDE_MAX_CALLS="20",
        ATENDE_SIP_RATE_PER_S="1000")


async def test_two_nodes_share_the_queue_and_one_takes_over_the_other(
        postgres: Postgres, tmp_path: Path) -> None:
    db, key = postgres.new_database(), Fernet.generate_key().decode()
    a = node(tmp_path, "node-a", (31400, 31699), db, key)
    b = node(tmp_path, "node-b", (31700, 31999), db, key)
    carrier = RingingCarrier(exists)
    await carrier.start()
    a.start()
    try:
        # The first node made the operator's API key; the second uses it too.
        (b.workdir / "data").mkdir(parents=True)
        shutil.copy(a.workdir / "data" / "api.key", b.workdir / "data" / "api.key")
        b.start()
        # Made through node a: node b learns of it from the store.
        trunk = a.api.post("/v1/trunks", json={
            "kind": "did", "name": "Carrier", "number": "+1 202 555 0111",
            "username": "acme", "password": "Carrier-Pass-2024", "host": "127.0.0.1",
            "port": carrier.port, "country": "US", "allowed_ips": ["127.0.0.1/32"],
            "max_concurrent_calls": TRUNK_LIMIT})
        assert trunk.status_code == 201, trunk.text
        with webhook_receiver() as hook:
            # All due a moment from now, so that both nodes' queues find them.
            start_at = (datetime.now(UTC) + timedelta(seconds=6)).isoformat()
            calls = {}
            for n in range(CALLS):
                r = a.api.post("/v1/calls", json={
                    "phone_number": number(n), "trunk_id": trunk.json()["id"],
                    "webhook_url": hook.url, "scheduled_at": start_at,
                    "ring_timeout_s": 3, "max_attempts": 1,
                    "metadata": {"n": n}})
                assert r.status_code == 201, r.text
                calls[r.json()["id"]] = n

            # Halfway through, node a dies with calls ringing.
            deadline = time.monotonic() + 120
            while True:
                placed = [c for c in b.calls() if c["id"] in calls and c["node_id"]]
                on_a = [c for c in placed if c["node_id"] == "node-a"
                        and c["status"] in ("dialing", "ringing")]
                if len(placed) >= CALLS // 2 and on_a:
                    break
                assert time.monotonic() < deadline, "the calls were not placed"
                await asyncio.sleep(0.2)
            a.kill()
            cut_off = {c["id"] for c in on_a}
            # The trunk's limit held over both nodes (each used its half of it).
            assert 0 < carrier.peak <= TRUNK_LIMIT

            # Node b takes a over within its lease and finishes everything.
            deadline = time.monotonic() + 180
            while True:
                mine = [c for c in b.calls() if c["id"] in calls]
                if all(c["status"] not in ("queued", "dialing", "ringing", "in_progress")
                       for c in mine) and len(mine) == CALLS:
                    break
                assert time.monotonic() < deadline, Counter(c["status"] for c in mine)
                await asyncio.sleep(0.5)
            await hook.wait_for(CALLS, timeout=120)
            await asyncio.sleep(1)  # a second delivery of anything would come in this
            received = list(hook.received)
    finally:
        a.kill()
        b.stop()
        await carrier.stop()

    done = {c["id"]: c for c in mine}
    # Both nodes placed calls; after the kill, only b.
    by_node = Counter(c["node_id"] for c in done.values())
    assert by_node["node-a"] > 0 and by_node["node-b"] > 0, by_node
    # Each call was placed exactly once (one INVITE Call-ID for its number), whichever
    # node placed it; the number that rings was cancelled after 3 s or cut off by a's end.
    # One that a had claimed as it died may not have been sent yet (the claim is written
    # before the INVITE goes): b closes it all the same, and never places it again.
    interrupted = set()
    for call_id, n in calls.items():
        sent = carrier.invites[number(n)]
        call = done[call_id]
        if call["hangup_cause"] == "interrupted":
            assert len(sent) <= 1, (n, sent)
            interrupted.add(call_id)
            assert call["status"] == "failed" and call["node_id"] == "node-a"
            assert call["summary"] == "atende node node-a stopped during the call; it " \
                "was cut off."
            continue
        assert len(sent) == 1, (n, sent)
        if exists(number(n)):
            assert call["status"] == "no_answer", call
        else:
            assert (call["status"], call["sip_status"]) == ("rejected", 404), call
    # What a had live as it died (seen ringing a moment before, most still were) was
    # closed by b, once.
    assert interrupted and interrupted <= cut_off | {c for c in calls if
                                                     done[c]["node_id"] == "node-a"}
    assert len(cut_off - interrupted) <= 2, cut_off - interrupted
    assert f"took it over (0 call(s) queued again, {len(interrupted)} closed)" in b.log()
    # One result webhook per call, made once: a repeat of one (the same delivery id) is
    # possible only for what a was sending as it died.
    ids: dict[str, set[str]] = defaultdict(set)
    for got in received:
        ids[got.json["call_id"]].add(got.headers["Atende-Delivery"])
    assert set(ids) == set(calls) and all(len(v) == 1 for v in ids.values())
    assert len(received) - CALLS <= 20, len(received)
    for got in received:
        assert got.json["metadata"]["n"] == calls[got.json["call_id"]]


async def registered_by(nodes: list[AtendeProcess], trunk_id: str,
                        timeout: float = 4 * LEASE_S + 15) -> AtendeProcess:
    """The one node that registers the trunk, once the others say it is that node's."""
    deadline = time.monotonic() + timeout
    while True:
        regs = [(n, (await asyncio.to_thread(n.api.get, f"/v1/trunks/{trunk_id}")
                     ).json()["registration"]) for n in nodes]
        # (None: a node that has not seen the trunk yet)
        owners = [n for n, r in regs if r is not None and r["state"] == "registered"]
        if len(owners) == 1 and all(r is not None and
                r["reason"] == f"registered by atende node "
                               f"{owners[0].env['ATENDE_NODE_ID']}"
                for n, r in regs if n is not owners[0]):
            return owners[0]
        assert time.monotonic() < deadline, regs
        await asyncio.sleep(0.2)


async def test_one_node_registers_an_extension_and_another_takes_over(
        postgres: Postgres, tmp_path: Path) -> None:
    db, key = postgres.new_database(), Fernet.generate_key().decode()
    pbx = Kamailio(tmp_path / "pbx", USERS)
    a = node(tmp_path, "node-a", (31400, 31699), db, key)
    b = node(tmp_path, "node-b", (31700, 31999), db, key)
    await pbx.start()
    a.start()
    client: SipClient | None = None
    try:
        (b.workdir / "data").mkdir(parents=True)
        shutil.copy(a.workdir / "data" / "api.key", b.workdir / "data" / "api.key")
        b.start()
        r = a.api.post("/v1/trunks", json={
            "kind": "extension", "name": "PBX", "number": "ai", "username": "ai",
            "password": AI_PASS, "host": "127.0.0.1", "port": pbx.port, "country": "US"})
        assert r.status_code == 201, r.text
        trunk_id = r.json()["id"]
        owner = await registered_by([a, b], trunk_id)
        (contact,) = pbx.contacts("ai")  # one node's binding, not two
        assert f":{owner.sip_port}" in contact
        name = owner.env["ATENDE_NODE_ID"]
        nodes = {n["id"]: n for n in b.get("/v1/nodes")}
        assert {k: n["state"] for k, n in nodes.items()} == {"node-a": "alive",
                                                             "node-b": "alive"}
        assert nodes[name]["registers"] == [trunk_id]

        # The owner dies; the other registers within a few leases.
        survivor = b if owner is a else a
        owner.kill()
        assert await registered_by([survivor], trunk_id) is survivor
        nodes = {n["id"]: n for n in survivor.get("/v1/nodes")}
        assert nodes[name]["state"] in ("dead", "taken_over")
        assert nodes[name]["registers"] == []
        assert nodes[survivor.env["ATENDE_NODE_ID"]]["registers"] == [trunk_id]
        assert any(f":{survivor.sip_port}" in c for c in pbx.contacts("ai"))

        # A call to the extension reaches the survivor (the PBX still tries the dead
        # node's binding too, which never answers).
        client = await SipClient.open(("127.0.0.1", pbx.port))
        rtp = await UdpSocket.open()
        d = client.new_dialog()
        ok = await client.call(d, sdp_offer("127.0.0.1", rtp.port),
                               ruri=f"sip:ai@127.0.0.1:{pbx.port}")
        assert ok.status == 200, ok.status
        calls = [c for c in survivor.calls() if c["external_id"] == d.call_id]
        assert [c["node_id"] for c in calls] == [survivor.env["ATENDE_NODE_ID"]]
        client.send(client.request("BYE", d))
        assert (await client.final()).status == 200
        rtp.close()
    finally:
        if client is not None:
            client.close()
        a.kill()
        b.stop()
        await pbx.stop()
