"""SDP parsing and the answerer's offer/answer rules (RFC 3264/4566)."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from atende.sip.sdp import (
    Codec,
    Crypto,
    NoCommonCodec,
    SdpError,
    build_answer,
    build_offer,
    negotiate,
    parse_sdp,
)


def offer(m: str = "m=audio 4000 RTP/AVP 0 8 101", attrs: str = "a=rtpmap:101 telephone-event/8000",
          conn: str = "c=IN IP4 192.0.2.10", extra_media: str = "") -> bytes:
    return (f"v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\n{conn}\r\nt=0 0\r\n"
            f"{extra_media}{m}\r\n{attrs}\r\n").encode()


def test_picks_the_offerers_first_supported_codec_and_telephone_event() -> None:
    _, neg = negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 8 0 101")))
    assert neg.codec.name == "PCMA" and neg.codec.payload_type == 8
    assert neg.dtmf_payload_type == 101
    assert (neg.remote_host, neg.remote_port) == ("192.0.2.10", 4000)
    assert neg.direction == "sendrecv" and neg.ptime_ms == 20


def test_dynamic_payload_types_by_rtpmap() -> None:
    sdp = offer("m=audio 4000 RTP/AVP 96 97", "a=rtpmap:96 PCMU/8000\r\na=rtpmap:97 "
                "telephone-event/8000")
    _, neg = negotiate(parse_sdp(sdp))
    assert neg.codec.name == "PCMU" and neg.codec.payload_type == 96
    assert neg.dtmf_payload_type == 97


def test_no_common_codec_means_488() -> None:
    with pytest.raises(NoCommonCodec):
        negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 18 3", "a=rtpmap:18 G729/8000")))
    with pytest.raises(NoCommonCodec):  # SRTP-only offers are not something we can answer
        negotiate(parse_sdp(offer("m=audio 4000 RTP/SAVP 0")))
    with pytest.raises(NoCommonCodec):  # a wideband PCMU claim is not G.711
        negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 PCMU/16000")))


@pytest.mark.parametrize(
    ("attr", "ours"),
    [("a=sendonly", "recvonly"), ("a=recvonly", "sendonly"), ("a=inactive", "inactive"),
     ("a=sendrecv", "sendrecv")],
)
def test_direction_is_mirrored(attr: str, ours: str) -> None:
    _, neg = negotiate(parse_sdp(offer(attrs=attr)))
    assert neg.direction == ours


def test_session_level_direction_and_rfc2543_hold() -> None:
    sdp = offer().replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
    assert negotiate(parse_sdp(sdp))[1].direction == "recvonly"
    held = negotiate(parse_sdp(offer(conn="c=IN IP4 0.0.0.0")))[1]
    assert not held.we_send


def test_ptime_is_honoured() -> None:
    _, neg = negotiate(parse_sdp(offer(attrs="a=ptime:30")))
    assert neg.ptime_ms == 30


def test_answer_rejects_other_streams_and_keeps_order() -> None:
    video = "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    sd = parse_sdp(offer(extra_media=video))
    idx, neg = negotiate(sd)
    assert idx == 1
    answer = build_answer(sd, idx, neg, "192.0.2.1", 10000, 42, 1).decode()
    lines = answer.split("\r\n")
    m_lines = [ln for ln in lines if ln.startswith("m=")]
    assert m_lines == ["m=video 0 RTP/AVP 96", "m=audio 10000 RTP/AVP 0 101"]
    assert "a=rtpmap:0 PCMU/8000" in lines and "a=fmtp:101 0-16" in lines
    assert "c=IN IP4 192.0.2.1" in lines and "o=atende 42 1 IN IP4 192.0.2.1" in lines
    reparsed = parse_sdp(answer.encode())
    assert reparsed.media[1].port == 10000


@pytest.mark.parametrize("bad", [b"", b"garbage", b"v=0\r\nm=audio x RTP/AVP 0\r\n",
                                 b"v=0\r\no=a 1 1 IN IP4 h\r\nc=IN IP4\r\n", b"\xff\xfe"])
def test_malformed_sdp(bad: bytes) -> None:
    with pytest.raises(SdpError):
        negotiate(parse_sdp(bad))


def test_missing_connection_address() -> None:
    with pytest.raises(SdpError):
        negotiate(parse_sdp(offer(conn="a=x")))


def test_g711_is_taken_first_and_wideband_codecs_when_it_is_not_offered() -> None:
    opus = "a=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000"
    _, neg = negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 111 9 8 101", opus)))
    assert neg.codec == Codec("PCMA", 8, 8000)  # the offer's first G.711
    _, neg = negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 111 9 101", opus)))
    assert neg.codec == Codec("OPUS", 111, 48000) and neg.dtmf_payload_type == 101
    _, neg = negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 9")))
    assert neg.codec == Codec("G722", 9, 8000)
    with pytest.raises(NoCommonCodec):  # Opus is counted at 48 kHz, whatever it codes
        negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 111", "a=rtpmap:111 opus/16000")))


def test_an_opus_answer_names_it_as_rfc_7587_says() -> None:
    sdp = parse_sdp(offer("m=audio 4000 RTP/AVP 111", "a=rtpmap:111 OPUS/48000/2"))
    index, neg = negotiate(sdp)
    body = build_answer(sdp, index, neg, "192.0.2.1", 30000, 1, 1).decode()
    assert "a=rtpmap:111 opus/48000/2" in body and "useinbandfec=1" in body
    offered = build_offer("192.0.2.1", 30000, 1, 1, codecs=("OPUS", "PCMU")).decode()
    assert "m=audio 30000 RTP/AVP 111 0 101 110" in offered
    assert "a=rtpmap:110 telephone-event/48000" in offered


def test_key_events_are_taken_on_the_audios_own_clock() -> None:
    both = ("a=rtpmap:111 opus/48000/2\r\na=rtpmap:110 telephone-event/48000\r\n"
            "a=rtpmap:101 telephone-event/8000")
    sdp = parse_sdp(offer("m=audio 4000 RTP/AVP 111 110 101", both))
    index, neg = negotiate(sdp)
    assert (neg.dtmf_payload_type, neg.dtmf_clock) == (110, 48000)  # RFC 4733 §2.1
    body = build_answer(sdp, index, neg, "192.0.2.1", 30000, 1, 1).decode()
    assert "m=audio 30000 RTP/AVP 111 110" in body
    assert "a=rtpmap:110 telephone-event/48000" in body
    # G.711 chosen: its 8 kHz events.
    _, neg = negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 0 110 101", both)))
    assert (neg.dtmf_payload_type, neg.dtmf_clock) == (101, 8000)
    # Opus with only 8 kHz events, as many phones pair them: taken all the same.
    _, neg = negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 111 101",
                                       "a=rtpmap:111 opus/48000/2\r\n"
                                       "a=rtpmap:101 telephone-event/8000")))
    assert (neg.dtmf_payload_type, neg.dtmf_clock) == (101, 8000)
    # Only 48 kHz events beside G.711: none (their clock is not the audio's).
    _, neg = negotiate(parse_sdp(offer("m=audio 4000 RTP/AVP 0 110",
                                       "a=rtpmap:110 telephone-event/48000")))
    assert neg.dtmf_payload_type is None


KEY = bytes(range(30))
CRYPTO = f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(KEY).decode()}"


def test_an_sdes_offer_is_answered_with_our_own_key() -> None:
    sdp = parse_sdp(offer("m=audio 4000 RTP/SAVP 0 101",
                          "a=crypto:1 F8_128_HMAC_SHA1_80 inline:" + "A" * 40 + "\r\n"
                          + CRYPTO + "\r\na=rtpmap:101 telephone-event/8000"))
    index, neg = negotiate(sdp)
    assert neg.crypto == Crypto("2", "AES_CM_128_HMAC_SHA1_80", KEY)  # the suite we take
    ours = bytes(30 * [7])
    body = build_answer(sdp, index, replace(neg, crypto=replace(neg.crypto, ours=ours)),
                        "192.0.2.1", 30000, 1, 1).decode()
    assert "m=audio 30000 RTP/SAVP 0 101" in body
    assert f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(ours).decode()}" \
        in body


@pytest.mark.parametrize("crypto", [
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=",  # a key too short
    f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(KEY).decode()}|2^20|1:4",
    "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY).decode(),
    "a=fingerprint:sha-256 AB:CD"])  # DTLS-SRTP: keys are not in the SDP
def test_srtp_keys_we_cannot_use_mean_488(crypto: str) -> None:
    with pytest.raises(NoCommonCodec):
        negotiate(parse_sdp(offer("m=audio 4000 RTP/SAVP 0", crypto)))
