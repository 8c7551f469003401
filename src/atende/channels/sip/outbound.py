"""Placing calls over SIP (the UAC side of INVITE): offer, digest challenges, provisional
responses, ring timeout with CANCEL, ACK, and an outcome in plain terms. What to call and
through which trunk is decided above (telephony/dialing.py builds the ``SipDial``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from atende.channels.dialer import DialOutcome
from atende.channels.leg import CallInfo
from atende.channels.sip.leg import SipCallLeg
from atende.channels.sip.server import SipCall, SipChannel
from atende.channels.sip.transport import address, resolve
from atende.sip.auth import ChallengeResponder, DigestClient, challenge_in
from atende.sip.dialog import Dialog, new_tag
from atende.sip.invite import InviteSession
from atende.sip.message import Request, Response
from atende.sip.requests import ALLOW, cancel_for, new_request
from atende.sip.sdp import SdpError, build_offer, negotiate, new_session_id, parse_sdp
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


def _provisional_handler(call_id: str, heard: asyncio.Event, events: list[str]
                         ) -> Callable[[Response], None]:
    """Notes provisional responses. Early media (183 with SDP) is recorded but never taken
    for an answer: the agent starts on the 2xx only."""

    def on_provisional(resp: Response) -> None:
        heard.set()
        if resp.status > 100:
            kind = "early_media" if resp.status == 183 and resp.body else "ringing"
            if kind not in events:
                events.append(kind)
                log.info("call %s: %d %s", call_id, resp.status, resp.reason)

    return on_provisional


def classify(status: int, reason: str, synthetic: bool) -> tuple[str, str]:
    """Turn a final response into an outcome and words for it."""
    text = f"{status} {reason}".strip()
    if synthetic:
        return "failed", "no response from the trunk (check its address and transport)"
    if status in (486, 600):
        return "busy", text
    if status in (408, 480, 487):
        return "no_answer", text
    if status in (401, 407):
        return "failed", f"{text}: the trunk refused our credentials"
    if 400 <= status < 500 or status >= 600:
        return "rejected", text
    return "failed", text


class SipDialer:
    """Sends INVITEs for the SIP channel and makes a leg of each answered call."""

    def __init__(self, channel: SipChannel) -> None:
        self.channel = channel
        self.ua = channel.ua

    async def dial(self, d: SipDial, cancel: asyncio.Event | None = None) -> DialOutcome:
        ch = self.channel
        leg = SipCallLeg(d.info, ch.ports, ch, ch.rtp_timeout)
        try:
            await leg.media.open(ch.media_host)
        except OSError:
            return DialOutcome("failed", None, "no free RTP port")
        try:
            outcome = await self._invite(d, leg, cancel or asyncio.Event())
        except Exception:
            log.exception("placing call %s failed", d.info.id)
            outcome = DialOutcome("failed", None, "internal error while dialling")
        if outcome.leg is None:
            await leg.media.close()
        return outcome

    def _build(self, d: SipDial, call_id: str, from_tag: str, cseq: int, contact: str,
               body: bytes, auth: tuple[str, str] | None) -> Request:
        return new_request("INVITE", d.ruri, f"<{d.from_uri}>;tag={from_tag}", f"<{d.ruri}>",
                           call_id, cseq, contact=contact, route=d.route,
                           headers=[("Allow", ALLOW), *d.headers, *([auth] if auth else [])],
                           body=body, content_type="application/sdp")

    async def _invite(self, d: SipDial, leg: SipCallLeg, cancel: asyncio.Event
                      ) -> DialOutcome:
        loop = asyncio.get_running_loop()
        host = self.ua.advertised_host(d.address[1])
        contact = self.channel.contact_for(d.address)
        offer = build_offer(host, leg.media.port, new_session_id(), 1)
        call_id = secrets.token_hex(12) + "@atende"
        from_tag = new_tag()
        cseq = secrets.randbelow(1000) + 1
        deadline = loop.time() + d.ring_timeout
        responder = ChallengeResponder(DigestClient(d.username, d.password))
        events: list[str] = []
        while True:  # once more for each challenge the responder answers (a bounded few)
            auth = responder.credentials("INVITE", str(d.ruri))
            invite = self._build(d, call_id, from_tag, cseq, contact, offer, auth)
            heard = asyncio.Event()
            task = loop.create_task(self.ua.request(
                invite, d.address, _provisional_handler(d.info.id, heard, events)))
            waiter = loop.create_task(cancel.wait())
            done, _ = await asyncio.wait({task, waiter}, timeout=max(0.0, deadline -
                                                                     loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task not in done:
                return await self._cancel(d, invite, task, heard, cancel.is_set(), events)
            resp = task.result()
            if resp.status in (401, 407):
                challenge = challenge_in(resp)
                if challenge is None or not responder.accept(challenge, resp.status):
                    status, words = classify(resp.status, resp.reason, False)
                    return DialOutcome(status, resp.status, words, events=events)
                cseq += 1
                continue
            if 200 <= resp.status < 300:
                return await self._answered(d, invite, resp, leg, events)
            synthetic = resp.status == 408 and resp.to.tag is None and not heard.is_set()
            status, words = classify(resp.status, resp.reason, synthetic)
            return DialOutcome(status, resp.status, words, events=events)

    async def _cancel(self, d: SipDial, invite: Request, task: asyncio.Task[Response],
                      heard: asyncio.Event, by_user: bool, events: list[str]) -> DialOutcome:
        """Ring timeout or cancelled: CANCEL (only after a provisional, §9.1), then wait for
        the INVITE's final answer. A 2xx that crosses our CANCEL is ACKed and hung up."""
        try:
            await asyncio.wait_for(heard.wait(), 32)
        except TimeoutError:
            pass
        if not task.done():
            await self.ua.request(cancel_for(invite), d.address)
        try:
            resp = await asyncio.wait_for(task, 40)
        except TimeoutError:
            resp = None
        if resp is not None and 200 <= resp.status < 300:
            try:
                dialog = Dialog.for_uac(invite, resp)
                self.ua.send_stateless(self.ua.add_via(dialog.ack(invite.cseq.number),
                                                      d.address), d.address)
                bye = dialog.create_request("BYE")
                await self.ua.request(bye, d.address)
            except (ValueError, TimeoutError):
                pass
        status = "cancelled" if by_user else "no_answer"
        words = "cancelled before answer" if by_user else (
            f"no answer within {d.ring_timeout:.0f} s")
        return DialOutcome(status, resp.status if resp else None, words, events=events)

    async def _answered(self, d: SipDial, invite: Request, resp: Response,
                        leg: SipCallLeg, events: list[str]) -> DialOutcome:
        dialog = Dialog.for_uac(invite, resp)
        hop = await self._next_hop(dialog, d.address)
        ack = self.ua.add_via(dialog.ack(invite.cseq.number), hop)
        self.ua.send_stateless(ack, hop)
        try:
            _, neg = negotiate(parse_sdp(resp.body))
        except SdpError as exc:
            log.warning("call %s: unusable SDP answer (%s); hanging up", d.info.id, exc)
            await self.ua.request(dialog.create_request("BYE"), hop)
            return DialOutcome("failed", resp.status, f"unusable SDP answer: {exc}",
                               events=events)
        session = InviteSession.placed(dialog, hop, self.ua.advertised_host(hop[1]),
                                       leg.media.port)
        call = SipCall(d.info, session, leg, ack=ack,
                       credentials=DigestClient(d.username, d.password), connected=True)
        leg.media.configure(neg)
        leg.trust_host(hop[1])
        leg.media.start()
        self.channel.add(call)
        log.info("call %s answered by %s", d.info.id, d.info.to_uri)
        return DialOutcome("answered", resp.status, f"{resp.status} {resp.reason}".strip(),
                           leg, events)

    async def _next_hop(self, dialog: Dialog, fallback: Address) -> Address:
        uri = dialog.next_hop()
        transport = uri.params.get("transport") or fallback[0]
        try:
            ip = (await resolve(uri.host, uri.port or 5060))[0]
        except OSError:
            return fallback
        return address(transport, ip, uri.port or 5060)


def route_for_proxy(proxy_host: str, proxy_port: int | None) -> list[str]:
    """The Route header that sends every request through an outbound proxy (loose routing)."""
    return [f"<{SipUri(proxy_host, port=proxy_port, params={'lr': None})}>"]
