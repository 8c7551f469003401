"""The bridge's SIP side on one port: a user agent of its own (UDP and TCP on
``sipListenPort``), a SIP channel whose router is the bridge (calls.py), the dialer of
its far legs, the SIP server's resolved address and the registration of ``sipExtension``
there. When the port changes a new listener takes new calls while the old one lets its
calls end."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atende.bridge.calls import Assistants, BridgeCalls, Pages, Target
from atende.bridge.gate import REALM, SIP_SERVER, BridgeGate
from atende.bridge.settings import BridgeConfig
from atende.bridge.transcript import Transcripts
from atende.calls.records import CallRecords
from atende.channels.leg import CallInfo, Rejection
from atende.channels.sip.outbound import SipDialer
from atende.channels.sip.overload import LoadMonitor
from atende.channels.sip.registration import RegistrationAgent
from atende.channels.sip.server import SipChannel
from atende.channels.sip.transport import address, resolve
from atende.channels.sip.ua import Guard, UserAgent
from atende.media.ports import PortAllocator
from atende.sip.auth import DigestServer
from atende.sip.message import Request, Response
from atende.sip.register import Registration
from atende.sip.registrar import Registrar
from atende.sip.transaction import Address
from atende.sip.uri import SipUri
from atende.telephony.guard import DirectCallPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenerParts:
    """What every listener shares with the rest of atende."""

    bind: str
    ports: PortAllocator  # RTP ports, shared with the main SIP channel
    records: CallRecords
    direct: DirectCallPolicy
    guard: Guard | None = None
    public_ip: str | None = None
    rtp_timeout: float = 60.0
    digest: tuple[str, ...] = ("MD5",)  # the algorithms clients are challenged with
    assistants: Assistants | None = None  # who answers what the far side does not take
    tls: ssl.SSLContext | None = None  # the server certificate, for TLS on port + 1
    transcripts: Transcripts | None = None  # writes bridged calls down (transcribe)
    page_tls: tuple[Path, Path] | None = None  # certificate and key: the page over HTTPS
    load: LoadMonitor | None = None  # the process's: new calls are shed while it is late


class ListenerAccounts:
    """The listener's registrar: its one account, ``sipListenUser``, whose client is
    where the SIP server's calls to ``sipExtension`` go."""

    def __init__(self, config: Callable[[], BridgeConfig], now: Callable[[], float],
                 digest: DigestServer, guard: Guard | None) -> None:
        self._config = config
        self._now = now
        self._core = Registrar(digest)
        self._guard = guard

    def _passwords(self) -> dict[str, str]:
        config = self._config()
        passwords = {config.listen_user: config.listen_secret} if config.listen_user else {}
        self._core.forget(set(passwords))
        return passwords

    def register(self, req: Request, source: Address, now: float) -> Response:
        resp = self._core.register(req, source, self._passwords(), now)
        stale = any("stale=true" in v for v in resp.headers.get_all("WWW-Authenticate"))
        if (resp.status in (401, 404) and self._guard is not None and not stale
                and "Authorization" in req.headers):
            # A wrong password or an unknown account: guessing counts, as for INVITEs.
            self._guard.failure(source[1], now, "bad REGISTER credentials",
                                user=req.to.uri.user)
        return resp

    def contact(self) -> tuple[SipUri, Address] | None:
        """The registered client's address and where to send to it, if any."""
        user = self._config().listen_user
        b = self._core.latest(user, self._now()) if user and self._passwords() else None
        return (b.contact, b.source) if b is not None else None

    def shown(self) -> dict[str, Any] | None:
        found = self.contact()
        return None if found is None else {"contact": str(found[0]),
                                           "from": f"{found[1][1]}:{found[1][2]}"}


