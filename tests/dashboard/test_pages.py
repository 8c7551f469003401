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
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from atende.agent.brain import DEFAULT_RULES
from atende.api.app import create_api
from atende.api.deliveries import Deliveries
from atende.dashboard.accounts import LoginLimiter
from atende.dashboard.call_pages import call_pages
from atende.dashboard.pages import dashboard_router
from atende.dashboard.stats_pages import stats_pages
from atende.dashboard.web import COOKIE, Web, install
from atende.store import apikeys, models
from atende.store.db import Store
from atende.store.models import WebSession
from atende.store.writes import insert_call, insert_turn, update_call
from atende.webhooks.outbox import Deliverer

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
    web = Web(store)
    install(app, [dashboard_router(web, key_ok, clock=lambda: clock[0],
                                   limiter=LoginLimiter(max_failures=3, window_s=60)),
                  call_pages(web, Deliveries(store, Deliverer(store, "secret")),
                             Path(str(tmp_path)) / "recordings"),
                  stats_pages(web)])
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


def test_calls_and_a_calls_conversation(site: Site, tmp_path: Path) -> None:
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    async def seed() -> None:
        site.store.submit(insert_call(
            id="c1", channel="sip", direction="inbound", from_uri="sip:1000@pbx",
            from_user="1000", to_uri="sip:assistant@h", to_user="assistant",
            status="completed", invite_at=t0, webhook_url="https://crm.example.com/hook",
            outcome="confirmed", fields={"party_size": "4"}))
        site.store.submit(update_call("c1", answer_at=t0 + timedelta(seconds=1),
                                      end_at=t0 + timedelta(seconds=31),
                                      hangup_cause="remote_hangup", recorded=True))
        site.store.submit(insert_call(
            id="c2", channel="sip", direction="outbound", from_uri="", to_uri="sip:x@pbx",
            status="no_answer", invite_at=t0 - timedelta(days=2), source="webhook"))
        at = t0 + timedelta(seconds=2)
        for speaker, text, latency, stt, llm, tts in [
                ("assistant", "Hello <there>", None, None, None, None),
                ("caller", "When do you open?", None, None, None, None),
                ("assistant", "At nine.", 700, 300, None, 120),
                ("assistant", "Anything else?", 1400, 400, 500, 200)]:
            site.store.submit(insert_turn("c1", speaker=speaker, text=text, started_at=at,
                                          ended_at=at, interrupted=False, latency_ms=latency,
                                          stt_ms=stt, llm_ms=llm, tts_ms=tts))
            at += timedelta(seconds=5)
        await site.store.run(lambda s: None)

    asyncio.run(seed())
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "c1.wav").write_bytes(b"RIFF....WAVE")
    csrf = make_admin(site)
    b = site.browser
    listed = b.get("/calls").text
    assert "2 calls." in listed and 'href="/calls/c1"' in listed and "completed" in listed

    def shown(**params: str) -> set[str]:
        r = b.get("/calls", params=params)
        assert r.status_code == 200, r.text
        return set(re.findall(r'href="/calls/(c\d)"', r.text))

    assert shown(status="busy") == set()
    assert shown(outcome="confirmed") == {"c1"}
    assert shown(source="webhook") == {"c2"} and shown(direction="inbound") == {"c1"}
    assert shown(since="2026-12-01") == {"c1"} and shown(until="2026-11-30") == {"c2"}
    assert shown(until="2026-12-01") == {"c1", "c2"}  # the whole day
    r = b.get("/calls", params={"since": "yesterday", "outcome": "happy"})
    assert r.status_code == 400
    assert "since: a date like 2026-12-01" in r.text and "outcome: &#39;happy&#39; is not" in r.text

    page = b.get("/calls/c1")
    assert page.status_code == 200
    assert "Hello &lt;there&gt;" in page.text  # what was said is shown, never run
    assert "When do you open?" in page.text
    assert "p50 700 ms, p95 1400 ms over 2 replies" in page.text
    assert '<dd class="field">4</dd>' in page.text  # what the conversation settled
    # The waterfall, on one scale: the slowest reply spans it.
    assert "turn end and the rest 280 ms → recognition 300 ms → synthesis 120 ms" in page.text
    assert "turn end and the rest 300 ms → recognition 400 ms → model 500 ms → synthesis " \
        "200 ms" in page.text
    assert 'class="seg-stt" x="200.0" y="2" width="214.3"' in page.text  # 300 of 1400 ms
    # The recording, with each turn's place in it (the call was answered at t0 + 1 s).
    assert 'src="/calls/c1/recording"' in page.text and 'data-at="1.00"' in page.text
    assert b.get("/calls/c1/recording").content == b"RIFF....WAVE"
    assert b.get("/calls/c2/recording").status_code == 404
    # c2 was taken by no assistant: none is named (not the default one)
    assert "<dt>Assistant</dt><dd>—</dd>" in b.get("/calls/c2").text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert b.get("/calls/nope").status_code == 404

    # Sending the result again: to the call's own URL, or to another.
    r = b.post("/calls/c1/deliveries", data={"csrf": csrf})
    assert r.status_code == 201
    assert "being sent again to https://crm.example.com/hook" in r.text
    assert r.text.count('class="delivery"') == 1
    r = b.post("/calls/c2/deliveries", data={"csrf": csrf})
    assert r.status_code == 400 and "the call has no webhook_url; give one" in r.text
    r = b.post("/calls/c1/deliveries", data={"csrf": csrf, "url": "ftp://x"})
    assert r.status_code == 400 and "url:" in r.text


