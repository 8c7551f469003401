"""Calls placed through a trunk: the Dialer the engine, the queue, transfers and the trunk
test use (channels/dialer.py). It turns "call this number on that trunk" into the SIP
details of the INVITE, and the SIP channel rings it; or, on a freeswitch trunk, into an
originate that FreeSWITCH rings."""

from __future__ import annotations

import asyncio

from atende.channels.dialer import DialError, DialOutcome, DialRequest, PreparedDial
from atende.channels.freeswitch.dialer import FreeSwitchDial, FreeSwitchDialer
from atende.channels.sip.outbound import SipDial, SipDialer, route_for_proxy
from atende.sip.uri import split_hostport
from atende.telephony.trunks import TrunkManager


class TrunkDialer:
    """Places calls on the trunks atende has (a request names its trunk by id): over SIP,
    or through FreeSWITCH for trunks of kind freeswitch."""

    def __init__(self, trunks: TrunkManager, sip: SipDialer,
                 freeswitch: FreeSwitchDialer | None = None) -> None:
        self._trunks = trunks
        self._sip = sip
        self._freeswitch = freeswitch  # None: atende has no FreeSWITCH channel

    async def prepare(self, request: DialRequest) -> PreparedDial:
        """The Request-URI at the trunk's domain, our identity there, and the first hop
        (outbound proxy or host), resolved; for a freeswitch trunk, its dial string."""
        live = self._trunks.trunks.get(request.trunk_id or "")
        if live is None:
            raise DialError(f"trunk {request.trunk_id!r} does not exist (any more)")
        c = live.config
        if c.kind == "freeswitch":
            if self._freeswitch is None or c.dial_string is None:
                raise DialError("this atende has no FreeSWITCH channel "
                                "(ATENDE_ESL_SERVER_PORT=0)")
            return self._freeswitch.prepare(request, c.dial_string, c.number)
        route: list[str] = []
        if c.outbound_proxy:
            proxy_host, proxy_port = split_hostport(c.outbound_proxy)
            route = route_for_proxy(proxy_host, proxy_port)
        try:
            hop = await self._trunks.first_hop(c)
        except OSError as exc:
            raise DialError(f"cannot resolve the trunk's address: {exc}") from None
        ruri = c.uri_for(request.to)
        # Our identity at the same host:port the Request-URI names (a PBX on a non-default
        # port knows itself by it).
        plan = SipDial(info=request.info, ruri=ruri, from_uri=str(c.uri_for(c.username)),
                       address=hop, username=c.username, password=c.password, route=route,
                       ring_timeout=request.ring_timeout, headers=request.headers)
        return PreparedDial(request, str(ruri), plan)

    async def dial(self, prepared: PreparedDial, cancel: asyncio.Event | None = None
                   ) -> DialOutcome:
        plan = prepared.plan
        if isinstance(plan, FreeSwitchDial) and self._freeswitch is not None:
            return await self._freeswitch.dial(prepared, cancel)
        if not isinstance(plan, SipDial):
            raise TypeError("a call prepared by another dialer")
        return await self._sip.dial(plan, cancel)
