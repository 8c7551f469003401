"""Live calls in the dashboard (Chromium against a running atende): a softphone's call
appears while the page stays loaded, what happens on it is written as it happens, the
admin hangs it up from the page, and the stream ends when the session does."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from playwright.async_api import expect

from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.baresip import Baresip
from tests.peers.chromium import chromium, screenshot_path
from tests.peers.dashboard import make_user, sign_in, signed_in


async def test_a_call_appears_live_and_is_hung_up_from_the_page(
        atende: AtendeProcess, tmp_path: Path) -> None:
    make_user(atende, "lia")
    wav = speech_wav(tmp_path / "in.wav", [(5.0, "Hello, I would like to book a table.")],
                     tail_s=40)
    caller = Baresip(tmp_path, wav, account="<sip:livecaller@127.0.0.1>;regint=0")
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1100, "height": 800})
        page = await context.new_page()
        await sign_in(page, atende.base, "lia")
        await page.click("nav >> text=Live")
        await expect(page.locator("h1")).to_have_text("Live calls")
        await expect(page.locator("[data-live-state]")).to_have_text("Following calls live.")
        await caller.start()
        try:
            await caller.command("dial", f"sip:assistant@127.0.0.1:{atende.sip_port}")
            await caller.wait_event("CALL_ESTABLISHED")
            row = page.locator("[data-call]")
            await expect(row).to_have_count(1, timeout=10_000)
            await expect(row).to_contain_text("livecaller")
            await expect(row.locator(".status")).to_have_text("in progress")
            activity = page.locator("[data-live-activity]")
            await expect(activity).to_contain_text("answered")
            # What the caller says shows up as it is heard.
            await expect(activity).to_contain_text(": caller said “", timeout=30_000)
            await page.screenshot(path=screenshot_path("live"), full_page=True)
            call_id = await row.get_attribute("data-call")
            assert call_id

            page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await row.locator("text=Hang up").click()
            await expect(page.locator(".done")).to_have_text("Hanging up the call.")
            await caller.wait_event("CALL_CLOSED")
        finally:
            await caller.stop()
        await expect(page.locator("[data-call]")).to_have_count(0)
        await expect(page.locator("[data-live-activity] li").first).to_contain_text(
            f"call {call_id[:8]} ended: completed (cancelled)")
        record = atende.api.get(f"/v1/calls/{call_id}").json()
        assert record["hangup_cause"] == "cancelled"

        # Signing out (in another tab) ends the page's stream, in words.
        other = await context.new_page()
        await other.goto(atende.base + "/calls")
        await other.click("text=Sign out")
        await expect(page.locator("[data-live-state]")).to_have_text(
            "Signed out: sign in again to follow the calls.", timeout=15_000)


def test_viewers_cannot_hang_up_and_an_ended_call_says_so(atende: AtendeProcess) -> None:
    make_user(atende, "lou")
    make_user(atende, "val", "viewer")
    viewer, csrf = signed_in(atende, "val")
    page = viewer.get("/live")
    assert page.status_code == 200 and "Hang up" not in page.text
    r = viewer.post("/calls/abc/hangup", data={"csrf": csrf})
    assert r.status_code == 403 and "viewers cannot change anything" in r.text
    admin, csrf = signed_in(atende, "lou")
    r = admin.post("/calls/no-such-call/hangup", data={"csrf": csrf})
    assert r.status_code == 409 and "that call is already over" in r.text
    # The stream is for signed-in sessions only.
    r = atende.api.get("/live/events", headers={"Authorization": ""}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert re.search(r"No calls right now|data-call", admin.get("/live/table").text)
