"""Automation in the dashboard against a running atende, kamailio and a baresip phone: a
task call placed with the form appears on the Live page while it rings and talks, and its
page then has the conversation, the outcome and the latency waterfall; trigger URLs and
API keys are made (shown once), used and revoked; a scheduled call waits in the list
until it is cancelled; mistakes are said on their fields."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from tests.e2e.test_automation import TASK
from tests.e2e.test_outbound import (  # noqa: F401  (pbx and trunk are fixtures)
    finished,
    pbx,
    phone,
    trunk,
)
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.chromium import chromium, screenshot_path
from tests.peers.dashboard import make_user, sign_in, signed_in
from tests.peers.kamailio import Kamailio


async def test_a_task_call_from_the_form_is_followed_live_to_its_outcome(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    make_user(atende, "otto")
    wav = speech_wav(tmp_path / "ana.wav", [(12.0, "Yes, I confirm.")], tail_s=25)
    ana = await phone(tmp_path, pbx, "alice", wav)
    try:
        async with chromium() as browser:
            context = await browser.new_context(viewport={"width": 1100, "height": 900})
            live = await context.new_page()
            await sign_in(live, atende.base, "otto")
            await live.goto(atende.base + "/live")
            await expect(live.locator("[data-live-state]")).to_have_text(
                "Following calls live.")

            page = await context.new_page()
            await page.goto(atende.base + "/automation")
            await page.fill("input[name=phone_number]", "alice")
            await page.fill("textarea[name=task]", TASK)
            await page.fill("input[name=caller_name]", "Ana")
            await page.select_option("select[name=trunk_id]", trunk["id"])
            await page.fill("textarea[name=metadata]", "appointment_id=A-7")
            await page.screenshot(path=screenshot_path("automation"), full_page=True)
            await page.click("text=Place the call")
            await expect(page.locator("h1")).to_have_text("Call from ai to alice")
            call_id = page.url.rstrip("/").split("/")[-1]

            # The Live page, loaded before the call, shows it ringing and talking.
            row = live.locator(f'[data-call="{call_id}"]')
            await expect(row).to_be_visible(timeout=15_000)
            await expect(live.locator("[data-live-activity]")).to_contain_text(
                f"call {call_id[:8]} answered", timeout=20_000)
            done = await finished(atende, call_id)
            await expect(row).to_have_count(0)
            await expect(live.locator("[data-live-activity]")).to_contain_text(
                f"call {call_id[:8]} ended: completed, confirmed")

            await page.reload()
            await expect(page.locator(".facts")).to_contain_text("confirmed")
            await expect(page.locator(".facts")).to_contain_text("metadata.appointment_id")
            await expect(page.locator(".transcript")).to_contain_text("confirm")
            await expect(page.locator(".wf-row").first).to_be_visible()
            await page.screenshot(path=screenshot_path("task-call"), full_page=True)
    finally:
        await ana.stop()
    assert done["source"] == "manual" and done["outcome"] == "confirmed"
    assert done["task"] == TASK and done["metadata"] == {"appointment_id": "A-7"}


def problems(html: str) -> dict[str, str]:
    return dict(re.findall(r'<span class="problem" id="([a-z_]+)-problem"[^>]*>([^<]+)<', html))


async def test_triggers_keys_and_scheduled_calls(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        ) -> None:
    make_user(atende, "ines")
    make_user(atende, "vito", "viewer")
    admin, csrf = signed_in(atende, "ines")

    # A trigger URL, shown once in full, that a platform POSTs a form to.
    r = admin.post("/automation/hooks", data={"csrf": csrf, "name": "dashboard calendar",
                                              "trunk_id": trunk["id"]})
    assert r.status_code == 201 and "copy its URL now" in r.text
    url = re.search(r'data-copy="(http://[^"]+/v1/hooks/hk_[^"]+)"', r.text)
    assert url, r.text[:3000]
    assert url.group(1).startswith(atende.base)
    r = httpx.post(url.group(1), data={"phone_number": "alice", "task": TASK,
                                       "delay_seconds": "3600"})
    assert r.status_code == 202, r.text
    scheduled = r.json()
    page = admin.get("/automation").text
    assert f'data-queued="{scheduled["id"]}"' in page
    assert url.group(1) not in page  # the full URL is not shown again
    hook_id = next(h["id"] for h in atende.api.get("/v1/hooks").json()
                   if h["name"] == "dashboard calendar")
    r = admin.post(f"/automation/hooks/{hook_id}/revoke", data={"csrf": csrf})
    assert r.status_code == 200 and "its URL answers 404" in r.text
    assert httpx.post(url.group(1), data={"phone_number": "alice"}).status_code == 404

    # The scheduled call is cancelled from the list: it is never placed.
    r = admin.post(f"/calls/{scheduled['id']}/hangup", data={"csrf": csrf})
    assert r.status_code == 200 and "will not be placed" in r.text
    assert atende.api.get(f"/v1/calls/{scheduled['id']}").json()["status"] == "cancelled"
    assert f'data-queued="{scheduled["id"]}"' not in admin.get("/automation").text

    # An API key, shown once, that works until it is revoked.
    r = admin.post("/automation/keys", data={"csrf": csrf, "name": "crm"})
    assert r.status_code == 201
    key = re.search(r'data-copy="(atk_[^"]+)"', r.text)
    assert key
    async with httpx.AsyncClient(base_url=atende.base, headers={
            "Authorization": f"Bearer {key.group(1)}"}) as with_key:
        assert (await with_key.get("/v1/calls")).status_code == 200
        listed = admin.get("/automation").text
        assert key.group(1) not in listed and "every domain" in listed
        crm = re.search(r"<td>crm</td>.*?/automation/keys/([0-9a-f]+)/revoke", listed, re.S)
        assert crm
        key_id = crm.group(1)
        r = admin.post(f"/automation/keys/{key_id}/revoke", data={"csrf": csrf})
        assert r.status_code == 200 and "API key &#39;crm&#39; is revoked" in r.text
        assert (await with_key.get("/v1/calls")).status_code == 401
    r = admin.post("/automation/keys", data={"csrf": csrf, "name": "x", "domain": "nope"})
    assert r.status_code == 400 and "domain: must be a domain UUID" in r.text

    # Mistakes in the call form, on their fields; nothing is placed.
    before = atende.api.get("/v1/calls", params={"source": "manual"}).json()["total"]
    r = admin.post("/automation/calls", data={
        "csrf": csrf, "phone_number": "", "trunk_id": trunk["id"], "max_attempts": "x",
        "metadata": "no equals sign"})
    assert r.status_code == 400
    found = problems(r.text)
    assert "whole number" in found["max_attempts"] and "key=value" in found["metadata"]
    r = admin.post("/automation/calls", data={
        "csrf": csrf, "phone_number": "alice", "trunk_id": trunk["id"], "when": "at",
        "scheduled_at": "2020-01-01T09:00", "timezone": "Europe/Lisbon"})
    assert r.status_code == 400 and "is in the past" in problems(r.text)["scheduled_at"]
    r = admin.post("/automation/calls", data={
        "csrf": csrf, "phone_number": "alice", "trunk_id": trunk["id"], "when": "at",
        "scheduled_at": "2030-01-01T09:00", "timezone": "Mars/Base"})
    assert r.status_code == 400 and "is not one such as" in problems(r.text)["timezone"]
    r = admin.post("/automation/calls", data={
        "csrf": csrf, "phone_number": "alice", "trunk_id": trunk["id"],
        "webhook_url": "not a url"})
    assert r.status_code == 400 and "webhook_url" in problems(r.text)
    assert atende.api.get("/v1/calls", params={"source": "manual"}).json()["total"] == before

    # Viewers see it all and change nothing.
    viewer, vcsrf = signed_in(atende, "vito")
    assert "Viewers cannot place calls." in viewer.get("/automation").text
    for path in ("/automation/calls", "/automation/hooks", "/automation/keys",
                 f"/automation/keys/{key_id}/revoke"):
        assert viewer.post(path, data={"csrf": vcsrf, "name": "x"}).status_code == 403
