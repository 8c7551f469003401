"""Our INVITE until it is answered, refused, cancelled or given up (RFC 3261 §13.2, §9.1,
§22), as a sans-IO state machine: the UAC half of the INVITE usage before there is a
dialog (sip/invite.py takes the call over once it is answered).

The driver (channels/sip/outbound.py) sends the requests it is given, feeds back the
INVITE's provisional and final responses, tells it when the user cancels, and wakes it at
``next_deadline``. The answer comes as one ``Done`` with the outcome in plain terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from atende.sip.auth import ChallengeResponder, DigestClient
from atende.sip.dialog import Dialog
from atende.sip.message import Request, Response
from atende.sip.requests import ALLOW, cancel_for, new_request
from atende.sip.sdp import NegotiatedAudio, SdpError, negotiate, parse_sdp
from atende.sip.uri import SipUri

PROVISIONAL_WAIT_S = 32.0  # a CANCEL waits for a provisional this long (64·T1, §9.1)
FINAL_WAIT_S = 40.0  # after our CANCEL, the INVITE's final answer (past Timer B)


@dataclass(frozen=True)
class SendInvite:
    """Send this INVITE in a client transaction; feed its responses back."""

    request: Request


@dataclass(frozen=True)
class SendRequest:
    """Send this request (a CANCEL, or the BYE of a 2xx we no longer want); its answer
    changes nothing. A BYE names its ``dialog``: it goes to the dialog's next hop."""

    request: Request
    dialog: Dialog | None = None


@dataclass(frozen=True)
class SendAck:
    """The ACK of a 2xx (no transaction: sent as it is, to the dialog's next hop)."""

    request: Request
    dialog: Dialog


@dataclass(frozen=True)
class Progress:
    """Something the callee's side reported before answering: ``ringing`` or
    ``early_media`` (a 183 with SDP; noted, never taken for an answer)."""

    kind: str
    status: int
    reason: str
    audio: NegotiatedAudio | None = None  # early media: what the 183's SDP agreed


@dataclass(frozen=True)
class Done:
    """How the INVITE ended: answered (with its dialog and agreed audio) or why not."""

    status: str  # answered, busy, no_answer, rejected, failed, cancelled
    sip_status: int | None
    reason: str
    dialog: Dialog | None = None
    audio: NegotiatedAudio | None = None
    response: Response | None = None  # the 2xx


Action = SendInvite | SendRequest | SendAck | Progress | Done


class Stage(Enum):
    """Where our INVITE stands."""

    CALLING = "calling"  # no provisional yet
    PROCEEDING = "proceeding"
    CANCELLING = "cancelling"  # we want it ended: CANCEL sent, or waiting to send it
    DONE = "done"


def classify(status: int, reason: str, synthetic: bool) -> tuple[str, str]:
    """A final response in plain terms: an outcome and words for it."""
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


