"""The dashboard over a real store, through HTTP as a browser speaks it: the first admin
made with the server's API key, sign-in and its limits, sessions that end, CSRF, viewers
who change nothing, and the calls with their transcripts. (In a real browser:
tests/e2e/test_dashboard_browser.py.)"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from atende.agent.brain import DEFAULT_RULES
from atende.api.app import create_api
from atende.dashboard.accounts import LoginLimiter
from atende.dashboard.pages import dashboard_router
from atende.dashboard.web import COOKIE, Web, install
from atende.store import apikeys, models
from atende.store.db import Store, insert_call, insert_turn, update_call
from atende.store.models import WebSession

ADMIN_KEY = apikeys.new_key()
PASSWORD = "a long passphrase"


@dataclass
class Site:
    store: Store
    browser: TestClient
    clock: list[float]

    def new_browser(self) -> TestClient:
        return TestClient(self.browser.app, base_url="http://atende.test")


@pytest.fixture
def site(tmp_path: object) -> Iterator[Site]:
    store = Store(f"sqlite:///{tmp_path}/store.db")
    asyncio.run(store.init(DEFAULT_RULES.to_dict()))
    asyncio.run(store.run(apikeys.create("admin", ADMIN_KEY)))
    clock = [1000.0]

    async def key_ok(key: str) -> bool:
        row = await store.run(apikeys.lookup(key)) if key else None
        return row is not None and row.domain_uuid is None

    app = create_api(store)
    install(app, [dashboard_router(Web(store), key_ok, clock=lambda: clock[0],
                                   limiter=LoginLimiter(max_failures=3, window_s=60))])
    with TestClient(app, base_url="http://atende.test") as browser:
        yield Site(store, browser, clock)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(browser: TestClient, username: str, password: str = PASSWORD) -> str:
    """Signs in; the CSRF token of the pages."""
    r = browser.post("/login", data={"username": username, "password": password})
    assert r.status_code == 200 and r.url.path == "/calls", r.text
    return csrf_of(r.text)


def make_admin(site: Site) -> str:
    r = site.browser.post("/setup", data={"api_key": ADMIN_KEY, "username": "ana",
                                          "password": PASSWORD})
    assert r.status_code == 200 and r.url.path == "/calls", r.text
    return csrf_of(r.text)


def test_the_first_admin_needs_the_servers_api_key(site: Site) -> None:
    b = site.browser
    assert b.get("/").url.path == "/setup"
    assert b.get("/login").url.path == "/setup"  # nobody to sign in as yet
    r = b.post("/setup", data={"api_key": "atk_guess", "username": "eve",
                               "password": PASSWORD})
    assert r.status_code == 400 and "not the server&#39;s API key" in r.text
    r = b.post("/setup", data={"api_key": ADMIN_KEY, "username": "ana", "password": "short"})
    assert r.status_code == 400 and "at least 10 characters" in r.text
    make_admin(site)
    assert "ana (admin)" in b.get("/calls").text
    # Once there is an admin, the setup page is gone for everyone.
    stranger = site.new_browser()
    assert stranger.get("/setup").url.path == "/login"
    r = stranger.post("/setup", data={"api_key": ADMIN_KEY, "username": "eve",
                                      "password": PASSWORD})
    assert r.url.path == "/login"
    assert stranger.get("/calls").url.path == "/login"  # not signed in


def test_sign_in_is_limited_and_sessions_end(site: Site) -> None:
    make_admin(site)
    guesser = site.new_browser()
    for _ in range(3):
        r = guesser.post("/login", data={"username": "ana", "password": "wrong one!!"})
        assert r.status_code == 401 and "wrong user name or password" in r.text
    r = guesser.post("/login", data={"username": "ana", "password": PASSWORD})
    assert r.status_code == 429 and "try again in 60 s" in r.text  # even the right one
    site.clock[0] += 61
    sign_in(guesser, "ana")
    # Signing out ends the session on the server, not only in this browser.
    token = guesser.cookies.get(COOKIE)
    assert token
    csrf = csrf_of(guesser.get("/calls").text)
    assert guesser.post("/logout", data={"csrf": csrf}).url.path == "/login"
    replay = site.new_browser()
    replay.cookies.set(COOKIE, token)
    assert replay.get("/calls").url.path == "/login"
    # A session past its time is over too.
    sign_in(guesser, "ana")

    def expire(s: object) -> None:
        for row in s.query(WebSession):  # type: ignore[attr-defined]
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    asyncio.run(site.store.run(expire))
    assert guesser.get("/calls").url.path == "/login"


def test_forms_need_their_token_and_viewers_change_nothing(site: Site) -> None:
    csrf = make_admin(site)
    b = site.browser
    r = b.post("/users", data={"username": "vic", "password": PASSWORD, "role": "viewer"})
    assert r.status_code == 403 and "stale or from another site" in r.text
    r = b.post("/users", data={"username": "vic", "password": PASSWORD, "role": "viewer",
                               "csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = b.post("/users", data={"username": "vic", "password": PASSWORD, "role": "viewer",
                               "csrf": csrf})
    assert r.status_code == 200 and "vic can now sign in as viewer" in r.text
    r = b.post("/users", data={"username": "VIC", "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 400 and "is taken" in r.text

    viewer = site.new_browser()
    vcsrf = sign_in(viewer, "vic")
    page = viewer.get("/users").text
    assert "Add a user" not in page and "Delete" not in page
    r = viewer.post("/users", data={"username": "mal", "password": PASSWORD,
                                     "role": "admin", "csrf": vcsrf})
    assert r.status_code == 403 and "viewers cannot change anything" in r.text
    ana = next(u for u in asyncio.run(site.store.run(
        lambda s: list(s.query(models.User)))) if u.username == "ana")
    assert viewer.post(f"/users/{ana.id}/delete", data={"csrf": vcsrf}).status_code == 403
    assert "mal" not in b.get("/users").text and "ana" in b.get("/users").text


def test_calls_and_a_calls_conversation(site: Site) -> None:
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    async def seed() -> None:
        site.store.submit(insert_call(models.Call(
            id="c1", channel="sip", direction="inbound", from_uri="sip:1000@pbx",
            from_user="1000", to_uri="sip:assistant@h", to_user="assistant",
            status="completed", invite_at=t0)))
        site.store.submit(update_call("c1", answer_at=t0 + timedelta(seconds=1),
                                      end_at=t0 + timedelta(seconds=31),
                                      hangup_cause="remote_hangup"))
        for speaker, text, latency in [("assistant", "Hello <there>", None),
                                       ("caller", "When do you open?", None),
                                       ("assistant", "At nine.", 700),
                                       ("assistant", "Anything else?", 900)]:
            site.store.submit(insert_turn("c1", speaker=speaker, text=text, started_at=t0,
                                          ended_at=t0, interrupted=False,
                                          latency_ms=latency, stt_ms=300 if latency else None))
        await site.store.run(lambda s: None)

    asyncio.run(seed())
    make_admin(site)
    listed = site.browser.get("/calls").text
    assert "1 call." in listed and 'href="/calls/c1"' in listed and "completed" in listed
    page = site.browser.get("/calls/c1")
    assert page.status_code == 200
    assert "Hello &lt;there&gt;" in page.text  # what was said is shown, never run
    assert "When do you open?" in page.text and "p50 700 ms, p95 900 ms over 2 turns" \
        in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert site.browser.get("/calls/nope").status_code == 404
    assert site.browser.get("/calls", params={"status": "busy"}).text.count(
        'href="/calls/') == 0
