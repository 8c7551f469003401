"""atende as a SIP user-agent server, driven byte by byte by a raw test client."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from atende.media.dtmf import dtmf_payloads
from atende.media.rtcp import SR, parse_compound
from atende.media.rtp import RtpPacket, looks_like_rtcp
from atende.sip.message import Request, Response, make_response, parse_message
from atende.sip.sdp import parse_sdp
from tests.peers.atende import AtendeProcess
from tests.peers.net import free_port
from tests.peers.sipclient import SipClient, UdpSocket, sdp_offer


def server(a: AtendeProcess) -> tuple[str, int]:
    return ("127.0.0.1", a.sip_port)


def media_addr(resp: Response) -> tuple[str, int]:
    sd = parse_sdp(resp.body)
    audio = next(m for m in sd.media if m.media == "audio")
    return (audio.connection or sd.connection or "", audio.port)


def direction(resp: Response) -> str:
    sd = parse_sdp(resp.body)
    return next(m for m in sd.media if m.port).direction(sd.direction)


async def rtp_packets(sock: UdpSocket, count: int, timeout: float = 5) -> list[RtpPacket]:
    out: list[RtpPacket] = []
    while len(out) < count:
        data, _ = await sock.recv(timeout)
        if not looks_like_rtcp(data):
            out.append(RtpPacket.parse(data))
    return out


async def rtp_during(sock: UdpSocket, skip: float, window: float) -> int:
    """RTP packets received between ``skip`` and ``skip + window`` seconds from now
    (packets already in flight before ``skip`` are ignored; RTCP does not count)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = 0
    while (left := start + skip + window - loop.time()) > 0:
        try:
            data, _ = await sock.recv(left)
        except TimeoutError:
            break
        if not looks_like_rtcp(data) and loop.time() - start > skip:
            count += 1
    return count


async def test_options_advertises_capabilities(atende: AtendeProcess) -> None:
    c = await SipClient.open(server(atende))
    try:
        d = c.new_dialog()
        c.send(c.request("OPTIONS", d))
        r = await c.final()
        assert r.status == 200
        allow = set(r.headers.get_all("Allow"))
        assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"} <= allow
        assert r.headers.get_all("Accept") == ["application/sdp"]
        assert "Supported" in r.headers
    finally:
        c.close()


