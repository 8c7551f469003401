"""Trunks at run time: each extension trunk keeps a live registration with its PBX, and
changes (new credentials, new address) take effect at once, without a restart."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from atende.aio import BackgroundTasks
from atende.channels.sip.registration import RegistrationAgent
from atende.channels.sip.transport import address, resolve
from atende.channels.sip.ua import UserAgent
from atende.sip.grammar import is_user
from atende.sip.register import Registration
from atende.sip.transaction import Address
from atende.sip.uri import SipUri, split_hostport
from atende.store import models
from atende.store.db import as_utc
from atende.store.secrets import SecretBox
from atende.telephony.numbers import NumberError, format_for_trunk, number_country

log = logging.getLogger(__name__)

# What an extension trunk dials as an internal extension unless it says otherwise: 2-6
# digits. Longer strings are phone numbers and meet the country check (a "9" or "00"
# prefix in front of a foreign number is not an extension).
DEFAULT_EXTENSIONS = "[0-9]{2,6}"
PHONE_NUMBER_RE = re.compile(r"\+?[0-9]{2,20}")
INTERNAL = ("extension", "freeswitch")  # kinds that dial a PBX's extensions too


class DestinationError(ValueError):
    """A destination a trunk may not or cannot call; the message says why."""


@dataclass(frozen=True)
class TrunkConfig:
    """What atende needs of a trunk while running (the password decrypted, in memory only)."""

    id: str
    name: str
    kind: str
    number: str
    username: str
    password: str = field(repr=False)
    host: str
    port: int | None
    transport: str
    domain: str | None
    outbound_proxy: str | None
    contact_user: str
    inbound_auth: str
    allowed_ips: tuple[str, ...]
    assistant_id: str | None
    max_concurrent_calls: int
    number_format: str
    country: str
    allowed_countries: tuple[str, ...]
    accept_transfers: bool
    tls_verify: bool
    enabled: bool
    extension_pattern: str | None = None  # extension trunks; None: DEFAULT_EXTENSIONS
    dial_string: str | None = None  # freeswitch trunks: FreeSWITCH's dial string

    @classmethod
    def of(cls, row: models.Trunk, box: SecretBox) -> TrunkConfig:
        return cls(
            id=row.id, name=row.name, kind=row.kind, number=row.number,
            username=row.username, password=box.decrypt(row.password_enc), host=row.host,
            port=row.port, transport=row.transport, domain=row.domain,
            outbound_proxy=row.outbound_proxy, contact_user=row.contact_user,
            inbound_auth=row.inbound_auth, allowed_ips=tuple(row.allowed_ips),
            assistant_id=row.assistant_id, max_concurrent_calls=row.max_concurrent_calls,
            number_format=row.number_format, country=row.country,
            allowed_countries=tuple(row.allowed_countries),
            accept_transfers=row.accept_transfers, tls_verify=row.tls_verify,
            enabled=row.enabled, extension_pattern=row.extension_pattern,
            dial_string=row.dial_string,
        )

    def registration_key(self) -> tuple[object, ...]:
        """The fields that, when changed, require registering again."""
        return (self.kind, self.number, self.username, self.password, self.host, self.port,
                self.transport, self.tls_verify, self.domain, self.outbound_proxy,
                self.contact_user, self.enabled)

    @property
    def default_port(self) -> int:
        return 5061 if self.transport == "tls" else 5060

    def dial_user(self, to: str) -> str:
        """The Request-URI user that reaches ``to``: on an extension trunk an internal
        extension (what ``extension_pattern`` matches, whole), else a phone number in any
        usual format. The toll-fraud guard: anything else, and numbers outside
        ``allowed_countries``, raise DestinationError before anything is dialled."""
        to = to.strip()
        if self.kind in INTERNAL and re.fullmatch(
                self.extension_pattern or DEFAULT_EXTENSIONS, to):
            user = to.replace("#", "%23")  # "#" is escaped in a SIP user part
            if not is_user(user):
                raise DestinationError(f"{to!r} cannot be a SIP user part")
            return user
        number = "".join(ch for ch in to if ch not in " -.()/")
        if not PHONE_NUMBER_RE.fullmatch(number):
            hint = ("an extension matching the trunk's extension_pattern, or "
                    if self.kind in INTERNAL else "")
            raise DestinationError(f"{to!r}: dial {hint}a phone number (digits, an "
                                   "optional leading +)")
        try:
            user = format_for_trunk(number, self.country, self.number_format)
        except NumberError as exc:
            raise DestinationError(str(exc)) from None
        region = number_country(number, self.country)
        if region not in self.allowed_countries:
            raise DestinationError(
                f"calls to {region} are not allowed on trunk {self.name!r} "
                f"(allowed_countries: {', '.join(self.allowed_countries)})")
        return user

    @property
    def channel(self) -> str:
        """The channel its calls go out on."""
        return "freeswitch" if self.kind == "freeswitch" else "sip"

    def address_of(self, user: str) -> str:
        """Where a call to ``user`` (from ``dial_user``) goes, for the call's record."""
        if self.kind == "freeswitch":
            return (self.dial_string or "").replace("{number}", user)
        return str(self.uri_for(user))

    def transfer_target(self, user: str) -> str:
        """What a call on this trunk is transferred to for ``user`` (from ``dial_user``):
        a SIP URI at the trunk's domain, or the bare number or extension that FreeSWITCH
        routes itself (uuid_transfer)."""
        return user if self.kind == "freeswitch" else str(self.uri_for(user))

    def identity(self) -> tuple[str, str]:
        """(address, user) calls through it come from, for the call's record."""
        if self.kind == "freeswitch":
            return self.number, self.number
        return str(self.uri_for(self.username)), self.username

    def uri_for(self, user: str) -> SipUri:
        """``user`` at the trunk's domain (or host:port when no domain is set)."""
        return SipUri(self.domain or self.host, user=user,
                      port=None if self.domain else self.port)

    def signalling_target(self) -> tuple[str, str, int]:
        """(transport, host, port) where our requests go: the outbound proxy if set."""
        if self.outbound_proxy:
            host, port = split_hostport(self.outbound_proxy)
            return (self.transport, host, port or self.default_port)
        return (self.transport, self.host, self.port or self.default_port)


