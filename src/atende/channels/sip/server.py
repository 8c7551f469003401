"""The SIP channel's user-agent server: turns INVITE dialogs into call legs.

RFC 3261 UAS behaviour: 100/180/200 with an SDP answer, 2xx retransmission until ACK,
CANCEL → 487, BYE, OPTIONS, re-INVITE (hold/unhold, offerless), INFO, and the right error
for everything else. What to do with a call (accept, which assistant) is the router's
decision, expressed without SIP terms.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass, field

from atende.aio import BackgroundTasks
from atende.channels.leg import (
    CallInfo,
    CallRouter,
    DtmfIn,
    HoldChanged,
    Rejection,
    TransferResult,
)
from atende.channels.sip.gate import Challenge, Gate, Refuse
from atende.channels.sip.leg import SipCallLeg
from atende.channels.sip.ua import UserAgent
from atende.media.endpoint import PortAllocator
from atende.sip.auth import DigestClient
from atende.sip.dialog import Dialog, new_tag
from atende.sip.message import Request, Response, make_response
from atende.sip.refer import (
    SIPFRAG,
    Progress,
    ReferError,
    is_refer_event,
    notify_progress,
    refer_target,
    sipfrag,
)
from atende.sip.requests import ALLOW
from atende.sip.sdp import (
    NegotiatedAudio,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    build_answer,
    build_offer,
    negotiate,
    new_session_id,
    parse_sdp,
)
from atende.sip.transaction import Address, ServerTransaction, State
from atende.sip.uri import NameAddr, SipUri, UriError

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
REJECTION_STATUS = {
    Rejection.NOT_FOUND: 404,
    Rejection.FORBIDDEN: 403,
    Rejection.BUSY: 486,
    Rejection.UNAVAILABLE: 480,
}
KNOWN_METHODS = frozenset({"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER",
                           "UPDATE", "PRACK"})
_TARGET_USER = re.compile(r"^[A-Za-z0-9+*#_.\-]{1,64}$")


@dataclass
class _TransferWait:
    """Our REFER's implicit subscription: statuses NOTIFYed so far, and the last one."""

    done: asyncio.Future[Progress]
    statuses: list[int] = field(default_factory=list)


@dataclass
class SipCall:
    info: CallInfo
    invite_txn: ServerTransaction | None  # None for calls we placed
    source: Address  # where in-dialog requests go: the peer (inbound) or the next hop
    leg: SipCallLeg | None = None
    dialog: Dialog | None = None
    cancelled: bool = False
    offer: SessionDescription | None = None
    session_id: int = field(default_factory=new_session_id)
    sdp_version: int = 1
    last_sdp: bytes = b""
    answer_in_ack: bool = False
    invite_key: tuple[str, str, int] | None = None
    ack: Request | None = None  # our ACK for their 2xx (outbound), resent if it is lost
    # What answers the far end's challenges to our in-dialog requests (calls we placed
    # through a trunk: its credentials).
    credentials: DigestClient | None = field(default=None, repr=False)
    transfer: _TransferWait | None = None  # a REFER of ours waiting for its outcome
    referred: bool = False  # the other party's REFER is being carried out