async def test_invite_flow_rtp_hold_dtmf_and_bye(atende: AtendeProcess) -> None:
    c = await SipClient.open(server(atende), user="uastest")
    advertised = await UdpSocket.open()  # the port our SDP names
    actual = await UdpSocket.open()  # where our RTP really comes from (as behind a NAT)
    try:
        d = c.new_dialog()
        c.send(c.request("INVITE", d, body=sdp_offer("127.0.0.1", advertised.port)))
        ok = await c.response()
        assert ok.status == 200 and ok.to.tag  # answered at once: no 100 or 180 first
        assert ok.headers.get("Content-Type") == "application/sdp"
        assert ok.headers.get_all("Contact")
        assert ok.top_via.params.get("rport") == str(c.sock.port)  # RFC 3581
        # Without our ACK, the 200 OK is retransmitted (RFC 3261 §13.3.1.4).
        again = await c.response(200, timeout=3)
        assert again.to.tag == ok.to.tag and again.body == ok.body
        d.to_tag = ok.to.tag or ""
        c.send(c.request("ACK", d))
        d.cseq += 1

        # RTP arrives at the SDP address first: PCMU, 20 ms, consecutive numbering.
        pkts = await rtp_packets(advertised, 10)
        assert all(p.payload_type == 0 and len(p.payload) == 160 for p in pkts)
        assert len({p.ssrc for p in pkts}) == 1
        assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in itertools.pairwise(pkts))
        assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160
                   for a, b in itertools.pairwise(pkts))
        target = media_addr(ok)

        # Symmetric RTP: once we send from another port, atende answers there.
        seq, ts = 1000, 5000
        for _ in range(3):
            actual.send(RtpPacket(0, seq, ts, 0x1234, b"\xff" * 160).encode(), target)
            seq, ts = seq + 1, ts + 160
        latched = await rtp_packets(actual, 5)
        assert latched[0].ssrc == pkts[0].ssrc

        # RFC 4733 DTMF reaches the call's record.
        for payload, marker in dtmf_payloads("7", 120):
            actual.send(RtpPacket(101, seq, 9000, 0x1234, payload, marker).encode(), target)
            seq += 1
        await atende.wait_for_call(lambda x: x["from_user"] == "uastest" and any(
            e["data"].get("digit") == "7" for e in x["events"]))
        # SIP INFO DTMF too.
        c.send(c.request("INFO", d, body=b"Signal=4\r\nDuration=160\r\n",
                         content_type="application/dtmf-relay"))
        assert (await c.final()).status == 200
        d.cseq += 1

        # Transfers: a direct call's REFER is refused by policy (never ignored); NOTIFYs
        # for subscriptions we do not have are refused as RFC 6665 says.
        for method, extra, body, ctype, status in [
            ("REFER", "Refer-To: <sip:bob@127.0.0.1>\r\n", b"", None, 403),
            ("REFER", "", b"", None, 400),
            ("NOTIFY", "Event: refer\r\nSubscription-State: active\r\n",
             b"SIP/2.0 100 Trying\r\n", "message/sipfrag", 481),
            ("NOTIFY", "Event: presence\r\nSubscription-State: active\r\n", b"", None, 489),
        ]:
            c.send(c.request(method, d, extra=extra, body=body, content_type=ctype))
            answer = await c.final()
            assert answer.status == status, (method, extra, answer.status)
            if status == 403:
                assert "trunk calls only" in (answer.headers.get("Warning") or "")
            d.cseq += 1

        # Hold: the peer's sendonly is answered recvonly; atende stops sending.
        c.send(c.request("INVITE", d, body=sdp_offer("127.0.0.1", actual.port,
                                                      direction="sendonly", version=2)))
        held = await c.final()
        assert held.status == 200 and direction(held) == "recvonly"
        # A re-INVITE's 200 OK is retransmitted until ACKed too.
        again = await c.response(200, timeout=3)
        assert again.cseq.number == held.cseq.number and again.body == held.body
        c.send(c.request("ACK", d))
        d.cseq += 1
        assert await rtp_during(actual, skip=0.2, window=1.0) == 0  # on hold: no media out
        c.send(c.request("INVITE", d, body=sdp_offer("127.0.0.1", actual.port, version=3)))
        resumed = await c.final()
        assert resumed.status == 200 and direction(resumed) == "sendrecv"
        c.send(c.request("ACK", d))
        d.cseq += 1
        v_held = parse_sdp(held.body).origin.split()[2]
        v_resumed = parse_sdp(resumed.body).origin.split()[2]
        assert int(v_resumed) > int(v_held)  # changed SDP gets a new version
        assert (await rtp_packets(actual, 3))[0].payload_type == 0  # media flows again

        # An out-of-order CSeq in the dialog is refused.
        c.send(c.request("INFO", d, cseq=1, body=b""))
        assert (await c.final()).status == 500

        c.send(c.request("BYE", d))
        assert (await c.final()).status == 200
        d.cseq += 1
        c.send(c.request("BYE", d))
        assert (await c.final()).status == 481

        call = await atende.wait_for_call(
            lambda x: x["from_user"] == "uastest" and x["status"] == "completed"
            and len(x["events"]) >= 2)
        assert call["hangup_cause"] == "remote_hangup"
        assert [e["data"]["digit"] for e in call["events"] if e["kind"] == "dtmf"] == ["7", "4"]
    finally:
        c.close()
        advertised.close()
        actual.close()


async def test_ptime_and_pcma_are_honoured(atende: AtendeProcess) -> None:
    c = await SipClient.open(server(atende))
    media = await UdpSocket.open()
    try:
        d = c.new_dialog()
        ok = await c.call(d, sdp_offer("127.0.0.1", media.port, formats="8",
                                       attrs="a=ptime:30\r\n"))
        assert ok.status == 200
        sd = parse_sdp(ok.body)
        assert sd.media[0].formats == ["8"] and sd.media[0].attr("ptime") == "30"
        pkts = await rtp_packets(media, 4)
        assert all(p.payload_type == 8 and len(p.payload) == 240 for p in pkts)
        assert (pkts[1].timestamp - pkts[0].timestamp) & 0xFFFFFFFF == 240
        c.send(c.request("BYE", d))
        assert (await c.final()).status == 200
    finally:
        c.close()
        media.close()


