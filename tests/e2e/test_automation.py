"""Calls with a task: the appointment confirmation flow end to end (kamailio, a baresip
phone that speaks, a real HTTP receiver), and the signed result webhook's outbox."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from atende.webhooks.signing import HEADER, verify
from tests.e2e.test_outbound import (  # noqa: F401  (pbx and trunk are fixtures)
    finished,
    pbx,
    phone,
    trunk,
)
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.peers.webhook import WebhookReceiver, webhook_receiver

TASK = "Confirm tomorrow's appointment at 10:00. If they cannot come, offer to reschedule."
META = {"event_id": "evt_42", "calendar": {"id": "main", "tags": ["vip", 1]}}


def webhook_secret(a: AtendeProcess) -> str:
    """The signing key, as a user gets it: `atende webhook-secret` on the server."""
    out = subprocess.run([sys.executable, "-m", "atende", "webhook-secret"], env=a.env,
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def documented_check() -> Any:
    """The verification snippet of docs/automation.md, as a receiver would paste it."""
    doc = (Path(__file__).parents[2] / "docs" / "automation.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # our own documentation, run as a reader would
    return namespace["atende_signature_ok"]


def place(a: AtendeProcess, **body: Any) -> dict[str, Any]:
    r = a.api.post("/v1/calls", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def task_call(a: AtendeProcess, pbx: Kamailio, tmp_path: Path,  # noqa: F811
                    wav: Path, trunk_id: str, **body: Any
                    ) -> tuple[dict[str, Any], dict[str, Any], Baresip]:
    """The appointment task, called to Ana at alice's phone (which plays ``wav``): the call
    as placed, the result webhook's body, and the (stopped) phone."""
    ana = await phone(tmp_path, pbx, "alice", wav)
    with webhook_receiver() as hook:
        try:
            call = place(a, phone_number="alice", task=TASK, caller_name="Ana",
                         webhook_url=hook.url, trunk_id=trunk_id, **body)
            (got,) = await hook.wait_for(1, timeout=90)
        finally:
            await ana.stop()
    return call, dict(got.json), ana


def deliveries(a: AtendeProcess, call_id: str) -> list[dict[str, Any]]:
    return list(a.get(f"/v1/calls/{call_id}/deliveries"))


def hook_url(a: AtendeProcess, trunk_id: str) -> str:
    """A trigger URL, made as a user would: `atende hook create`."""
    out = subprocess.run([sys.executable, "-m", "atende", "hook", "create", "--name",
                          "calendar", "--trunk", trunk_id, "--api", a.base], env=a.env,
                         capture_output=True, text=True, timeout=60, check=True)
    url = out.stdout.strip()
    assert url.startswith(a.base + "/v1/hooks/hk_"), out
    return url


def trigger(url: str, fields: dict[str, str]) -> dict[str, Any]:
    """What Zapier's or Make's form POST sends: no API key, form-encoded fields."""
    r = httpx.post(url, data=fields, timeout=10)
    assert r.status_code == 202, r.text
    return dict(r.json())


@pytest.mark.parametrize(("via", "said", "outcome", "fields"), [
    ("api", "Yes, I confirm.", "confirmed", {}),
    ("webhook", "I can't make it. Can we reschedule to Thursday at 3 pm?",
     "reschedule_requested", {"proposed_time": "thursday at 3 pm"}),
])
async def test_appointment_confirmation_end_to_end(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path, via: str, said: str, outcome: str, fields: dict[str, str]) -> None:
    """Level 3 (the REST API) and level 2 (a trigger URL fed a form, as Zapier does)."""
    wav = speech_wav(tmp_path / "ana.wav", [(12.0, said)], tail_s=25)
    ana = await phone(tmp_path, pbx, "alice", wav)
    with webhook_receiver() as hook:
        try:
            if via == "api":
                call = place(atende, phone_number="alice", task=TASK, caller_name="Ana",
                             webhook_url=hook.url, metadata=META, trunk_id=trunk["id"])
            else:
                call = trigger(hook_url(atende, trunk["id"]), {
                    "phone_number": "alice", "task": TASK, "caller_name": "Ana",
                    "webhook_url": hook.url, "metadata": json.dumps(META)})
            assert call["task"] == TASK and call["metadata"] == META
            assert call["source"] == via and call["phone_number"] == "alice"
            (got,) = await hook.wait_for(1, timeout=90)
        finally:
            await ana.stop()
    secret = webhook_secret(atende)
    signature = got.headers[HEADER]
    assert verify(secret, signature, got.body, time.time())
    assert not verify(secret, signature, got.body.replace(b"evt_42", b"evt_43"), time.time())
    assert not verify("whsec_wrong", signature, got.body, time.time())
    check = documented_check()
    assert check(secret, signature, got.body) and not check(secret, signature, b"{}")
    result = got.json
    assert result["event"] == "call.finished" and result["call_id"] == call["id"]
    assert result["outcome"] == outcome, result["transcript"]
    assert result["fields"] == fields and result["metadata"] == META
    assert result["caller_name"] == "Ana" and result["task"] == TASK
    assert result["status"] == "completed" and result["hangup_cause"] == "assistant_hangup"
    greeting = result["transcript"][0]
    assert greeting["speaker"] == "assistant" and greeting["text"].startswith("Hello Ana.")
    assert "Confirm tomorrow's appointment at 10:00." in greeting["text"]
    assert any(t["speaker"] == "caller" for t in result["transcript"])
    assert result["summary"].startswith("Ana ")
    stored = atende.call(call["id"])
    assert stored["outcome"] == outcome and stored["summary"] == result["summary"]
    (d,) = deliveries(atende, call["id"])
    assert d["status"] == "delivered" and d["attempts"] == 1
    assert got.headers["Atende-Delivery"] == str(d["id"])