class BridgeListener:
    """The bridge's SIP side on one port."""

    def __init__(self, port: int, config: Callable[[], BridgeConfig],
                 parts: ListenerParts, pages: Pages | None = None) -> None:
        self.port = port
        self._config = config
        self.parts = parts
        self._pages = pages
        self.ua = UserAgent(public_ip=parts.public_ip, guard=parts.guard, load=parts.load)
        digest = DigestServer(REALM, algorithms=parts.digest)
        self.registrar = ListenerAccounts(config, self.ua.now, digest, parts.guard)
        self.channel = SipChannel(self.ua, parts.ports,
                                  BridgeGate(config, self.from_server, self.server_address,
                                             parts.direct, digest),
                                  parts.guard, media_host=parts.bind,
                                  rtp_timeout=parts.rtp_timeout, registrar=self.registrar)
        self.calls = BridgeCalls(config, self._route, SipDialer(self.channel), parts.records,
                                 parts.assistants, parts.transcripts, pages)
        self._server_ips: frozenset[str] = frozenset()
        self._hop: Address | None = None
        self._server_problem = "not resolved yet"
        self._registered_as: tuple[object, ...] | None = None
        self.registration: RegistrationAgent | None = None

    def from_server(self, req: Request, source: Address) -> bool:
        """Whether ``req`` is the SIP server's own call: from its address and, over UDP,
        its port; over TCP and TLS (where it connects from a port of its choosing), for
        the extension we registered. A client on the same host as the SIP server is
        still a client, and authenticates."""
        hop = self._hop
        if hop is None or source[1] not in self._server_ips:
            return False
        if source[0] == "udp":
            return source[2] == hop[2]
        extension = self._config().extension
        return bool(extension) and (req.uri.user or "") == extension

    def server_address(self, ip: str) -> bool:
        return ip in self._server_ips

    @property
    def tls_port(self) -> int | None:
        """TLS listens on the next port (as 5061 follows 5060)."""
        return self.port + 1 if self.parts.tls is not None else None

    async def start(self) -> None:
        """Listen (OSError: a port cannot be had)."""
        await self.ua.start(self.parts.bind, self.port, self.tls_port, self.parts.tls)
        self.channel.serve(self.calls)

    async def follow(self, config: BridgeConfig) -> None:
        """Take ``config``'s SIP server and registration (from the next call on)."""
        host, port = config.server
        try:
            ips = await resolve(host, port)
            self._server_ips = frozenset(ips)
            self._hop = address(config.server_transport, ips[0], port)
            if config.server_transport == "tls":
                # Its certificate must name the host we were given, not the address.
                self.ua.transport.set_tls_peer(ips[0], port, host, config.server_tls_verify)
            self._server_problem = ""
        except (OSError, UnicodeError) as exc:  # (a name IDNA cannot encode)
            self._server_ips, self._hop = frozenset(), None
            self._server_problem = f"cannot resolve {host!r}: {exc}"
            log.warning("bridge: the SIP server %s", self._server_problem)
        wanted = ((config.extension, config.sip_user, config.sip_password, self._hop,
                   config.server_tls_verify)
                  if config.enabled and config.extension and self._hop else None)
        if wanted == self._registered_as:
            return
        await self.unregister()
        self._registered_as = wanted
        if wanted is not None and self._hop is not None:
            user = config.extension
            reg = Registration(user, host, config.sip_user or user,
                               config.sip_password, self.ua.contact_uri(user, self._hop))
            self.registration = RegistrationAgent(self.ua, reg, self._hop)
            self.registration.start()

    async def unregister(self) -> None:
        """Remove our registration with the SIP server (when there is one)."""
        if self.registration is not None:
            agent, self.registration = self.registration, None
            await agent.stop()

    async def _route(self, info: CallInfo) -> Target | Rejection:
        config = self._config()
        if self._hop is None:
            log.warning("bridge call %s refused: the SIP server %s", info.id,
                        self._server_problem)
            return Rejection.UNAVAILABLE
        host, port = config.server
        if info.extra.get("caller") == SIP_SERVER:
            # The SIP server calls our extension: to the client registered here, else to
            # the browsers waiting on the bridge's page.
            if not config.extension or info.to_user != config.extension:
                return Rejection.NOT_FOUND
            contact = self.registrar.contact()
            if contact is None and self._pages is not None and self._pages.present():
                return Target(SipUri(host, user=config.extension), None,
                              f"sip:{config.extension}@{host}", direction="outbound")
            if contact is None:
                log.info("bridge call %s from the SIP server: no client is registered with "
                         "the bridge, and no page waits for calls", info.id)
                return Rejection.UNAVAILABLE
            ruri, hop = contact
            return Target(ruri, hop, f"sip:{config.extension}@{host}", direction="outbound")
        if not info.to_user:
            return Rejection.NOT_FOUND
        user = config.sip_user or config.extension or "bridge"
        transport = config.server_transport
        params: dict[str, str | None] = {"transport": transport} if transport != "udp" else {}
        return Target(SipUri(host, user=info.to_user, port=port, params=params), self._hop,
                      f"sip:{user}@{host}", config.sip_user, config.sip_password,
                      srtp=config.server_srtp)

    def status(self) -> dict[str, Any]:
        reg = None
        if self.registration is not None:
            r = self.registration.reg
            reg = {"state": r.state.value, "reason": r.reason, "last_status": r.last_status,
                   "extension": r.user}
        transports = ["udp", "tcp"] + (["tls"] if self.tls_port else [])
        return {"port": self.port, "tls_port": self.tls_port, "transports": transports,
                "calls": len(self.calls),
                "sip_server": ({"address": f"{self._hop[1]}:{self._hop[2]}",
                                "transport": self._hop[0]} if self._hop
                               else {"problem": self._server_problem}),
                "registration": reg, "registered_client": self.registrar.shown()}

    async def close(self, deadline: float) -> None:
        """Hang up its calls (waiting for the BYEs' answers until ``deadline``),
        unregister, and stop listening."""
        self.calls.stop_accepting()
        await self.channel.close(deadline)
        await self.calls.close()
        await self.unregister()
        await self.ua.close()
