"""The dashboard in a real browser (Debian's Chromium): an admin made with `atende user
create` signs in, finds a spoken call with its transcript and latency, adds a viewer; the
viewer signs in and can change nothing. Screenshots of each page: build/screenshots/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from playwright.async_api import expect

from tests.e2e.test_baresip_call import QUESTION, converse
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.chromium import chromium, screenshot_path
from tests.peers.dashboard import PASSWORD, make_user, sign_in


async def test_an_admin_and_a_viewer_in_chromium(atende: AtendeProcess, tmp_path: Path
                                                 ) -> None:
    make_user(atende, "ana")
    wav = speech_wav(tmp_path / "in.wav", [(5.0, QUESTION)], tail_s=12)
    _, call = await converse(atende, tmp_path, "7201", wav, "hours")

    async with chromium() as browser:
        admin = await browser.new_page(viewport={"width": 1100, "height": 800})
        await sign_in(admin, atende.base, "ana")
        row = admin.locator(f'a[href="/calls/{call["id"]}"]')
        await expect(row).to_be_visible()
        await admin.screenshot(path=screenshot_path("calls"), full_page=True)
        await row.click()
        transcript = admin.locator(".transcript")
        await expect(transcript).to_contain_text(str(call["turns"][1]["text"]))
        await expect(admin.locator(".facts")).to_contain_text("p50")
        # The reply's latency drawn stage by stage, as its record has them. A stage that
        # took nothing after the turn's end (recognition done in the caller's pause, a
        # line the voice had ready) is not drawn; the wait for the turn's end always is.
        reply = next(t for t in call["turns"]
                     if t["speaker"] == "assistant" and t["latency_ms"] is not None)
        first = admin.locator(".wf-row").first
        await expect(first).to_contain_text(f"Reply 1 · {reply['latency_ms']} ms")
        await expect(first).to_contain_text("turn end and the rest")
        stages = {"recognition": "stt_ms", "model": "llm_ms", "synthesis": "tts_ms"}
        for name, field in stages.items():
            if reply[field]:
                await expect(first).to_contain_text(f"{name} {reply[field]} ms")
            else:
                await expect(first).not_to_contain_text(name)
        drawn = 1 + sum(1 for field in stages.values() if reply[field])
        assert await first.locator("svg rect").count() == drawn
        await admin.screenshot(path=screenshot_path("call"), full_page=True)

        await admin.click("nav >> text=Stats")
        await expect(admin.locator("h1")).to_have_text("Stats")
        await expect(admin.locator("#per-day + figure svg rect").last).to_be_visible()  # today
        await expect(admin.locator(".figures")).to_contain_text("Reply latency")
        await admin.screenshot(path=screenshot_path("stats"), full_page=True)

        await admin.click("nav >> text=Users")
        await admin.fill("input[name=username]", "vic")
        await admin.fill("input[name=password]", PASSWORD)
        await admin.select_option("select[name=role]", "viewer")
        await admin.click("text=Add the user")
        await expect(admin.locator(".done")).to_have_text("vic can now sign in as viewer")
        await admin.screenshot(path=screenshot_path("users-admin"), full_page=True)
        await admin.click("text=Sign out")
        await expect(admin.locator("h1")).to_have_text("Sign in")

        # A phone-sized screen: the viewer reads everything, and has nothing to change.
        viewer = await browser.new_page(viewport={"width": 390, "height": 844})
        await sign_in(viewer, atende.base, "vic")
        await viewer.goto(atende.base + "/users")
        await expect(viewer.locator("text=Add a user")).to_have_count(0)
        await viewer.screenshot(path=screenshot_path("users-viewer"), full_page=True)
        csrf = await viewer.locator("input[name=csrf]").first.get_attribute("value")
        status = await viewer.evaluate(
            """async (csrf) => (await fetch('/users', {method: 'POST', body:
                 new URLSearchParams({csrf, username: 'mal', password: 'x'.repeat(12) + 'yz',
                                      role: 'admin'})})).status""", csrf)
        assert status == 403

        # Every page fits a phone's width (wide tables scroll inside their own box).
        default = next(a for a in atende.api.get("/v1/assistants").json()
                       if a["is_default"])
        for name, path in [("calls", "/calls"), ("call", f"/calls/{call['id']}"),
                           ("live", "/live"), ("stats", "/stats"),
                           ("automation", "/automation"), ("assistants", "/assistants"),
                           ("assistant", f"/assistants/{default['id']}"),
                           ("providers", "/providers"), ("trunks", "/trunks"),
                           ("users", "/users")]:
            response = await viewer.goto(atende.base + path)
            assert response is not None and response.status == 200, path
            assert await viewer.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"), path
            await viewer.screenshot(path=screenshot_path(f"phone-{name}"), full_page=True)
    listed = subprocess.run([sys.executable, "-m", "atende", "user", "list"],
                            env={**os.environ, **atende.env}, cwd=atende.workdir,
                            capture_output=True, text=True, timeout=60)
    assert "'vic'" in listed.stdout and "'mal'" not in listed.stdout
