"""Dashboard users for tests against a running atende: made with `atende user create` as
an operator would, signed in from Chromium or from a plain HTTP client."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
from playwright.async_api import Page, expect

from tests.peers.atende import AtendeProcess

PASSWORD = "browser passphrase 1"


def make_user(atende: AtendeProcess, username: str, role: str = "admin") -> None:
    made = subprocess.run(
        [sys.executable, "-m", "atende", "user", "create", "--username", username, "--role",
         role], env={**atende.env, "ATENDE_USER_PASSWORD": PASSWORD}, cwd=atende.workdir,
        capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr


async def sign_in(page: Page, base: str, username: str) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Calls")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def signed_in(atende: AtendeProcess, username: str) -> tuple[httpx.Client, str]:
    """An HTTP client signed in as ``username``, and its session's CSRF token."""
    client = httpx.Client(base_url=atende.base, timeout=30)
    r = client.post("/login", data={"username": username, "password": PASSWORD},
                    follow_redirects=True)
    assert r.status_code == 200 and r.url.path == "/calls", r.text[:2000]
    return client, csrf_of(r.text)
