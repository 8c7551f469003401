"""The bridge's configuration kept in the store and applied live: a new port gets a new
listener while the old one lets its calls end; new credentials, server or extension are
taken from the next call and registration on; ``enabled: false`` refuses new calls and
lets the calls in progress end. Both routes (the seed's and /v1/bridge) and the server's
start-up go through here."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from atende.aio import BackgroundTasks
from atende.bridge.browser import FINAL, BrowserCall, BrowserCalls
from atende.bridge.devtools import DevToolsError, close_page, open_page
from atende.bridge.helper import Reachability, check
from atende.bridge.listener import BridgeListener, ListenerParts
from atende.bridge.page_auth import PageAuth, PageTokens
from atende.bridge.settings import BridgeConfig, BridgeIn, problems
from atende.bridge.web import WAIT_S, PageServer, page_app
from atende.channels.webrtc.channel import WebRtcChannel
from atende.store import models
from atende.store.db import Store
from atende.store.secrets import SecretBox

log = logging.getLogger(__name__)
LINGER_CLOSE_S = 5.0  # a retired listener, once idle: how long its last BYEs may take


class BridgeProblem(ValueError):
    """A configuration that cannot be applied: field → what to fix."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


class BrowserCallProblem(Exception):
    """A browser call cannot be opened in Chrome: the HTTP status and what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BridgeService:
    """The bridge's configuration, stored and in force."""

    def __init__(self, store: Store, box: SecretBox, parts: ListenerParts,
                 reserved: dict[int, str]) -> None:
        self.store = store
        self.box = box
        self.parts = parts
        self.reserved = reserved  # atende's own ports → what they are
        self.config = BridgeConfig()
        self.listener: BridgeListener | None = None
        self._retired: set[BridgeListener] = set()
        self._problem = ""
        self._helper: Reachability | None = None  # the last look at nodeRemoteHelper
        self._lock = asyncio.Lock()
        self._tasks = BackgroundTasks()
        # The WebRTC side: browsers' calls go to the listener's router like SIP clients'.
        self.webrtc = WebRtcChannel()
        self.tokens = PageTokens()
        self.browser = BrowserCalls(self.webrtc, self._ice_addresses, time.monotonic)
        self.auth = PageAuth(self.current, parts.direct, self.tokens, parts.guard)
        self.page: PageServer | None = None

    def current(self) -> BridgeConfig:
        return self.config

    async def load(self) -> None:
        """Start with the stored configuration. A port taken by another program leaves the
        bridge off, with the problem in its status, rather than stopping atende."""
        row = await self.store.run(lambda s: s.get(models.BridgeSettings, 1))
        if row is None:
            return
        config = BridgeConfig.of(row.settings, self._open(row.sip_password_enc),
                                 self._open(row.listen_secret_enc))
        async with self._lock:
            try:
                await self._apply(config)
            except BridgeProblem as exc:
                self.config = config
                self._problem = str(exc)
                log.error("the SIP bridge is not running: %s", exc)

    async def update(self, given: BridgeIn, keep_ours: bool = False) -> BridgeConfig:
        """Apply and store ``given`` (BridgeProblem: it cannot be, and nothing changed).
        ``keep_ours``: settings the seed's route does not know keep their values."""
        async with self._lock:
            try:
                new = given.applied_to(self.config, keep_ours)
            except ValueError as exc:
                raise BridgeProblem(problems(exc)) from None
            if new.assistant_id and await self.store.assistant_by_id(
                    new.assistant_id) is None:
                raise BridgeProblem({"assistant_id": f"no assistant with id "
                                                     f"{new.assistant_id!r}"})
            ports = [("listen_port", new.listen_port, ""),
                     ("webrtc_port", new.webrtc_port, "")]
            if self.parts.tls is not None:
                ports.append(("listen_port", new.listen_port + 1,
                              " (TLS takes the port after listen_port)"))
            clashes: dict[str, str] = {}
            for name, port, why in ports:
                if port in self.reserved:
                    clashes.setdefault(name, f"port {port} is atende's "
                                             f"{self.reserved[port]}{why}: choose another")
            if clashes:
                raise BridgeProblem(clashes)
            await self._apply(new)
            now = datetime.now(UTC)
            await self.store.run(lambda s: self._save(s, new, now))
            log.info("SIP bridge configuration applied: %s", "enabled" if new.enabled
                     else "disabled")
            return new

    def _page_host(self, config: BridgeConfig) -> str:
        return config.webrtc_ip or self.parts.bind

    def _ice_addresses(self) -> list[str]:
        return [self.config.webrtc_ip] if self.config.webrtc_ip else []

    async def _page_for(self, new: BridgeConfig) -> PageServer | None:
        """A page server that must start for ``new`` (None: the one running will do, or
        none is wanted)."""
        page = self.page
        host = self._page_host(new)
        if not new.enabled or (page is not None and (page.host, page.port)
                               == (host, new.webrtc_port)):
            return None
        fresh = PageServer(host, new.webrtc_port,
                           page_app(self.browser, self.auth, time.monotonic),
                           self.parts.page_tls)
        if page is not None and page.port == new.webrtc_port:
            await page.close()  # the same port on another address: it must let go first
            self.page = None
        try:
            await fresh.start()
        except OSError as exc:
            if page is not None and self.page is None:
                await page.start()  # as it was
                self.page = page
            field = "webrtc_ip" if new.webrtc_ip and exc.errno == 99 else "webrtc_port"
            where = f"{host}:{new.webrtc_port}"
            raise BridgeProblem({field: f"the calling page cannot listen on {where}: "
                                 f"{exc.strerror or exc}"}) from None
        return fresh

    async def _apply(self, new: BridgeConfig) -> None:
        listener = self.listener
        page = await self._page_for(new)
        if new.enabled and (listener is None or listener.port != new.listen_port):
            fresh = BridgeListener(new.listen_port, self.current, self.parts, self.browser)
            try:
                await fresh.start()
            except OSError as exc:
                await fresh.ua.close()
                if page is not None:
                    await page.close()
                raise BridgeProblem({"listen_port": f"port {new.listen_port} cannot be "
                                     f"used: {exc.strerror or exc}"}) from None
            self.listener = fresh
            self.webrtc.serve(fresh.calls)
            if listener is not None:
                self._retire(listener)
        elif not new.enabled and listener is not None:
            self.listener = None
            self._retire(listener)
        if page is not None or not new.enabled:
            old, self.page = self.page, page
            if old is not None:
                await old.close()  # (calls placed from it go on: their media is not HTTP)
        self.config = new
        self._problem = ""
        if self._helper is not None and self._helper.url != new.node_remote_helper:
            self._helper = None
        if new.node_remote_helper:
            self._tasks.spawn(self._look_at_helper(new.node_remote_helper))
        if self.listener is not None:
            await self.listener.follow(new)

    async def _look_at_helper(self, url: str) -> None:
        found = await check(url)
        if self.config.node_remote_helper == url:
            self._helper = found

    def _helper_status(self) -> dict[str, object] | None:
        url = self.config.node_remote_helper
        if not url:
            return None
        if self._helper is None or self._helper.stale(time.time()):
            self._tasks.spawn(self._look_at_helper(url))  # shown at the next look
        if self._helper is None:
            return {"url": url, "reachable": None, "detail": "being checked"}
        return self._helper.shown()

    def health(self) -> tuple[str, object, str | None]:
        """For /health: the bridge's state, and a problem when it should run and does
        not."""
        status = self.status()
        problem = None
        if status["state"] == "failed":
            problem = f"SIP bridge: {status['problem'] or 'not listening'}"
        return "bridge", {"state": status["state"]}, problem

    def _retire(self, listener: BridgeListener) -> None:
        """New calls are refused on ``listener``; once its calls have ended it closes."""
        listener.calls.stop_accepting()
        self._retired.add(listener)

        async def linger() -> None:
            try:
                await listener.unregister()
                await listener.calls.wait_idle()
                await listener.close(asyncio.get_running_loop().time() + LINGER_CLOSE_S)
            finally:
                self._retired.discard(listener)
            log.info("SIP bridge: the listener on port %d closed", listener.port)

        self._tasks.spawn(linger())

    def _save(self, s: Session, config: BridgeConfig, now: datetime) -> None:
        row = s.get(models.BridgeSettings, 1)
        if row is None:
            row = models.BridgeSettings(id=1)
            s.add(row)
        row.settings = config.plain()
        row.sip_password_enc = self.box.encrypt(config.sip_password) if config.sip_password \
            else None
        row.listen_secret_enc = (self.box.encrypt(config.listen_secret)
                                 if config.listen_secret else None)
        row.updated_at = now

    def _open(self, token: str | None) -> str:
        return self.box.decrypt(token) if token else ""

    def status(self) -> dict[str, Any]:
        """What the bridge is doing now, for the routes and /health."""
        config = self.config
        if not config.enabled:
            state = "disabled"
        elif self.listener is None:
            state = "failed"
        else:
            state = "listening"
        return {
            "state": state,
            "problem": self._problem or None,
            "listener": self.listener.status() if self.listener else None,
            "closing": [{"port": r.port, "calls": len(r.calls)} for r in self._retired],
            "node_remote_helper": self._helper_status(),
            "webrtc": self._webrtc_status(),
        }

    def _webrtc_status(self) -> dict[str, Any]:
        page = self.page
        if page is None:
            return {"state": "not served"}
        return {"state": "serving", "page": self.page_url(page),
                "ice_addresses": self._ice_addresses() or "atende's WebRTC addresses",
                "calls": len(self.webrtc.legs),
                "pages_waiting_for_calls": self.browser.watching(),
                "takes_calls": self.browser.present(),
                "calls_to_pages": self.browser.to_pages(),
                "chrome_remote_url": self.config.chrome_remote_url or None}

    def page_url(self, page: PageServer) -> str:
        host = f"[{page.host}]" if ":" in page.host else page.host
        return f"{page.scheme}://{host}:{page.port}/"

    # browser calls atende opens in a remote Chrome --------------------------------------
    async def open_browser_call(self, to: str) -> BrowserCall:
        """Open the calling page in the Chrome at ``chromeRemoteURL``, calling ``to``
        (BrowserCallProblem: it cannot be)."""
        config, page = self.config, self.page
        if not config.enabled or page is None or self.listener is None:
            raise BrowserCallProblem(409, "the bridge is not serving its calling page: "
                                          "enable it first")
        if not config.chrome_remote_url:
            raise BrowserCallProblem(409, "set chromeRemoteURL (chrome_remote_url) to the "
                                          "remote Chrome's debugging address first")
        if page.host in ("0.0.0.0", "::"):
            raise BrowserCallProblem(409, "set wasmServerIP (webrtc_ip): the address the "
                                          "remote Chrome reaches the calling page at")
        token, grant = self.tokens.issue(to, time.monotonic())
        call = self.browser.expect(grant)
        url = f"{self.page_url(page)}?{urlencode({'to': to, 'auto': 1, 'token': token})}"
        try:
            target = await open_page(config.chrome_remote_url, url)
        except DevToolsError as exc:
            await self.browser.end(call.id)
            raise BrowserCallProblem(502, str(exc)) from None
        self._tasks.spawn(self._close_tab_after(call, config.chrome_remote_url, target))
        log.info("bridge: opened a call to %s in the Chrome at %s (call %s)", to,
                 config.chrome_remote_url, call.id)
        return call

    async def _close_tab_after(self, call: BrowserCall, remote: str, target: str) -> None:
        """Close the tab atende opened once its call is over."""
        while call.state not in FINAL:
            if await self.browser.wait(call.id, call.state, WAIT_S) is None:
                break
        try:
            await close_page(remote, target)
        except DevToolsError as exc:
            log.warning("bridge: could not close the Chrome tab of call %s: %s", call.id, exc)

    async def close(self, deadline: float) -> None:
        """Hang up every bridge call and stop listening (by ``deadline``, loop time)."""
        listeners = [x for x in (self.listener, *self._retired) if x is not None]
        self.listener = None
        await self.browser.close()
        await self.webrtc.close()
        if self.page is not None:
            page, self.page = self.page, None
            await page.close()
        self._tasks.cancel_all()
        await asyncio.gather(*(x.close(deadline) for x in listeners),
                             return_exceptions=True)
