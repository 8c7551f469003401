"""Our INVITE until it is settled (sip/invite_client.py), driven on a fixed clock with the
orders real peers produce: challenges, provisional responses after the 200, a 200 that
crosses our CANCEL, no provisional at all, and failures in plain words."""

from __future__ import annotations

import base64

from atende.sip.auth import DigestClient, DigestServer
from atende.sip.invite_client import (
    Done,
    InviteClient,
    Progress,
    SendAck,
    SendInvite,
    SendRequest,
    Stage,
)
from atende.sip.message import Request, Response, local_response, make_response
from atende.sip.uri import SipUri

ANSWER = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
          b"m=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n")


def client(ring_timeout: float = 30.0) -> tuple[InviteClient, Request]:
    c = InviteClient(ruri=SipUri("pbx.example", user="100"), from_="<sip:ai@pbx>;tag=t1",
                     contact="<sip:atende@192.0.2.1>", offer=b"v=0\r\n",
                     credentials=DigestClient("ai", "right"), call_id="c1@atende", cseq=10,
                     ring_timeout=ring_timeout, started_at=0.0)
    [send] = c.start()
    assert isinstance(send, SendInvite)
    # As the user agent does when it sends it: our Via, so a CANCEL can repeat it.
    send.request.headers.insert_first("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx")
    return c, send.request


def reply(req: Request, status: int, body: bytes = b"", tag: str | None = "far",
          contact: bool = True) -> Response:
    resp = make_response(req, status, to_tag=tag, body=body,
                         content_type="application/sdp" if body else None)
    if contact:
        resp.headers.add("Contact", "<sip:100@10.0.0.2:5070>")
    return resp


def test_answered_after_ringing_with_an_ack_and_a_dialog() -> None:
    c, invite = client()
    assert c.provisional(reply(invite, 100, tag=None, contact=False), 0.1) == []
    [ringing] = c.provisional(reply(invite, 180), 0.2)
    assert ringing == Progress("ringing", 180, "Ringing")
    assert c.provisional(reply(invite, 180), 0.3) == []  # noted once
    actions = c.final(reply(invite, 200, ANSWER), 1.0)
    [ack, done] = actions
    assert isinstance(ack, SendAck) and isinstance(done, Done)
    assert ack.request.method == "ACK" and ack.request.cseq.number == invite.cseq.number
    assert done.status == "answered" and done.sip_status == 200
    assert done.audio is not None and done.audio.codec.name == "PCMU"
    assert done.dialog is not None and done.dialog.remote_target.port == 5070
    assert c.events == ["ringing"] and c.next_deadline() is None
    # A 180 after the 200 (reordered on UDP), or the 200 again: nothing more to do.
    assert c.provisional(reply(invite, 180), 1.1) == []
    assert c.final(reply(invite, 200, ANSWER), 1.2) == []


def test_early_media_is_noted_never_taken_for_an_answer() -> None:
    c, invite = client()
    [progress] = c.provisional(reply(invite, 183, ANSWER), 0.1)
    assert progress.kind == "early_media" and c.stage == Stage.PROCEEDING


def test_a_challenge_is_answered_once_with_a_new_cseq() -> None:
    server = DigestServer("pbx")
    c, invite = client()
    challenge = reply(invite, 407, tag="x", contact=False)
    for value in server.challenges(0.0):
        challenge.headers.add("Proxy-Authenticate", value)
    [again] = c.final(challenge, 0.1)
    assert isinstance(again, SendInvite)
    retry = again.request
    assert retry.cseq.number == invite.cseq.number + 1
    assert server.verify(retry.headers.get("Proxy-Authorization") or "", "INVITE",
                         {"ai": "right"}, 0.2).ok
    refused = reply(retry, 407, tag="x", contact=False)
    for value in server.challenges(0.3):
        refused.headers.add("Proxy-Authenticate", value)
    [done] = c.final(refused, 0.3)
    assert isinstance(done, Done) and done.status == "failed"
    assert "refused our credentials" in done.reason


def test_failures_in_plain_words() -> None:
    for status, outcome in [(486, "busy"), (480, "no_answer"), (404, "rejected"),
                            (503, "failed")]:
        c, invite = client()
        c.provisional(reply(invite, 100, tag=None), 0.1)
        [done] = c.final(reply(invite, status, contact=False), 0.5)
        assert isinstance(done, Done) and (done.status, done.sip_status) == (outcome, status)
    c, invite = client()
    # Timer B's own 408 (no To tag, nothing heard): the trunk never answered at all.
    [silent] = c.final(local_response(invite, 408), 32.0)
    assert isinstance(silent, Done) and silent.status == "failed"
    assert "no response from the trunk" in silent.reason


