"""The bridge's WebRTC side: a headless Chromium started with remote debugging and a fake
microphone, driven by atende through ``chromeRemoteURL``, calls bob (baresip behind
kamailio) through the bridge; bob hears the browser's tone on the RTP he received, and
the page hears bob's. The page's own routes refuse strangers and bad requests, and a
refused call is shown on the page as SIP said it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright, expect

from tests.e2e.test_bridge import (
    ALICE_HZ,
    BOB_HZ,
    LISTEN_SECRET,
    LISTEN_USER,
    _status,
    bridge,  # noqa: F401  (a fixture)
    configure,
    tone_heard,
)
from tests.e2e.test_bridge_transfer import until
from tests.e2e.test_outbound import pbx, phone  # noqa: F401  (pbx is a fixture)
from tests.peers.atende import AtendeProcess
from tests.peers.audio import Tone, speech_wav
from tests.peers.chromium import chromium, remote_chromium
from tests.peers.kamailio import Kamailio
from tests.peers.net import free_port


def with_page(atende: AtendeProcess, shown: dict[str, Any], **more: Any) -> dict[str, Any]:
    """The bridge as ``shown``, now also serving its calling page on loopback."""
    fields = {k: v for k, v in shown.items() if k != "status"}
    return configure(atende, **{**fields, "wasmServerPort": free_port(),
                                "wasmServerIP": "127.0.0.1", **more})


async def test_a_remote_chrome_calls_a_phone_through_the_bridge(
        atende: AtendeProcess, pbx: Kamailio, bridge: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    mic = speech_wav(tmp_path / "mic.wav", [(0.3, Tone(ALICE_HZ, 30.0))], 1)
    bob = await phone(tmp_path, pbx, "bob", speech_wav(tmp_path / "b.wav",
                                                       [(0.3, Tone(BOB_HZ, 30.0))], 5))
    try:
        async with remote_chromium(tmp_path / "chrome", mic) as port:
            shown = with_page(atende, bridge, chromeRemoteURL=f"ws://127.0.0.1:{port}")
            webrtc = shown["status"]["webrtc"]
            page_port = shown["wasmServerPort"]
            assert webrtc["state"] == "serving", webrtc
            assert webrtc["page"] == f"http://127.0.0.1:{page_port}/"
            assert webrtc["ice_addresses"] == ["127.0.0.1"]
            r = atende.api.post("/v1/bridge/browser-calls", json={"to": "bob"})
            assert r.status_code == 201, r.text
            call_id = r.json()["call_id"]
            assert r.json()["state"] == "opening"
            await bob.wait_event("CALL_ESTABLISHED", timeout=30)
            await until(lambda: tone_heard(bob, ALICE_HZ), 15)  # the browser's microphone
            state = atende.api.get(f"/v1/bridge/browser-calls/{call_id}").json()
            assert state["state"] == "answered" and "sdp" not in state
            async with async_playwright() as p:
                chrome = await p.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
                [page] = [pg for c in chrome.contexts for pg in c.pages
                          if f":{page_port}/" in pg.url]
                box = page.locator("[data-bridge-call]")
                await expect(box).to_have_attribute("data-state", "connected")
                # bob's tone, heard in the page: loud for a second and more.
                await expect(box).to_have_attribute("data-heard-loud", _at_least(20),
                                                    timeout=15_000)
                assert float(await box.get_attribute("data-heard-peak") or 0) > 0.05
            r = atende.api.delete(f"/v1/bridge/browser-calls/{call_id}")
            assert r.status_code == 200, r.text
            await bob.wait_event("CALL_CLOSED", timeout=10)
            call = await atende.wait_for_call(
                lambda c: c["id"] == call_id and c["status"] == "completed", timeout=15)

            async def tab_closed() -> bool:
                async with httpx.AsyncClient(trust_env=False) as client:
                    tabs = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
                return not any(f":{page_port}/" in t.get("url", "") for t in tabs)

            async with asyncio.timeout(10):
                while not await tab_closed():
                    await asyncio.sleep(0.2)
    finally:
        await bob.stop()
    assert call["channel"] == "bridge" and call["from_user"] == "chrome"
    assert call["to_uri"] == f"sip:bob@127.0.0.1:{pbx.port}"
    ended = next(e for e in call["events"] if e["kind"] == "bridge_ended")["data"]
    assert ended["hung_up_first"] == "caller"
    for side in ("from_caller", "from_callee"):  # the browser's RTP, and bob's
        assert ended[side]["packets"] > 40 and ended[side]["lost"] == 0, ended
        assert 0 <= ended[side]["jitter_ms"] < 30, ended
    log = atende.log()
    assert "through 16 kHz audio (transcoded)" in log  # Opus on one side, G.711 the other
    assert "token=" not in log and LISTEN_SECRET not in log


def _at_least(n: int) -> Any:
    import re

    return re.compile(r"^(" + "|".join(
        [rf"[{str(n)[0]}-9]\d" if n >= 10 else rf"[{n}-9]", r"\d{3,}"]) + ")$")


async def test_the_calling_page_refuses_strangers_and_shows_a_refused_call(
        atende: AtendeProcess, pbx: Kamailio, bridge: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    shown = with_page(atende, bridge)
    base = shown["status"]["webrtc"]["page"]
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=10) as web:
        r = await web.get("")
        assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
        r = await web.get("", auth=(LISTEN_USER, "Not-The-Secret-1"))
        assert r.status_code == 401
        r = await web.post("calls", auth=(LISTEN_USER, LISTEN_SECRET), json={"to": "bob"})
        assert r.status_code == 400 and "JSON" in r.json()["error"]
        r = await web.post("calls", auth=(LISTEN_USER, LISTEN_SECRET),
                           json={"to": "bob@evil", "sdp": "v=0\r\n"})
        assert r.status_code == 400 and r.json()["error"].startswith("to:")
        r = await web.post("calls", auth=(LISTEN_USER, LISTEN_SECRET),
                           json={"to": "bob", "sdp": "hello"})
        assert r.status_code == 400 and r.json()["error"].startswith("sdp:")
        r = await web.get("calls/0123", auth=(LISTEN_USER, LISTEN_SECRET))
        assert r.status_code == 404
        r = await web.get("", headers={"X-Bridge-Token": "made-up"})
        assert r.status_code == 401
    r = atende.api.post("/v1/bridge/browser-calls", json={"to": "bob"})
    assert r.status_code == 409 and "chromeRemoteURL" in r.json()["detail"]
    r = atende.api.post("/v1/bridge/browser-calls", json={"to": "bob@evil"})
    assert r.status_code == 422
    # A Chrome that is not there: 502, saying so; nothing is left waiting for it.
    fields = {k: v for k, v in shown.items() if k != "status"}
    configure(atende, **{**fields, "chromeRemoteURL": f"ws://127.0.0.1:{free_port()}"})
    r = atende.api.post("/v1/bridge/browser-calls", json={"to": "bob"})
    assert r.status_code == 502 and "Chrome" in r.json()["detail"], r.text
    # An address this machine does not have cannot carry the page: 400 naming it, and the
    # page stays where it was.
    r = atende.api.post("/call/bridge/config", json={**fields, "wasmServerIP": "192.0.2.1"})
    assert r.status_code == 400, r.text
    assert [d["loc"][-1] for d in r.json()["detail"]] == ["wasmServerIP"], r.text
    assert _status(atende)["webrtc"]["page"] == base

    mic = speech_wav(tmp_path / "mic.wav", [(0.3, Tone(ALICE_HZ, 5.0))], 1)
    async with chromium(mic) as browser:
        context = await browser.new_context(http_credentials={
            "username": LISTEN_USER, "password": LISTEN_SECRET})
        page = await context.new_page()
        await page.goto(base)
        await page.fill("#to", "nobody-here")
        await page.click("[data-call]")
        box = page.locator("[data-bridge-call]")
        await expect(box).to_have_attribute("data-state", "refused", timeout=20_000)
        await expect(page.locator("[data-status]")).to_contain_text("404 Not Found")
    call = await atende.wait_for_call(
        lambda c: c["channel"] == "bridge" and c["to_uri"].startswith("sip:nobody-here"),
        timeout=10)
    assert call["status"] == "rejected" and call["sip_status"] == 404
    assert call["from_user"] == LISTEN_USER


async def test_the_sip_servers_call_to_the_extension_rings_the_page(
        atende: AtendeProcess, pbx: Kamailio, bridge: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    """No SIP client is registered with the bridge, so bob's call to carol (the bridge's
    extension) rings the calling page open in Chromium. One page declines a first call
    (bob is told 603); the second call is answered, and each side hears the other."""
    shown = with_page(atende, bridge)
    base = shown["status"]["webrtc"]["page"]
    # No page waits yet (the last test's has gone): the call is refused as before, 480.
    await until(lambda: not _status(atende)["webrtc"]["takes_calls"], 10)
    mic = speech_wav(tmp_path / "mic.wav", [(0.3, Tone(ALICE_HZ, 30.0))], 1)
    bob = await phone(tmp_path, pbx, "bob", speech_wav(tmp_path / "b.wav",
                                                       [(0.3, Tone(BOB_HZ, 30.0))], 5))
    before = {c["id"] for c in atende.calls()}
    try:
        await bob.command("dial", "sip:carol@example.test")
        closed = await bob.wait_event("CALL_CLOSED", timeout=15)
        assert "480" in closed.get("param", ""), closed
        async with chromium(mic) as browser:
            context = await browser.new_context(http_credentials={
                "username": LISTEN_USER, "password": LISTEN_SECRET})
            page = await context.new_page()
            await page.goto(base)
            box = page.locator("[data-bridge-call]")
            await until(lambda: _status(atende)["webrtc"]["pages_waiting_for_calls"] == 1, 10)
            # Declined on the page: bob hears 603.
            bob.events.clear()
            await bob.command("dial", "sip:carol@example.test")
            await expect(box).to_have_attribute("data-state", "incoming", timeout=15_000)
            await expect(page.locator("[data-status]")).to_contain_text("Incoming call from")
            await page.click("[data-decline]")
            closed = await bob.wait_event("CALL_CLOSED", timeout=15)
            assert "603" in closed.get("param", ""), closed
            await expect(box).to_have_attribute("data-state", "declined")
            # Answered on the page (its Answer button): both hear each other.
            bob.events.clear()
            await bob.command("dial", "sip:carol@example.test")
            await expect(box).to_have_attribute("data-state", "incoming", timeout=15_000)
            await page.click("[data-answer]")
            await bob.wait_event("CALL_ESTABLISHED", timeout=20)
            await expect(box).to_have_attribute("data-state", "connected", timeout=15_000)
            await until(lambda: tone_heard(bob, ALICE_HZ), 15)  # the page's microphone
            await expect(box).to_have_attribute("data-heard-loud", _at_least(20),
                                                timeout=15_000)
            assert _status(atende)["webrtc"]["calls_to_pages"] == 1
            await bob.command("hangup")
            await expect(box).to_have_attribute("data-state", "ended", timeout=15_000)
            # The page closed, its long poll is dropped at once (not in 25 s): calls to
            # the extension no longer ring it.
            await until(lambda: _status(atende)["webrtc"]["pages_waiting_for_calls"] == 1, 10)
            await page.close()
            await until(lambda: not _status(atende)["webrtc"]["takes_calls"], 5)
    finally:
        await bob.stop()
    full = [atende.call(c["id"]) for c in atende.calls()
            if c["channel"] == "bridge" and c["id"] not in before]
    by_status = {c["status"]: c for c in full}
    assert sorted(by_status) == ["completed", "rejected"], full  # (no record of the 480)
    assert all(c["direction"] == "outbound" and c["to_uri"] == "webrtc:carol" for c in full)
    assert by_status["rejected"]["sip_status"] == 603
    ended = next(e for e in by_status["completed"]["events"]
                 if e["kind"] == "bridge_ended")["data"]
    assert ended["hung_up_first"] == "caller"
    for side in ("from_caller", "from_callee"):  # bob's RTP, and the page's
        assert ended[side]["packets"] > 40 and ended[side]["lost"] == 0, ended
