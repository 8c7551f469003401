"""The INVITE usage (sip/invite.py) driven on a fixed clock, with the odd orders real
peers produce: offer/answer and delayed offers, CANCEL before and across the 200,
re-INVITE hold and glare, INFO DTMF, REFER and NOTIFY both ways, the end of the call."""

from __future__ import annotations

import base64
import dataclasses
import itertools

from atende.sip.dialog import DialogState
from atende.sip.invite import InviteSession, Phase
from atende.sip.invite_actions import (
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
from atende.sip.message import Request, Response, make_response, parse_message
from atende.sip.screening import screen_invite, warning
from atende.sip.sdp import Codec, parse_sdp
from atende.sip.transaction import Deliver, ServerTransaction, TransactionLayer

PEER = ("udp", "10.0.0.1", 5060)
OUR_TAG = "ours1"
_branches = itertools.count(1)


def sdp(direction: str = "sendrecv", codec: int = 0, port: int = 4000) -> str:
    return ("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {codec} 101\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a={direction}\r\n")


def raw(method: str, cseq: int, *, to_tag: str = "", body: str = "",
        ctype: str = "application/sdp", extra: str = "",
        contact: str | None = "<sip:alice@10.0.0.1:5062>") -> Request:
    msg = parse_message((
        f"{method} sip:assistant@192.0.2.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{next(_branches)}\r\n"
        'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
        f"To: <sip:assistant@192.0.2.1>{';tag=' + to_tag if to_tag else ''}\r\n"
        f"Call-ID: call-1\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        + (f"Contact: {contact}\r\n" if contact else "")
        + extra
        + (f"Content-Type: {ctype}\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    assert isinstance(msg, Request)
    return msg


class Peer:
    """The other party's requests, through a real transaction layer (for their txns)."""

    def __init__(self) -> None:
        self.layer = TransactionLayer()

    def send(self, req: Request, now: float = 0.0) -> tuple[Request, ServerTransaction | None]:
        delivered = [a for a in self.layer.receive(req, PEER, now) if isinstance(a, Deliver)]
        txn = delivered[0].transaction if delivered else None
        assert txn is None or isinstance(txn, ServerTransaction)
        return req, txn


def replies(actions: list[object]) -> list[Response]:
    return [a.response for a in actions if isinstance(a, Reply)]


def taking(body: str = "") -> tuple[InviteSession, Peer]:
    """A call we take: its INVITE (with ``body`` as the offer) passed the checks."""
    peer = Peer()
    invite, txn = peer.send(raw("INVITE", 1, body=body))
    assert txn is not None
    offer, refusal = screen_invite(invite)
    assert refusal is None
    return InviteSession.answering(invite, txn, PEER, OUR_TAG, "<sip:atende@192.0.2.1>",
                                   "192.0.2.1", 30000, offer), peer


def answered(offer_body: str = sdp()) -> tuple[InviteSession, Peer]:
    """A call we took and answered, its ACK received."""
    session, peer = taking(offer_body)
    session.ring()
    session.answer(0.0)
    session.receive(raw("ACK", 1, to_tag=OUR_TAG), None, 0.1)
    return session, peer


def in_dialog(session: InviteSession, peer: Peer, method: str, cseq: int, now: float = 1.0,
              **kw: str) -> list[object]:
    req, txn = peer.send(raw(method, cseq, to_tag=OUR_TAG, **kw), now)
    return list(session.receive(req, txn, now))


def test_an_offer_is_answered_with_ringing_then_200_and_media() -> None:
    session, _ = taking(sdp(codec=8))
    [ringing] = replies(session.ring())
    assert ringing.status == 180 and ringing.to.tag == OUR_TAG
    assert ringing.headers.get("Contact") == "<sip:atende@192.0.2.1>"
    assert session.ring() == []  # rung once (by the router, or for the ring time)
    actions = session.answer(0.0)
    media = [a for a in actions if isinstance(a, Media)]
    assert media and media[0].audio.codec.name == "PCMA" and not media[0].on_hold
    [ok] = replies(actions)
    answer = parse_sdp(ok.body)
    assert ok.status == 200 and answer.connection == "192.0.2.1"
    assert answer.media[0].port == 30000 and "REFER" in ok.headers.get_all("Allow")
    assert session.phase == Phase.ANSWERED and session.dialog.pending_2xx is ok
    # The 2xx goes again until the ACK (§13.3.1.4), and the ACK stops it.
    resend, timed_out = session.dialog.tick(0.5)
    assert resend is ok and not timed_out
    assert session.receive(raw("ACK", 1, to_tag=OUR_TAG), None, 0.6) == []
    assert session.phase == Phase.CONFIRMED and session.dialog.pending_2xx is None
    assert session.dialog.state == DialogState.CONFIRMED


def test_the_answer_is_what_the_screening_agreed_to() -> None:
    """The offer is negotiated once, as the INVITE is screened: the 200 answers with
    what was agreed then (here made to differ from what negotiating again would give)."""
    peer = Peer()
    invite, txn = peer.send(raw("INVITE", 1, body=sdp(codec=0)))
    offer, refusal = screen_invite(invite)
    assert refusal is None and offer is not None and offer.audio.codec.name == "PCMU"
    pcma = Codec("PCMA", 8, 8000)
    agreed = dataclasses.replace(offer, audio=dataclasses.replace(offer.audio, codec=pcma))
    assert txn is not None
    session = InviteSession.answering(invite, txn, PEER, OUR_TAG, "<sip:atende@192.0.2.1>",
                                      "192.0.2.1", 30000, agreed)
    actions = session.answer(0.0)
    [media] = [a for a in actions if isinstance(a, Media)]
    [ok] = replies(actions)
    assert media.audio.codec == pcma and parse_sdp(ok.body).media[0].formats[0] == "8"


def test_an_unacknowledged_2xx_hangs_up() -> None:
    session, _ = taking(sdp())
    session.answer(0.0)
    assert session.ack_timeout() == [HangUp("ack_timeout")]


def test_a_delayed_offer_gets_ours_and_its_answer_comes_in_the_ack() -> None:
    session, _ = taking()  # no offer
    [ok] = replies(session.answer(0.0))
    assert parse_sdp(ok.body).media[0].port == 30000  # our offer
    actions = session.receive(raw("ACK", 1, to_tag=OUR_TAG, body=sdp("sendonly")), None, 0.1)
    assert [(a.on_hold, a.hold_changed) for a in actions if isinstance(a, Media)] == [
        (True, True)]
    # An answer we cannot use ends the call.
    other, _ = taking()
    other.answer(0.0)
    assert other.receive(raw("ACK", 1, to_tag=OUR_TAG, body="nonsense"), None, 0.1) == [
        HangUp("bad_sdp_answer")]


def test_invites_that_cannot_be_taken_are_refused_before_anything_is_set_up() -> None:
    cases = [
        (raw("INVITE", 1, body=sdp(), contact=None), 400),
        (raw("INVITE", 1, body=sdp(), contact="<sip:alice@[bad>"), 400),
        (raw("INVITE", 1, body="hello", ctype="text/plain"), 415),
        (raw("INVITE", 1, body=sdp(codec=18)), 488),  # G.729 only
        (raw("INVITE", 1, body="v=0\r\nm=audio notaport RTP/AVP 0\r\n"), 400),
        # Issue 16.2: what used to fail only once the call was admitted
        (raw("INVITE", 1, body=sdp(port=99999)), 400),
        (raw("INVITE", 1, body=sdp().replace("c=IN IP4 10.0.0.1", "c=IN IP4 rtp.evil.example")),
         400),
        (raw("INVITE", 1, body=sdp().replace("c=IN IP4 10.0.0.1", "c=IN IP6 10.0.0.1")), 400),
        (raw("INVITE", 1, body=sdp(codec=300).replace(
            "a=rtpmap:101", "a=rtpmap:300 PCMU/8000\r\na=rtpmap:101")), 488),
        (raw("INVITE", 1, body=sdp(), extra="Record-Route: <sip:proxy;lr\r\n"), 400),
        # 3.: the caller would take no SDP in our answer
        (raw("INVITE", 1, body=sdp(), extra="Accept: text/html\r\n"), 406),
        (raw("INVITE", 1, body=sdp(), extra="Accept:\r\n"), 406),
    ]
    for invite, status in cases:
        offer, refusal = screen_invite(invite)
        assert offer is None and refusal is not None and refusal.status == status, status
    for accept in ("application/sdp", "application/*;q=0.5", "*/*", "text/html, application/sdp"):
        offer, refusal = screen_invite(raw("INVITE", 1, body=sdp(), extra=f"Accept: {accept}\r\n"))
        assert refusal is None and offer is not None, accept


def test_our_warnings_stay_one_quoted_string() -> None:
    value = warning('bad "thing"\\ here\r\nInjected: yes')
    assert value == '399 atende "bad \'thing\'/ here Injected: yes"'
    assert value.count('"') == 2


def test_cancel_while_ringing_gets_487_and_ends_the_call() -> None:
    session, _ = taking(sdp())
    session.ring()
    actions = session.cancel()
    [terminated] = replies(actions)
    assert terminated.status == 487 and terminated.to.tag == OUR_TAG
    assert actions[-1] == Ended("cancelled") and session.phase == Phase.ENDED
    assert session.answer(0.1) == []  # the answer that was about to go does not


def test_a_cancel_crossing_our_200_changes_nothing() -> None:
    session, _ = answered()
    assert session.cancel() == []
    assert session.phase == Phase.CONFIRMED


def test_hold_and_resume_by_reinvite_with_a_new_sdp_version() -> None:
    session, peer = answered()
    held = in_dialog(session, peer, "INVITE", 2, body=sdp("sendonly"))
    [ok] = replies(held)
    assert ok.status == 200 and parse_sdp(ok.body).media[0].direction("sendrecv") == "recvonly"
    assert [(a.on_hold, a.hold_changed) for a in held if isinstance(a, Media)] == [
        (True, True)]
    assert b" 2 IN IP4" in ok.body  # o= version bumped: the description changed
    session.receive(raw("ACK", 2, to_tag=OUR_TAG), None, 1.1)
    resumed = in_dialog(session, peer, "INVITE", 3, now=2.0, body=sdp())
    assert [(a.on_hold, a.hold_changed) for a in resumed if isinstance(a, Media)] == [
        (False, True)]
    # An offer we cannot take leaves the call as it was.
    [refused] = replies(in_dialog(session, peer, "INVITE", 4, now=3.0, body=sdp(codec=18)))
    assert refused.status == 488 and not session.on_hold


def test_reinvite_glare_gets_491_and_ours_backs_off_then_goes_again() -> None:
    session, peer = answered()
    [ours] = [a.request for a in session.reinvite("sendonly") if isinstance(a, Send)]
    assert ours.method == "INVITE"
    assert parse_sdp(ours.body).media[0].direction("sendrecv") == "sendonly"
    assert session.reinvite("sendrecv") == []  # one at a time
    [theirs] = replies(in_dialog(session, peer, "INVITE", 2, body=sdp()))
    assert theirs.status == 491
    assert session.on_response(ours, make_response(ours, 491), 5.0) == []
    at = session.next_deadline()
    assert at is not None and 5.0 <= at <= 7.0  # they own the Call-ID: up to 2 s
    assert session.tick(at - 0.01) == []
    [again] = [a.request for a in session.tick(at) if isinstance(a, Send)]
    assert again.cseq.number > ours.cseq.number
    ok = make_response(again, 200, body=sdp("recvonly").encode(),
                       content_type="application/sdp")
    actions = session.on_response(again, ok, at + 0.1)
    [ack] = [a.request for a in actions if isinstance(a, SendAck)]
    assert ack.method == "ACK" and ack.cseq.number == again.cseq.number
    assert [type(a) for a in actions] == [SendAck, Media]
    nope = session.reinvite("sendrecv")
    [third] = [a.request for a in nope if isinstance(a, Send)]
    assert session.on_response(third, make_response(third, 488), 9.0) == [
        ReinviteRefused(488)]


def test_a_hold_asked_for_during_another_invite_is_offered_after_it() -> None:
    session, peer = answered()
    [hold] = [a.request for a in session.reinvite("sendonly") if isinstance(a, Send)]
    assert session.reinvite("sendrecv") == []  # asked for while ours is in progress
    ok = make_response(hold, 200, body=sdp("recvonly").encode(),
                       content_type="application/sdp")
    [resume] = [a.request for a in session.on_response(hold, ok, 2.0)
                if isinstance(a, Send)]
    assert parse_sdp(resume.body).media[0].direction("sendrecv") == "sendrecv"
    ok = make_response(resume, 200, body=sdp().encode(), content_type="application/sdp")
    assert not [a for a in session.on_response(resume, ok, 2.5) if isinstance(a, Send)]
    # Their re-INVITE is answered but not yet ACKed: ours waits for the ACK.
    [theirs] = replies(in_dialog(session, peer, "INVITE", 2, now=3.0, body=sdp()))
    assert theirs.status == 200
    assert session.reinvite("sendonly") == []
    acked = session.receive(raw("ACK", 2, to_tag=OUR_TAG), None, 3.1)
    [held] = [a.request for a in acked if isinstance(a, Send)]
    assert parse_sdp(held.body).media[0].direction("sendrecv") == "sendonly"


def test_our_reinvite_backs_off_longer_on_a_call_we_placed() -> None:
    session, _ = answered()
    placed = InviteSession.placed(session.dialog, PEER, "192.0.2.1", 30000)
    [ours] = [a.request for a in placed.reinvite("sendonly") if isinstance(a, Send)]
    placed.on_response(ours, make_response(ours, 491), 0.0)
    at = placed.next_deadline()
    assert at is not None and 2.1 <= at <= 4.0


def test_info_dtmf_cseq_order_and_unknown_methods() -> None:
    session, peer = answered()
    actions = in_dialog(session, peer, "INFO", 2, body="Signal=5\r\nDuration=250\r\n",
                        ctype="application/dtmf-relay")
    assert replies(actions)[0].status == 200 and Digit("5", 250) in actions
    [stale] = replies(in_dialog(session, peer, "INFO", 2, body="Signal=6\r\n",
                                ctype="application/dtmf-relay"))
    assert stale.status == 500  # CSeq must grow (§12.2.2)
    [unknown] = replies(in_dialog(session, peer, "FOO", 3))
    assert unknown.status == 501 and "REFER" in unknown.headers.get_all("Allow")
    [known] = replies(in_dialog(session, peer, "SUBSCRIBE", 4))
    assert known.status == 405


def test_requests_before_the_answer_or_after_the_end_get_481() -> None:
    session, peer = taking(sdp())
    assert replies(in_dialog(session, peer, "BYE", 2))[0].status == 481
    session, peer = answered()
    actions = in_dialog(session, peer, "BYE", 2)
    assert replies(actions)[0].status == 200 and actions[-1] == Ended("remote_hangup")
    assert replies(in_dialog(session, peer, "INFO", 3))[0].status == 481
    assert session.bye() is None  # nothing left to end


def test_our_refer_follows_the_notifys_and_their_bye_then_means_transferred() -> None:
    session, peer = answered()
    refer = session.refer("sip:200@pbx.example")
    assert refer.headers.get("Refer-To") == "<sip:200@pbx.example>"
    assert session.transferring
    notify = {"extra": "Event: refer\r\nSubscription-State: active\r\n",
              "ctype": "message/sipfrag;version=2.0"}
    trying = in_dialog(session, peer, "NOTIFY", 2, body="SIP/2.0 100 Trying\r\n", **notify)
    assert [a.progress.status for a in trying if isinstance(a, TransferProgress)] == [100]
    done = in_dialog(session, peer, "NOTIFY", 3, body="SIP/2.0 200 OK\r\n", **notify)
    assert [a.progress.final for a in done if isinstance(a, TransferProgress)] == [True]
    assert session.transfer_over() == (100, 200) and not session.transferring
    actions = in_dialog(session, peer, "BYE", 4)
    assert actions[-1] == Ended("transferred")


def test_notifys_without_our_refer_or_of_another_event_are_refused() -> None:
    session, peer = answered()
    [stray] = replies(in_dialog(session, peer, "NOTIFY", 2, body="SIP/2.0 200 OK\r\n",
                                ctype="message/sipfrag", extra="Event: refer\r\n"))
    assert stray.status == 481
    [other] = replies(in_dialog(session, peer, "NOTIFY", 3, extra="Event: dialog\r\n"))
    assert other.status == 489


def test_their_refer_is_asked_about_then_accepted_or_refused() -> None:
    session, peer = answered()
    refer = {"extra": "Refer-To: <sip:300@pbx.example>\r\n"}
    [asked] = in_dialog(session, peer, "REFER", 2, **refer)
    assert isinstance(asked, TransferAsked) and asked.target.uri.user == "300"
    [refusal] = replies(session.refuse_refer(asked, 'calls to "300" are not allowed\r\nX: y'))
    warning = refusal.headers.get("Warning") or ""
    assert refusal.status == 403 and warning.count('"') == 2 and "\n" not in warning
    [asked] = in_dialog(session, peer, "REFER", 3, **refer)
    assert isinstance(asked, TransferAsked)
    [accepted] = replies(session.accept_refer(asked))
    assert accepted.status == 202 and accepted.headers.get("Contact")
    [busy] = replies(in_dialog(session, peer, "REFER", 4, **refer))
    assert busy.status == 491  # one transfer at a time
    notify = session.notify(3, 200, "OK", final=True)
    assert notify is not None and notify.headers.get("Event") == "refer;id=3"
    assert notify.body.startswith(b"SIP/2.0 200 OK")
    assert (notify.headers.get("Subscription-State") or "").startswith("terminated")
    actions = in_dialog(session, peer, "BYE", 5)
    assert actions[-1] == Ended("transferred")  # the transferor hangs up once it is done
    assert session.notify(3, 200, "OK", final=True) is None


def test_a_bad_refer_is_answered_with_why() -> None:
    session, peer = answered()
    [none] = replies(in_dialog(session, peer, "REFER", 2))
    assert none.status == 400


def test_an_srtp_call_keeps_srtp_in_our_own_offers() -> None:
    key = base64.b64encode(bytes(range(30))).decode()
    offer = (sdp().replace("RTP/AVP", "RTP/SAVP")
             + f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n")
    session, _ = taking(offer)
    session.ring()
    actions = session.answer(0.0)
    [media] = [a for a in actions if isinstance(a, Media)]
    crypto = media.audio.crypto
    assert crypto is not None and crypto.theirs == bytes(range(30))
    assert len(crypto.ours) == 30 and crypto.ours != crypto.theirs
    [ok] = replies(actions)
    assert b"RTP/SAVP" in ok.body and base64.b64encode(crypto.ours) in ok.body
    session.receive(raw("ACK", 1, to_tag=OUR_TAG), None, 0.1)
    [hold] = [a.request for a in session.reinvite("sendonly") if isinstance(a, Send)]
    held = parse_sdp(hold.body)
    assert held.media[0].proto == "RTP/SAVP"
    assert base64.b64encode(crypto.ours).decode() in held.media[0].attrs("crypto")[0]
    # Their answer names their key only: ours stays the one we sent.
    answer = sdp("recvonly").replace("RTP/AVP", "RTP/SAVP") + (
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n")
    ok2 = make_response(hold, 200, body=answer.encode(), content_type="application/sdp")
    [again] = [a for a in session.on_response(hold, ok2, 1.0) if isinstance(a, Media)]
    assert again.audio.crypto is not None and again.audio.crypto.ours == crypto.ours
