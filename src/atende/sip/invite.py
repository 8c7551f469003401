"""One call's INVITE dialog usage as a sans-IO state machine: offer/answer (RFC 3264) with
delayed offers, CANCEL, re-INVITE for hold in both directions with glare (RFC 3261 §14),
REFER and its NOTIFYs both ways (RFC 3515), INFO DTMF, and the end of the session. It
serves the call we answered and, once it is answered, the call we placed.

The driver (channels/sip/server.py) feeds it each request of the call with the time, and
the final responses to the requests it asked to send; it carries out the actions that come
back: responses on their transaction, requests to send in the dialog, media to configure,
and what to tell the call leg. Nothing here touches a socket, a clock or the leg.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import replace
from enum import Enum

from atende.sip.dialog import Dialog
from atende.sip.grammar import is_digits
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
from atende.sip.refer import (
    SIPFRAG,
    ReferError,
    is_refer_event,
    notify_progress,
    refer_target,
    sipfrag,
)
from atende.sip.screening import not_allowed, warning, with_capabilities
from atende.sip.sdp import (
    G711_ONLY,
    SRTP_KEY_BYTES,
    Crypto,
    NegotiatedAudio,
    NoCommonCodec,
    Offer,
    SdpError,
    build_answer,
    build_offer,
    negotiate,
    new_session_id,
    parse_sdp,
)
from atende.sip.transaction import Address, ServerTransaction
from atende.sip.uri import NameAddr, UriError


class Phase(Enum):
    """Where an INVITE session stands."""

    EARLY = "early"  # we answer: INVITE received, no final response yet
    ANSWERED = "answered"  # our 2xx sent, its ACK not yet here
    CONFIRMED = "confirmed"
    ENDED = "ended"


class InviteSession:
    """The dialog of one call and everything that happens in it."""

    def __init__(self, dialog: Dialog, peer: Address, media_host: str, media_port: int,
                 phase: Phase, invite: Request | None = None,
                 invite_txn: ServerTransaction | None = None,
                 offer: Offer | None = None, we_called: bool = False,
                 codecs: tuple[str, ...] = G711_ONLY) -> None:
        self.dialog = dialog
        self.peer = peer  # where in-dialog requests go: the other party or the next hop
        self.media_host = media_host  # our SDP's address and port
        self.media_port = media_port
        self.phase = phase
        self.we_called = we_called  # we own the Call-ID (the glare back-off depends on it)
        self.codecs = codecs  # what our own offers (re-INVITEs, offerless answers) list
        # Our SRTP master key and salt (SDES), used if the other side offers SRTP; the
        # crypto agreed, once it is, so our own offers keep it.
        self._srtp_key = secrets.token_bytes(SRTP_KEY_BYTES)
        self._crypto: Crypto | None = None
        self.on_hold = False
        self._invite = invite  # the INVITE we answer (UAS)
        self._invite_txn = invite_txn
        self._rang = False  # our 180 is sent (once is enough)
        self._offer = offer
        self._session_id = new_session_id()
        self._sdp_version = 1
        self._last_sdp = b""
        self._answer_in_ack = False  # we offered in a 2xx: the answer comes in the ACK
        self._referred = False  # the other party's REFER is being carried out
        self._transfer: list[int] | None = None  # our REFER's statuses, while it waits
        self._transfer_ok = False
        self._reinvite: Request | None = None  # ours, waiting for its final response
        self._reinvite_direction = "sendrecv"
        self._retry_at: float | None = None  # glare: when our re-INVITE goes again
        # A direction asked for while another INVITE was in progress: offered after it.
        self._wanted: str | None = None

    # the call we answer ----------------------------------------------------------------
    @classmethod
    def answering(cls, invite: Request, txn: ServerTransaction, peer: Address,
                  local_tag: str, contact: str, media_host: str, media_port: int,
                  offer: Offer | None) -> InviteSession:
        """The session of an INVITE that ``screen_invite`` passed and that we take."""
        dialog = Dialog.for_uas(invite, local_tag, contact)
        return cls(dialog, peer, media_host, media_port, Phase.EARLY, invite, txn, offer)

    def ring(self) -> list[Action]:
        if self.phase != Phase.EARLY or self._invite is None or self._invite_txn is None \
                or self._rang:
            return []
        self._rang = True
        ringing = make_response(self._invite, 180, to_tag=self.dialog.local_tag)
        ringing.headers.add("Contact", self.dialog.local_contact)
        return [Reply(self._invite_txn, ringing)]

    def early_media(self) -> list[Action]:
        """183 Session Progress with our answer: media before the call is answered
        (RFC 3960's gateway model). The 2xx repeats the same answer. Nothing for a
        delayed offer (our offer would need a reliable 183, RFC 3262)."""
        if (self.phase != Phase.EARLY or self._invite is None or self._invite_txn is None
                or self._offer is None):
            return []
        body, media = self._answer(self._offer)
        progress = make_response(self._invite, 183, to_tag=self.dialog.local_tag, body=body,
                                 content_type="application/sdp")
        progress.headers.add("Contact", self.dialog.local_contact)
        return [media, Reply(self._invite_txn, progress)]

    def answer(self, now: float) -> list[Action]:
        """Our 2xx: the answer to the offer, or our offer when the INVITE had none."""
        if self.phase != Phase.EARLY or self._invite is None or self._invite_txn is None:
            return []
        actions: list[Action] = []
        if self._offer is not None:
            body, media = self._answer(self._offer)
            actions.append(media)
        else:
            self._answer_in_ack = True
            body = self._our_offer("sendrecv")
        ok = make_response(self._invite, 200, to_tag=self.dialog.local_tag, body=body,
                           content_type="application/sdp")
        ok.headers.add("Contact", self.dialog.local_contact)
        with_capabilities(ok)
        self.phase = Phase.ANSWERED
        self.dialog.start_2xx(ok, now, self.peer)
        actions.append(Reply(self._invite_txn, ok))
        return actions

    def refuse(self, status: int, reason: str) -> list[Action]:
        """A final refusal (4xx–6xx) of the INVITE we have not answered: a bridge passing
        on its callee's answer. The transaction takes care of the ACK."""
        if self.phase != Phase.EARLY or self._invite is None or self._invite_txn is None:
            return []
        self.phase = Phase.ENDED
        return [Reply(self._invite_txn, make_response(self._invite, status, reason or None,
                                                      to_tag=self.dialog.local_tag))]

    def cancel(self) -> list[Action]:
        """A CANCEL of the INVITE (its own 200 is the driver's): 487 while unanswered."""
        if self.phase != Phase.EARLY or self._invite is None or self._invite_txn is None:
            return []
        self.phase = Phase.ENDED
        return [Reply(self._invite_txn, make_response(self._invite, 487,
                                                      to_tag=self.dialog.local_tag)),
                Ended("cancelled")]

    def ack_timeout(self) -> list[Action]:
        """Our 2xx was never ACKed (Timer H's 64·T1, §13.3.1.4)."""
        if self.phase != Phase.ANSWERED:
            return []
        return [HangUp("ack_timeout")]

    # the call we placed ----------------------------------------------------------------
    @classmethod
    def placed(cls, dialog: Dialog, peer: Address, media_host: str, media_port: int,
               codecs: tuple[str, ...] = G711_ONLY, crypto: Crypto | None = None
               ) -> InviteSession:
        """The session of our INVITE once its 2xx was ACKed (``codecs``: what our INVITE
        offered, and our re-INVITEs offer again; ``crypto``: the SRTP it agreed, which
        they keep)."""
        session = cls(dialog, peer, media_host, media_port, Phase.CONFIRMED, we_called=True,
                      codecs=codecs)
        if crypto is not None:
            session._srtp_key, session._crypto = crypto.ours, crypto
        return session

    # requests of the other party -------------------------------------------------------
    def receive(self, req: Request, txn: ServerTransaction | None, now: float
                ) -> list[Action]:
        """An in-dialog request (``txn`` None for an ACK), its required extensions checked
        already (sip/screening.py)."""
        method = req.method.upper()
        if method == "ACK":
            return self._on_ack(req)
        if txn is None:
            return []
        if self.phase in (Phase.EARLY, Phase.ENDED):
            return [Reply(txn, make_response(req, 481))]
        if not self.dialog.accept_remote_cseq(req.cseq):
            return [Reply(txn, make_response(req, 500, "CSeq out of order"))]
        if method == "BYE":
            self.phase = Phase.ENDED
            return [Reply(txn, make_response(req, 200)), Ended(self._bye_cause())]
        if method == "INVITE":
            return self._on_reinvite(req, txn, now)
        if method == "INFO":
            return self._on_info(req, txn)
        if method == "NOTIFY":
            return self._on_notify(req, txn)
        if method == "REFER":
            return self._on_refer(req, txn)
        return [Reply(txn, not_allowed(req))]

    def _on_ack(self, req: Request) -> list[Action]:
        if self.phase not in (Phase.ANSWERED, Phase.CONFIRMED):
            return []
        self.dialog.on_ack()
        if self.phase == Phase.ANSWERED:
            self.phase = Phase.CONFIRMED
        if not (self._answer_in_ack and req.body):
            return self._offer_wanted()
        self._answer_in_ack = False
        try:
            _, audio = negotiate(parse_sdp(req.body))
        except SdpError:
            return [HangUp("bad_sdp_answer")]
        return [self._media(audio), *self._offer_wanted()]

    def _on_reinvite(self, req: Request, txn: ServerTransaction, now: float
                     ) -> list[Action]:
        if self._reinvite is not None:
            # Both of us re-INVITEd at once (glare): theirs waits (§14.2).
            return [Reply(txn, make_response(req, 491))]
        contacts = req.headers.get_all("Contact")
        target = None
        if contacts:
            try:  # a target refresh (§12.2.2)
                target = NameAddr.parse(contacts[0]).uri
            except (UriError, ValueError):
                return [Reply(txn, make_response(req, 400, "Bad Contact"))]
        actions: list[Action] = []
        if req.body:
            try:
                body, media = self._answer(Offer.of(parse_sdp(req.body)))
            except NoCommonCodec:
                return [Reply(txn, make_response(req, 488))]
            except SdpError as exc:
                return [Reply(txn, make_response(req, 400, f"Bad SDP: {exc}"[:80]))]
            actions.append(media)
        else:
            self._answer_in_ack = True
            body = self._our_offer("sendrecv")
        if target is not None:
            self.dialog.remote_target = target
        ok = make_response(req, 200, body=body, content_type="application/sdp")
        ok.headers.add("Contact", self.dialog.local_contact)
        with_capabilities(ok)
        self.phase = Phase.ANSWERED
        self.dialog.start_2xx(ok, now, self.peer)
        actions.append(Reply(txn, ok))
        return actions

    def _on_info(self, req: Request, txn: ServerTransaction) -> list[Action]:
        actions: list[Action] = [Reply(txn, make_response(req, 200))]
        ctype = (req.headers.get("Content-Type") or "").lower()
        if "application/dtmf-relay" in ctype:
            fields = dict(line.split("=", 1) for line in
                          req.body.decode("utf-8", "replace").splitlines() if "=" in line)
            digit = fields.get("Signal", "").strip()
            duration = fields.get("Duration", "160").strip()
            if digit:
                actions.append(Digit(digit[:1], int(duration) if is_digits(duration) else 160))
        return actions

    def _on_notify(self, req: Request, txn: ServerTransaction) -> list[Action]:
        if not is_refer_event(req.headers.get("Event")):
            return [Reply(txn, make_response(req, 489))]
        if self._transfer is None:  # no REFER of ours is waiting (RFC 6665 §4.1.3)
            return [Reply(txn, make_response(req, 481, "Subscription does not exist"))]
        try:
            progress = notify_progress(req)
        except ReferError as exc:
            return [Reply(txn, make_response(req, exc.status, exc.reason))]
        if progress.status:
            self._transfer.append(progress.status)
        if progress.final and 200 <= progress.status < 300:
            self._transfer_ok = True
        return [Reply(txn, make_response(req, 200)), TransferProgress(progress)]

    def _on_refer(self, req: Request, txn: ServerTransaction) -> list[Action]:
        try:
            target = refer_target(req)
        except ReferError as exc:
            return [Reply(txn, make_response(req, exc.status, exc.reason))]
        if self._referred or self._transfer is not None:
            return [Reply(txn, make_response(req, 491))]
        return [TransferAsked(target, txn, req)]

    # answers to the other party's REFER ------------------------------------------------
    def accept_refer(self, ask: TransferAsked) -> list[Action]:
        self._referred = True
        resp = make_response(ask.request, 202)
        resp.headers.add("Contact", self.dialog.local_contact)
        return [Reply(ask.txn, resp)]

    def refuse_refer(self, ask: TransferAsked, why: str) -> list[Action]:
        resp = make_response(ask.request, 403, "Transfer Refused")
        resp.headers.add("Warning", warning(why))
        return [Reply(ask.txn, resp)]

    def notify(self, event_id: int, status: int, reason: str, final: bool) -> Request | None:
        """A NOTIFY of how the call the other party transferred us to goes (RFC 3515
        §2.4.4); None once the dialog is over (nobody to tell)."""
        if self.phase == Phase.ENDED:
            return None
        req = self.dialog.create_request("NOTIFY", sipfrag(status, reason[:100]), SIPFRAG)
        req.headers.add("Event", f"refer;id={event_id}")
        req.headers.add("Subscription-State",
                        "terminated;reason=noresource" if final else "active;expires=60")
        return req

    # requests of ours ------------------------------------------------------------------
    def bye(self) -> Request | None:
        """Our BYE; None when the call is over already (or was never answered)."""
        if self.phase in (Phase.EARLY, Phase.ENDED):
            return None
        self.phase = Phase.ENDED
        return self.dialog.create_request("BYE")

    def refer(self, target: str) -> Request:
        """Our REFER of the other party to ``target`` (a SIP URI); its NOTIFYs come as
        TransferProgress until ``transfer_over``."""
        req = self.dialog.create_request("REFER")
        req.headers.add("Refer-To", f"<{target}>")
        req.headers.add("Referred-By", f"<{NameAddr.parse(self.dialog.local_uri).uri}>")
        self._transfer = []
        self._transfer_ok = False
        return req

    @property
    def transferring(self) -> bool:
        return self._transfer is not None

    def transfer_over(self) -> tuple[int, ...]:
        """Our REFER is settled (or given up on): the statuses its NOTIFYs reported."""
        statuses = tuple(self._transfer or ())
        self._transfer = None
        return statuses

    def reinvite(self, direction: str) -> list[Action]:
        """Offer ``direction`` again (sendonly: we hold the other party; sendrecv:
        resume). While another INVITE is in progress it is offered once that one is
        done (the last direction asked for wins)."""
        if self.phase not in (Phase.ANSWERED, Phase.CONFIRMED):
            return []
        if (self.phase != Phase.CONFIRMED or self._reinvite is not None
                or self._retry_at is not None):
            self._wanted = direction
            return []
        self._wanted = None
        self._reinvite_direction = direction
        self._retry_at = None
        req = self.dialog.create_request("INVITE", self._our_offer(direction),
                                         "application/sdp")
        self._reinvite = req
        return [Send(req)]

    def on_response(self, req: Request, resp: Response, now: float) -> list[Action]:
        """The final response to a request we sent (``Send``)."""
        if req is not self._reinvite:
            return []  # BYE, NOTIFY, REFER: their drivers read the response themselves
        self._reinvite = None
        if 200 <= resp.status < 300:
            ack = self.dialog.ack(req.cseq.number)
            try:
                _, audio = negotiate(parse_sdp(resp.body))
            except SdpError:
                return [SendAck(ack), HangUp("bad_sdp_answer")]
            if self._wanted == self._reinvite_direction:
                self._wanted = None  # what was asked for meanwhile is what we have
            return [SendAck(ack), self._media(audio), *self._offer_wanted()]
        if resp.status == 491:
            # Glare: back off and try again (§14.1: 2.1–4 s if we own the Call-ID, else
            # up to 2 s), unless the other party's own re-INVITE settles it first.
            low, high = (2.1, 4.0) if self.we_called else (0.0, 2.0)
            self._retry_at = now + random.uniform(low, high)
            return []
        return [ReinviteRefused(resp.status), *self._offer_wanted()]

    def _offer_wanted(self) -> list[Action]:
        return self.reinvite(self._wanted) if self._wanted is not None else []

    def next_deadline(self) -> float | None:
        return self._retry_at

    def tick(self, now: float) -> list[Action]:
        if self._retry_at is None or now < self._retry_at:
            return []
        self._retry_at = None
        return self.reinvite(self._wanted or self._reinvite_direction)

    # offer/answer ----------------------------------------------------------------------
    def _answer(self, offer: Offer) -> tuple[bytes, Media]:
        index, audio = offer.index, offer.audio
        if audio.crypto is not None:  # SRTP: our key in our answer
            audio = replace(audio, crypto=replace(audio.crypto, ours=self._srtp_key))
        body = self._versioned(lambda version: build_answer(
            offer.sdp, index, audio, self.media_host, self.media_port, self._session_id, version))
        return body, self._media(audio)

    def _our_offer(self, direction: str) -> bytes:
        crypto = self._crypto
        return self._versioned(lambda version: build_offer(
            self.media_host, self.media_port, self._session_id, version, direction,
            self.codecs, crypto))

    def _versioned(self, build: Callable[[int], bytes]) -> bytes:
        """Our next description, built by ``build`` for an o= version: the same version
        when it says what the last one said, the next when it changed (RFC 3264 §8)."""
        body = build(self._sdp_version)
        if self._last_sdp and _without_origin(body) != _without_origin(self._last_sdp):
            self._sdp_version += 1
            body = build(self._sdp_version)
        self._last_sdp = body
        return body

    def _media(self, audio: NegotiatedAudio) -> Media:
        if audio.crypto is not None:
            if not audio.crypto.ours:  # an answer to our offer: our key is the one we sent
                audio = replace(audio, crypto=replace(audio.crypto, ours=self._srtp_key))
            self._crypto = audio.crypto
        on_hold = not audio.we_send
        changed = on_hold != self.on_hold
        self.on_hold = on_hold
        return Media(audio, on_hold, changed)

    def _bye_cause(self) -> str:
        """Why the other party's BYE ended the call: a transferor hangs up once it has
        handed us over (RFC 5589), and so may a transferee once our REFER succeeded."""
        return "transferred" if self._referred or self._transfer_ok else "remote_hangup"


def _without_origin(sdp: bytes) -> bytes:
    return b"\n".join([ln for ln in sdp.split(b"\n") if not ln.startswith(b"o=")])
