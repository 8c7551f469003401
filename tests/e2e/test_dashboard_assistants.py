"""Assistants and AI providers in the dashboard, against a running atende: in Chromium an
admin adds an AI provider and an assistant with every section of the form (voice heard
with "listen", tools, a transfer destination, business hours on the week grid), and a
softphone's call to its extension reaches it; over HTTP every mistake is said on its
field, secrets never come back, and viewers change nothing."""

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

KEY = "sk-dashboard-test-0123456789"


async def test_an_admin_builds_an_assistant_and_calls_it(atende: AtendeProcess,
                                                         tmp_path: Path) -> None:
    make_user(atende, "ada")
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1100, "height": 900})
        await sign_in(page, atende.base, "ada")
        await page.click("nav >> text=Assistants")
        await expect(page.locator("h1")).to_have_text("Assistants")

        # An AI provider first, on its own tab.
        await page.click(".tabs >> text=AI providers")
        await page.select_option("select[name=type]", "llm")
        await page.select_option("select[name=provider_llm]", "openai")
        await page.fill("form[action='/providers/new'] input[name=name]", "OpenAI main")
        await page.fill("form[action='/providers/new'] input[name=api_key]", KEY)
        await page.fill("form[action='/providers/new'] input[name=model]", "gpt-4o-mini")
        await page.click("text=Add the provider")
        await expect(page.locator(".done")).to_have_text("AI provider 'OpenAI main' is saved.")
        assert KEY not in await page.content()

        await page.click(".tabs >> text=Assistants")
        await page.click("text=+ Add assistant")
        await page.fill("input[name=name]", "Front desk")
        await page.fill("input[name=extension]", "7300")
        await page.fill("textarea[name=greeting]", "Front desk, good morning.")
        # Listen to the voice before choosing it.
        await page.click("button[data-listen]")
        await expect(page.locator(".listen-said")).to_have_text("Playing.", timeout=20_000)
        # The language model section shows in pipeline mode only.
        await expect(page.locator("select[name=realtime_choice]")).to_be_hidden()
        await page.select_option("select[name=llm_choice]", label="OpenAI main (openai, "
                                 "gpt-4o-mini)")
        await page.check("input[name=mode][value=realtime]")
        await expect(page.locator("select[name=llm_choice]")).to_be_hidden()
        await page.check("input[name=mode][value=pipeline]")
        await page.uncheck("input[name=tools][value=send_dtmf]")
        await page.fill("input[name=transfer-0-name]", "reception")
        await page.fill("input[name=transfer-0-target]", "1000")
        await page.fill("input[name=transfer-0-description]", "a person at the desk")
        await expect(page.locator("input[name=hours_mon]")).to_be_hidden()
        await page.check("input[name=hours_on]")
        await page.fill("input[name=hours_timezone]", "Europe/Lisbon")
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
            await page.fill(f"input[name=hours_{day}]", "00:00-24:00")
        await page.fill("input[name=hours_mon]", "00:00-12:00, 12:00-24:00")
        await page.select_option("select[name=closed_action]", "transfer")
        await page.fill("input[name=closed_destination]", "reception")
        await page.screenshot(path=screenshot_path("assistant-new"), full_page=True)
        await page.click("text=Save assistant")
        await expect(page.locator(".done")).to_have_text(
            "Front desk is saved: calls to 7300 reach it.")
        await expect(page.locator("h1")).to_have_text("Front desk")

        made = next(a for a in atende.api.get("/v1/assistants").json()
                    if a["extension"] == "7300")
        provider = next(p for p in atende.api.get("/v1/providers").json()
                        if p["name"] == "OpenAI main")
        assert made["greeting"] == "Front desk, good morning."
        assert made["llm"][0]["provider_id"] == provider["id"]
        assert made["llm"][0]["provider"] == "openai"
        assert made["llm"][0]["api_key_set"] is False  # the provider's key, not its own
        assert "send_dtmf" not in made["tools"] and "transfer_call" in made["tools"]
        assert made["transfers"] == [{"name": "reception", "target": "1000",
                                      "description": "a person at the desk",
                                      "mode": "refer"}]
        hours = made["business_hours"]
        assert hours["timezone"] == "Europe/Lisbon"
        assert hours["weekly"]["mon"] == ["00:00-12:00", "12:00-24:00"]
        assert hours["closed"] == {"action": "transfer", "destination": "reception",
                                   "message": None}
        assert provider["used_by"] == [made["id"]] and provider["api_key_set"]

        # The provider cannot go while the assistant uses it; the reason is said.
        await page.goto(atende.base + "/providers")
        await expect(page.locator("details[data-provider] summary")).to_contain_text(
            "used by Front desk")
        await page.click("details[data-provider] summary")
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.click("text=Delete OpenAI main")
        await expect(page.locator(".error")).to_contain_text("assistants use this provider")

        # Back to the offline rules (so the call below needs no cloud): what was saved
        # shows again in the form, and only the model section changes.
        await page.goto(atende.base + f"/assistants/{made['id']}")
        await expect(page.locator("input[name=hours_mon]")).to_have_value(
            "00:00-12:00, 12:00-24:00")
        await expect(page.locator("input[name=transfer-0-name]")).to_have_value("reception")
        await page.select_option("select[name=llm_choice]", "")
        await page.click("text=Save assistant")
        await expect(page.locator(".done")).to_contain_text("Front desk is saved")
        await page.screenshot(path=screenshot_path("assistant"), full_page=True)
    again = atende.api.get(f"/v1/assistants/{made['id']}").json()
    assert again["llm"] == [] and again["business_hours"] == hours
    assert again["transfers"] == made["transfers"] and again["tools"] == made["tools"]

    # A softphone's call to the extension reaches it.
    caller = Baresip(tmp_path, speech_wav(tmp_path / "in.wav", [], 10),
                     account="<sip:deskcaller@127.0.0.1>;regint=0")
    await caller.start()
    try:
        await caller.command("dial", f"sip:7300@127.0.0.1:{atende.sip_port}")
        await caller.wait_event("CALL_ESTABLISHED")
        call = await atende.wait_for_call(
            lambda c: c.get("from_user") == "deskcaller" and len(c.get("turns", [])) >= 1,
            timeout=30)
        await caller.command("hangup")
    finally:
        await caller.stop()
    assert call["assistant_id"] == made["id"]
    assert call["turns"][0]["text"] == "Front desk, good morning."


