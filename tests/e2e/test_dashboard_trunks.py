"""The dashboard's phone numbers (seeds 000/001) against a running atende, with kamailio
as the PBX and a baresip phone: in Chromium, an admin integrates an extension trunk
through the form (which changes with the type, ticks the password rules as they are
typed, shows the proxy only when switched on and renders number examples for the chosen
country), watches it register, copies its SIP address, runs a test call that a phone
answers, edits it and deletes it. Over HTTP: every mistake is said in words on its field,
and viewers change nothing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from atende.dashboard.trunk_forms import format_examples
from tests.e2e.test_outbound import AI_PASS, USERS, phone
from tests.e2e.test_trunks import registration
from tests.peers.atende import AtendeProcess
from tests.peers.audio import speech_wav
from tests.peers.chromium import chromium, screenshot_path
from tests.peers.dashboard import make_user, sign_in, signed_in
from tests.peers.kamailio import NAMED_EXTENSIONS, Kamailio


@pytest.fixture
async def pbx(tmp_path: Path) -> AsyncIterator[Kamailio]:
    k = Kamailio(tmp_path / "pbx", USERS)
    await k.start()
    yield k
    await k.stop()


async def shown(page: Page, selector: str, visible: bool) -> None:
    if visible:
        await expect(page.locator(selector)).to_be_visible()
    else:
        await expect(page.locator(selector)).to_be_hidden()


async def test_an_admin_integrates_tests_edits_and_deletes_a_trunk(
        atende: AtendeProcess, pbx: Kamailio, tmp_path: Path) -> None:
    make_user(atende, "tess")
    wav = speech_wav(tmp_path / "alice.wav", [(1.0, "Hello, this is Alice.")], tail_s=20)
    alice = await phone(tmp_path, pbx, "alice", wav)
    try:
        async with chromium() as browser:
            context = await browser.new_context(viewport={"width": 1100, "height": 900})
            await context.grant_permissions(["clipboard-read", "clipboard-write"],
                                            origin=atende.base)
            page = await context.new_page()
            await sign_in(page, atende.base, "tess")
            await page.click("nav >> text=Phone numbers")
            await expect(page.locator("h1")).to_have_text("Your phone numbers")
            await page.click("text=Integrate SIP trunk")
            await expect(page.locator("h1")).to_have_text("Integrate SIP trunk")

            # The type selector changes the form.
            await shown(page, "input[name=username]", True)
            await shown(page, "input[name=dial_string]", False)
            await page.check("input[name=kind][value=freeswitch]")
            await shown(page, "input[name=dial_string]", True)
            await shown(page, "input[name=username]", False)
            await shown(page, "input[name=host]", False)
            await page.check("input[name=kind][value=did]")
            await shown(page, "input[name=username]", True)
            await shown(page, "input[name=extension_pattern]", False)
            await expect(page.locator("text=Phone number (e.g. +1 555 0123)")).to_be_visible()
            await page.check("input[name=kind][value=extension]")
            await shown(page, "input[name=extension_pattern]", True)

            # The password rules, as they are typed.
            await page.fill("input[name=password]", "short")
            await expect(page.locator("[data-rule=length]")).to_have_class(re.compile("unmet"))
            await expect(page.locator("[data-rule=digit]")).to_have_class(re.compile("unmet"))
            await expect(page.locator("[data-rule=length] .icon")).to_have_text("✗")
            await page.fill("input[name=password]", AI_PASS)
            for rule in ("length", "digit", "upper", "lower", "special"):
                await expect(page.locator(f"[data-rule={rule}]")).to_have_class(
                    re.compile(r"\bmet\b"))

            # The outbound proxy only when switched on; TLS's certificate check only on TLS.
            await shown(page, "input[name=outbound_proxy]", False)
            await page.check("input[name=use_outbound_proxy]")
            await shown(page, "input[name=outbound_proxy]", True)
            await page.uncheck("input[name=use_outbound_proxy]")
            await shown(page, "input[name=outbound_proxy]", False)
            await shown(page, "input[name=tls_verify]", False)
            await page.select_option("select[name=transport]", "tls")
            await shown(page, "input[name=tls_verify]", True)
            await page.select_option("select[name=transport]", "udp")

            # Number formats with examples for the chosen country and address.
            await page.fill("input[name=host]", "127.0.0.1")
            await page.select_option("select[name=country]", "BR")
            for e in format_examples("BR", "127.0.0.1"):
                await expect(page.locator(f"[data-example={e.value}]")).to_have_text(e.written)
                await expect(page.locator(f"[data-example-uri={e.value}]")).to_have_text(
                    e.request_uri)
            await page.select_option("select[name=country]", "US")
            national = next(e for e in format_examples("US", "127.0.0.1")
                            if e.value == "national")
            await expect(page.locator("[data-example=national]")).to_have_text(
                national.written)

            await page.fill("input[name=name]", "Office PBX")
            await page.fill("input[name=number]", "ai")
            await page.fill("input[name=username]", "ai")
            await page.fill("input[name=port]", str(pbx.port))
            await page.fill("input[name=extension_pattern]", NAMED_EXTENSIONS)
            await page.screenshot(path=screenshot_path("trunk-new"), full_page=True)
            await page.click("text=Save trunk")

            # Its page: saved, registering on its own, our SIP address to copy.
            await expect(page.locator("h1")).to_have_text("Office PBX")
            await expect(page.locator(".done")).to_contain_text("The trunk is saved.")
            state = page.locator("[data-trunk-state]")
            await expect(state).to_contain_text("Connected: registered with 127.0.0.1",
                                                timeout=15_000)
            assert pbx.contacts("ai")
            address = await page.locator(".copyable code").text_content()
            assert address and address.startswith("sip:t")
            await page.click("button[data-copy]")
            await expect(page.locator(".copied")).to_have_text(" Copied.")
            assert await page.evaluate("navigator.clipboard.readText()") == address

            # The test call: step by step, and a phone that answers.
            await page.fill("input[name=to]", "alice")
            await page.click("text=Run the test")
            await expect(page.locator("h3")).to_have_text("The test passed", timeout=40_000)
            steps = page.locator(".steps li")
            await expect(steps).to_have_count(2)
            await expect(steps.nth(0)).to_contain_text("Registration: passed")
            await expect(steps.nth(1)).to_contain_text(
                f"Test call to sip:alice@127.0.0.1:{pbx.port}: passed — answered, and "
                "audio flowed both ways")
            await page.screenshot(path=screenshot_path("trunk"), full_page=True)
            trunk_id = page.url.rstrip("/").split("/")[-2]

            # A test call to a phone that is not there fails, saying why.
            await page.fill("input[name=to]", "bob")
            await page.click("text=Run the test")
            await expect(page.locator("h3")).to_have_text("The test failed", timeout=40_000)
            await expect(page.locator(".steps li").nth(1)).to_contain_text("480")

            # Editing: the password stays when left empty; switching the proxy on sends the
            # registration through it.
            registers = pbx.requests("REGISTER")
            await page.click("text=Edit")
            await expect(page.locator("input[name=password]")).to_have_value("")
            await page.fill("input[name=name]", "Front desk")
            await page.check("input[name=use_outbound_proxy]")
            await page.fill("input[name=outbound_proxy]", f"127.0.0.1:{pbx.port}")
            await page.click("text=Save trunk")
            await expect(page.locator(".done")).to_contain_text("Saved.")
            await expect(page.locator("h1")).to_have_text("Front desk")
            await expect(page.locator(".facts")).to_contain_text(f"127.0.0.1:{pbx.port}")
            await registration(atende, trunk_id, "registered")
            assert pbx.requests("REGISTER") > registers  # registered again, same password
            await expect(state).to_contain_text("Connected", timeout=15_000)

            # The list on a phone-sized screen, then deleting (after a confirmation).
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.goto(atende.base + "/trunks")
            await expect(page.locator(f'[data-trunk-state="{trunk_id}"]')).to_contain_text(
                "Connected")
            assert await page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth")
            await page.screenshot(path=screenshot_path("trunks-phone"), full_page=True)
            await page.click("text=Front desk")
            page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.click("text=Delete this trunk")
            await expect(page.locator(".done")).to_have_text("Trunk 'Front desk' is deleted.")
            async with asyncio.timeout(10):
                while pbx.contacts("ai"):  # it unregistered
                    await asyncio.sleep(0.1)
            assert atende.api.get(f"/v1/trunks/{trunk_id}").status_code == 404
    finally:
        await alice.stop()


def test_mistakes_are_said_on_their_fields_and_viewers_change_nothing(
        atende: AtendeProcess) -> None:
    make_user(atende, "fred")
    make_user(atende, "vera", "viewer")
    admin, csrf = signed_in(atende, "fred")
    form = {"csrf": csrf, "kind": "did", "name": "Support line", "number": "+1 202 555 0190",
            "username": "acme", "password": "short", "host": "sip.carrier.test:5060",
            "country": "US", "number_format": "intl_plus", "inbound_auth": "ip",
            "allowed_ips": "203.0.113.0/24\n10.0.0.300", "transport": "udp",
            "enabled": "on", "port": "50x60", "use_outbound_proxy": "on",
            "outbound_proxy": ""}
    r = admin.post("/trunks/new", data=form)
    assert r.status_code == 400
    problems = dict(re.findall(r'<span class="problem" id="([a-z_]+)-problem"[^>]*>([^<]+)<',
                               r.text))
    assert problems.keys() == {"port", "outbound_proxy"}  # before the API's own checks
    assert "whole number" in problems["port"]
    form.update(port="5060", use_outbound_proxy="")
    r = admin.post("/trunks/new", data=form)
    assert r.status_code == 400
    problems = dict(re.findall(r'<span class="problem" id="([a-z_]+)-problem"[^>]*>([^<]+)<',
                               r.text))
    assert "at least 12 characters" in problems["password"]
    assert "without a port" in problems["host"]
    assert "not an IP address" in problems["allowed_ips"]
    assert 'value="Support line"' in r.text and "short" not in r.text  # kept; not echoed
    assert 'aria-invalid="true" aria-describedby="password-problem"' in r.text

    form.update(password="Provider-Pass-2024", host="sip.carrier.test",
                allowed_ips="203.0.113.0/24")
    r = admin.post("/trunks/new", data=form)
    assert r.status_code == 201, r.text[:3000]
    listed = {t["name"]: t for t in atende.api.get("/v1/trunks").json()}
    made = listed["Support line"]
    assert made["allowed_ips"] == ["203.0.113.0/24"] and made["outbound_proxy"] is None
    assert made["sip_address"] in r.text  # the address to give the carrier
    # The same number again, however written: the service's refusal, on the number.
    r = admin.post("/trunks/new", data={**form, "name": "Again",
                                        "number": "(202) 555-0190"})
    assert r.status_code == 400
    assert re.search(r'id="number-problem"[^>]*>number: trunk &#39;Support line&#39; '
                     r"already has \+12025550190<", r.text)

    viewer, viewer_csrf = signed_in(atende, "vera")
    assert viewer.get("/trunks").status_code == 200
    assert "Support line" in viewer.get(f"/trunks/{made['id']}").text
    for path in ("/trunks/new", f"/trunks/{made['id']}/edit"):
        assert viewer.get(path).status_code == 403
    for path in ("/trunks/new", f"/trunks/{made['id']}/edit", f"/trunks/{made['id']}/delete",
                 f"/trunks/{made['id']}/test"):
        r = viewer.post(path, data={**form, "csrf": viewer_csrf, "name": "Mine"})
        assert r.status_code == 403 and "viewers cannot change anything" in r.text
    # An admin's form without its token, or from another site, changes nothing either.
    r = admin.post(f"/trunks/{made['id']}/delete", data={"csrf": "forged"})
    assert r.status_code == 403
    r = admin.post(f"/trunks/{made['id']}/delete", data={"csrf": csrf},
                   headers={"Origin": "http://evil.test"})
    assert r.status_code == 403
    assert atende.api.get(f"/v1/trunks/{made['id']}").json()["name"] == "Support line"
    r = admin.post(f"/trunks/{made['id']}/delete", data={"csrf": csrf})
    assert r.status_code == 303
    assert atende.api.get(f"/v1/trunks/{made['id']}").status_code == 404