async def test_result_webhook_is_retried_until_delivered(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any]) -> None:  # noqa: F811
    with webhook_receiver(fail_with=[503, 500]) as hook:
        # bob's phone is not registered: the PBX says 480, the outcome is no_answer.
        call = place(atende, phone_number="bob", task=TASK, webhook_url=hook.url,
                     metadata={"n": 1}, trunk_id=trunk["id"])
        got = await hook.wait_for(3, timeout=30)
        assert [g.status for g in got] == [503, 500, 200]
        assert {g.headers["Atende-Delivery"] for g in got} == {got[0].headers[
            "Atende-Delivery"]}
        assert [g.headers["Atende-Attempt"] for g in got] == ["1", "2", "3"]
        assert got[0].body == got[2].body  # the same result each time
        # Backoff doubles from 0.5 s (this atende's ATENDE_WEBHOOK_RETRY_BASE_S).
        assert got[1].at - got[0].at >= 0.45 and got[2].at - got[1].at >= 0.95
        result = got[2].json
        assert result["outcome"] == "no_answer" and result["sip_status"] == 480
        assert "480" in result["summary"] and result["metadata"] == {"n": 1}
        (d,) = deliveries(atende, call["id"])
        assert d["status"] == "delivered" and d["attempts"] == 3
        assert [h["status"] for h in d["history"]] == [503, 500, 200]
        assert d["history"][0]["error"] == "HTTP 503"

        # Sent again on request, as a new delivery.
        r = atende.api.post(f"/v1/calls/{call['id']}/deliveries", timeout=10)
        assert r.status_code == 201, r.text
        again = await hook.wait_for(4)
        assert again[3].headers["Atende-Delivery"] == str(r.json()["id"])
        assert again[3].json["outcome"] == "no_answer"


async def test_receiver_down_for_a_while_loses_nothing(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any]) -> None:  # noqa: F811
    hook = WebhookReceiver()  # not listening yet: connections are refused
    call = place(atende, phone_number="bob", task=TASK, webhook_url=hook.url,
                 trunk_id=trunk["id"])
    deadline = time.monotonic() + 30
    while True:
        ds = await asyncio.to_thread(deliveries, atende, call["id"])
        if ds and ds[0]["attempts"] >= 2:
            break
        assert time.monotonic() < deadline, ds
        await asyncio.sleep(0.2)
    assert ds[0]["status"] == "pending" and ds[0]["next_attempt_at"]
    assert all(h["error"].startswith("ConnectError") for h in ds[0]["history"])
    hook.start()
    try:
        (got,) = await hook.wait_for(1, timeout=30)
    finally:
        hook.stop()
    assert got.json["call_id"] == call["id"]
    (d,) = deliveries(atende, call["id"])
    assert d["status"] == "delivered" and d["history"][-1]["status"] == 200
    assert d["attempts"] == len(d["history"]) >= 3


def test_call_requests_that_must_be_refused(atende: AtendeProcess) -> None:
    def post(**body: Any) -> httpx.Response:
        return atende.api.post("/v1/calls", json=body, timeout=10)

    r = post(task=TASK, trunk_id="x")
    assert r.status_code == 422 and "phone_number is required" in r.text
    r = post(phone_number="+351912345678", to="+351911111111", trunk_id="x")
    assert r.status_code == 422 and "not two different numbers" in r.text
    r = post(phone_number="+351912345678", webhook_url="ftp://example.com/x", trunk_id="x")
    assert r.status_code == 422 and "webhook_url" in r.text
    r = post(phone_number="+351912345678", metadata={"big": "x" * 17000}, trunk_id="x")
    assert r.status_code == 422 and "16 KB" in r.text
    r = post(phone_number="+351912345678", trunk_id="nope")
    assert r.status_code == 422 and "trunk_id" in r.text
    r = atende.api.get("/v1/calls/nope/deliveries", timeout=10)
    assert r.status_code == 404


