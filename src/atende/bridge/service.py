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

from sqlalchemy.orm import Session

from atende.aio import BackgroundTasks
from atende.bridge.helper import Reachability, check
from atende.bridge.listener import BridgeListener, ListenerParts
from atende.bridge.settings import BridgeConfig, BridgeIn, problems
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

    async def _apply(self, new: BridgeConfig) -> None:
        listener = self.listener
        if new.enabled and (listener is None or listener.port != new.listen_port):
            fresh = BridgeListener(new.listen_port, self.current, self.parts)
            try:
                await fresh.start()
            except OSError as exc:
                await fresh.ua.close()
                raise BridgeProblem({"listen_port": f"port {new.listen_port} cannot be "
                                     f"used: {exc.strerror or exc}"}) from None
            self.listener = fresh
            if listener is not None:
                self._retire(listener)
        elif not new.enabled and listener is not None:
            self.listener = None
            self._retire(listener)
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
            "webrtc": {"state": "not served", "detail": "this version bridges SIP clients "
                       "only; wasmServerPort, wasmServerIP and chromeRemoteURL are stored "
                       "for when the WebRTC side is served"},
        }

    async def close(self, deadline: float) -> None:
        """Hang up every bridge call and stop listening (by ``deadline``, loop time)."""
        listeners = [x for x in (self.listener, *self._retired) if x is not None]
        self.listener = None
        self._tasks.cancel_all()
        await asyncio.gather(*(x.close(deadline) for x in listeners),
                             return_exceptions=True)