def problems(html: str) -> dict[str, str]:
    return dict(re.findall(r'<span class="problem" id="([a-z_0-9-]+)-problem"[^>]*>([^<]+)<',
                           html))


def test_mistakes_on_their_fields_and_viewers_change_nothing(atende: AtendeProcess) -> None:
    make_user(atende, "abe")
    make_user(atende, "vik", "viewer")
    admin, csrf = signed_in(atende, "abe")
    base = {"csrf": csrf, "name": "Sales", "extension": "7400", "language": "en",
            "voice": "piper", "mode": "pipeline", "tools": "set_outcome",
            "llm_choice": "", "stt_choice": "", "tts_choice": "", "realtime_choice": "",
            "fallback_action": "continue", "vm_action": "hangup", "http_tools": "[]"}
    cases = [
        ({"extension": "74 00"}, "extension", "should match pattern"),
        ({"name": ""}, "name", "needed"),
        ({"hours_on": "on", "hours_timezone": "Europe/Lisbon", "hours_mon": "9-5"},
         "business_hours", "9-5"),
        ({"hours_on": "on", "hours_timezone": "Mars/Base"}, "business_hours",
         "not an IANA time zone"),
        ({"fallback_action": "transfer", "fallback_destination": "nobody"}, "fallback",
         "name one of the transfers"),
        ({"rules": "{not json"}, "rules", "not valid JSON"),
        ({"tt_end_of_turn_ms": "soon"}, "tt_end_of_turn_ms", "a whole number"),
        ({"tt_end_of_turn_ms": "50"}, "turn_taking", "greater than or equal to 200"),
        ({"voice": "nonsense:voice"}, "voice", "voice"),
    ]
    for change, field, words in cases:
        r = admin.post("/assistants/new", data={**base, **change})
        assert r.status_code == 400, (change, r.status_code)
        found = problems(r.text)
        assert words in found.get(field, ""), (change, found)
        assert 'value="Sales"' in r.text or change.get("name") == ""  # kept as typed
    assert not [a for a in atende.api.get("/v1/assistants").json()
                if a["extension"] == "7400"]

    r = admin.post("/assistants/new", data=base)
    assert r.status_code == 201, problems(r.text)
    made = next(a for a in atende.api.get("/v1/assistants").json()
                if a["extension"] == "7400")
    r = admin.post("/assistants/new", data={**base, "name": "Sales 2"})
    assert r.status_code == 400 and "extension &#39;7400&#39; is taken" in r.text
    default = next(a for a in atende.api.get("/v1/assistants").json() if a["is_default"])
    r = admin.post(f"/assistants/{default['id']}/delete", data={"csrf": csrf})
    assert r.status_code == 409 and "cannot be deleted" in r.text

    # An AI provider's key is written, never shown; a bad vendor is refused in words.
    r = admin.post("/providers/new", data={"csrf": csrf, "type": "stt",
                                           "provider_stt": "anthropic", "name": "x"})
    assert r.status_code == 400 and "a stt provider is one of deepgram, openai" in r.text
    r = admin.post("/providers/new", data={"csrf": csrf, "type": "tts",
                                           "provider_tts": "elevenlabs", "name": "Voices",
                                           "api_key": KEY})
    assert r.status_code == 201 and KEY not in r.text and "own key" in r.text

    viewer, vcsrf = signed_in(atende, "vik")
    page = viewer.get(f"/assistants/{made['id']}")
    assert page.status_code == 200 and "disabled" in page.text
    assert "Save assistant" not in page.text and "+ Add assistant" not in viewer.get(
        "/assistants").text
    for path in ("/assistants/new", f"/assistants/{made['id']}",
                 f"/assistants/{made['id']}/delete", "/providers/new"):
        r = viewer.post(path, data={**base, "csrf": vcsrf, "name": "Mine"})
        assert r.status_code == 403, path
    assert viewer.get("/assistants/voice", params={"voice": "piper"}).status_code == 403
    r = admin.get("/assistants/voice", params={"voice": "piper", "text": "Hi."})
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
    r = admin.get("/assistants/voice", params={"voice": "nonsense:voice"})
    assert r.status_code == 422 and r.text.startswith("voice:")
    r = admin.post(f"/assistants/{made['id']}/delete", data={"csrf": csrf})
    assert r.status_code == 303
