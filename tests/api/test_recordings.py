"""GET/DELETE /v1/calls/{id}/recording: the WAV of a finished recorded call; a clear 404 or
409 otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atende.agent.brain import DEFAULT_RULES
from atende.api.app import create_api
from atende.api.recordings import recordings_router
from atende.media.recording import ASSISTANT, CALLER, WavRecorder, recording_path
from atende.store import apikeys
from atende.store.db import Store
from atende.store.writes import insert_call

KEY = apikeys.new_key()


def call_row(call_id: str, recorded: bool, ended: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    return dict(id=call_id, channel="sip", direction="inbound", from_uri="sip:a@x",
                to_uri="sip:b@x", status="completed" if ended else "in_progress",
                invite_at=now, answer_at=now, end_at=now if ended else None,
                recorded=recorded)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    asyncio.run(store.init(DEFAULT_RULES.to_dict()))
    asyncio.run(store.run(apikeys.create("tests", KEY)))
    folder = tmp_path / "recordings"
    for call_id, recorded, ended in (("done", True, True), ("live", True, False),
                                     ("plain", False, True)):
        asyncio.run(store.run(insert_call(**call_row(call_id, recorded, ended))))
        if recorded:
            rec = WavRecorder(recording_path(folder, call_id), 0.0)
            rec.add(CALLER, bytes(640), 0.0)
            rec.add(ASSISTANT, bytes(640), 0.0)
            rec.close()
    app = create_api(store, [recordings_router(store, folder)])
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def test_download_and_delete(client: TestClient) -> None:
    r = client.get("/v1/calls/done/recording")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and r.content[8:12] == b"WAVE"
    assert client.delete("/v1/calls/done/recording").status_code == 204
    r = client.get("/v1/calls/done/recording")
    assert r.status_code == 404 and "deleted" in r.json()["detail"]
    assert client.get("/v1/calls/done").json()["recording"] is None


@pytest.mark.parametrize(("call_id", "status", "says"), [
    ("live", 409, "still in progress"),
    ("plain", 404, "has no recording"),
    ("nope", 404, "no call with id 'nope'"),
])
def test_what_cannot_be_had_says_why(client: TestClient, call_id: str, status: int,
                                     says: str) -> None:
    for method in (client.get, client.delete):
        r = method(f"/v1/calls/{call_id}/recording")
        assert r.status_code == status and says in r.json()["detail"], r.text


def test_a_key_is_needed(client: TestClient) -> None:
    assert client.get("/v1/calls/done/recording", headers={"Authorization": ""}
                      ).status_code == 401
