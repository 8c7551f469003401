"""/v1/stats and /metrics on an atende of its own, after calls made the three ways, and
again after a restart (the counters come from the store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_automation import TASK, hook_url, place, trigger
from tests.e2e.test_outbound import AI_PASS, finished, pbx, phone  # noqa: F401
from tests.e2e.test_trunks import registration
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.kamailio import NAMED_EXTENSIONS, Kamailio
from tests.peers.webhook import webhook_receiver

LISBON = ZoneInfo("Europe/Lisbon")


@pytest.fixture(params=["sqlite", "postgresql"])
async def counted(request: pytest.FixtureRequest, tmp_path: Path,
                  pbx: Kamailio) -> AsyncIterator[tuple[AtendeProcess, str]]:  # noqa: F811
    """An atende of its own, on SQLite and on PostgreSQL."""
    env = {}
    if request.param == "postgresql":
        env["ATENDE_DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
    a = AtendeProcess(tmp_path / "counted", (23000, 23999), **env)
    a.start()
    r = a.api.post("/v1/trunks", json={
        "kind": "extension", "name": "PBX", "number": "ai", "username": "ai",
        "extension_pattern": NAMED_EXTENSIONS,
        "password": AI_PASS, "host": "127.0.0.1", "port": pbx.port, "country": "US"})
    assert r.status_code == 201, r.text
    await registration(a, r.json()["id"], "registered")
    yield a, r.json()["id"]
    a.stop()


def samples(a: AtendeProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = a.api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


async def test_stats_and_metrics_after_calls_made_three_ways(
        counted: tuple[AtendeProcess, str], pbx: Kamailio, tmp_path: Path) -> None:  # noqa: F811
    a, trunk_id = counted
    start = datetime.now(UTC)
    ana = await phone(tmp_path, pbx, "alice",
                      speech_wav(tmp_path / "a.wav", [(12.0, "Yes, I confirm.")], tail_s=25))
    try:
        with webhook_receiver() as hook:
            api = place(a, phone_number="alice", task=TASK, caller_name="Ana",
                        webhook_url=hook.url)
            by_hook = trigger(hook_url(a, trunk_id), {
                "phone_number": "bob", "task": TASK, "max_attempts": "2",
                "retry_after_seconds": "1"})
            manual = place(a, phone_number="nobody", source="manual")
            for call in (api, by_hook, manual):
                await finished(a, call["id"])
            await hook.wait_for(1)
    finally:
        await ana.stop()
    r = a.api.get("/v1/stats", params={"since": start.isoformat(), "tz": "Europe/Lisbon"})
    assert r.status_code == 200, r.text
    stats = r.json()
    o = stats["overall"]
    assert (o["calls"], o["finished"], o["answered"], o["attempts"]) == (3, 3, 1, 4)
    assert o["outcomes"] == {"confirmed": 1, "failed": 1, "no_answer": 1}
    assert (o["with_task"], o["successes"], o["success_rate"]) == (2, 1, 0.5)
    assert o["answer_rate"] == 0.3333 and o["average_talk_s"] > 5
    # The answered call's replies, measured end of speech → first audio.
    assert o["reply_latency_ms"]["replies"] >= 1 and o["reply_latency_ms"]["p50"] > 0
    assert {k: (v["calls"], v["success_rate"]) for k, v in stats["by_source"].items()} == {
        "api": (1, 1.0), "manual": (1, None), "webhook": (1, 0.0)}
    (hook_row,) = stats["by_hook"]
    assert hook_row["name"] == "calendar" and hook_row["attempts"] == 2
    (assistant,) = stats["by_assistant"]
    assert assistant["name"] == "Default assistant" and assistant["calls"] == 3
    assert [d["calls"] for d in stats["by_day"]] == [3]
    assert stats["by_day"][0]["day"] == start.astimezone(LISBON).date().isoformat()
    earlier = a.api.get("/v1/stats", params={
        "since": (start - timedelta(days=2)).isoformat(),
        "until": (start - timedelta(days=1)).isoformat()}).json()
    assert earlier["overall"]["calls"] == 0 and earlier["by_day"] == []

    before = samples(a)
    aid = assistant["id"]

    def finished_total(source: str, outcome: str) -> float:
        return before[("atende_calls_finished_total", (
            ("assistant_id", aid), ("direction", "outbound"), ("outcome", outcome),
            ("source", source)))]

    assert finished_total("api", "confirmed") == 1
    assert finished_total("webhook", "no_answer") == 1
    assert finished_total("manual", "failed") == 1
    assert before[("atende_calls_answered_total", (
        ("assistant_id", aid), ("direction", "outbound"), ("source", "api")))] == 1
    attempts = {dict(k[1])["status"]: v for k, v in before.items()
                if k[0] == "atende_call_attempts_total"}
    assert attempts == {"answered": 1, "no_answer": 2, "rejected": 1}
    assert before[("atende_webhook_deliveries_total", (("status", "delivered"),))] == 1
    assert before[("atende_calls_queued", ())] == 0
    assert before[("atende_calls_active", ())] == 0
    assert before[("atende_trunk_registered", (("name", "PBX"), ("trunk_id", trunk_id)))] == 1
    assert before[("atende_sip_messages_total", (("kind", "received"),))] > 0
    # Not overloaded: nothing shed, no limit on new calls, a loop on time.
    assert before[("atende_overload_shedding", ())] == 0
    assert before[("atende_admission_limit_per_second", ())] == float("inf")
    assert 0 <= before[("atende_event_loop_lag_seconds", ())] < 0.125

    a.stop()
    a.start()
    after = samples(a)
    for key, value in before.items():
        if key[0].startswith("atende_calls_finished") or key[0].startswith(
                "atende_call_attempts"):
            assert after[key] == value  # counted from the store: a restart keeps them


@pytest.mark.parametrize(("params", "words"), [
    ({"tz": "Mars/Olympus"}, "tz: 'Mars/Olympus'"),
    ({"since": "2026-01-01T00:00:00"}, "since: give a time zone"),
    ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "before until"),
    ({"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "longer than"),
])
def test_stats_refuses_bad_windows(atende: AtendeProcess, params: dict[str, Any],
                                   words: str) -> None:
    r = atende.api.get("/v1/stats", params=params)
    assert r.status_code == 422 and words in r.json()["detail"]
    assert httpx.get(atende.base + "/metrics", timeout=5).status_code == 401