def test_stats_as_plots_with_their_numbers(site: Site) -> None:
    now = datetime.now(UTC)

    async def seed() -> None:
        for i, (source, outcome, days_ago, latency) in enumerate([
                ("api", "confirmed", 0, 800), ("api", "declined", 0, 1200),
                ("api", "no_answer", 1, None), ("webhook", "wrong_person", 1, 2000),
                ("manual", "confirmed", 40, None)]):  # outside the last 30 days
            at = now - timedelta(days=days_ago, minutes=5)
            site.store.submit(insert_call(
                id=f"s{i}", channel="sip", direction="outbound", from_uri="", to_uri="x",
                status="completed", invite_at=at, source=source, task="ask",
                outcome=outcome))
            site.store.submit(update_call(f"s{i}", end_at=at + timedelta(seconds=30)))
            if latency:
                site.store.submit(insert_turn(f"s{i}", speaker="assistant", text="hi",
                                              started_at=at, ended_at=at,
                                              interrupted=False, latency_ms=latency))
        await site.store.run(lambda s: None)

    asyncio.run(seed())
    make_admin(site)
    page = site.browser.get("/stats")
    assert page.status_code == 200, page.text
    text = page.text
    assert "<dt>Calls</dt><dd>4</dd>" in text  # the manual call is 40 days old
    assert "p50 1200 ms · p95 2000 ms" in text
    # Success rate by how calls were started: a bar and its words.
    api = re.search(r'hbar-label">by the API</span>.*?width="([\d.]+)".*?hbar-words">([^<]+)<',
                    text, re.S)
    assert api and api.groups() == ("666.7", "67% — 2 of 3 calls with a task")
    hook = re.search(r'hbar-label">by webhook</span>.*?width="([\d.]+)"', text, re.S)
    assert hook and hook.group(1) == "0.0"
    assert len(re.findall(r": [1-9]\d* calls</title>", text)) == 2  # two days with calls
    assert len(re.findall(r": 0 calls</title>", text)) == 29  # the rest of the 31 days
    assert text.count('class="dot-p95"') == 2
    # The outcome mix, largest first.
    assert re.findall(r'hbar-label">([a-z ]+)</span>\s*<svg class="hbar"[^>]*><rect '
                      r'class="bar-count"', text) == ["confirmed", "declined", "no answer",
                                                      "wrong person"]
    year = site.browser.get("/stats", params={"days": 365}).text
    assert "<dt>Calls</dt><dd>5</dd>" in year
    bad = site.browser.get("/stats", params={"tz": "Mars/Olympus"})
    assert bad.status_code == 400 and "is not an IANA time zone" in bad.text
