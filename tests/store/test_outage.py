"""A database outage loses no call result (issue 16.17): with a real PostgreSQL stopped
and started again, background writes wait in order and land when it is back, /health
says what is wrong meanwhile, and the API answers 503 rather than 500."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atende.agent.brain import DEFAULT_RULES
from atende.api.app import create_api
from atende.store import apikeys
from atende.store.db import Store
from atende.store.writes import insert_call, update_call
from tests.peers.postgres import Postgres


@pytest.fixture
def flaky_postgres() -> Iterator[Postgres]:
    """A PostgreSQL of its own, to be stopped and started again."""
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def call(call_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return dict(id=call_id, channel="sip", direction="outbound", from_uri="sip:a@b",
                to_uri="sip:c@d", from_user="a", to_user="c", status="dialing",
                invite_at=now)


async def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_writes_wait_for_the_database_and_land_in_order(
        flaky_postgres: Postgres) -> None:
    store = Store(flaky_postgres.new_database())
    await store.init(DEFAULT_RULES.to_dict())
    caught_up = asyncio.Event()
    store.on_caught_up(caught_up.set)
    try:
        assert await store.health() is None
        flaky_postgres.pause()
        # A call refused with 486 while the database is down: dialing, then busy.
        store.submit(insert_call(**call("c1")))
        await eventually(lambda: store.outage is not None)
        # Taken by the store thread already, the insert is not joined: two writes wait.
        store.submit(update_call("c1", status="busy", hangup_cause="busy", sip_status=486))
        problem = await store.health()
        assert problem is not None and problem.startswith("database unreachable")
        assert store.pending_writes == 2
        await asyncio.sleep(1.5)  # a few retries, still down
        assert store.pending_writes == 2
        flaky_postgres.resume()
        await asyncio.wait_for(caught_up.wait(), 30)
        assert store.pending_writes == 0 and await store.health() is None
        row = await store.get_call("c1")
        assert row is not None and (row.status, row.sip_status) == ("busy", 486)
    finally:
        await store.close()


def test_health_and_the_api_say_the_database_is_down(flaky_postgres: Postgres) -> None:
    store = Store(flaky_postgres.new_database())
    asyncio.run(store.init(DEFAULT_RULES.to_dict()))
    key = apikeys.new_key()
    asyncio.run(store.run(apikeys.create("tests", key)))
    with TestClient(create_api(store), headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.get("/health").json()["status"] == "ok"
        flaky_postgres.pause()
        try:
            r = client.get("/health")
            assert r.status_code == 503 and r.json()["status"] == "degraded"
            assert "database unreachable" in r.json()["problems"][0]
            r = client.get("/v1/calls")
            assert r.status_code == 503 and "database is unreachable" in r.json()["detail"]
        finally:
            flaky_postgres.resume()
        assert client.get("/health").json()["status"] == "ok"
        assert client.get("/v1/calls").status_code == 200