@dataclass
class LiveTrunk:
    """A trunk in use: its configuration, registration and resolved addresses."""

    config: TrunkConfig
    agent: RegistrationAgent | None = None
    resolve_error: str | None = None
    peer_ips: set[str] = field(default_factory=set)  # where its PBX/carrier signals from
    hop: Address | None = None  # where our requests to it go (proxy or host), resolved


class TrunkManager:
    """The trunks in use: resolves their addresses, keeps each extension trunk registered with
    its PBX and applies changes at once, without a restart."""

    def __init__(self, ua: UserAgent, box: SecretBox) -> None:
        self.ua = ua
        self.box = box
        self.trunks: dict[str, LiveTrunk] = {}
        self._leaving = BackgroundTasks()  # unregistrations of removed trunks
        # The stored version (updated_at) of each trunk in use, and when (monotonic) it
        # was applied: what ``follow`` compares
        self.versions: dict[str, tuple[datetime, float]] = {}
        # Which extension trunks this node registers when several atende nodes share the
        # store (one node each: cluster/trunks.py); None: all. And who registers the
        # others.
        self.mine: set[str] | None = None
        self.elsewhere: dict[str, str] = {}

    async def own(self, mine: set[str], elsewhere: dict[str, str]) -> None:
        """From now on register the extension trunks in ``mine`` and no other: those
        newly ours start, those no longer ours are unregistered (another node has them)."""
        self.mine, self.elsewhere = set(mine), dict(elsewhere)
        for live in list(self.trunks.values()):
            c = live.config
            if c.kind != "extension" or not c.enabled or live.resolve_error:
                continue
            if c.id in self.mine and live.agent is None:
                await self._register(live)
            elif c.id not in self.mine and live.agent is not None:
                agent, live.agent = live.agent, None
                self._leaving.spawn(agent.stop())

    def _registers(self, trunk_id: str) -> bool:
        """Whether this node registers the trunk: it is this node's, or nobody's yet (a
        trunk just made through this node's API registers at once; if another node
        takes it, ``own`` stops this one)."""
        return self.mine is None or trunk_id in self.mine or trunk_id not in self.elsewhere

    async def follow(self, versions: dict[str, datetime], read_at: float,
                     fetch: Callable[[list[str]], Awaitable[list[models.Trunk]]]) -> int:
        """Catch up with the store, given every stored trunk's version as read at
        ``read_at`` (monotonic): changes made elsewhere (another atende node's API, or by
        hand) are applied, deleted trunks removed, and the rows that changed fetched with
        ``fetch``. A trunk this node applied since the read is newer than what was read
        and is left as it is. How many changed."""

        def stale(tid: str) -> bool:
            return tid not in self.versions or self.versions[tid][1] < read_at

        gone = [tid for tid in self.trunks if tid not in versions and stale(tid)]
        for tid in gone:
            self.remove(tid)
        changed = [tid for tid, v in versions.items() if stale(tid)
                   and (tid not in self.versions or self.versions[tid][0] != as_utc(v))]
        rows = await fetch(changed) if changed else []
        for row in rows:
            if stale(row.id):
                await self.apply(row)
        return len(gone) + len(rows)

    async def apply(self, row: models.Trunk) -> None:
        """Start using a new or changed trunk."""
        config = TrunkConfig.of(row, self.box)
        self.versions[config.id] = (as_utc(row.updated_at), time.monotonic())
        old = self.trunks.get(config.id)
        if old is not None and old.config.registration_key() == config.registration_key():
            old.config = config  # nothing that affects registration changed
            return
        if old is not None and old.agent is not None:
            await old.agent.stop()
        live = LiveTrunk(config)
        self.trunks[config.id] = live
        if config.kind == "freeswitch":
            return  # no SIP: its calls go out over FreeSWITCH's event socket
        live.peer_ips = await self._resolve(live)
        if (config.kind == "extension" and config.enabled and not live.resolve_error
                and self._registers(config.id)):
            await self._register(live)

    async def _resolve(self, live: LiveTrunk) -> set[str]:
        """Addresses of the trunk's host and outbound proxy (requests from them are the
        PBX's or carrier's); also notes the first hop our requests go to."""
        c = live.config
        ips: set[str] = set()
        _, hop_host, hop_port = c.signalling_target()
        hosts = [(c.host, c.port or c.default_port)]
        if c.outbound_proxy:
            hosts.append((hop_host, hop_port))
        for host, port in hosts:
            try:
                found = await resolve(host, port)
            except OSError as exc:
                live.resolve_error = f"cannot resolve {host!r}: {exc}"
                log.warning("trunk %s: %s", c.name, live.resolve_error)
                continue
            ips.update(found)
            if host == hop_host:
                live.hop = self._hop(c, found[0])
        return ips

    async def _register(self, live: LiveTrunk) -> None:
        c = live.config
        hop = live.hop
        assert hop is not None  # _resolve succeeded
        contact = self.ua.contact_uri(c.contact_user, hop)
        reg = Registration(c.number, c.domain or c.host, c.username, c.password, contact)
        live.agent = RegistrationAgent(self.ua, reg, hop)
        live.agent.start()

    async def first_hop(self, c: TrunkConfig) -> Address:
        _, host, port = c.signalling_target()
        return self._hop(c, (await resolve(host, port))[0])

    def _hop(self, c: TrunkConfig, ip: str) -> Address:
        """The first hop at ``ip``; over TLS, its certificate must name the host we were
        given (not the address it resolved to)."""
        transport, host, port = c.signalling_target()
        if transport == "tls":
            self.ua.transport.set_tls_peer(ip, port, host, c.tls_verify)
        return address(transport, ip, port)

    def remove(self, trunk_id: str) -> None:
        """Stop using a trunk at once; its PBX is told (unregistered) in the background,
        so an unreachable PBX holds nobody up (up to 10 s per try)."""
        live = self.trunks.pop(trunk_id, None)
        self.versions.pop(trunk_id, None)
        if live is not None and live.agent is not None:
            self._leaving.spawn(live.agent.stop())

    def registration(self, trunk_id: str) -> dict[str, object] | None:
        live = self.trunks.get(trunk_id)
        if live is None or live.config.kind != "extension":
            return None
        if live.resolve_error:
            return {"state": "failed", "expires_in_s": None, "last_status": None,
                    "reason": live.resolve_error}
        if live.agent is None:
            owner = self.elsewhere.get(trunk_id)
            reason = ("trunk disabled" if not live.config.enabled else
                      f"registered by atende node {owner}" if owner else
                      "waiting for an atende node to take it")
            return {"state": "unregistered", "expires_in_s": None, "last_status": None,
                    "reason": reason}
        reg = live.agent.reg
        expires_in = None
        if reg.expires_at is not None:
            expires_in = max(0, int(reg.expires_at - self.ua.now()))
        return {"state": reg.state.value, "expires_in_s": expires_in,
                "last_status": reg.last_status, "reason": reg.reason}

    def by_contact_user(self, user: str | None) -> TrunkConfig | None:
        for live in self.trunks.values():
            if user and live.config.contact_user == user and live.config.enabled:
                return live.config
        return None

    async def close(self) -> None:
        """Unregister every trunk, side by side (the caller bounds how long it waits)."""
        for trunk_id in list(self.trunks):
            self.remove(trunk_id)
        await self._leaving.wait()
