"""Puts atende together: store, speech engines, SIP, the calls engine and the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import uuid
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from atende import native
from atende.agent.brain import DEFAULT_RULES
from atende.aio import all_before
from atende.api.abuse import abuse_router
from atende.api.app import create_api
from atende.api.assistants import AssistantService, assistants_router
from atende.api.bridge import bridge_routers
from atende.api.deliveries import Deliveries, deliveries_router
from atende.api.events import events_router
from atende.api.hooks import Hooks, hooks_router, trigger_router
from atende.api.live import CallControl, cancel_here, live_router, transfer_here
from atende.api.metrics import LiveFigures, metrics_router
from atende.api.nodes import nodes_router
from atende.api.outbound import CallStarter, outbound_router
from atende.api.providers import ProviderService, providers_router
from atende.api.recordings import recordings_router
from atende.api.stats import stats_router
from atende.api.trunks import TrunkService, trunks_router
from atende.bridge.listener import ListenerParts
from atende.bridge.service import BridgeService
from atende.bridge.transcript import Transcripts
from atende.calls.automation import Callback
from atende.calls.engine import CallEngine
from atende.calls.events import EventBus
from atende.calls.live import LiveCalls
from atende.calls.queue import CallQueue
from atende.calls.records import CallRecords
from atende.channels.dialer import DialRequest
from atende.channels.freeswitch.channel import FreeSwitchChannel
from atende.channels.freeswitch.dialer import FreeSwitchDialer
from atende.channels.freeswitch.inbound import EslInbound
from atende.channels.leg import CallInfo
from atende.channels.sip.outbound import SipDialer
from atende.channels.sip.overload import LoadMonitor, watch_loop
from atende.channels.sip.server import SipChannel
from atende.channels.sip.tls import ensure_self_signed, server_context
from atende.channels.sip.ua import UserAgent
from atende.channels.webrtc.channel import WebRtcChannel
from atende.channels.webrtc.ice import offer_addresses
from atende.cluster.nodes import Membership
from atende.cluster.places import Places
from atende.cluster.shared import Shared
from atende.cluster.trunks import TrunkFollower
from atende.config import Settings
from atende.dashboard.assistant_pages import assistant_pages
from atende.dashboard.automation_pages import automation_pages
from atende.dashboard.call_pages import call_pages
from atende.dashboard.live_pages import live_pages
from atende.dashboard.pages import dashboard_router
from atende.dashboard.stats_pages import stats_pages
from atende.dashboard.talk_pages import talk_pages
from atende.dashboard.trunk_pages import trunk_pages
from atende.dashboard.web import Web
from atende.dashboard.web import install as install_dashboard
from atende.egress import EgressPolicy
from atende.media.audio import wav
from atende.media.ports import PortAllocator
from atende.memory import keep_memory, settle
from atende.providers.registry import ProviderRegistry
from atende.providers.stt.whisper import WhisperSTT
from atende.store import apikeys
from atende.store.db import Store
from atende.store.secrets import SecretBox
from atende.telephony.abuse import AbuseGuard
from atende.telephony.dialing import TrunkDialer
from atende.telephony.guard import DirectCallPolicy
from atende.telephony.inbound import InboundGate
from atende.telephony.trunk_check import check_call
from atende.telephony.trunks import TrunkConfig, TrunkManager
from atende.webhooks.outbox import Deliverer, RetryPolicy

log = logging.getLogger("atende")


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: atende's serve() owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Atende:
    """The running server: builds the store, speech engines, SIP, the calls engine, the queue
    and the API from the settings, starts them in order and stops them in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_url, settings.node_id)
        self.membership = Membership(self.store, settings.node_id, settings.node_lease_s,
                                     lambda: datetime.now(UTC))
        self.executor = ThreadPoolExecutor(max_workers=settings.model_threads,
                                           thread_name_prefix="models")
        self.guard = AbuseGuard(settings.abuse_max_failures, settings.abuse_window_s,
                                settings.abuse_block_s, settings.sip_rate_per_s,
                                2 * settings.sip_rate_per_s, settings.abuse_max_user_failures,
                                settings.trunk_rate_per_s,
                                count_spent=settings.redis_url is not None,
                                own_proxies=settings.sip_proxy_list)
        self.load = LoadMonitor(settings.overload_lag_ms / 1000)
        self.ua = UserAgent(public_ip=settings.public_ip, guard=self.guard, load=self.load)
        self.engine: CallEngine | None = None
        self.channel: SipChannel | None = None
        self.freeswitch: FreeSwitchChannel | None = None
        self.esl: EslInbound | None = None  # FreeSWITCH's event socket, when ESL_HOST is set
        self.trunks: TrunkManager | None = None
        self.api_server: uvicorn.Server | None = None
        self.deliverer: Deliverer | None = None
        self.queue: CallQueue | None = None
        self.events = EventBus()
        self.webrtc = WebRtcChannel()
        self.live: LiveCalls | None = None
        self.bridge: BridgeService | None = None
        self.starter: CallStarter | None = None
        self.trunk_follower: TrunkFollower | None = None
        self.places: Places | None = None
        # What the nodes tell each other through Redis, when there is one
        self.shared = (Shared(settings.redis_url, settings.node_id, self.guard, self.events,
                              self.ua.now) if settings.redis_url else None)
        self._api_task: asyncio.Task[None] | None = None
        self._load_task: asyncio.Task[None] | None = None
        self._memory_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.settings
        os.umask(0o077)  # what atende writes is its user's alone (see keep_private)
        keep_private(s.data_dir)
        await self.store.init(DEFAULT_RULES.to_dict())
        # Calls this node left live when it last stopped died with it: close or requeue
        # them before anything new starts.
        recovered = await self.membership.join()
        if any(recovered.values()):
            log.warning("after the last stop: %d interrupted call(s) queued again, %d closed",
                        recovered["requeued"], recovered["closed"])
        if await self.store.run(apikeys.bootstrap(s.data_dir)):
            log.info("made the first API key: it is in %s (only its owner can read it)",
                     s.data_dir / apikeys.KEY_FILE)
        loop = asyncio.get_running_loop()
        log.info("loading speech models")
        stt = await loop.run_in_executor(self.executor, lambda: WhisperSTT(
            s.stt_model_path, s.stt_language, beam_size=s.stt_beam_size,
            cpu_threads=s.model_threads, workers=s.stt_workers,
            window_s=s.stt_window_s))
        egress = EgressPolicy(s.allow_private_urls)
        providers = ProviderRegistry(stt, s.tts_voice_path, egress, s.turn_model)
        box = SecretBox.from_settings(s.secret_key, s.data_dir)
        self.trunks = TrunkManager(self.ua, box)
        rtp_ports = PortAllocator(s.rtp_port_min, s.rtp_port_max)
        direct = DirectCallPolicy(s.allow_direct_list)
        self.channel = SipChannel(self.ua, rtp_ports,
                                  InboundGate(self.trunks, direct,
                                              proxies=s.sip_proxy_list),
                                  self.guard, media_host=s.bind,
                                  answer_delay=s.answer_delay_ms / 1000,
                                  rtp_timeout=s.rtp_timeout_s)
        self.deliverer = Deliverer(self.store, webhook_secret(s, box), RetryPolicy(
            base_s=s.webhook_retry_base_s, give_up_after_s=s.webhook_give_up_s),
            egress=egress)
        # Trunks' and assistants' max_concurrent_calls are counted over all nodes in
        # Redis when there is one; else (and while it is down) each node keeps to its part.
        self.places = (Places(s.redis_url, s.node_lease_s, lambda: live.held())
                       if s.redis_url else None)
        self.live = live = LiveCalls(s.max_calls, self.membership.share, self.places)
        records = CallRecords(self.store, self.events, self.deliverer)
        fs_dialer = None
        if s.esl_server_port:
            self.freeswitch = FreeSwitchChannel()
            if s.esl_host:
                self.esl = EslInbound(s.esl_host, s.esl_port, s.esl_password.get_secret_value())
            fs_dialer = FreeSwitchDialer(self.esl, self.freeswitch, s.reach_host,
                                         s.esl_server_port, s.audio_stream_port)
        self.engine = CallEngine(
            self.store, providers, self.executor, live, records, self.trunks,
            TrunkDialer(self.trunks, SipDialer(self.channel), fs_dialer), secrets=box,
            recordings=s.data_dir / "recordings", callbacks=self._callback,
            max_call_seconds=s.max_call_seconds, provider_keys=s.provider_keys)
        await self.engine.preload()
        # Warm the recogniser: its first run allocates buffers and is several times slower
        # (each worker's: they run side by side, so each takes one).
        await asyncio.gather(*(loop.run_in_executor(self.executor, stt.transcribe,
                                                    bytes(32000))
                               for _ in range(s.stt_workers)))
        self.channel.serve(self.engine)
        offer_addresses(s.webrtc_hosts)
        self.webrtc.serve(self.engine)
        await self.ua.start(s.bind, s.sip_port, s.sip_tls_port or None, self._tls_server())
        if self.freeswitch is not None:
            self.freeswitch.serve(self.engine)
            await self.freeswitch.start(s.bind, s.esl_server_port, s.audio_stream_port)
        if self.esl is not None:
            self.esl.start()
        # The trunks as stored (this node's share of the registrations), and from then on
        # whatever changes through another node (or by hand).
        self.trunk_follower = TrunkFollower(self.store, self.trunks, s.node_id,
                                            s.node_lease_s, lambda: datetime.now(UTC))
        await self.trunk_follower.round()
        self.trunk_follower.start()
        self.bridge = BridgeService(
            self.store, box, ListenerParts(s.bind, rtp_ports, records, direct, self.guard,
                                           s.public_ip, s.rtp_timeout_s,
                                           s.bridge_digest_algorithms, self.engine,
                                           self._tls_context(),
                                           Transcripts(stt, self.executor, records),
                                           self._page_tls(), self.load),
            self._own_ports())
        await self.bridge.load()
        self.deliverer.start()  # picks up what was pending before a restart, too
        self.queue = queue = CallQueue(self.store, self.engine, live, records, self.trunks,
                                       self.trunk_follower.catch_up)
        queue.start()  # and so does the call queue
        # Dead nodes' calls, once taken over, are results to send and retries to place.
        self.membership.on_taken_over(queue.wake)
        self.membership.on_taken_over(self.deliverer.wake)
        self.membership.start()
        if self.shared is not None:
            self._tell_changes(self.shared, self.trunk_follower)
            # Other nodes' API requests for this node's calls.
            transfers = self.engine.transfers
            self.shared.serve("cancel", lambda args: cancel_here(queue, args))
            self.shared.serve("transfer", lambda args: transfer_here(live, transfers, args))
            self.shared.start()
        if self.places is not None:
            self.places.start()
        control = CallControl(live, self.engine.transfers, queue, self.store, self.shared)
        self.starter = starter = CallStarter(self.store, queue, self.trunks,
                                             s.default_calling_hours, egress)
        deliveries = Deliveries(self.store, self.deliverer, egress)
        hooks = Hooks(self.store)
        assistants = AssistantService(self.store, box, self.engine.prepare_assistant, egress)
        ai_providers = ProviderService(self.store, box, egress)
        trunks = TrunkService(self.store, box, self.trunks, s.sip_host, self.ua.port,
                              self._test_trunk)
        routers = [trunks_router(trunks),
                   assistants_router(assistants),
                   providers_router(ai_providers),
                   outbound_router(starter),
                   hooks_router(hooks),
                   live_router(control),
                   recordings_router(self.store, s.data_dir / "recordings"),
                   deliveries_router(deliveries),
                   events_router(self.events, self.store),
                   stats_router(self.store),
                   metrics_router(self.store, self._live_figures),
                   abuse_router(self.guard, self.ua.now),
                   nodes_router(self.store, s.node_lease_s, lambda: datetime.now(UTC)),
                   *bridge_routers(self.bridge)]
        public = [trigger_router(self.store, starter)]
        probes = [self.bridge.health, self._node_health]
        if self.shared is not None:
            probes.append(self.shared.health)
        if self.places is not None:
            probes.append(self.places.health)
        if self.freeswitch or self.esl:
            probes.append(self._freeswitch_health)
        app = create_api(self.store, routers, public, probes)
        web = Web(self.store)
        install_dashboard(app, [dashboard_router(web, self._admin_key),
                                call_pages(web, deliveries, s.data_dir / "recordings"),
                                trunk_pages(web, trunks),
                                live_pages(web, self.events, control),
                                stats_pages(web),
                                automation_pages(web, starter, hooks),
                                assistant_pages(web, assistants, ai_providers,
                                                self._voice_sample),
                                talk_pages(web, assistants, self.webrtc)])
        config = uvicorn.Config(app, host=s.bind,
                                port=s.api_port,
                                log_config=None, access_log=False, lifespan="off")
        self.api_server = _ApiServer(config)
        self._api_task = loop.create_task(self.api_server.serve())
        while not self.api_server.started:
            if self._api_task.done():
                self._api_task.result()
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.05)
        tls = f", tls on {self.ua.transport.tls_port}" if self.ua.transport.tls_port else ""
        fs = (f", FreeSWITCH calls on {s.esl_server_port} (event socket) and "
              f"{s.audio_stream_port} (audio)" if self.freeswitch else "")
        log.info("atende ready: SIP on %s:%d (udp, tcp%s)%s, API on http://%s:%d", s.bind,
                 self.ua.port, tls, fs, s.bind, s.api_port)
        log.info("%s", native.summary())  # (an operator sees which code runs)
        settle()
        self._load_task = loop.create_task(watch_loop(self.load))  # (start-up is no load)
        self._memory_task = loop.create_task(keep_memory())

    async def _callback(self, callback: Callback) -> dict[str, Any]:
        """Queue a call back an assistant promised, like any call. The starter is made
        after the engine (it needs the queue, which needs the engine)."""
        if self.starter is None:
            return {"error": "call backs cannot be scheduled while atende starts"}
        return await self.starter.callback(callback)

    def _own_ports(self) -> dict[int, str]:
        """The ports atende itself listens on (the bridge must take others)."""
        s = self.settings
        own = {s.sip_port: "SIP port", s.api_port: "API port"}
        if s.sip_tls_port:
            own[s.sip_tls_port] = "SIP TLS port"
        if s.esl_server_port:
            own[s.esl_server_port] = "event socket port"
            own[s.audio_stream_port] = "audio stream port"
        return own

    def _live_figures(self) -> LiveFigures:
        """For /metrics: calls active now, SIP message counters, trunk registrations,
        the overload control's state."""
        active = len(self.live) if self.live else 0
        lines = []
        if self.trunks is not None:
            for trunk_id, live in self.trunks.trunks.items():
                reg = self.trunks.registration(trunk_id)
                if reg is not None:
                    lines.append((trunk_id, live.config.name, reg["state"] == "registered"))
        return LiveFigures(active, dict(self.ua.stats), lines, self.load.lag_s,
                           self.load.shedding, self.load.cap_per_s)

    def _tell_changes(self, shared: Shared, follower: TrunkFollower) -> None:
        """Assistants and trunks changed through this node are re-read by the others at
        once, and the other way round (else within their polling's few seconds)."""
        loop = asyncio.get_running_loop()

        def committed(kinds: frozenset[str]) -> None:  # on the store thread
            loop.call_soon_threadsafe(shared.changed, kinds)
        self.store.changes.on_commit(committed)

        def changed_elsewhere(kinds: frozenset[str]) -> None:
            if "assistants" in kinds:
                self.store.forget_directory()
            if "trunks" in kinds:
                follower.wake()
        shared.on_changed(changed_elsewhere)

    def _node_health(self) -> tuple[str, object, str | None]:
        """For /health: this node's name, and whether it is draining (then 503, so that
        a load balancer sends new work elsewhere)."""
        state = "draining" if self.load.draining else "serving"
        live = len(self.live) if self.live is not None else 0
        shown = {"id": self.settings.node_id, "state": state, "live_calls": live}
        trouble = (f"draining: takes no new calls, {live} still live"
                   if self.load.draining else None)
        return "node", shown, trouble

    async def drain(self, interrupted: asyncio.Event) -> None:
        """Before a clean stop, for up to ATENDE_DRAIN_TIMEOUT_S: take no new calls (503
        to INVITEs and to a load balancer's OPTIONS, /health 503, the queue places
        nothing) while the live ones end by themselves. Ends early when they all have,
        or when ``interrupted`` is set (a second SIGTERM or Ctrl-C)."""
        self.load.draining = True
        if self.queue is not None:
            await self.queue.close()
        live = self.live
        if live is None or not len(live):
            return
        freed = asyncio.Event()
        live.on_freed(lambda _call: freed.set())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.drain_timeout_s
        log.info("draining: %d call(s) live; taking no new ones for up to %.0f s (a second "
                 "signal stops at once)", len(live), self.settings.drain_timeout_s)
        while len(live) and not interrupted.is_set() and loop.time() < deadline:
            freed.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (freed, interrupted)]
            await asyncio.wait(waits, timeout=deadline - loop.time(),
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        if len(live):
            log.warning("draining ended with %d call(s) still live: hanging them up",
                        len(live))

    def _freeswitch_health(self) -> tuple[str, object, str | None]:
        """For /health: FreeSWITCH's two listeners and the event socket connection."""
        shown: dict[str, str] = {}
        if self.freeswitch is not None:
            shown["event_socket_server"] = f"listening on port {self.freeswitch.esl.port}"
            shown["audio_stream_server"] = f"listening on port {self.freeswitch.audio.port}"
        if self.esl is None:
            shown["event_socket"] = "not configured (ESL_HOST)"
            return "freeswitch", shown, None
        state = self.esl.state
        shown["event_socket"] = f"{self.esl.address}: {state.detail}"
        problem = None if state.connected else (
            f"FreeSWITCH event socket {self.esl.address}: {state.detail}")
        return "freeswitch", shown, problem

    def _page_tls(self) -> tuple[Path, Path] | None:
        """The bridge's calling page is HTTPS with the operator's certificate only: a
        browser would refuse the one atende makes for itself."""
        s = self.settings
        return (s.tls_cert, s.tls_key) if s.tls_cert and s.tls_key else None

    def _tls_server(self) -> ssl.SSLContext | None:
        return self._tls_context() if self.settings.sip_tls_port else None

    def _tls_context(self) -> ssl.SSLContext:
        """The server certificate (ATENDE_TLS_CERT, or one made for this host)."""
        s = self.settings
        if s.tls_cert is not None and s.tls_key is not None:
            return server_context(s.tls_cert, s.tls_key)
        names = [s.sip_host] + ([s.bind] if s.bind not in ("0.0.0.0", "::") else [])
        cert, key = ensure_self_signed(s.data_dir / "tls", list(dict.fromkeys(names)))
        return server_context(cert, key)

    async def _admin_key(self, key: str) -> bool:
        """Whether ``key`` is a live API key of no domain (the dashboard's first admin is
        made by whoever holds one)."""
        if not key:
            return False
        row = await self.store.run(apikeys.lookup(key))
        return row is not None and row.domain_uuid is None

    async def _voice_sample(self, voice: str, text: str) -> bytes:
        """``voice`` saying ``text``, as a WAV (the dashboard's "listen"); ValueError when
        there is no such voice."""
        assert self.engine is not None
        loop = asyncio.get_running_loop()
        tts = await loop.run_in_executor(self.executor, self.engine.providers.load_voice,
                                         voice)
        return wav(await loop.run_in_executor(self.executor, tts.synthesize, text))

    async def _test_trunk(self, trunk: TrunkConfig, to_user: str, ring_timeout: float
                          ) -> dict[str, Any]:
        assert self.trunks is not None and self.engine is not None
        info = CallInfo(id=uuid.uuid4().hex, channel=trunk.channel, direction="outbound",
                        from_uri="", to_uri="", to_user=to_user,
                        extra={"trunk_id": trunk.id, "purpose": "trunk_test"})
        # Speak with the voice of the assistant that will take the trunk's calls.
        assistant = await self.store.assistant_by_id(trunk.assistant_id)
        voice = self.engine.providers.voice(assistant.voice if assistant else "piper")
        return await check_call(self.engine.dialer,
                                DialRequest(info, to_user, trunk.id, ring_timeout), voice,
                                self.executor)

    async def stop(self) -> None:
        """Stop within ATENDE_SHUTDOWN_TIMEOUT_S: calls are hung up all at once, and
        whatever peer does not answer is given up on at the deadline."""
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout_s
        for task in (self._load_task, self._memory_task):
            if task is not None:
                task.cancel()
        self.events.close()  # live streams end, so the API server can stop at once
        if self.queue is not None:
            await self.queue.close()  # nothing new starts while the rest stops
        if self.trunk_follower is not None:
            await self.trunk_follower.close()
        if self.shared is not None:
            await self.shared.close()
        # Unregistering and hanging up side by side: an unreachable PBX delays no BYE.
        await all_before([c for c in (self.trunks.close() if self.trunks else None,
                                      self.webrtc.close(),
                                      self.channel.close(deadline) if self.channel else None,
                                      self.bridge.close(deadline) if self.bridge else None,
                                      self.freeswitch.close(deadline) if self.freeswitch
                                      else None)
                          if c is not None], deadline + 0.5)
        if self.engine is not None:  # the sessions write their records (a second at least)
            await self.engine.close(max(deadline, asyncio.get_running_loop().time() + 1))
            await self.engine.providers.close()
        if self.esl is not None:
            await self.esl.close()
        if self.deliverer is not None:
            await self.deliverer.close()
        if self.places is not None:  # the calls' places given back
            await self.places.close()
        await self.membership.leave()  # after the calls' final writes (in order)
        await self.ua.close()
        if self.api_server is not None:
            self.api_server.should_exit = True
        if self._api_task is not None:
            await asyncio.wait([self._api_task], timeout=5)
        await self.store.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def keep_private(data_dir: Path) -> None:
    """Only atende's own user reads what it keeps (transcripts, call audio, the database,
    keys): what an earlier version left readable by others is tightened (with umask 077,
    what it makes from now on is 0600, its folders 0700)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for path in (data_dir, *data_dir.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            path.chmod(mode & 0o700)


def webhook_secret(settings: Settings, box: SecretBox) -> str:
    """The key that signs result webhooks: ATENDE_WEBHOOK_SECRET, else one derived from
    the secret key (so it survives restarts without a file of its own)."""
    return settings.webhook_secret or "whsec_" + box.derive("webhook-signing")[:40]


async def serve(settings: Settings) -> None:
    app = Atende(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        await stop.wait()
        if settings.drain_timeout_s > 0:
            stop.clear()
            await app.drain(stop)
    finally:
        log.info("shutting down")
        await app.stop()
