"""The call queue with real peers: retries of unanswered calls, scheduled calls, calling
hours, the trunk's concurrency cap, and a kill -9 with calls queued and webhooks pending."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_automation import TASK, place
from tests.e2e.test_outbound import (  # noqa: F401  (pbx and trunk are fixtures)
    AI_PASS,
    finished,
    pbx,
    phone,
    trunk,
)
from tests.e2e.test_trunks import registration
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.kamailio import NAMED_EXTENSIONS, Kamailio
from tests.peers.postgres import Postgres
from tests.peers.webhook import WebhookReceiver, webhook_receiver


def at(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def event(a: AtendeProcess, call_id: str, kind: str, count: int = 1,
                timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in a.call(call_id)["events"] if e["kind"] == kind]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {kind} event on call {call_id}")
        await asyncio.sleep(0.1)


async def test_no_answer_is_retried_per_policy_then_reported(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any]) -> None:  # noqa: F811
    with webhook_receiver() as hook:
        # bob's phone is not registered: every attempt gets 480 from the PBX.
        call = place(atende, phone_number="bob", task=TASK, caller_name="Bob",
                     webhook_url=hook.url, trunk_id=trunk["id"], max_attempts=3,
                     retry_after_seconds=1)
        assert call["max_attempts"] == 3 and call["retry_after_s"] == 1
        done = await finished(atende, call["id"])
        (got,) = await hook.wait_for(1)
        await asyncio.sleep(1.5)  # a retry after the final webhook would show up by now
    assert len(hook.received) == 1  # one result, after the last attempt only
    assert (done["status"], done["outcome"], done["attempts"]) == ("no_answer", "no_answer", 3)
    log = done["attempt_log"]
    assert [(a["seq"], a["status"], a["sip_status"]) for a in log] == [
        (1, "no_answer", 480), (2, "no_answer", 480), (3, "no_answer", 480)]
    for earlier, later in itertools.pairwise(log):
        assert at(later["started_at"]) - at(earlier["ended_at"]) >= timedelta(seconds=1)
    assert [e["data"]["attempt"] for e in done["events"]
            if e["kind"] == "retry_scheduled"] == [1, 2]
    assert len(pbx.calls_to("bob")) == 3  # three calls, each dialled once
    result = got.json
    assert result["outcome"] == "no_answer" and len(result["attempts"]) == 3
    assert result["summary"].startswith("Nobody answered after 3 attempts (480 ")
    # A number that does not exist is not worth another try.
    gone = place(atende, phone_number="nobody", trunk_id=trunk["id"], max_attempts=3,
                 retry_after_seconds=1)
    done = await finished(atende, gone["id"])
    assert (done["status"], done["sip_status"], done["attempts"]) == ("rejected", 404, 1)


async def test_answered_on_the_second_attempt(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    call = place(atende, phone_number="alice", task=TASK, caller_name="Ana",
                 trunk_id=trunk["id"], max_attempts=4, retry_after_seconds=3)
    (retry,) = await event(atende, call["id"], "retry_scheduled")  # not registered yet
    assert retry["data"]["sip_status"] == 480
    queued = atende.call(call["id"])
    assert queued["status"] == "queued" and queued["next_attempt_at"]
    # alice's phone comes online before the next attempt and answers it.
    wav = speech_wav(tmp_path / "ana.wav", [(12.0, "Yes, I confirm.")], tail_s=25)
    ana = await phone(tmp_path, pbx, "alice", wav)
    try:
        done = await finished(atende, call["id"])
    finally:
        await ana.stop()
    assert done["outcome"] == "confirmed" and done["attempts"] >= 2
    tries = [(a["status"], a["sip_status"]) for a in done["attempt_log"]]
    assert tries[-1] == ("answered", 200), tries
    assert set(tries[:-1]) == {("no_answer", 480)}  # while alice's phone was offline
    assert done["attempt_log"][-1]["ended_at"] and done["answer_at"]


async def test_scheduled_calls_wait_and_queued_calls_can_be_cancelled(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any]) -> None:  # noqa: F811
    t0 = datetime.now(UTC)
    soon = place(atende, phone_number="bob", trunk_id=trunk["id"], delay_seconds=3)
    assert soon["status"] == "queued" and soon["attempts"] == 0
    due = at(soon["next_attempt_at"])
    assert timedelta(seconds=2.5) < due - t0 < timedelta(seconds=4)
    assert at(soon["scheduled_at"]) == due
    assert not pbx.calls_to("bob")
    done = await finished(atende, soon["id"])
    assert at(done["attempt_log"][0]["started_at"]) >= due
    assert done["status"] == "no_answer" and len(pbx.calls_to("bob")) == 1

    with webhook_receiver() as hook:
        later = place(atende, phone_number="carol", trunk_id=trunk["id"],
                      webhook_url=hook.url,
                      scheduled_at=(t0 + timedelta(hours=1)).isoformat())
        assert later["status"] == "queued"
        r = atende.api.post(f"/v1/calls/{later['id']}/cancel")
        assert r.status_code == 202 and r.json()["status"] == "cancelled"
        (got,) = await hook.wait_for(1)
    assert got.json["outcome"] == "cancelled" and got.json["attempts"] == []
    assert not pbx.calls_to("carol")  # never placed
    assert atende.api.post(f"/v1/calls/{later['id']}/cancel").status_code == 409

    # Calling hours: a window closed today (in UTC) waits for tomorrow's opening.
    now = datetime.now(UTC)
    days = [d for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
            if i != now.weekday()]
    closed = place(atende, phone_number="bob", trunk_id=trunk["id"], calling_hours={
        "start": "00:00", "end": "23:59", "days": days, "timezone": "UTC"})
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    assert closed["status"] == "queued" and at(closed["next_attempt_at"]) == tomorrow
    assert closed["calling_hours"]["timezones"] == ["UTC"]
    assert atende.api.post(f"/v1/calls/{closed['id']}/cancel").status_code == 202


@pytest.mark.parametrize(("body", "words"), [
    ({"delay_seconds": 5, "scheduled_at": "2030-01-01T10:00:00Z"}, "not both"),
    ({"scheduled_at": "2030-01-01T10:00:00"}, "scheduled_at"),  # no zone
    ({"scheduled_at": "2020-01-01T10:00:00Z"}, "scheduled_at: 2020-01-01T10:00:00+00:00 is "
     "in the past"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"retry_after_seconds": 0}, "retry_after_seconds"),
    ({"calling_hours": {"start": "21:00", "end": "08:00"}}, "cannot cross midnight"),
    ({"calling_hours": {"start": "09:00", "end": "12:00"}}, "never open in all of"),
    ({"calling_hours": {"start": "09:00", "end": "20:00", "timezone": "Nowhere/Land"}},
     "not an IANA time zone"),
])
def test_scheduling_requests_that_must_be_refused(
        atende: AtendeProcess, trunk: dict[str, Any], body: dict[str, Any],  # noqa: F811
        words: str) -> None:
    # An extension on a US PBX: any of the US zones (a 3-hour window fits in none).
    r = atende.api.post("/v1/calls", json={"phone_number": "bob", "trunk_id": trunk["id"],
                                           **body})
    assert r.status_code == 422, r.text
    assert words in str(r.json()["detail"])


async def test_calls_wait_for_a_place_on_their_trunk(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    r = atende.api.patch(f"/v1/trunks/{trunk['id']}", json={"max_concurrent_calls": 1})
    assert r.status_code == 200, r.text
    carol = await phone(tmp_path, pbx, "carol", speech_wav(tmp_path / "c.wav", [], 5),
                        auto=False)
    try:
        first = place(atende, phone_number="carol", trunk_id=trunk["id"])
        assert first["status"] == "dialing"
        await carol.wait_event("CALL_INCOMING", timeout=10)
        second = place(atende, phone_number="bob", trunk_id=trunk["id"])
        assert second["status"] == "queued"  # the trunk's one place is taken
        await asyncio.sleep(1)
        assert atende.call(second["id"])["status"] == "queued" and not pbx.calls_to("bob")
        assert atende.api.post(f"/v1/calls/{first['id']}/cancel").status_code == 202
        done = await finished(atende, second["id"])
        first_done = atende.call(first["id"])
    finally:
        await carol.stop()
    assert done["status"] == "no_answer" and len(pbx.calls_to("bob")) == 1
    assert at(done["attempt_log"][0]["started_at"]) >= at(first_done["end_at"])


# kill -9 ------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
async def doomed(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[AtendeProcess]:
    """An atende of its own, to be killed and started again on the same data (SQLite in
    its data directory, or a PostgreSQL database)."""
    env = {"ATENDE_WEBHOOK_RETRY_BASE_S": "0.5"}
    if request.param == "postgresql":
        env["ATENDE_DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
    a = AtendeProcess(tmp_path / "doomed", (22000, 22999), **env)
    a.start()
    yield a
    if a.alive():
        a.stop()


async def test_kill_9_with_calls_queued_and_webhooks_pending(
        doomed: AtendeProcess, pbx: Kamailio, tmp_path: Path) -> None:  # noqa: F811
    r = doomed.api.post("/v1/trunks", json={
        "kind": "extension", "name": "PBX", "number": "ai", "username": "ai",
        "extension_pattern": NAMED_EXTENSIONS,
        "password": AI_PASS, "host": "127.0.0.1", "port": pbx.port, "country": "US"})
    assert r.status_code == 201, r.text
    trunk_id = r.json()["id"]
    await registration(doomed, trunk_id, "registered")
    receiver = WebhookReceiver()  # not listening yet: every delivery fails for now
    carol = await phone(tmp_path, pbx, "carol", speech_wav(tmp_path / "c.wav", [], 5),
                        auto=False)
    try:
        def call(**body: Any) -> str:
            return str(place(doomed, trunk_id=trunk_id, webhook_url=receiver.url,
                             task=TASK, **body)["id"])

        finished_before = call(phone_number="bob")  # 480 at once: its webhook is pending
        queued = [call(phone_number="bob", delay_seconds=5, metadata={"n": n})
                  for n in range(3)]
        ringing = call(phone_number="carol")
        await carol.wait_event("CALL_INCOMING", timeout=10)
        deadline = time.monotonic() + 20
        while doomed.get(f"/v1/calls/{finished_before}/deliveries")[0]["attempts"] < 2:
            assert time.monotonic() < deadline, "the webhook was not retried"
            await asyncio.sleep(0.1)
        assert all(doomed.call(c)["status"] == "queued" for c in queued)
        doomed.kill()
        before = len(pbx.calls_to("bob"))
        assert before == 1

        receiver.start()
        doomed.start()
        got = await receiver.wait_for(5, timeout=90)
        await asyncio.sleep(2)  # anything sent twice would arrive by now
    finally:
        receiver.stop()
        await carol.stop()
    by_call: dict[str, list[Any]] = {}
    for g in receiver.received:
        by_call.setdefault(g.json["call_id"], []).append(g)
    assert sorted(by_call) == sorted([finished_before, ringing, *queued])
    assert all(len(v) == 1 for v in by_call.values()), "a result was delivered twice"
    assert len(got) == 5
    # Each queued call was placed once, after the restart.
    assert len(pbx.calls_to("bob")) == before + 3
    for c in queued:
        done = doomed.call(c)
        assert done["status"] == "no_answer" and done["attempts"] == 1
    cut = doomed.call(ringing)
    assert (cut["status"], cut["hangup_cause"], cut["outcome"]) == ("failed", "interrupted",
                                                                    "failed")
    assert cut["attempt_log"][0]["status"] == "interrupted"
    assert by_call[ringing][0].json["summary"] == "atende restarted during the call; it " \
        "was cut off."
    delivered = doomed.get(f"/v1/calls/{finished_before}/deliveries")
    assert len(delivered) == 1 and delivered[0]["status"] == "delivered"
    assert [h["status"] for h in delivered[0]["history"]][-1] == 200
    assert "0 interrupted call(s) queued again, 1 closed" in doomed.log()


async def test_a_call_ending_while_postgresql_is_down_is_recorded_and_reported(
        pbx: Kamailio, tmp_path: Path) -> None:  # noqa: F811
    """Issue 16.17: a call that ended while the database was down stayed `dialing` with
    no webhook. Now its end waits for the database and the result goes out after."""
    pg = Postgres()
    pg.start()
    receiver = WebhookReceiver()
    receiver.start()
    a = AtendeProcess(tmp_path / "outage", (25000, 25999),
                      ATENDE_DATABASE_URL=pg.new_database())
    carol = await phone(tmp_path, pbx, "carol", speech_wav(tmp_path / "c.wav", [], 5),
                        auto=False)
    try:
        a.start()
        r = a.api.post("/v1/trunks", json={
            "kind": "extension", "name": "PBX", "number": "ai", "username": "ai",
            "extension_pattern": NAMED_EXTENSIONS, "password": AI_PASS,
            "host": "127.0.0.1", "port": pbx.port, "country": "US"})
        assert r.status_code == 201, r.text
        await registration(a, r.json()["id"], "registered")
        call_id = place(a, trunk_id=r.json()["id"], phone_number="carol", task=TASK,
                        webhook_url=receiver.url, max_attempts=1, ring_timeout_s=4)["id"]
        await carol.wait_event("CALL_INCOMING", timeout=10)
        pg.pause()  # carol never answers: the call ends (no answer) with the database down
        try:
            await asyncio.sleep(5)
            health = await asyncio.to_thread(a.api.get, "/health")
            assert health.status_code == 503 and health.json()["status"] == "degraded"
        finally:
            pg.resume()
        got = await receiver.wait_for(1, timeout=60)
        assert got[0].json["call_id"] == call_id and got[0].json["outcome"] == "no_answer"
        done = a.call(call_id)
        assert (done["status"], done["attempts"]) == ("no_answer", 1)
        assert (await asyncio.to_thread(a.api.get, "/health")).json()["status"] == "ok"
        assert "the database is back" in a.log()
    finally:
        await carol.stop()
        receiver.stop()
        if a.alive():
            a.stop()
        pg.stop()