@dataclass
class InviteClient:
    """One outgoing call until its INVITE is settled."""

    ruri: SipUri
    from_: str  # our From value, tag included
    contact: str
    offer: bytes
    credentials: DigestClient = field(repr=False)
    call_id: str
    cseq: int
    ring_timeout: float
    started_at: float
    route: list[str] = field(default_factory=list)
    headers: tuple[tuple[str, str], ...] = ()
    # The SRTP key our offer carries (SDES, RFC 4568): the answer must take SRTP too.
    srtp_key: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        self.stage = Stage.CALLING
        self.events: list[str] = []  # ringing, early_media: what the outcome reports
        self.invite: Request | None = None
        self._responder = ChallengeResponder(self.credentials)
        self._by_user = False  # the cancel was asked for, rather than the ring timeout
        self._heard = False  # a provisional came: the far end exists
        self._cancel_sent = False
        self._deadline: float | None = self.started_at + self.ring_timeout

    def start(self) -> list[Action]:
        return [SendInvite(self._build())]

    def _build(self) -> Request:
        credentials = self._responder.credentials("INVITE", str(self.ruri))
        self.invite = new_request(
            "INVITE", self.ruri, self.from_, f"<{self.ruri}>", self.call_id, self.cseq,
            contact=self.contact, route=self.route,
            headers=[("Allow", ALLOW), *self.headers, *([credentials] if credentials else [])],
            body=self.offer, content_type="application/sdp")
        return self.invite

    # responses -------------------------------------------------------------------------
    def provisional(self, resp: Response, now: float) -> list[Action]:
        if self.stage == Stage.DONE or not self._ours(resp):
            return []
        self._heard = True
        actions: list[Action] = []
        if resp.status > 100:
            kind = "early_media" if resp.status == 183 and resp.body else "ringing"
            if kind not in self.events:
                self.events.append(kind)
                audio = None
                if kind == "early_media":
                    try:
                        audio = self._agreed(resp.body)
                    except SdpError:
                        pass  # noted as early media all the same; nothing to play
                actions.append(Progress(kind, resp.status, resp.reason, audio))
        if self.stage == Stage.CALLING:
            self.stage = Stage.PROCEEDING
        elif self.stage == Stage.CANCELLING and not self._cancel_sent:
            actions += self._send_cancel(now)  # it may be cancelled now (§9.1)
        return actions

    def final(self, resp: Response, now: float) -> list[Action]:
        """The INVITE's final response (a synthetic 408 when its transaction timed out),
        or a 2xx retransmitted after it."""
        if not self._ours(resp):
            return []
        if self.stage == Stage.DONE:
            return []  # a 2xx again: the driver resends its ACK
        assert self.invite is not None
        if resp.status in (401, 407) and self.stage != Stage.CANCELLING:
            if self._responder.retry(resp):
                self.cseq += 1
                self._heard = False
                return [SendInvite(self._build())]
        if 200 <= resp.status < 300:
            return self._answered(resp)
        if self.stage == Stage.CANCELLING:
            return [self._done(*self._cancelled_words(), resp.status)]
        synthetic = resp.status == 408 and resp.to.tag is None and not self._heard
        status, words = classify(resp.status, resp.reason, synthetic)
        return [self._done(status, words, resp.status)]

    def _answered(self, resp: Response) -> list[Action]:
        assert self.invite is not None
        try:
            dialog = Dialog.for_uac(self.invite, resp)
        except ValueError as exc:  # no Contact: nothing to ACK or hang up
            return [self._done("failed", f"unusable 2xx: {exc}", resp.status)]
        ack = SendAck(dialog.ack(self.invite.cseq.number), dialog)
        if self.stage == Stage.CANCELLING:
            # It answered as we cancelled (the 200 crossed our CANCEL): ACK, hang up.
            bye = SendRequest(dialog.create_request("BYE"), dialog)
            return [ack, bye, self._done(*self._cancelled_words(), resp.status)]
        try:
            audio = self._agreed(resp.body)
        except SdpError as exc:
            bye = SendRequest(dialog.create_request("BYE"), dialog)
            return [ack, bye, self._done("failed", f"unusable SDP answer: {exc}", resp.status)]
        self.stage = Stage.DONE
        self._deadline = None
        return [ack, Done("answered", resp.status, f"{resp.status} {resp.reason}".strip(),
                          dialog, audio, resp)]

    def _agreed(self, body: bytes) -> NegotiatedAudio:
        """The audio an answer agrees to; with SRTP offered, only an SRTP answer, which
        gets our key beside theirs."""
        _, audio = negotiate(parse_sdp(body))
        if self.srtp_key:
            if audio.crypto is None:
                raise SdpError("we offered SRTP only, and the answer is plain RTP")
            audio = replace(audio, crypto=replace(audio.crypto, ours=self.srtp_key))
        elif audio.crypto is not None:
            raise SdpError("the answer is SRTP, which we did not offer")
        return audio

    def _ours(self, resp: Response) -> bool:
        return (self.invite is not None and resp.call_id == self.call_id
                and resp.cseq.method == "INVITE" and resp.cseq.number == self.invite.cseq.number)

    # our side --------------------------------------------------------------------------
    def cancel(self, now: float) -> list[Action]:
        """The user no longer wants the call."""
        if self.stage in (Stage.DONE, Stage.CANCELLING):
            return []
        self._by_user = True
        return self._start_cancel(now)

    def next_deadline(self) -> float | None:
        return self._deadline

    def tick(self, now: float) -> list[Action]:
        if self._deadline is None or now < self._deadline or self.stage == Stage.DONE:
            return []
        if self.stage in (Stage.CALLING, Stage.PROCEEDING):  # rang long enough
            return self._start_cancel(now)
        if not self._cancel_sent:
            # No provisional ever came to CANCEL after: wait for the final answer alone.
            self._cancel_sent = True
            self._deadline = now + FINAL_WAIT_S
            return []
        return [self._done(*self._cancelled_words(), None)]

    def _start_cancel(self, now: float) -> list[Action]:
        self.stage = Stage.CANCELLING
        if self._heard:
            return self._send_cancel(now)
        self._deadline = now + PROVISIONAL_WAIT_S  # a CANCEL only after a provisional
        return []

    def _send_cancel(self, now: float) -> list[Action]:
        assert self.invite is not None
        self._cancel_sent = True
        self._deadline = now + FINAL_WAIT_S
        return [SendRequest(cancel_for(self.invite))]

    def _cancelled_words(self) -> tuple[str, str]:
        if self._by_user:
            return "cancelled", "cancelled before answer"
        return "no_answer", f"no answer within {self.ring_timeout:.0f} s"

    def _done(self, status: str, reason: str, sip_status: int | None) -> Done:
        self.stage = Stage.DONE
        self._deadline = None
        return Done(status, sip_status, reason)