async def test_delayed_offer(atende: AtendeProcess) -> None:
    c = await SipClient.open(server(atende))
    media = await UdpSocket.open()
    try:
        d = c.new_dialog()
        c.send(c.request("INVITE", d))
        ok = await c.final()
        assert ok.status == 200
        offer = parse_sdp(ok.body)
        assert {"0", "8"} <= set(offer.media[0].formats)
        d.to_tag = ok.to.tag or ""
        c.send(c.request("ACK", d, body=sdp_offer("127.0.0.1", media.port, formats="0")))
        d.cseq += 1
        assert (await rtp_packets(media, 3))[0].payload_type == 0
        c.send(c.request("BYE", d))
        assert (await c.final()).status == 200
    finally:
        c.close()
        media.close()


@pytest.mark.parametrize(
    ("kwargs", "status", "check"),
    [
        ({"body": sdp_offer("127.0.0.1", 4000, formats="18")}, 488, None),
        ({"body": b"hello", "content_type": "text/plain"}, 415, ("Accept", "application/sdp")),
        ({"body": sdp_offer("127.0.0.1", 4000), "extra": "Require: 100rel\r\n"}, 420,
         ("Unsupported", "100rel")),
        ({"body": sdp_offer("127.0.0.1", 4000), "ruri": "sip:nobody@127.0.0.1"}, 404, None),
        ({"body": b"v=0\r\nthis is not sdp\r\n"}, 400, None),
    ],
)
async def test_invites_that_must_be_refused(atende: AtendeProcess, kwargs: dict[str, object],
                                            status: int, check: tuple[str, str] | None) -> None:
    c = await SipClient.open(server(atende))
    try:
        d = c.new_dialog()
        ruri = kwargs.pop("ruri", None)
        if ruri:
            kwargs["ruri"] = str(ruri).replace("127.0.0.1", f"127.0.0.1:{atende.sip_port}")
        c.send(c.request("INVITE", d, **kwargs))  # type: ignore[arg-type]
        r = await c.final()
        assert r.status == status, r.encode()
        if check:
            assert check[1] in r.headers.get_all(check[0])
        c.send(c.request("ACK", d, new_branch=False))
        # The server answers retransmissions from its transaction, not by reprocessing.
    finally:
        c.close()


async def test_methods_and_dialogs_that_do_not_exist(atende: AtendeProcess) -> None:
    c = await SipClient.open(server(atende))
    try:
        for method, status in [("REGISTER", 405), ("SUBSCRIBE", 405), ("FROBNICATE", 501),
                               ("BYE", 481), ("CANCEL", 481), ("INFO", 481)]:
            d = c.new_dialog()
            c.send(c.request(method, d))
            r = await c.final()
            assert r.status == status, method
            if status == 405:
                assert "INVITE" in r.headers.get_all("Allow")
        d = c.new_dialog()
        d.to_tag = "nosuchtag"
        c.send(c.request("INVITE", d, body=sdp_offer("127.0.0.1", 4000)))
        assert (await c.final()).status == 481
    finally:
        c.close()


async def test_call_over_tcp(atende: AtendeProcess) -> None:
    media = await UdpSocket.open()
    reader, writer = await asyncio.open_connection("127.0.0.1", atende.sip_port)
    _host, port = writer.get_extra_info("sockname")[:2]
    tmp = SipClient(media, ("127.0.0.1", atende.sip_port))
    d = tmp.new_dialog()
    invite = tmp.request("INVITE", d, body=sdp_offer("127.0.0.1", media.port)).replace(
        b"SIP/2.0/UDP", b"SIP/2.0/TCP").replace(f":{media.port};branch".encode(),
                                                 f":{port};branch".encode())

    async def read_response() -> Response:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n")
                          if ln.lower().startswith(b"content-length")))
        msg = parse_message(head + await reader.readexactly(length), stream=True)
        assert isinstance(msg, Response)
        return msg

    try:
        writer.write(invite[:50])  # split across segments on purpose
        await writer.drain()
        writer.write(invite[50:])
        statuses = []
        while True:
            r = await asyncio.wait_for(read_response(), 5)
            statuses.append(r.status)
            if r.status >= 200:
                break
        assert statuses == [200]
        assert "transport=tcp" in (r.headers.get("Contact") or "")
        assert (await rtp_packets(media, 2))[0].payload_type == 0
        d.to_tag = r.to.tag or ""
        d.cseq += 1
        bye = tmp.request("BYE", d).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        writer.write(bye)
        assert (await asyncio.wait_for(read_response(), 5)).status == 200
        # A stream that cannot be framed is closed, not guessed at: what is answerable of
        # it gets its 400 first.
        writer.write(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKq"
                     b"\r\n\r\n")
        last = await asyncio.wait_for(reader.read(), 5)  # everything, up to the close
        assert last == b"" or last.startswith(b"SIP/2.0 400 ")
    finally:
        writer.close()
        media.close()


