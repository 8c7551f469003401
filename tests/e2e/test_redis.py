"""Two atende nodes sharing a real Redis (ATENDE_REDIS_URL): a source whose calls keep
being refused by one node is blocked by both; the event stream of one node's API shows
the calls of the other; a call on one is cancelled through the other's API (and its
dashboard, which lists the calls of both); a trunk made
through one is applied by the other at once, and its max_concurrent_calls is counted
over both; with Redis stopped, calls go on and /health says each node is on its own,
until Redis is back."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from atende.sip.message import Request, make_response
from tests.e2e.test_events import events
from tests.peers.atende import AtendeProcess
from tests.peers.dashboard import make_user, signed_in
from tests.peers.postgres import Postgres
from tests.peers.redis import Redis
from tests.peers.sipclient import SipClient, UdpSocket, sdp_offer

STRANGER = "127.0.0.9"  # a source that may not call (not in ATENDE_ALLOW_DIRECT)
CARRIER = "127.0.0.2"  # a DID trunk's carrier
DID_URI = "sip:+12025550188@127.0.0.1"


def node(tmp_path: Path, name: str, rtp: tuple[int, int], db: str, key: str, redis: str
         ) -> AtendeProcess:
    return AtendeProcess(
        tmp_path / name, rtp, ATENDE_NODE_ID=name, ATENDE_DATABASE_URL=db,
        ATENDE_SECRET_KEY=key, ATENDE_REDIS_URL=redis, ATENDE_ALLOW_DIRECT="127.0.0.1/32",
        ATENDE_ABUSE_MAX_FAILURES="4")


async def until(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await asyncio.to_thread(check)):
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.1)
    return found


async def until_async(attempt: Callable[[], Awaitable[Any]], wanted: Any,
                      timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (got := await attempt()) != wanted:
        assert time.monotonic() < deadline, f"still {got!r}"
        await asyncio.sleep(0.1)


async def invite(node: AtendeProcess, host: str, timeout: float = 2,
                 ruri: str | None = None) -> int | None:
    """A call from ``host`` (hung up at once): its final status, or None when nothing
    answers."""
    client = await SipClient.open(("127.0.0.1", node.sip_port), host=host)
    rtp = await UdpSocket.open(host)
    d = client.new_dialog()
    try:
        client.send(client.request("INVITE", d, body=sdp_offer(host, rtp.port), ruri=ruri))
        final = await client.final(timeout)
        if final.status == 200:
            d.to_tag = final.to.tag or ""
            client.send(client.request("ACK", d))
            client.send(client.request("BYE", d))
            await client.final()
        return final.status
    except TimeoutError:
        return None
    finally:
        client.close()
        rtp.close()


def redis_shown(n: AtendeProcess) -> Any:
    return n.get("/health")["checks"].get("redis")


async def test_nodes_share_the_guard_and_live_events(postgres: Postgres,
                                                     tmp_path: Path) -> None:
    redis = Redis(tmp_path / "redis")
    redis.start()
    db, key = postgres.new_database(), Fernet.generate_key().decode()
    a = node(tmp_path, "node-a", (31400, 31699), db, key, redis.url)
    b = node(tmp_path, "node-b", (31700, 31999), db, key, redis.url)
    a.start()
    try:
        (b.workdir / "data").mkdir(parents=True)
        shutil.copy(a.workdir / "data" / "api.key", b.workdir / "data" / "api.key")
        b.start()
        for n in (a, b):
            await until(lambda n=n: redis_shown(n) == "ok")

        # Refused four times by node a: blocked by node b too (not answered at all).
        assert await invite(b, STRANGER) == 403
        for _ in range(3):
            assert await invite(a, STRANGER) == 403
        await until(lambda: any(x["address"] == STRANGER
                                for x in b.get("/v1/abuse")["blocked"]))
        assert await invite(b, STRANGER) is None
        assert await invite(a, STRANGER) is None

        # node b's event stream shows a call on node a.
        async with events(b) as stream:
            client = await SipClient.open(("127.0.0.1", a.sip_port))
            rtp = await UdpSocket.open()
            d = client.new_dialog()
            ok = await client.call(d, sdp_offer("127.0.0.1", rtp.port))
            assert ok.status == 200
            call = await until(lambda: [c for c in a.calls()
                                        if c["external_id"] == d.call_id])
            client.send(client.request("BYE", d))
            assert (await client.final()).status == 200
            seen = await stream.until("call.finished", call[0]["id"], timeout=30)
            client.close()
            rtp.close()
        assert seen[0]["event"] == "call.ringing" and seen[-1]["data"]["status"] == \
            "completed"

        # A call on node a is cancelled through node b's API: node a hangs it up.
        client = await SipClient.open(("127.0.0.1", a.sip_port))
        rtp = await UdpSocket.open()
        d = client.new_dialog()
        assert (await client.call(d, sdp_offer("127.0.0.1", rtp.port))).status == 200
        (call,) = await until(lambda: [c for c in a.calls() if c["external_id"] ==
                                       d.call_id and c["status"] == "in_progress"])
        assert call["node_id"] == "node-a"
        r = b.api.post(f"/v1/calls/{call['id']}/cancel")
        assert r.status_code == 202, r.text
        bye = await client.recv(10)  # node a's BYE
        assert isinstance(bye, Request) and bye.method == "BYE"
        client.send(make_response(bye, 200).encode())
        await until(lambda: b.call(call["id"])["status"] == "completed")

        # A carrier's trunk of two channels, made through node a: node b is told of it
        # through Redis. The two channels are counted over both nodes: node a may use
        # both (more than its half), and then node b has none until one ends.
        r = a.api.post("/v1/trunks", json={
            "kind": "did", "name": "Carrier", "number": "+1 202 555 0188",
            "username": "acme", "password": "Carrier-Trunk-Pass-7", "host": "127.0.0.1",
            "country": "US", "allowed_ips": [f"{CARRIER}/32"], "max_concurrent_calls": 2})
        assert r.status_code == 201, r.text
        await until(lambda: "trunk(s) changed elsewhere: applied" in b.log())
        carrier = await SipClient.open(("127.0.0.1", a.sip_port), host=CARRIER)
        media = await UdpSocket.open(CARRIER)
        up = []
        for _ in range(2):
            up.append(d := carrier.new_dialog())
            assert (await carrier.call(d, sdp_offer(CARRIER, media.port), ruri=DID_URI)
                    ).status == 200
        assert await invite(b, CARRIER, ruri=DID_URI) == 486
        shown = b.get("/health")["checks"]["call_limits"]
        assert shown == "counted over all nodes"
        carrier.send(carrier.request("BYE", up[0]))
        assert (await carrier.final()).status == 200
        await until_async(lambda: invite(b, CARRIER, ruri=DID_URI), 200)
        carrier.send(carrier.request("BYE", up[1]))
        assert (await carrier.final()).status == 200
        carrier.close()
        media.close()

        # Redis stops: calls go on, each node says it is on its own, and a call on the
        # other node cannot be reached through this one; then Redis is back.
        d = client.new_dialog()
        assert (await client.call(d, sdp_offer("127.0.0.1", rtp.port))).status == 200
        (call,) = await until(lambda: [c for c in a.calls() if c["external_id"] ==
                                       d.call_id and c["status"] == "in_progress"])
        redis.stop()
        shown = await until(lambda: (s := redis_shown(b)) != "ok" and s)
        assert "this node's own" in shown and b.get("/health")["status"] == "ok"
        assert await invite(b, "127.0.0.1") == 200
        r = b.api.post(f"/v1/calls/{call['id']}/cancel")
        assert r.status_code == 503 and "node-a" in r.json()["detail"], r.text
        # node b's dashboard lists the call (from the store) with its node, and cannot
        # hang it up either while Redis is away.
        make_user(b, "ops")
        web, csrf = signed_in(b, "ops")
        table = web.get("/live/table").text
        assert f'data-call="{call["id"]}"' in table and "<td>node-a</td>" in table
        r = web.post(f"/calls/{call['id']}/hangup", data={"csrf": csrf})
        assert r.status_code == 503 and "node-a" in r.text
        assert a.call(call["id"])["status"] == "in_progress"
        redis.start()
        await until(lambda: redis_shown(b) == "ok" and redis_shown(a) == "ok", 30)
        r = web.post(f"/calls/{call['id']}/hangup", data={"csrf": csrf})
        assert r.status_code == 200 and "Hanging up the call." in r.text
        bye = await client.recv(10)
        assert isinstance(bye, Request) and bye.method == "BYE"
        client.send(make_response(bye, 200).encode())
        await until(lambda: a.call(call["id"])["status"] == "completed")
        client.close()
        rtp.close()
    finally:
        a.stop()
        b.stop()
        redis.stop()