async def test_triggers_idempotency_and_manual_calls(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any]) -> None:  # noqa: F811
    url = hook_url(atende, trunk["id"])
    # Form fields one per metadata key, and JSON, both start calls (bob: no answer).
    by_form = trigger(url, {"phone_number": "bob", "task": TASK, "metadata[order]": "77",
                            "metadata.shop": "main"})
    assert by_form["metadata"] == {"order": "77", "shop": "main"}
    by_json = httpx.post(url, json={"phone_number": "bob", "metadata": {"n": [1]}}, timeout=10)
    assert by_json.status_code == 202 and by_json.json()["source"] == "webhook"
    assert httpx.post(url, content=b"<x/>", headers={"Content-Type": "text/xml"},
                      timeout=10).status_code == 415
    bad = httpx.post(url, json={"task": TASK}, timeout=10)
    assert bad.status_code == 422 and "phone_number is required" in bad.text
    # The trunk the URL was made for is the only one it dials through (issue 16.13).
    other = httpx.post(url, json={"phone_number": "bob", "trunk_id": "another"}, timeout=10)
    assert other.status_code == 422 and "this trigger URL places its calls with" in other.text
    same = httpx.post(url, json={"phone_number": "bob", "trunk_id": trunk["id"]}, timeout=10)
    assert same.status_code == 202
    assert httpx.post(url + "x", json={"phone_number": "bob"}, timeout=10).status_code == 404
    # The token is shown once; listing masks it. Revoked, the URL is gone.
    hooks = atende.api.get("/v1/hooks").json()
    token = url.rsplit("/", 1)[1]
    assert all(token not in h["url_path"] for h in hooks)
    (mine,) = [h for h in hooks if h["url_path"] == f"/v1/hooks/{token[:7]}…"]
    assert mine["last_used_at"] is not None
    assert atende.api.delete(f"/v1/hooks/{mine['id']}").status_code == 204
    assert httpx.post(url, json={"phone_number": "bob"}, timeout=10).status_code == 404
    assert httpx.get(atende.base + "/v1/hooks", timeout=10).status_code == 401

    # Idempotency-Key: the same request gives the same call; another request, a 409.
    body = {"phone_number": "bob", "task": TASK, "trunk_id": trunk["id"]}
    key = {"Idempotency-Key": f"order-77-{time.time()}"}
    first = atende.api.post("/v1/calls", json=body, headers=key)
    again = atende.api.post("/v1/calls", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = atende.api.post("/v1/calls", json={**body, "task": "Something else"}, headers=key)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]

    # Level 1, by hand: `atende call … --task … --name …`, followed to its outcome.
    out = subprocess.run([sys.executable, "-m", "atende", "call", "bob", "--task", TASK,
                          "--name", "Bob", "--trunk", trunk["id"], "--metadata",
                          '{"ticket": 9}', "--api", atende.base], env=atende.env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "outcome: no_answer" in out.stdout, out.stdout + out.stderr
    manual = [c for c in atende.calls() if c["source"] == "manual"]
    assert manual and manual[0]["metadata"] == {"ticket": 9}
    assert manual[0]["caller_name"] == "Bob"


async def test_cancel_while_ringing_and_while_talking(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    carol = await phone(tmp_path, pbx, "carol", speech_wav(tmp_path / "c.wav", [], 5),
                        auto=False)
    alice = await phone(tmp_path, pbx, "alice", speech_wav(tmp_path / "a.wav", [], 30))
    try:
        with webhook_receiver() as hook:
            ringing = place(atende, phone_number="carol", task=TASK, webhook_url=hook.url,
                            trunk_id=trunk["id"])
            await carol.wait_event("CALL_INCOMING", timeout=10)
            r = atende.api.post(f"/v1/calls/{ringing['id']}/cancel")
            assert r.status_code == 202, r.text
            await carol.wait_event("CALL_CLOSED", timeout=10)  # our CANCEL reached her
            (got,) = await hook.wait_for(1)
            assert got.json["outcome"] == "cancelled" and got.json["sip_status"] == 487

            talking = place(atende, phone_number="alice", task=TASK, trunk_id=trunk["id"])
            await atende.wait_for_call(lambda c: c["id"] == talking["id"]
                                       and c["status"] == "in_progress")
            assert atende.api.post(f"/v1/calls/{talking['id']}/cancel").status_code == 202
            await alice.wait_event("CALL_CLOSED", timeout=10)
            done = await finished(atende, talking["id"])
    finally:
        await carol.stop()
        await alice.stop()
    assert done["outcome"] == "cancelled" and done["hangup_cause"] == "cancelled"
    again = atende.api.post(f"/v1/calls/{talking['id']}/cancel")
    assert again.status_code == 409 and "already over" in again.json()["detail"]
    assert atende.api.post("/v1/calls/nope/cancel").status_code == 404