async def test_cancel_while_ringing(atende_strict: AtendeProcess) -> None:
    c = await SipClient.open(server(atende_strict), user="canceller")
    try:
        d = c.new_dialog()
        c.send(c.request("INVITE", d, body=sdp_offer("127.0.0.1", 4000)))
        assert (await c.response()).status == 180  # the ring time: the 180 is the first word
        c.send(c.request("CANCEL", d, new_branch=False, body=b""))
        got = {(await c.response()).status, (await c.response()).status}
        assert got == {200, 487}
        call = await atende_strict.wait_for_call(
            lambda x: x["from_user"] == "canceller" and x["status"] == "cancelled")
        assert call["hangup_cause"] == "cancelled" and call["answer_at"] is None
    finally:
        c.close()


async def test_direct_calls_from_outside_allow_list_are_forbidden(
        atende_strict: AtendeProcess) -> None:
    c = await SipClient.open(server(atende_strict), host="127.0.0.3")
    try:
        d = c.new_dialog()
        c.send(c.request("INVITE", d, body=sdp_offer("127.0.0.3", 4000)))
        assert (await c.final()).status == 403
    finally:
        c.close()


def test_request_builder_is_valid_sip() -> None:
    # The raw client is a test tool: make sure it produces what it claims.
    sock = type("S", (), {"host": "127.0.0.1", "port": 5000})()
    c = SipClient(sock, ("127.0.0.1", 5060))  # type: ignore[arg-type]
    msg = parse_message(c.request("INVITE", c.new_dialog(), body=sdp_offer("127.0.0.1", 1)))
    assert isinstance(msg, Request) and msg.method == "INVITE"


async def test_call_without_media_is_ended_by_atende(atende_strict: AtendeProcess) -> None:
    c = await SipClient.open(server(atende_strict), user="silentpeer")
    media = await UdpSocket.open()
    try:
        d = c.new_dialog()
        assert (await c.call(d, sdp_offer("127.0.0.1", media.port))).status == 200
        # We never send RTP: atende must send BYE on its own.
        while True:
            msg = await c.recv(timeout=10)
            if isinstance(msg, Request) and msg.method == "BYE":
                break
        assert msg.to.tag == d.from_tag and msg.from_.tag == d.to_tag  # inside our dialog
        c.sock.send(make_response(msg, 200).encode(), c.server)
        call = await atende_strict.wait_for_call(
            lambda x: x["from_user"] == "silentpeer" and x["status"] == "completed")
        assert call["hangup_cause"] == "rtp_timeout"
    finally:
        c.close()
        media.close()


async def test_a_call_is_over_once_its_bye_is_sent_answered_or_not(
        atende_strict: AtendeProcess) -> None:
    """RFC 3261 §15.1.1: the session ends as our BYE goes. A caller that has gone away
    (here it never answers the BYE) holds neither the call nor its place for the 32 s
    the BYE is sent again: the call is recorded over at once, and the next call is taken
    (this atende takes one at a time) while that BYE still waits."""
    loop = asyncio.get_running_loop()
    c = await SipClient.open(server(atende_strict), user="gonepeer")
    media = await UdpSocket.open()
    try:
        gone = c.new_dialog()
        assert (await c.call(gone, sdp_offer("127.0.0.1", media.port))).status == 200
        byes: list[Request] = []
        while len(byes) < 2:  # atende ends it (no RTP); its BYE comes again, unanswered
            msg = await c.recv(timeout=10)
            if isinstance(msg, Request) and msg.method == "BYE":
                byes.append(msg)
                if len(byes) == 1:
                    first_bye_at = loop.time()
        call = await atende_strict.wait_for_call(
            lambda x: x["from_user"] == "gonepeer" and x["status"] == "completed", timeout=5)
        assert call["hangup_cause"] == "rtp_timeout" and loop.time() - first_bye_at < 5
        after = c.new_dialog()
        assert (await c.call(after, sdp_offer("127.0.0.1", media.port))).status == 200
        c.send(c.request("BYE", after))
        assert (await c.final()).status == 200
        c.sock.send(make_response(byes[-1], 200).encode(), c.server)  # at last
    finally:
        c.close()
        media.close()