def test_ring_timeout_cancels_and_the_487_is_no_answer() -> None:
    c, invite = client(ring_timeout=20.0)
    c.provisional(reply(invite, 180), 1.0)
    assert c.next_deadline() == 20.0 and c.tick(19.9) == []
    [cancel] = c.tick(20.0)
    assert isinstance(cancel, SendRequest) and cancel.request.method == "CANCEL"
    assert cancel.request.headers.get_all("Via") == invite.headers.get_all("Via")
    assert cancel.request.cseq.number == invite.cseq.number
    [done] = c.final(reply(invite, 487, contact=False), 20.1)
    assert isinstance(done, Done) and done.status == "no_answer"
    assert done.reason == "no answer within 20 s" and done.sip_status == 487


def test_a_200_crossing_our_cancel_is_acked_and_hung_up() -> None:
    c, invite = client()
    c.provisional(reply(invite, 180), 0.5)
    [cancel] = c.cancel(1.0)
    assert isinstance(cancel, SendRequest)
    ack, bye, done = c.final(reply(invite, 200, ANSWER), 1.1)
    assert isinstance(ack, SendAck) and isinstance(bye, SendRequest)
    assert bye.request.method == "BYE" and bye.dialog is ack.dialog
    assert isinstance(done, Done) and (done.status, done.reason) == (
        "cancelled", "cancelled before answer")


def test_a_cancel_waits_for_a_provisional_and_then_goes() -> None:
    """§9.1: no CANCEL before a provisional response."""
    c, invite = client()
    assert c.cancel(1.0) == []
    assert c.next_deadline() == 33.0
    actions = c.provisional(reply(invite, 180), 2.0)
    assert [a.request.method for a in actions if isinstance(a, SendRequest)] == ["CANCEL"]


def test_nothing_heard_at_all_ends_without_a_cancel() -> None:
    c, _ = client(ring_timeout=10.0)
    assert c.tick(10.0) == []  # rang out, but there is nothing to CANCEL yet
    assert c.tick(42.0) == []  # no provisional within 32 s: wait for the final alone
    [done] = c.tick(82.0)
    assert isinstance(done, Done) and (done.status, done.sip_status) == ("no_answer", None)


def test_an_answer_without_usable_sdp_is_acked_and_hung_up() -> None:
    c, invite = client()
    ack, bye, done = c.final(reply(invite, 200, b"v=0\r\nm=audio x RTP/AVP 0\r\n"), 1.0)
    assert isinstance(ack, SendAck) and isinstance(bye, SendRequest)
    assert isinstance(done, Done) and done.status == "failed"
    assert done.reason.startswith("unusable SDP answer")
    c2, invite2 = client()
    [no_contact] = c2.final(reply(invite2, 200, ANSWER, contact=False), 1.0)
    assert isinstance(no_contact, Done) and no_contact.status == "failed"


KEY_OURS, KEY_THEIRS = bytes(range(30)), bytes(range(30, 60))
SRTP_ANSWER = ANSWER.replace(b"RTP/AVP", b"RTP/SAVP") + (
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"
    + base64.b64encode(KEY_THEIRS) + b"\r\n")


def srtp_client() -> tuple[InviteClient, Request]:
    c = InviteClient(ruri=SipUri("pbx.example", user="100"), from_="<sip:ai@pbx>;tag=t1",
                     contact="<sip:atende@192.0.2.1>", offer=b"v=0\r\n",
                     credentials=DigestClient("ai", "right"), call_id="c2@atende", cseq=10,
                     ring_timeout=30.0, started_at=0.0, srtp_key=KEY_OURS)
    [send] = c.start()
    assert isinstance(send, SendInvite)
    send.request.headers.insert_first("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKy")
    return c, send.request


def test_an_srtp_offer_takes_an_srtp_answer_with_both_keys() -> None:
    c, invite = srtp_client()
    [early] = c.provisional(reply(invite, 183, SRTP_ANSWER), 0.2)
    assert isinstance(early, Progress) and early.audio is not None
    assert early.audio.crypto is not None and early.audio.crypto.ours == KEY_OURS
    [_, done] = c.final(reply(invite, 200, SRTP_ANSWER), 1.0)
    assert isinstance(done, Done) and done.status == "answered" and done.audio is not None
    crypto = done.audio.crypto
    assert crypto is not None and (crypto.ours, crypto.theirs) == (KEY_OURS, KEY_THEIRS)


def test_srtp_offered_and_answered_in_the_clear_is_hung_up() -> None:
    c, invite = srtp_client()
    [ack, bye, done] = c.final(reply(invite, 200, ANSWER), 1.0)
    assert isinstance(ack, SendAck)
    assert isinstance(bye, SendRequest) and bye.request.method == "BYE"
    assert isinstance(done, Done) and done.status == "failed"
    assert "plain RTP" in done.reason
    # And the other way round: SRTP we did not offer is no answer to our offer.
    c, invite = client()
    [_, _, done] = c.final(reply(invite, 200, SRTP_ANSWER), 1.0)
    assert isinstance(done, Done) and done.status == "failed" and "SRTP" in done.reason
