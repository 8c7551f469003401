"""Debian's Chromium, driven by Playwright (which cannot download its own browsers here:
it is pointed at /usr/bin/chromium). Screenshots go to build/screenshots/ as the tests'
artefacts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from tests.peers.debian import require

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@asynccontextmanager
async def chromium(microphone: Path | None = None) -> AsyncIterator[Browser]:
    """A headless Chromium (no sandbox: the tests run as root). ``microphone``: a WAV the
    fake microphone plays (in a loop), for WebRTC calls; ICE then stays on loopback."""
    path = require("chromium")
    args = ["--no-sandbox", "--disable-gpu"]
    if microphone is not None:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone}",
                 "--allow-loopback-in-peer-connection",
                 "--autoplay-policy=no-user-gesture-required",
                 "--disable-features=WebRtcHideLocalIpsWithMdns"]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path, headless=True, args=args)
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
