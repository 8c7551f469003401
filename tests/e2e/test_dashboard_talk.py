"""Talking to an assistant from the browser: Chromium with a fake microphone that asks a
question calls the default assistant over WebRTC (aiortc on atende's side, ICE on
loopback); the assistant's voice is heard in the page (speech energy measured there), the
caller's words reach the transcript, and the call is recorded like any other."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import expect

from tests.e2e.test_baresip_call import QUESTION
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.chromium import chromium, screenshot_path
from tests.peers.dashboard import make_user, sign_in, signed_in


async def test_a_browser_call_to_the_assistant(atende: AtendeProcess, tmp_path: Path
                                               ) -> None:
    make_user(atende, "tara")
    microphone = speech_wav(tmp_path / "mic.wav", [(6.0, QUESTION)], tail_s=30)
    default = next(a for a in atende.api.get("/v1/assistants").json() if a["is_default"])
    async with chromium(microphone) as browser:
        context = await browser.new_context(viewport={"width": 900, "height": 700})
        page = await context.new_page()
        await sign_in(page, atende.base, "tara")
        await page.goto(atende.base + "/assistants")
        await page.click(f'[data-assistant="{default["id"]}"] >> text=Talk to it')
        await expect(page.locator("h1")).to_have_text(f"Talk to {default['name']}")
        await page.click("[data-talk-start]")
        state = page.locator("[data-talk-state]")
        await expect(state).to_have_text("Connected: talk now.", timeout=20_000)
        # The greeting is heard in the page: a second and more of speech energy.
        await expect(page.locator("[data-talk]")).to_have_attribute(
            "data-heard-loud", re.compile(r"^([2-9]\d|\d{3,})$"), timeout=20_000)
        call_id = await page.locator("[data-talk]").get_attribute("data-call-id")
        assert call_id
        call = await atende.wait_for_call(
            lambda c: c["id"] == call_id and any(
                t["speaker"] == "assistant" and t.get("intent") == "hours"
                for t in c.get("turns", [])), timeout=40)
        await page.screenshot(path=screenshot_path("talk"), full_page=True)
        await page.click("[data-talk-stop]")
        await expect(state).to_have_text("Call ended.")
        await expect(page.locator("[data-talk-record] a")).to_have_attribute(
            "href", f"/calls/{call_id}")
        peak = float(await page.locator("[data-talk]").get_attribute("data-heard-peak")
                     or 0)
    assert peak > 0.05
    assert call["channel"] == "webrtc" and call["from_user"] == "tara"
    assert call["assistant_id"] == default["id"] and call["direction"] == "inbound"
    caller = [t["text"] for t in call["turns"] if t["speaker"] == "caller"]
    assert any("opening" in t.lower() for t in caller), caller
    done = await atende.wait_for_call(
        lambda c: c["id"] == call_id and c["status"] == "completed", timeout=10)
    assert done["hangup_cause"] == "remote_hangup" and done["answer_at"]


def test_talking_needs_an_admin_and_a_real_offer(atende: AtendeProcess) -> None:
    make_user(atende, "tom")
    make_user(atende, "tia", "viewer")
    default = next(a for a in atende.api.get("/v1/assistants").json() if a["is_default"])
    admin, csrf = signed_in(atende, "tom")
    r = admin.post(f"/assistants/{default['id']}/talk", data={"csrf": csrf, "sdp": "hello"})
    assert r.status_code == 400 and "not an SDP offer" in r.json()["error"]
    r = admin.post(f"/assistants/{default['id']}/talk",
                   data={"csrf": csrf, "sdp": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n"})
    assert r.status_code == 400 and "cannot be used" in r.json()["error"]
    for junk in ("v=0\r\nm=audio x RTP/AVP\r\n", "v=0\r\n" + "a=" * 3000,
                 "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=setup:sideways\r\n"):
        r = admin.post(f"/assistants/{default['id']}/talk", data={"csrf": csrf, "sdp": junk})
        assert r.status_code == 400, (junk[:40], r.status_code, r.text[:200])
    # Each refused offer ended the call reserved for it: none is left live.
    mine = [c for c in atende.api.get("/v1/calls", params={"limit": 50}).json()["items"]
            if c["from_user"] == "tom"]
    assert len(mine) == 4 and {c["status"] for c in mine} == {"failed"}
    assert {c["hangup_cause"] for c in mine} == {"bad_offer"}
    r = admin.post("/assistants/nobody/talk", data={"csrf": csrf, "sdp": "v=0\r\n"})
    assert r.status_code == 404 and "no assistant" in r.json()["error"]
    r = admin.post("/talk/nope/hangup", data={"csrf": csrf})
    assert r.status_code == 409
    viewer, vcsrf = signed_in(atende, "tia")
    assert viewer.get(f"/assistants/{default['id']}/talk").status_code == 403
    r = viewer.post(f"/assistants/{default['id']}/talk", data={"csrf": vcsrf, "sdp": "v=0"})
    assert r.status_code == 403
