"""Debian's Chromium, driven by Playwright (which cannot download its own browsers here:
it is pointed at /usr/bin/chromium). Screenshots go to build/screenshots/ as the tests'
artefacts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import httpx
from playwright.async_api import Browser, async_playwright

from tests.peers.debian import require
from tests.peers.net import free_port

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


def _log_file(workdir: Path) -> BinaryIO:
    workdir.mkdir(parents=True, exist_ok=True)
    return (workdir / "chromium.log").open("wb")


@asynccontextmanager
async def remote_chromium(workdir: Path, microphone: Path) -> AsyncIterator[int]:
    """A headless Chromium of its own (not Playwright's) with remote debugging on a
    loopback port, as a headless deployment runs it for ``chromeRemoteURL``: its port.
    Its fake microphone plays ``microphone``."""
    path = require("chromium")
    port = free_port()
    log = _log_file(workdir)
    proc = await asyncio.create_subprocess_exec(
        path, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={workdir / 'profile'}", "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}",
        "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
        "--disable-features=WebRtcHideLocalIpsWithMdns", "about:blank",
        stdout=log, stderr=log)
    try:
        async with asyncio.timeout(20), httpx.AsyncClient(trust_env=False) as client:
            while True:
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/json/version")).is_success:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