class SipChannel:
    def __init__(self, ua: UserAgent, router: CallRouter, ports: PortAllocator,
                 gate: Gate, media_host: str = "0.0.0.0",
                 answer_delay: float = 0.0, rtp_timeout: float = 60.0) -> None:
        self.ua = ua
        ua.tu = self
        self.router = router
        self.ports = ports
        self.gate = gate
        self.media_host = media_host
        self.answer_delay = answer_delay
        self.rtp_timeout = rtp_timeout
        self.calls: dict[tuple[str, str, str], SipCall] = {}  # by dialog id
        self.by_id: dict[str, SipCall] = {}  # by CallInfo.id
        self._pending: dict[ServerTransaction, SipCall] = {}
        # (Call-ID, From tag, CSeq) of INVITEs being handled or answered: the same request
        # arriving again on another path (new branch) is a merged request (§8.2.2.2).
        self._invite_keys: set[tuple[str, str, int]] = set()
        ua.on_2xx_retransmission = self._resend_ack
        self._tasks = BackgroundTasks()

    # dispatch ---------------------------------------------------------------------------
    def on_request(self, req: Request, txn: ServerTransaction | None, source: Address) -> None:
        method = req.method.upper()
        if method == "ACK":
            self._on_ack(req)
            return
        if txn is None:
            return
        if method not in ("CANCEL",):
            unsupported = [o for o in req.headers.get_all("Require")
                           if o.lower() not in SUPPORTED_EXTENSIONS]
            if unsupported:
                resp = make_response(req, 420)
                resp.headers.add("Unsupported", ", ".join(unsupported))
                self._respond(txn, resp)
                return
        if method == "CANCEL":
            self._on_cancel(req, txn)
        elif method == "OPTIONS":
            self._respond(txn, self._capabilities(make_response(req, 200)))
        elif req.to.tag:
            self._in_dialog(req, txn, method)
        elif method == "INVITE":
            key = (req.call_id, req.from_.tag or "", req.cseq.number)
            if key in self._invite_keys:
                self._respond(txn, make_response(req, 482))
                return
            self._invite_keys.add(key)
            # Stop the caller's INVITE retransmissions while we decide (§17.2.1).
            self._respond(txn, make_response(req, 100))
            self._tasks.spawn(self._on_invite(req, txn, source, key))
        elif method in ("BYE", "INFO", "NOTIFY", "REFER"):
            self._respond(txn, make_response(req, 481))
        else:
            self._reject_method(req, txn, method)

    def _reject_method(self, req: Request, txn: ServerTransaction, method: str) -> None:
        resp = make_response(req, 405 if method in KNOWN_METHODS else 501)
        resp.headers.add("Allow", ALLOW)
        self._respond(txn, resp)

    def _capabilities(self, resp: Response) -> Response:
        resp.headers.add("Allow", ALLOW)
        resp.headers.add("Accept", "application/sdp")
        resp.headers.add("Accept-Language", "en")
        resp.headers.add("Supported", ", ".join(sorted(SUPPORTED_EXTENSIONS)))
        return resp

    def contact_for(self, peer: Address) -> str:
        """Our Contact for a dialog with ``peer``: the address it can reach us on."""
        return f"<{self.ua.contact_uri('atende', peer)}>"

    def _respond(self, txn: ServerTransaction, resp: Response) -> None:
        self.ua.respond(txn, resp)

    def _find(self, req: Request) -> SipCall | None:
        return self.calls.get((req.call_id, req.to.tag or "", req.from_.tag or ""))

    # new calls --------------------------------------------------------------------------
    async def _on_invite(self, req: Request, txn: ServerTransaction, source: Address,
                         key: tuple[str, str, int]) -> None:
        try:
            await self._answer_invite(req, txn, source, key)
        except Exception:
            log.exception("failed to set up call %s", req.call_id)
            if txn.state == State.PROCEEDING:
                self._respond(txn, make_response(req, 500))
        finally:
            if not any(c.invite_key == key for c in self.calls.values()):
                self._invite_keys.discard(key)

    async def _answer_invite(self, req: Request, txn: ServerTransaction, source: Address,
                             key: tuple[str, str, int]) -> None:
        verdict = self.gate.check(req, source[1], self.ua.now())
        guard = self.ua.guard
        if isinstance(verdict, Refuse):
            if guard is not None:
                guard.failure(source[1], self.ua.now(), verdict.reason)
            self._respond(txn, make_response(req, verdict.status, verdict.reason))
            return
        if isinstance(verdict, Challenge):
            if guard is not None and "Authorization" in req.headers:
                guard.failure(source[1], self.ua.now(), "bad digest credentials")
            resp = make_response(req, 401)
            for value in verdict.www_authenticate:
                resp.headers.add("WWW-Authenticate", value)
            self._respond(txn, resp)
            return
        if not req.headers.get_all("Contact"):
            self._respond(txn, make_response(req, 400, "Missing Contact"))
            return
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        offer: SessionDescription | None = None
        if req.body:
            if ctype != "application/sdp":
                resp = make_response(req, 415)
                resp.headers.add("Accept", "application/sdp")
                self._respond(txn, resp)
                return
            try:
                offer = parse_sdp(req.body)
                negotiate(offer)
            except NoCommonCodec:
                resp = make_response(req, 488)
                resp.headers.add("Warning", '305 atende "no common codec: PCMU/PCMA required"')
                self._respond(txn, resp)
                return
            except SdpError as exc:
                self._respond(txn, make_response(req, 400, f"Bad SDP: {exc}"[:80]))
                return
        from_ = req.from_
        to = req.to
        info = CallInfo(
            id=uuid.uuid4().hex, channel="sip", direction="inbound",
            from_uri=str(from_.uri), to_uri=str(req.uri), from_user=from_.uri.user,
            from_display=from_.display, to_user=req.uri.user or to.uri.user,
            remote_address=f"{source[1]}:{source[2]}", external_id=req.call_id,
        )
        if verdict.trunk_id is not None:
            info.extra["trunk_id"] = verdict.trunk_id
        call = SipCall(info, txn, source, offer=offer, invite_key=key)
        self._pending[txn] = call
        try:
            rejection = await self.router.admit(info)
            if call.cancelled:
                return
            if rejection is not None:  # the router's own decision: it has recorded it
                self._respond(txn, make_response(req, REJECTION_STATUS[rejection]))
                return
            try:
                await self._connect(req, call)
            except Exception:
                self.router.ended_before_answer(info, "setup_failed")
                raise
        finally:
            self._pending.pop(txn, None)

    async def _connect(self, req: Request, call: SipCall) -> None:
        txn = call.invite_txn
        assert txn is not None
        local_tag = new_tag()
        host = self.ua.advertised_host(call.source[1])
        contact = self.contact_for(call.source)
        dialog = Dialog.for_uas(req, local_tag, contact)
        leg = SipCallLeg(call.info, self.ports, self, self.rtp_timeout)
        leg.trust_host(call.source[1])
        try:
            await leg.media.open(self.media_host)
        except OSError:
            log.error("no RTP port free for call %s", call.info.id)
            self._respond(txn, make_response(req, 503, "No media ports available"))
            self.router.ended_before_answer(call.info, "no_media_ports")
            return
        call.leg, call.dialog = leg, dialog
        ringing = make_response(req, 180, to_tag=local_tag)
        ringing.headers.add("Contact", contact)
        self._respond(txn, ringing)
        if self.answer_delay > 0:
            await asyncio.sleep(self.answer_delay)
        if call.cancelled:
            await leg.media.close()
            return
        if call.offer is not None:
            body = self._answer_sdp(call, call.offer, host)
        else:
            call.answer_in_ack = True  # delayed offer: we offer in the 200, answer is in ACK
            body = build_offer(host, leg.media.port, call.session_id, call.sdp_version)
        ok = make_response(req, 200, to_tag=local_tag, body=body, content_type="application/sdp")
        ok.headers.add("Contact", contact)
        self._capabilities(ok)
        self.add(call)
        self.ua.dialogs[dialog.id] = dialog
        self._respond(txn, ok)
        dialog.start_2xx(ok, self.ua.now(), call.source)
        leg.media.start()
        log.info("call %s answered: %s → %s", call.info.id, call.info.from_uri,
                 call.info.to_uri)
        self.router.connected(leg)

    def _answer_sdp(self, call: SipCall, offer: SessionDescription, host: str) -> bytes:
        assert call.leg is not None
        idx, neg = negotiate(offer)
        self._apply_media(call, neg)
        body = build_answer(offer, idx, neg, host, call.leg.media.port, call.session_id,
                            call.sdp_version)
        if call.last_sdp and _without_origin(body) != _without_origin(call.last_sdp):
            call.sdp_version += 1  # RFC 3264 §8: a changed description gets a new version
            body = build_answer(offer, idx, neg, host, call.leg.media.port, call.session_id,
                                call.sdp_version)
        call.last_sdp = body
        return body

    def _apply_media(self, call: SipCall, neg: NegotiatedAudio) -> None:
        leg = call.leg
        assert leg is not None
        leg.media.configure(neg)
        on_hold = not neg.we_send
        if on_hold != leg.on_hold:
            leg.on_hold = on_hold
            if on_hold:
                leg.clear()
            leg.events.put_nowait(HoldChanged(on_hold, self.ua.now()))

    # in-dialog --------------------------------------------------------------------------
    def _in_dialog(self, req: Request, txn: ServerTransaction, method: str) -> None:
        call = self._find(req)
        if call is None or call.dialog is None or call.leg is None:
            self._respond(txn, make_response(req, 481))
            return
        if not call.dialog.accept_remote_cseq(req.cseq):
            self._respond(txn, make_response(req, 500, "CSeq out of order"))
            return
        if method == "BYE":
            self._respond(txn, make_response(req, 200))
            self._drop(call)
            self._tasks.spawn(call.leg.finish(_bye_cause(call)))
        elif method == "INVITE":
            self._on_reinvite(req, txn, call)
        elif method == "INFO":
            self._on_info(req, txn, call)
        elif method == "NOTIFY":
            self._on_notify(req, txn, call)
        elif method == "REFER":
            self._on_refer(req, txn, call)
        else:
            self._reject_method(req, txn, method)

    def _on_reinvite(self, req: Request, txn: ServerTransaction, call: SipCall) -> None:
        assert call.dialog is not None and call.leg is not None
        host = self.ua.advertised_host(call.source[1])
        contacts = req.headers.get_all("Contact")
        if req.body:
            try:
                offer = parse_sdp(req.body)
                body = self._answer_sdp(call, offer, host)
            except NoCommonCodec:
                self._respond(txn, make_response(req, 488))
                return
            except SdpError as exc:
                self._respond(txn, make_response(req, 400, f"Bad SDP: {exc}"[:80]))
                return
        else:
            call.answer_in_ack = True
            direction = "sendrecv"
            body = build_offer(host, call.leg.media.port, call.session_id, call.sdp_version,
                               direction)
        if contacts:
            # target refresh (§12.2.2)
            call.dialog.remote_target = NameAddr.parse(contacts[0]).uri
        ok = make_response(req, 200, body=body, content_type="application/sdp")
        ok.headers.add("Contact", call.dialog.local_contact)
        self._capabilities(ok)
        self._respond(txn, ok)
        call.dialog.start_2xx(ok, self.ua.now(), call.source)

    def _on_info(self, req: Request, txn: ServerTransaction, call: SipCall) -> None:
        assert call.leg is not None
        ctype = (req.headers.get("Content-Type") or "").lower()
        if "application/dtmf-relay" in ctype:
            fields = dict(
                line.split("=", 1) for line in req.body.decode("utf-8", "replace").splitlines()
                if "=" in line
            )
            digit = fields.get("Signal", "").strip()
            dur = fields.get("Duration", "160").strip()
            if digit:
                call.leg.events.put_nowait(
                    DtmfIn(digit[:1], int(dur) if dur.isdigit() else 160, self.ua.now()))
        self._respond(txn, make_response(req, 200))

    def _on_notify(self, req: Request, txn: ServerTransaction, call: SipCall) -> None:
        wait = call.transfer
        if not is_refer_event(req.headers.get("Event")):
            self._respond(txn, make_response(req, 489))
            return
        if wait is None:  # no REFER of ours is waiting (RFC 6665 §4.1.3)
            self._respond(txn, make_response(req, 481, "Subscription does not exist"))
            return
        try:
            progress = notify_progress(req)
        except ReferError as exc:
            self._respond(txn, make_response(req, exc.status, exc.reason))
            return
        self._respond(txn, make_response(req, 200))
        log.info("call %s: transfer progress %d %s", call.info.id, progress.status,
                 progress.reason)
        if progress.status:
            wait.statuses.append(progress.status)
        if progress.final and not wait.done.done():
            wait.done.set_result(progress)

    def _on_refer(self, req: Request, txn: ServerTransaction, call: SipCall) -> None:
        """The other party transfers us (RFC 3515): accepted or refused by the router's
        policy, never ignored. Accepted, we call the target and report through NOTIFYs."""
        assert call.leg is not None and call.dialog is not None
        try:
            target = refer_target(req)
        except ReferError as exc:
            self._respond(txn, make_response(req, exc.status, exc.reason))
            return
        if call.referred or call.transfer is not None:
            self._respond(txn, make_response(req, 491))
            return
        user = target.uri.user or ""
        refusal = (self.router.decide_transfer(call.info, user) if user
                   else "the transfer target has no user part")
        if refusal is not None:
            log.info("call %s: transfer to %s refused: %s", call.info.id, target.uri, refusal)
            resp = make_response(req, 403, "Transfer Refused")
            resp.headers.add("Warning", f'399 atende "{refusal.replace(chr(34), chr(39))}"')
            self._respond(txn, resp)
            return
        call.referred = True
        resp = make_response(req, 202)
        resp.headers.add("Contact", call.dialog.local_contact)
        self._respond(txn, resp)
        log.info("call %s: transferred by the other party to %s", call.info.id, target.uri)
        self._tasks.spawn(self._carry_out_refer(call, user, target.headers,
                                                req.cseq.number))

    async def _carry_out_refer(self, call: SipCall, user: str,
                               headers: tuple[tuple[str, str], ...], event_id: int) -> None:
        assert call.leg is not None
        await self._notify_refer(call, event_id, 100, "Trying", final=False)
        try:
            status, reason = await self.router.take_transfer(call.leg, user, headers)
        except Exception:
            log.exception("call %s: carrying out a transfer failed", call.info.id)
            status, reason = None, "internal error"
        # A sipfrag needs a status line: no final answer at all reads as 503.
        code = status if status is not None and status >= 200 else 503
        await self._notify_refer(call, event_id, code, reason, final=True)
        if 200 <= code < 300:
            await call.leg.hangup("transferred")

    async def _notify_refer(self, call: SipCall, event_id: int, status: int, reason: str,
                            final: bool) -> None:
        dialog = call.dialog
        if dialog is None or dialog.id not in self.calls:
            return  # the transferor hung up already: nobody to tell

        def notify() -> Request:
            req = dialog.create_request("NOTIFY", sipfrag(status, reason[:100]), SIPFRAG)
            req.headers.add("Event", f"refer;id={event_id}")
            req.headers.add("Subscription-State",
                            "terminated;reason=noresource" if final else "active;expires=60")
            return req

        try:
            resp = await asyncio.wait_for(self.ua.request_with_credentials(
                notify, call.source, call.credentials), 40)
            if resp.status >= 300:
                log.info("call %s: transfer NOTIFY answered %d", call.info.id, resp.status)
        except TimeoutError:
            log.warning("call %s: transfer NOTIFY got no answer", call.info.id)

    def _on_ack(self, req: Request) -> None:
        call = self._find(req)
        if call is None or call.dialog is None:
            return
        call.dialog.on_ack()
        if call.answer_in_ack and req.body:
            call.answer_in_ack = False
            try:
                _, neg = negotiate(parse_sdp(req.body))
                self._apply_media(call, neg)
            except SdpError:
                log.warning("call %s: unusable SDP answer in ACK; hanging up", call.info.id)
                if call.leg is not None:
                    self._tasks.spawn(call.leg.hangup("bad_sdp_answer"))

    def _on_cancel(self, req: Request, txn: ServerTransaction) -> None:
        invite = self.ua.layer.find_invite_for_cancel(req)
        if invite is None:
            self._respond(txn, make_response(req, 481))
            return
        self._respond(txn, make_response(req, 200))
        call = self._pending.get(invite)
        if invite.state == State.PROCEEDING:
            self._respond(invite, make_response(invite.request, 487,
                                                to_tag=call.dialog.local_tag if call and
                                                call.dialog else new_tag()))
            if call is not None:
                call.cancelled = True
                self.router.ended_before_answer(call.info, "cancelled")

    def _resend_ack(self, resp: Response) -> None:
        call = self.calls.get((resp.call_id, resp.from_.tag or "", resp.to.tag or ""))
        if call is not None and call.ack is not None:
            self.ua.send_stateless(call.ack, call.source)

    def on_ack_timeout(self, dialog: Dialog) -> None:
        call = self.calls.get(dialog.id)
        if call is not None and call.leg is not None:
            log.warning("call %s: no ACK for our 200 OK; hanging up", call.info.id)
            self._tasks.spawn(call.leg.hangup("ack_timeout"))

    # requests from our side -------------------------------------------------------------
    async def send_bye(self, leg: SipCallLeg) -> None:
        call = self.by_id.get(leg.info.id)
        if call is None or call.dialog is None:
            return
        self._drop(call)
        dialog = call.dialog
        try:
            resp = await asyncio.wait_for(self.ua.request_with_credentials(
                lambda: dialog.create_request("BYE"), call.source, call.credentials), 40)
            log.info("call %s: BYE answered %d", call.info.id, resp.status)
        except TimeoutError:
            log.warning("call %s: BYE got no answer", call.info.id)

    async def refer(self, leg: SipCallLeg, target: str, wait_s: float) -> TransferResult:
        """Blind transfer (RFC 3515, RFC 5589 §6): REFER the peer to ``target`` and follow
        the referred call through the NOTIFYs until its final status."""
        call = self.by_id.get(leg.info.id)
        if call is None or call.dialog is None:
            return TransferResult("failed", None, "the call is not connected")
        if call.transfer is not None:
            return TransferResult("refused", None, "a transfer is already in progress")
        try:
            uri = _target_uri(call.dialog, target)
        except (UriError, ValueError) as exc:
            return TransferResult("refused", None, f"bad transfer target: {exc}")
        dialog = call.dialog

        def refer() -> Request:
            req = dialog.create_request("REFER")
            req.headers.add("Refer-To", f"<{uri}>")
            req.headers.add("Referred-By", f"<{NameAddr.parse(dialog.local_uri).uri}>")
            return req

        wait = _TransferWait(asyncio.get_running_loop().create_future())
        call.transfer = wait  # before sending: the first NOTIFY may overtake the 202
        log.info("call %s: transferring to %s", call.info.id, uri)
        try:
            async with asyncio.timeout(wait_s):
                resp = await self.ua.request_with_credentials(refer, call.source,
                                                              call.credentials)
                if resp.status >= 300:
                    return TransferResult("refused", resp.status,
                                          f"{resp.status} {resp.reason}".strip())
                final = await wait.done
        except TimeoutError:
            return TransferResult("timeout", None, f"no outcome within {wait_s:g} s",
                                  tuple(wait.statuses))
        finally:
            call.transfer = None
        statuses = tuple(wait.statuses)
        words = f"{final.status} {final.reason}".strip()
        if 200 <= final.status < 300:
            return TransferResult("transferred", final.status, words, statuses)
        if final.status == 0:
            return TransferResult("failed", None, f"ended without an outcome ({final.reason})",
                                  statuses)
        return TransferResult("failed", final.status, words, statuses)

    def add(self, call: SipCall) -> None:
        """An answered call: in-dialog requests and the leg's own requests find it."""
        assert call.dialog is not None
        self.calls[call.dialog.id] = call
        self.by_id[call.info.id] = call

    def _drop(self, call: SipCall) -> None:
        if call.invite_key is not None:
            self._invite_keys.discard(call.invite_key)
        self.by_id.pop(call.info.id, None)
        if call.dialog is not None:
            self.calls.pop(call.dialog.id, None)
            self.ua.dialogs.pop(call.dialog.id, None)

    async def close(self) -> None:
        for call in list(self.calls.values()):
            if call.leg is not None:
                await call.leg.hangup("shutdown")


def _bye_cause(call: SipCall) -> str:
    """Why the other party's BYE ended the call: a transferor hangs up once it has handed
    us over (RFC 5589), and so may a transferee once our REFER has succeeded."""
    wait = call.transfer
    succeeded = (wait is not None and wait.done.done()
                 and 200 <= wait.done.result().status < 300)
    return "transferred" if call.referred or succeeded else "remote_hangup"


def _target_uri(dialog: Dialog, target: str) -> SipUri:
    """A SIP URI as given, or a bare user/number at the host of the party's own address."""
    target = target.strip()
    if target.lower().startswith(("sip:", "sips:")):
        return SipUri.parse(target)
    if not _TARGET_USER.match(target):
        raise ValueError(f"{target!r} is neither a SIP URI nor a user or number")
    peer = NameAddr.parse(dialog.remote_uri).uri
    return SipUri(peer.host, user=target, port=peer.port)


def _without_origin(sdp: bytes) -> bytes:
    return b"\n".join(ln for ln in sdp.split(b"\n") if not ln.startswith(b"o="))
