"""Placing calls over SIP: the driver of sip/invite_client.py (our INVITE until it is
settled) over the user agent, and the hand-over of an answered call to the SIP channel as
an InviteSession. What to call and through which trunk is decided above
(telephony/dialing.py builds the ``SipDial``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from atende.aio import BackgroundTasks
from atende.channels.dialer import DialOutcome
from atende.channels.leg import CallInfo, CallLeg
from atende.channels.sip.dialog_call import DialogCall
from atende.channels.sip.leg import SipLeg
from atende.channels.sip.server import SipChannel
from atende.channels.sip.transport import address, resolve
from atende.sip.auth import DigestClient
from atende.sip.dialog import Dialog, new_tag
from atende.sip.grammar import quote
from atende.sip.invite import InviteSession
from atende.sip.invite_client import (
    Done,
    InviteClient,
    Progress,
    SendAck,
    SendInvite,
    SendRequest,
)
from atende.sip.message import Request, Response
from atende.sip.sdp import (
    CRYPTO_SUITES,
    G711_ONLY,
    SRTP_KEY_BYTES,
    Crypto,
    build_offer,
    new_session_id,
)
from atende.sip.transaction import Address
from atende.sip.uri import SipUri

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SipDial:
    """A call to place over SIP, resolved: the Request-URI, who we are, the first hop and
    our credentials for its challenges."""

    info: CallInfo
    ruri: SipUri
    from_uri: str  # our address of record, e.g. sip:ai@pbx.example (no tag)
    address: Address  # the first hop: the outbound proxy or the trunk host
    username: str
    password: str = field(repr=False)
    route: list[str] = field(default_factory=list)
    ring_timeout: float = 30.0
    headers: tuple[tuple[str, str], ...] = ()  # e.g. Replaces, from a REFER's target
    display: str | None = None  # our From's display name (a bridge: its caller's)
    codecs: tuple[str, ...] = G711_ONLY  # what we offer, in that order
    srtp: bool = False  # offer SRTP only (SDES: send it over TLS, or the keys show)


class SipDialer:
    """Sends INVITEs for the SIP channel and makes a leg of each answered call."""

    def __init__(self, channel: SipChannel) -> None:
        self.channel = channel
        self.ua = channel.ua
        self._tasks = BackgroundTasks()  # CANCELs and BYEs: their answers change nothing

    async def dial(self, d: SipDial, cancel: asyncio.Event | None = None,
                   progress: Callable[[str, CallLeg], None] | None = None) -> DialOutcome:
        """Place ``d`` until it is answered or settled otherwise. ``progress`` hears what
        the callee's side says before that: ``ringing``, or ``early_media`` once the
        leg's media runs (a 183 with SDP: what the leg hears before the answer)."""
        ch = self.channel
        leg = SipLeg(d.info, ch.ports, ch, ch.rtp_timeout)
        try:
            leg.media.open(ch.media_host)
        except OSError:
            return DialOutcome("failed", None, "no free RTP port")
        try:
            outcome = await self._invite(d, leg, cancel or asyncio.Event(), progress)
        except Exception:
            log.exception("placing call %s failed", d.info.id)
            outcome = DialOutcome("failed", None, "internal error while dialling")
        if outcome.leg is None:
            leg.media.close()
        return outcome

    async def _invite(self, d: SipDial, leg: SipLeg, cancel: asyncio.Event,
                      progress: Callable[[str, CallLeg], None] | None) -> DialOutcome:
        """Run the InviteClient: its requests go out, the INVITE's responses, the user's
        cancel and its deadlines come back in, one at a time, until it is Done."""
        loop = asyncio.get_running_loop()
        key = secrets.token_bytes(SRTP_KEY_BYTES) if d.srtp else b""
        crypto = Crypto("1", CRYPTO_SUITES[0], b"", key) if key else None
        client = InviteClient(
            ruri=d.ruri, from_=f"{_display(d.display)}<{d.from_uri}>;tag={new_tag()}",
            contact=self.channel.contact_for(d.address),
            offer=build_offer(self.ua.advertised_host(d.address[1]), leg.media.port,
                              new_session_id(), 1, codecs=d.codecs, crypto=crypto),
            credentials=DigestClient(d.username, d.password),
            call_id=secrets.token_hex(12) + "@atende", cseq=secrets.randbelow(1000) + 1,
            ring_timeout=d.ring_timeout, started_at=self.ua.now(), route=d.route,
            headers=d.headers, srtp_key=key)
        inbox: asyncio.Queue[tuple[str, Response | None]] = asyncio.Queue()
        waiter = loop.create_task(cancel.wait())
        waiter.add_done_callback(lambda _: inbox.put_nowait(("cancel", None)))
        tasks: set[asyncio.Task[None]] = set()
        hop = d.address  # where the dialog's requests go, once a 2xx made one
        ack: Request | None = None
        actions = client.start()
        try:
            while True:
                for action in actions:
                    if isinstance(action, Done):
                        return await self._done(d, leg, client, action, ack, hop)
                    if isinstance(action, SendAck):
                        hop = await self._next_hop(action.dialog, d.address)
                        ack = self.ua.add_via(action.request, hop)
                        self.ua.send_stateless(ack, hop)
                    elif isinstance(action, SendInvite):
                        tasks.add(loop.create_task(
                            self._send_invite(action.request, d.address, inbox)))
                    elif isinstance(action, SendRequest):
                        to = d.address if action.dialog is None else hop
                        self._tasks.spawn(self._send_quietly(action.request, to))
                    elif isinstance(action, Progress):
                        log.info("call %s: %d %s", d.info.id, action.status, action.reason)
                        if action.audio is not None:  # early media: it plays from now
                            leg.media.configure(action.audio)
                            leg.trust_host(d.address[1])
                            leg.media.start()
                        if progress is not None:
                            progress(action.kind if action.audio else "ringing", leg)
                deadline = client.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - self.ua.now())
                try:
                    async with asyncio.timeout(timeout):
                        kind, resp = await inbox.get()
                except TimeoutError:
                    actions = client.tick(self.ua.now())
                    continue
                now = self.ua.now()
                if kind == "cancel":
                    actions = client.cancel(now)
                elif resp is not None:
                    actions = (client.provisional(resp, now) if kind == "provisional"
                               else client.final(resp, now))
        finally:
            waiter.cancel()
            for task in tasks:
                task.cancel()

    async def _send_invite(self, invite: Request, to: Address,
                           inbox: asyncio.Queue[tuple[str, Response | None]]) -> None:
        final = await self.ua.request(invite, to,
                                      lambda resp: inbox.put_nowait(("provisional", resp)))
        inbox.put_nowait(("final", final))

    async def _send_quietly(self, req: Request, to: Address) -> None:
        resp = await self.ua.request(req, to)
        if resp.status >= 300:
            log.info("%s of call %s answered %d", req.method, req.call_id, resp.status)

    async def _done(self, d: SipDial, leg: SipLeg, client: InviteClient, done: Done,
                    ack: Request | None, hop: Address) -> DialOutcome:
        events = list(client.events)
        if done.status != "answered" or done.dialog is None or done.audio is None:
            if done.reason.startswith("unusable SDP"):
                log.warning("call %s: %s; hanging up", d.info.id, done.reason)
            return DialOutcome(done.status, done.sip_status, done.reason, events=events)
        dialog = done.dialog
        session = InviteSession.placed(dialog, hop, self.ua.advertised_host(hop[1]),
                                       leg.media.port, d.codecs, done.audio.crypto)
        call = DialogCall(d.info, session, leg, ack=ack,
                       credentials=DigestClient(d.username, d.password), connected=True)
        leg.media.configure(done.audio)
        leg.trust_host(hop[1])
        leg.media.start()
        self.channel.add(call)
        log.info("call %s answered by %s", d.info.id, d.info.to_uri)
        return DialOutcome("answered", done.sip_status, done.reason, leg, events)

    async def _next_hop(self, dialog: Dialog, fallback: Address) -> Address:
        uri = dialog.next_hop()
        transport = uri.params.get("transport") or fallback[0]
        try:
            ip = (await resolve(uri.host, uri.port or 5060))[0]
        except OSError:
            return fallback
        return address(transport, ip, uri.port or 5060)


def _display(name: str | None) -> str:
    """A From display name, quoted (with a space before the address), or nothing."""
    cleaned = "".join(c for c in name or "" if c.isprintable())[:64]
    return f"{quote(cleaned)} " if cleaned else ""


def route_for_proxy(proxy_host: str, proxy_port: int | None) -> list[str]:
    """The Route header that sends every request through an outbound proxy (loose routing)."""
    return [f"<{SipUri(proxy_host, port=proxy_port, params={'lr': None})}>"]
