"""Who is calling, and may they? Matches an incoming INVITE to a trunk and applies the
trunk's inbound rule; calls that match no trunk fall to the direct-call policy."""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from atende.channels.sip.gate import Admit, Challenge, GateResult, Refuse
from atende.sip.auth import DigestServer
from atende.sip.headers import Via
from atende.sip.message import Request
from atende.sip.transaction import Address
from atende.telephony.guard import DirectCallPolicy, IpNetwork, in_networks, parse_cidrs
from atende.telephony.numbers import NumberError, format_for_trunk
from atende.telephony.trunks import TrunkConfig, TrunkManager

log = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def did_user_forms(trunk: TrunkConfig) -> frozenset[str]:
    """The Request-URI users that mean this DID: its SIP address user, and its number in
    every format a carrier may use. Cached: trunk configs are immutable, and this runs for
    every incoming INVITE."""
    forms = {trunk.contact_user}
    for fmt in ("intl_plus", "intl_no_plus", "national"):
        try:
            forms.add(format_for_trunk(trunk.number, trunk.country, fmt))
        except NumberError:
            pass
    return frozenset(forms)


class InboundGate:
    """Who may call: matches an incoming INVITE to a trunk and applies its inbound rule (its
    PBX's address, an allowlist or digest); other calls fall to the direct-call policy."""

    def __init__(self, trunks: TrunkManager, direct: DirectCallPolicy,
                 realm: str = "atende", proxies: tuple[str, ...] = ()) -> None:
        self.trunks = trunks
        self.direct = direct
        self.digest = DigestServer(realm)
        self.proxies = proxies  # CIDRs of the SIP proxies in front (ATENDE_SIP_PROXIES)

    def check(self, req: Request, source: Address, now: float) -> GateResult:
        source_ip = self.origin(req, source[1])
        user = (req.uri.user or "").split(";")[0]
        for live in self.trunks.trunks.values():
            t = live.config
            if not t.enabled:
                continue
            if t.kind == "extension" and user == t.contact_user:
                if source_ip in live.peer_ips or _in(source_ip, t.allowed_ips):
                    return Admit(t.id)
                log.warning("INVITE for trunk %s from %s, not its PBX: refused", t.name,
                            source_ip)
                return Refuse(403, "Not from this trunk's PBX")
            if t.kind == "did" and user in did_user_forms(t):
                return self._did(req, t, source_ip, live.peer_ips, now)
        if self.direct.allows(source_ip):
            return Admit(None)
        log.warning("refused direct call from %s (not in ATENDE_ALLOW_DIRECT)", source_ip)
        return Refuse(403, "Direct calls not allowed from here")

    def origin(self, req: Request, source_ip: str) -> str:
        """Where a call comes from: its sender, or, when that is one of our proxies, the
        address the proxy got it from. A proxy puts its Via on top; the one below is the
        caller's, with ``received`` where the caller's own idea of its address was
        wrong (RFC 3261 §18.2.1)."""
        if not self.proxies or not _in(source_ip, self.proxies):
            return source_ip
        try:
            below = Via.parse(req.headers.get_all("Via")[1])
            origin = below.params.get("received") or below.host
            ipaddress.ip_address(origin or "")
        except (IndexError, ValueError):
            return source_ip  # the proxy's own request (or a Via without an address)
        return str(origin)

    def trunk_address(self, source_ip: str) -> bool:
        """A trunk's PBX or carrier, or one of our proxies: a higher rate limit, and
        never blocked (one caller's failures through a proxy must not block it)."""
        return _in(source_ip, self.proxies) or any(
            source_ip in live.peer_ips or _in(source_ip, live.config.allowed_ips)
            for live in self.trunks.trunks.values())

    def _did(self, req: Request, t: TrunkConfig, source_ip: str, peer_ips: set[str],
             now: float) -> GateResult:
        if t.inbound_auth == "ip":
            allowed = _in(source_ip, t.allowed_ips) or (
                not t.allowed_ips and source_ip in peer_ips)
            if allowed:
                return Admit(t.id)
            log.warning("INVITE for DID trunk %s from %s, not in its allowlist: refused",
                        t.name, source_ip)
            return Refuse(403, "Source address not allowed for this trunk")
        header = req.headers.get("Authorization")
        if header is None:
            return Challenge(self.digest.challenges(now))
        verdict = self.digest.verify(header, req.method, {t.username: t.password}, now)
        if verdict.ok:
            return Admit(t.id)
        if verdict.stale:
            return Challenge(self.digest.challenges(now, stale=True))
        log.warning("INVITE for DID trunk %s from %s: bad credentials (%s)", t.name,
                    source_ip, verdict.reason)
        return Challenge(self.digest.challenges(now))


class DirectOnly:
    """A gate with no trunks: only the direct-call policy (tests, benchmarks)."""

    def __init__(self, direct: DirectCallPolicy) -> None:
        self.direct = direct

    def check(self, req: Request, source: Address, now: float) -> GateResult:
        if self.direct.allows(source[1]):
            return Admit(None)
        return Refuse(403, "Direct calls not allowed from here")

    def trunk_address(self, source_ip: str) -> bool:
        return False


def _in(ip: str, cidrs: tuple[str, ...]) -> bool:
    return bool(cidrs) and in_networks(ip, _networks(cidrs))


@lru_cache(maxsize=256)
def _networks(cidrs: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    """A trunk's or the proxies' address list, parsed once: every INVITE looks at every
    trunk's."""
    return tuple(parse_cidrs(cidrs))
