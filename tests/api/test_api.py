"""The REST API over a real SQLite store migrated by Alembic."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from atende.agent.brain import DEFAULT_RULES
from atende.api.app import create_api
from atende.api.assistants import AssistantService, assistants_router
from atende.store import apikeys, models
from atende.store.db import Store
from atende.store.secrets import SecretBox, new_key
from atende.store.writes import insert_call, insert_turn, update_call

KEY = apikeys.new_key()


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    store = Store(store_url)
    asyncio.run(store.init(DEFAULT_RULES.to_dict()))
    t0 = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)

    async def seed() -> None:
        for i in range(3):
            store.submit(insert_call(
                id=f"c{i}", channel="sip", direction="inbound", from_uri="sip:a@b",
                to_uri="sip:assistant@h", status="completed" if i else "in_progress",
                invite_at=t0 + timedelta(minutes=i), external_id=f"sip-{i}"))
        store.submit(update_call("c1", answer_at=t0 + timedelta(minutes=1, seconds=1),
                                 end_at=t0 + timedelta(minutes=1, seconds=31),
                                 hangup_cause="remote_hangup"))
        for speaker, text in [("assistant", "Hello"), ("caller", "Hours?"),
                              ("assistant", "Nine to six")]:
            store.submit(insert_turn("c1", speaker=speaker, text=text, started_at=t0,
                                     ended_at=t0, interrupted=False, latency_ms=700))
        await store.run(lambda s: None)  # wait for the queued writes

    asyncio.run(seed())
    asyncio.run(store.run(apikeys.create("tests", KEY)))
    async def prepare(a: models.Assistant) -> None:
        pass  # voices: tests/api/test_assistants.py

    app = create_api(store, [assistants_router(AssistantService(
        store, SecretBox(new_key().encode()), prepare))])
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "checks": {"database": "ok"}}


def test_list_and_filter_calls(client: TestClient) -> None:
    body = client.get("/v1/calls").json()
    assert body["total"] == 3 and [c["id"] for c in body["items"]] == ["c2", "c1", "c0"]
    done = client.get("/v1/calls", params={"status": "completed", "limit": 1}).json()
    assert done["total"] == 2 and len(done["items"]) == 1
    r = client.get("/v1/calls", params={"status": "nonsense"})
    assert r.status_code == 422 and "status must be one of" in r.json()["detail"]
    assert client.get("/v1/calls", params={"limit": 0}).status_code == 422


def test_call_detail(client: TestClient) -> None:
    c = client.get("/v1/calls/c1").json()
    assert c["duration_s"] == 30.0 and c["hangup_cause"] == "remote_hangup"
    assert c["external_id"] == "sip-1"
    assert [t["seq"] for t in c["turns"]] == [0, 1, 2]
    assert [t["speaker"] for t in c["turns"]] == ["assistant", "caller", "assistant"]
    assert c["invite_at"].endswith("Z") or c["invite_at"].endswith("+00:00")
    r = client.get("/v1/calls/nope")
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_default_assistant_exists(client: TestClient) -> None:
    (a,) = client.get("/v1/assistants").json()
    assert a["extension"] == "assistant" and a["is_default"] and a["rules"]["greeting"]
    spec = client.get("/openapi.json").json()
    assert "/v1/calls/{call_id}" in spec["paths"]


def test_every_v1_route_needs_a_live_key(client: TestClient, tmp_path: Path) -> None:
    open_paths = {"/health", "/openapi.json", "/docs"}
    for path in open_paths:
        assert client.get(path, headers={"Authorization": ""}).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    routes = [(p, m) for p, ops in paths.items() if p.startswith("/v1/") for m in ops]
    assert len(routes) >= 3
    for template, method in routes:
        path = re.sub(r"\{[^}]+\}", "c1", template)
        r = client.request(method.upper(), path, headers={"Authorization": ""})
        assert r.status_code == 401, (method, path)
        assert "atende apikey create" in r.json()["detail"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/v1/calls", headers={"Authorization": "Bearer atk_nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown or revoked API key"
    basic = client.get("/v1/calls", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    scheme = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in scheme.values())


def test_revoked_keys_stop_working_at_once(store_url: str) -> None:
    store = Store(store_url)
    asyncio.run(store.init())
    key = apikeys.new_key()
    row = asyncio.run(store.run(apikeys.create("crm", key)))
    assert row.prefix == key[:8] and apikeys.masked(row) == key[:8] + "…"
    with TestClient(create_api(store), headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/calls").status_code == 200
        asyncio.run(store.run(apikeys.revoke(row.id)))
        assert c.get("/v1/calls").status_code == 401
    stored = asyncio.run(store.run(apikeys.all_keys))
    assert [k.key_hash for k in stored] == [apikeys.key_hash(key)]  # never the key itself
    assert stored[0].last_used_at is not None


def test_calls_filtered_by_outcome_source_time_and_metadata(store_url: str) -> None:
    store = Store(store_url)
    asyncio.run(store.init())
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    for i, (outcome, source, event) in enumerate([
            ("confirmed", "api", "e1"), ("no_answer", "webhook", "e2"),
            ("confirmed", "webhook", "e2"), (None, None, None)]):
        store.submit(insert_call(
            id=f"f{i}", channel="sip", direction="outbound" if source else "inbound",
            from_uri="sip:a@b", to_uri="sip:c@d", status="completed", outcome=outcome,
            source=source, meta={"event_id": event, "n": i} if event else None,
            invite_at=t0 + timedelta(days=i)))
    asyncio.run(store.run(apikeys.create("t", KEY)))
    with TestClient(create_api(store), headers={"Authorization": f"Bearer {KEY}"}) as c:
        def ids(**params: str) -> list[str]:
            r = c.get("/v1/calls", params=params)
            assert r.status_code == 200, r.text
            return sorted(x["id"] for x in r.json()["items"])

        assert ids(outcome="confirmed") == ["f0", "f2"]
        assert ids(source="webhook", outcome="confirmed") == ["f2"]
        assert ids(**{"metadata.event_id": "e2"}) == ["f1", "f2"]
        assert ids(**{"metadata.n": "1"}) == ["f1"]  # compared as text
        assert ids(since="2026-05-02T12:00:00Z", until="2026-05-04T00:00:00Z") == ["f1", "f2"]
        assert ids(direction="inbound") == ["f3"]
        r = c.get("/v1/calls", params={"since": "2026-05-02T12:00:00"})
        assert r.status_code == 422 and "time zone" in r.text
