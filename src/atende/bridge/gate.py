"""Who may call the bridge: clients that know ``sipListenUser``/``sipListenSecret``
(digest, SHA-256 or MD5), and the SIP server itself (its calls to the registered
extension come back through the bridge). With no listener credentials configured only
the direct-call policy's addresses (ATENDE_ALLOW_DIRECT: loopback and private networks by
default) may call, so that an exposed bridge is never an open way into the SIP server."""

from __future__ import annotations

import logging
from collections.abc import Callable

from atende.bridge.settings import BridgeConfig
from atende.channels.sip.gate import Admit, Challenge, GateResult, Refuse
from atende.sip.auth import DigestServer
from atende.sip.message import Request
from atende.sip.transaction import Address
from atende.telephony.guard import DirectCallPolicy

log = logging.getLogger(__name__)
REALM = "atende-bridge"
SIP_SERVER = "sip_server"  # CallInfo.extra["caller"] of the SIP server's calls


class BridgeGate:
    """The listener's gate: the SIP server's addresses pass, the rest authenticate."""

    def __init__(self, config: Callable[[], BridgeConfig],
                 from_server: Callable[[Request, Address], bool],
                 server_address: Callable[[str], bool], direct: DirectCallPolicy,
                 digest: DigestServer) -> None:
        self._config = config  # the configuration in force (it changes live)
        self._from_server = from_server
        self._server_address = server_address
        self.direct = direct
        self.digest = digest

    def check(self, req: Request, source: Address, now: float) -> GateResult:
        source_ip = source[1]
        if self._from_server(req, source):
            return Admit(None, caller=SIP_SERVER)  # its calls go to the other side
        config = self._config()
        if not config.listen_user:
            if self.direct.allows(source_ip):
                return Admit(None)
            log.warning("bridge call from %s refused: no listener credentials are set and "
                        "the address is not in ATENDE_ALLOW_DIRECT", source_ip)
            return Refuse(403, "Not allowed from here")
        header = req.headers.get("Authorization")
        if header is None:
            return Challenge(self.digest.challenges(now))
        verdict = self.digest.verify(header, req.method,
                                     {config.listen_user: config.listen_secret}, now)
        if verdict.ok:
            return Admit(None)
        if verdict.stale:
            return Challenge(self.digest.challenges(now, stale=True))
        log.warning("bridge call from %s: bad credentials (%s)", source_ip, verdict.reason)
        return Challenge(self.digest.challenges(now))

    def trunk_address(self, source_ip: str) -> bool:
        return self._server_address(source_ip)  # never blocked by the abuse guard
