"""The SIP channel: turns INVITE dialogs into call legs. A thin driver of the sans-IO
INVITE usage (sip/invite.py): it finds the call a request belongs to, asks the router
(without SIP terms) whether to take a call or a transfer, carries out the actions the
session returns on the user agent, the media and the leg, and answers what belongs to
no call (OPTIONS, CANCEL matching, stray in-dialog requests)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from atende.aio import BackgroundTasks, all_before
from atende.channels.leg import (
    CallInfo,
    CallLeg,
    CallRouter,
    NotServing,
    Rejection,
    TransferResult,
)
from atende.channels.secretary import (
    CALL_HEADER,
    DOMAIN_HEADER,
    SECRETARY_HEADER,
    assistant_id,
    known_uuid,
)
from atende.channels.sip.dialog_call import DialogCall
from atende.channels.sip.gate import Challenge, Gate, Refuse
from atende.channels.sip.leg import SipLeg
from atende.channels.sip.transfer import (
    IN_DIALOG_WAIT_S,
    carry_out_refer,
    refer,
    transfer_progress,
)
from atende.channels.sip.ua import Guard, UserAgent, retry_later
from atende.media.ports import PortAllocator
from atende.sip.auth import digest_username
from atende.sip.dialog import Dialog, new_tag
from atende.sip.invite import InviteSession, Phase
from atende.sip.invite_actions import (
    Action,
    Digit,
    Ended,
    HangUp,
    Media,
    ReinviteRefused,
    Reply,
    Send,
    SendAck,
    TransferAsked,
    TransferProgress,
)
from atende.sip.message import Request, Response, make_response
from atende.sip.screening import not_allowed, screen_invite, unsupported, with_capabilities
from atende.sip.sdp import Offer
from atende.sip.transaction import Address, ServerTransaction, State

log = logging.getLogger(__name__)
TRYING_AFTER_S = 0.1  # an INVITE not answered by then gets a 100 (Trying)

REJECTION_STATUS = {
    Rejection.NOT_FOUND: 404,
    Rejection.FORBIDDEN: 403,
    Rejection.BUSY: 486,
    Rejection.UNAVAILABLE: 480,
}


@dataclass
class _Incoming:
    """An INVITE being decided: the router admits it, then it rings and is answered."""

    info: CallInfo
    offer: Offer | None  # None: a delayed offer
    call: DialogCall | None = None  # once it rings
    cancelled: bool = False
    # While the router is admitting it: a CANCEL then waits for its decision to tell it
    # the call ended, or a place it takes after the CANCEL is never given back.
    admitting: bool = False


@dataclass(frozen=True)
class _Ringing:
    """A SIP call while the router decides (see CallRouter.answering)."""

    call: DialogCall
    apply: Callable[[DialogCall, list[Action]], None]  # the channel carries actions out

    def ringing(self) -> None:
        self.apply(self.call, self.call.session.ring())

    def early_media(self) -> CallLeg | None:
        actions = self.call.session.early_media()
        if not actions:
            return None  # a delayed offer, or no longer ringing
        self.apply(self.call, actions)
        self.call.leg.media.start()
        return self.call.leg


class Registrations(Protocol):
    """What answers REGISTER on a channel that keeps registrations (the bridge's)."""

    def register(self, req: Request, source: Address, now: float) -> Response: ...


class SipChannel:
    """The SIP side of atende: serves the user agent's requests once given a router, and
    takes the calls channels/sip/outbound.py places."""

    def __init__(self, ua: UserAgent, ports: PortAllocator, gate: Gate,
                 guard: Guard | None = None, media_host: str = "0.0.0.0",
                 answer_delay: float = 0.0, rtp_timeout: float = 60.0,
                 registrar: Registrations | None = None) -> None:
        self.ua = ua
        self.registrar = registrar  # None: REGISTER is not allowed here
        self.router: CallRouter = NotServing()
        self.ports = ports
        self.gate = gate
        self.guard = guard
        self.media_host = media_host
        self.answer_delay = answer_delay
        self.rtp_timeout = rtp_timeout
        self.calls: dict[tuple[str, str, str], DialogCall] = {}  # by dialog id
        self.by_id: dict[str, DialogCall] = {}  # by CallInfo.id
        self._incoming: dict[ServerTransaction, _Incoming] = {}
        # (Call-ID, From tag, CSeq) of INVITEs being handled or answered: the same request
        # arriving again on another path (new branch) is a merged request (§8.2.2.2).
        self._invite_keys: set[tuple[str, str, int]] = set()
        self._answered_keys: set[tuple[str, str, int]] = set()  # those of calls up
        self._tasks = BackgroundTasks()
        self._byes = BackgroundTasks()  # our BYEs, until answered (close waits for them)

    def serve(self, router: CallRouter) -> None:
        """Take calls from now on, deciding each with ``router`` (the calls engine, made
        after the channel: it places calls through the channel's dialer)."""
        self.router = router
        self.ua.serve(self)

    # dispatch ---------------------------------------------------------------------------
    def on_request(self, req: Request, txn: ServerTransaction | None, source: Address) -> None:
        method = req.method.upper()
        if method == "ACK":
            call = self._find(req)
            if call is not None:
                self._apply(call, call.session.receive(req, None, self.ua.now()))
            return
        if txn is None:
            return
        if method != "CANCEL" and (refusal := unsupported(req)) is not None:
            self.ua.respond(txn, refusal)
        elif method == "CANCEL":
            self._on_cancel(req, txn)
        elif method == "OPTIONS" and self.ua.load.draining:
            # A load balancer's health probe: send new calls elsewhere (RFC 3261 §11.2
            # lets OPTIONS be answered as an INVITE would be).
            self.ua.respond(txn, retry_later(req, self.ua.load.retry_after(), "Draining"))
        elif method == "OPTIONS":
            self.ua.respond(txn, with_capabilities(make_response(req, 200)))
        elif method == "REGISTER" and self.registrar is not None:
            self.ua.respond(txn, self.registrar.register(req, source, self.ua.now()))
        elif req.to.tag:
            call = self._find(req)
            if call is None:
                self.ua.respond(txn, make_response(req, 481))
            else:
                self._apply(call, call.session.receive(req, txn, self.ua.now()))
        elif method == "INVITE":
            key = (req.call_id, req.from_.tag or "", req.cseq.number)
            if key in self._invite_keys:
                self.ua.respond(txn, make_response(req, 482))
                return
            self._invite_keys.add(key)
            # A call is usually answered (or refused) within milliseconds, and then a 100
            # would only cost a message each way; one not answered by TRYING_AFTER_S gets
            # it then, well before the caller sends its INVITE again (T1, 500 ms):
            # RFC 3261 §17.2.1 asks for a 100 when the answer takes over 200 ms.
            asyncio.get_running_loop().call_later(TRYING_AFTER_S, self._trying, req, txn)
            self._tasks.spawn(self._on_invite(req, txn, source, key))
        elif method in ("BYE", "INFO", "NOTIFY", "REFER"):
            self.ua.respond(txn, make_response(req, 481))
        else:
            self.ua.respond(txn, not_allowed(req))

    def _trying(self, req: Request, txn: ServerTransaction) -> None:
        if txn.state == State.PROCEEDING and txn.last_sent is None:  # nothing said yet
            self.ua.respond(txn, make_response(req, 100))

    def contact_for(self, peer: Address) -> str:
        """Our Contact for a dialog with ``peer``: the address it can reach us on."""
        return f"<{self.ua.contact_uri('atende', peer)}>"

    def _find(self, req: Request) -> DialogCall | None:
        return self.calls.get((req.call_id, req.to.tag or "", req.from_.tag or ""))

    # what the session asks for ----------------------------------------------------------
    def _apply(self, call: DialogCall, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Reply):
                self.ua.respond(action.txn, action.response)
            elif isinstance(action, Media):
                call.leg.media.configure(action.audio)
                if action.hold_changed:
                    call.leg.hold_changed(action.on_hold, self.ua.now())
            elif isinstance(action, Digit):
                call.leg.key_pressed(action.digit, action.duration_ms, self.ua.now())
            elif isinstance(action, Ended):
                self._ended(call, action.cause)
            elif isinstance(action, HangUp):
                if action.cause == "ack_timeout":
                    log.warning("call %s: no ACK for our 200 OK; hanging up", call.info.id)
                self._tasks.spawn(call.leg.hangup(action.cause))
            elif isinstance(action, TransferAsked):
                self._on_refer(call, action)
            elif isinstance(action, TransferProgress):
                transfer_progress(call, action.progress)
            elif isinstance(action, Send):
                self._tasks.spawn(self._send(call, action.request))
            elif isinstance(action, SendAck):
                self.ua.send_stateless(self.ua.add_via(action.request, call.peer), call.peer)
            elif isinstance(action, ReinviteRefused):
                log.info("call %s: our re-INVITE was refused (%d)", call.info.id,
                         action.status)

    def _ended(self, call: DialogCall, cause: str) -> None:
        if not call.connected:  # cancelled while it rang: the router never had the leg
            self.router.ended_before_answer(call.info, cause)
            return
        self._drop(call)
        call.leg.finish(cause)

    async def _send(self, call: DialogCall, req: Request) -> None:
        resp = await self.ua.request(req, call.peer)
        self._apply(call, call.session.on_response(req, resp, self.ua.now()))
        deadline = call.session.next_deadline()
        if deadline is not None:  # glare: the re-INVITE goes again at this time
            loop = asyncio.get_running_loop()
            loop.call_at(loop.time() + max(0.0, deadline - self.ua.now()),
                         lambda: self._apply(call, call.session.tick(self.ua.now())))

    # new calls --------------------------------------------------------------------------
    async def _on_invite(self, req: Request, txn: ServerTransaction, source: Address,
                         key: tuple[str, str, int]) -> None:
        try:
            await self._answer_invite(req, txn, source, key)
        except Exception:
            log.exception("failed to set up call %s", req.call_id)
            if txn.state == State.PROCEEDING:
                self.ua.respond(txn, make_response(req, 500))
        finally:
            if key not in self._answered_keys:
                self._invite_keys.discard(key)

    async def _answer_invite(self, req: Request, txn: ServerTransaction, source: Address,
                             key: tuple[str, str, int]) -> None:
        now = self.ua.now()
        ours = self.gate.trunk_address(source[1])
        user = digest_username(req)
        if (user is not None and not ours and self.guard is not None
                and self.guard.user_locked(user, now)):
            # Guessed at from many addresses: only the trunk's own may try it for a while.
            self.guard.failure(source[1], now, "tried a locked user")
            self.ua.respond(txn, make_response(req, 403, "Too many failed attempts"))
            return
        verdict = self.gate.check(req, source, now)
        if isinstance(verdict, Refuse):
            if self.guard is not None:
                self.guard.failure(source[1], now, verdict.reason, protected=ours)
            self.ua.respond(txn, make_response(req, verdict.status, verdict.reason))
            return
        if isinstance(verdict, Challenge):
            if self.guard is not None and user is not None:
                self.guard.failure(source[1], now, "bad digest credentials", user=user,
                                   protected=ours)
            resp = make_response(req, 401)
            for value in verdict.www_authenticate:
                resp.headers.add("WWW-Authenticate", value)
            self.ua.respond(txn, resp)
            return
        offer, refusal = screen_invite(req)
        if refusal is not None:
            self.ua.respond(txn, refusal)
            return
        from_ = req.from_
        info = CallInfo(
            id=uuid.uuid4().hex, channel="sip", direction="inbound",
            from_uri=str(from_.uri), to_uri=str(req.uri), from_user=from_.uri.user,
            from_display=from_.display, to_user=req.uri.user or req.to.uri.user,
            remote_address=f"{source[1]}:{source[2]}", external_id=req.call_id,
        )
        if verdict.caller is not None:
            info.extra["caller"] = verdict.caller
        if verdict.trunk_id is not None:
            info.extra["trunk_id"] = verdict.trunk_id
        elif secretary := assistant_id(req.headers.get(SECRETARY_HEADER)):
            info.extra["assistant_id"] = secretary  # FreeSWITCH's AUDIO_MODE=rtp bridge
            if domain := known_uuid(req.headers.get(DOMAIN_HEADER)):
                info.extra["domain_uuid"] = domain
            if fs_call := known_uuid(req.headers.get(CALL_HEADER)):
                info.external_id = fs_call  # FreeSWITCH's UUID, as in websocket mode
        incoming = _Incoming(info, offer)
        self._incoming[txn] = incoming
        try:
            incoming.admitting = True
            try:
                rejection = await self.router.admit(info)
            finally:
                incoming.admitting = False
            if incoming.cancelled:
                if rejection is None:  # admitted after all: its place is given back
                    self.router.ended_before_answer(info, "cancelled")
                return
            if rejection is not None:  # the router's own decision: it has recorded it
                self.ua.respond(txn, make_response(req, REJECTION_STATUS[rejection]))
                return
            try:
                await self._connect(req, txn, source, key, incoming)
            except Exception:
                self.router.ended_before_answer(info, "setup_failed")
                raise
        finally:
            self._incoming.pop(txn, None)

    async def _connect(self, req: Request, txn: ServerTransaction, source: Address,
                       key: tuple[str, str, int], incoming: _Incoming) -> None:
        leg = SipLeg(incoming.info, self.ports, self, self.rtp_timeout)
        leg.trust_host(source[1])
        try:
            leg.media.open(self.media_host)
        except OSError:
            log.error("no RTP port free for call %s", incoming.info.id)
            self.ua.respond(txn, make_response(req, 503, "No media ports available"))
            self.router.ended_before_answer(incoming.info, "no_media_ports")
            return
        session = InviteSession.answering(
            req, txn, source, new_tag(), self.contact_for(source),
            self.ua.advertised_host(source[1]), leg.media.port, incoming.offer)
        call = DialogCall(incoming.info, session, leg, invite_key=key)
        incoming.call = call
        refusal = await self.router.answering(incoming.info, _Ringing(call, self._apply))
        if refusal is not None:
            self._apply(call, session.refuse(refusal.status, refusal.reason))
        elif self.answer_delay > 0:  # the ring time configured: the caller hears it ring
            self._apply(call, session.ring())
            await asyncio.sleep(self.answer_delay)
        if session.phase != Phase.EARLY:  # cancelled while it rang, or refused
            leg.media.close()
            return
        self.add(call)
        self._apply(call, session.answer(self.ua.now()))
        leg.media.start()
        log.info("call %s answered: %s → %s", call.info.id, call.info.from_uri,
                 call.info.to_uri)
        call.connected = True
        self.router.connected(leg)

    def _on_cancel(self, req: Request, txn: ServerTransaction) -> None:
        invite = self.ua.invite_for_cancel(req)
        if invite is None:  # too late (answered: no effect) or for nothing we know
            self.ua.respond(txn, make_response(req, 200 if self.ua.invite_answered(req)
                                               else 481))
            return
        self.ua.respond(txn, make_response(req, 200))
        incoming = self._incoming.get(invite)
        if incoming is not None and incoming.call is not None:  # ringing
            self._apply(incoming.call, incoming.call.session.cancel())
        elif invite.state == State.PROCEEDING and invite.request is not None:  # undecided
            self.ua.respond(invite, make_response(invite.request, 487, to_tag=new_tag()))
            if incoming is not None:
                incoming.cancelled = True
                if not incoming.admitting:  # else told once admission has decided
                    self.router.ended_before_answer(incoming.info, "cancelled")

    def trunk_address(self, ip: str) -> bool:
        return self.gate.trunk_address(ip)

    # dialog timers (the user agent's) ----------------------------------------------------
    def on_2xx_retransmission(self, resp: Response) -> None:
        call = self.calls.get((resp.call_id, resp.from_.tag or "", resp.to.tag or ""))
        if call is not None and call.ack is not None:
            self.ua.send_stateless(call.ack, call.peer)

    def on_ack_timeout(self, dialog: Dialog) -> None:
        call = self.calls.get(dialog.id)
        if call is not None:
            self._apply(call, call.session.ack_timeout())

    # transfers the other party asks for --------------------------------------------------
    def _on_refer(self, call: DialogCall, ask: TransferAsked) -> None:
        """The other party transfers us (RFC 3515): accepted or refused by the router's
        policy, never ignored. Accepted, we call the target and report through NOTIFYs."""
        target = ask.target
        user = target.uri.user or ""
        refusal = (self.router.decide_transfer(call.info, user) if user
                   else "the transfer target has no user part")
        if refusal is not None:
            log.info("call %s: transfer to %s refused: %s", call.info.id, target.uri, refusal)
            self._apply(call, call.session.refuse_refer(ask, refusal))
            return
        self._apply(call, call.session.accept_refer(ask))
        log.info("call %s: transferred by the other party to %s", call.info.id, target.uri)
        self._tasks.spawn(carry_out_refer(self.ua, self.router, call, user, target.headers,
                                          ask.request.cseq.number))

    # requests from our side -------------------------------------------------------------
    async def send_bye(self, leg: SipLeg) -> None:
        """Hang up ``leg``'s call. The session is over as the BYE is sent (RFC 3261
        §15.1.1: media stops then), so its answer is awaited on the side: a party that
        has gone away holds neither the call's place nor its agent for the 32 s its BYE
        may go unanswered."""
        call = self.by_id.get(leg.info.id)
        if call is None:
            return
        self._drop(call)
        bye = call.session.bye()
        if bye is None:
            return
        self._byes.spawn(self._bye(call, bye))

    async def _bye(self, call: DialogCall, bye: Request) -> None:
        dialog = call.session.dialog
        try:
            async with asyncio.timeout(IN_DIALOG_WAIT_S):
                resp = await self.ua.request_with_credentials(
                    bye, lambda: dialog.create_request("BYE"), call.peer, call.credentials)
            log.info("call %s: BYE answered %d", call.info.id, resp.status)
        except TimeoutError:
            log.warning("call %s: BYE got no answer", call.info.id)

    def hold(self, leg: SipLeg, on_hold: bool) -> None:
        """Offer sendonly (we hold the party) or sendrecv again, in a re-INVITE; its
        answer comes back through _send. Nothing while another INVITE is in progress."""
        call = self.by_id.get(leg.info.id)
        if call is None:
            return
        actions = call.session.reinvite("sendonly" if on_hold else "sendrecv")
        log.info("call %s: %s%s", leg.info.id, "holding" if on_hold else "resuming",
                 "" if actions else " later: another INVITE is in progress")
        self._apply(call, actions)

    async def send_info_dtmf(self, leg: SipLeg, digit: str, duration_ms: int) -> None:
        """One key as SIP INFO (application/dtmf-relay), for a party without RFC 4733."""
        call = self.by_id.get(leg.info.id)
        if call is None:
            return
        dialog = call.session.dialog
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()

        def info() -> Request:
            return dialog.create_request("INFO", body, "application/dtmf-relay")

        try:
            async with asyncio.timeout(IN_DIALOG_WAIT_S):
                resp = await self.ua.request_with_credentials(
                    info(), info, call.peer, call.credentials)
            if resp.status >= 300:
                log.info("call %s: INFO with a key answered %d", leg.info.id, resp.status)
        except TimeoutError:
            log.warning("call %s: INFO with a key got no answer", leg.info.id)

    async def refer(self, leg: SipLeg, target: str, wait_s: float) -> TransferResult:
        """Blind transfer (RFC 3515, RFC 5589 §6): see transfer.refer."""
        call = self.by_id.get(leg.info.id)
        if call is None:
            return TransferResult("failed", None, "the call is not connected")
        return await refer(self.ua, call, target, wait_s)

    # the table of calls -----------------------------------------------------------------
    def add(self, call: DialogCall) -> None:
        """An answered call: in-dialog requests, its timers and its leg find it."""
        dialog = call.session.dialog
        self.calls[dialog.id] = call
        self.by_id[call.info.id] = call
        if call.invite_key is not None:
            self._answered_keys.add(call.invite_key)
        self.ua.track(dialog)

    def _drop(self, call: DialogCall) -> None:
        if call.invite_key is not None:
            self._invite_keys.discard(call.invite_key)
            self._answered_keys.discard(call.invite_key)
        self.by_id.pop(call.info.id, None)
        dialog = call.session.dialog
        self.calls.pop(dialog.id, None)
        self.ua.forget(dialog)

    async def close(self, deadline: float) -> None:
        """Hang up every call at once, waiting for the answers to our BYEs until
        ``deadline`` (event-loop time): a peer that never answers holds nobody else up."""
        await asyncio.gather(*[call.leg.hangup("shutdown") for call in list(self.calls.values())])
        late = await all_before(self._byes.running(), deadline)
        if late:
            log.warning("%d call(s) did not answer our BYE before the shutdown deadline", late)