async def test_merged_request_gets_482(atende: AtendeProcess) -> None:
    c = await SipClient.open(server(atende))
    try:
        d = c.new_dialog()
        first = c.request("INVITE", d, body=sdp_offer("127.0.0.1", 4000))
        c.send(first)
        ok = await c.final()
        assert ok.status == 200
        # The same request (Call-ID, From tag, CSeq) again, as if forked back by another path.
        c.send(c.request("INVITE", d, body=sdp_offer("127.0.0.1", 4000)))
        assert (await c.final()).status == 482
        d.to_tag = ok.to.tag or ""
        c.send(c.request("ACK", d))
        d.cseq += 1
        c.send(c.request("BYE", d))
        assert (await c.final()).status == 200
    finally:
        c.close()


async def test_rtp_from_a_stranger_is_not_latched(atende: AtendeProcess) -> None:
    c = await SipClient.open(server(atende))
    media = await UdpSocket.open()
    stranger = await UdpSocket.open("127.0.0.7")
    try:
        d = c.new_dialog()
        ok = await c.call(d, sdp_offer("127.0.0.1", media.port))
        target = media_addr(ok)
        await rtp_packets(media, 2)
        for i in range(5):
            stranger.send(RtpPacket(0, i, i * 160, 0x999, b"\xff" * 160).encode(), target)
        # Media keeps going to the SDP address; none goes to the stranger.
        assert await rtp_during(stranger, skip=0.0, window=0.5) == 0
        assert len(await rtp_packets(media, 10)) == 10
        c.send(c.request("BYE", d))
        assert (await c.final()).status == 200
    finally:
        c.close()
        media.close()
        stranger.close()


async def test_rtcp_sender_reports(atende: AtendeProcess) -> None:
    port = free_port(pair=True)
    media = await UdpSocket.open(port=port)
    rtcp = await UdpSocket.open(port=port + 1)
    c = await SipClient.open(server(atende))
    try:
        d = c.new_dialog()
        assert (await c.call(d, sdp_offer("127.0.0.1", port))).status == 200
        ssrc = (await rtp_packets(media, 1))[0].ssrc
        data, _ = await rtcp.recv(timeout=8)  # the first report comes within 3.75 s
        reports = parse_compound(data)
        assert reports and reports[0].packet_type == SR and reports[0].ssrc == ssrc
        assert reports[0].packets and reports[0].packets > 0
        c.send(c.request("BYE", d))
        assert (await c.final()).status == 200
    finally:
        c.close()
        media.close()
        rtcp.close()


async def test_one_call_too_many_is_busy(atende_strict: AtendeProcess) -> None:
    first = await SipClient.open(server(atende_strict), user="firstcaller")
    second = await SipClient.open(server(atende_strict), user="secondcaller")
    media = await UdpSocket.open()
    try:
        d1 = first.new_dialog()
        assert (await first.call(d1, sdp_offer("127.0.0.1", media.port))).status == 200
        d2 = second.new_dialog()
        assert (await second.call(d2, sdp_offer("127.0.0.1", 4000))).status == 486
        first.send(first.request("BYE", d1))
        assert (await first.final()).status == 200
        await atende_strict.wait_for_call(
            lambda x: x["from_user"] == "firstcaller" and x["status"] == "completed")
        busy = await atende_strict.wait_for_call(lambda x: x["from_user"] == "secondcaller")
        assert (busy["status"], busy["hangup_cause"]) == ("rejected", "busy")
    finally:
        first.close()
        second.close()
        media.close()


async def test_calls_are_limited_in_length(atende_strict: AtendeProcess) -> None:
    c = await SipClient.open(server(atende_strict), user="longtalker")
    media = await UdpSocket.open()
    try:
        d = c.new_dialog()
        ok = await c.call(d, sdp_offer("127.0.0.1", media.port))
        assert ok.status == 200
        target = media_addr(ok)

        async def keep_talking() -> None:  # so the media timeout is not what ends it
            seq = 0
            while True:
                media.send(RtpPacket(0, seq, seq * 160, 77, b"\xff" * 160).encode(), target)
                seq += 1
                await asyncio.sleep(0.02)

        talker = asyncio.get_running_loop().create_task(keep_talking())
        try:
            while True:
                msg = await c.recv(timeout=10)
                if isinstance(msg, Request) and msg.method == "BYE":
                    break
        finally:
            talker.cancel()
        c.sock.send(make_response(msg, 200).encode(), c.server)
        call = await atende_strict.wait_for_call(
            lambda x: x["from_user"] == "longtalker" and x["status"] == "completed")
        assert call["hangup_cause"] == "max_duration"
    finally:
        c.close()
        media.close()
