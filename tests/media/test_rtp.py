"""RTP packets, sender numbering, receiver statistics and RTCP (RFC 3550)."""

from __future__ import annotations

import struct

import pytest

from atende.media.rtcp import RR, SR, RtcpState, parse_compound
from atende.media.rtp import ReceiverStats, RtpError, RtpPacket, RtpSender, looks_like_rtcp


def test_packet_round_trip() -> None:
    pkt = RtpPacket(0, 65535, 2**32 - 1, 0xDEADBEEF, b"\xff" * 160, marker=True,
                    csrcs=(1, 2))
    data = pkt.encode()
    assert data[0] == 0x82 and data[1] == 0x80
    assert RtpPacket.parse(data) == pkt


@pytest.mark.parametrize("marker", [False, True])
def test_a_plain_packet_round_trips(marker: bool) -> None:
    """No CSRC, extension or padding (first octet 0x80): nearly every packet."""
    pkt = RtpPacket(8, 7, 160, 99, b"\x2a" * 160, marker=marker)
    data = pkt.encode()
    assert data[0] == 0x80 and data[1] == (0x88 if marker else 0x08) and len(data) == 172
    assert RtpPacket.parse(data) == pkt
    assert RtpPacket.parse(data[:12]).payload == b""  # a header alone is a packet too


def test_parse_skips_extension_and_padding() -> None:
    head = struct.pack("!BBHII", 0x80 | 0x10 | 0x20, 8, 7, 160, 99)
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    data = head + ext + b"abcd" + b"\x00\x00\x03"
    pkt = RtpPacket.parse(data)
    assert pkt.payload == b"abcd" and pkt.payload_type == 8 and pkt.sequence == 7


@pytest.mark.parametrize("bad", [b"", b"\x80" * 11, b"\x40" + b"\x00" * 11,
                                 struct.pack("!BBHII", 0x8F, 0, 0, 0, 0),
                                 struct.pack("!BBHII", 0xA0, 0, 0, 0, 0) + b"\x09"])
def test_malformed_packets(bad: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(bad)


def test_sender_numbering_wraps_and_marks_talkspurts() -> None:
    s = RtpSender(0, ssrc=5)
    s.sequence, s.timestamp = 65535, 2**32 - 80
    a = s.packet(b"x" * 160, 160)
    b = s.packet(b"x" * 160, 160)
    assert a.marker and not b.marker
    assert (a.sequence, b.sequence) == (65535, 0)
    assert b.timestamp == 80
    s.mark_talkspurt()
    assert s.packet(b"", 160).marker


def test_an_encoded_audio_packet_is_the_packet_numbered_the_same_way() -> None:
    """``encoded`` (the media plane's quick path) and ``packet().encode()`` agree byte
    for byte, across wrap-arounds and talkspurts, and count alike."""
    quick, slow = RtpSender(8, ssrc=77), RtpSender(8, ssrc=77)
    for s in (quick, slow):
        s.sequence, s.timestamp = 65534, 2**32 - 160
    for i in range(4):
        if i == 2:
            quick.mark_talkspurt()
            slow.mark_talkspurt()
        payload = bytes([i]) * 160
        assert quick.encoded(payload, 160) == slow.packet(payload, 160).encode()
    assert (quick.sequence, quick.timestamp) == (slow.sequence, slow.timestamp) == (2, 480)
    assert (quick.packets_sent, quick.octets_sent) == (slow.packets_sent, slow.octets_sent)


def test_receiver_stats_loss_wraparound_and_jitter() -> None:
    st = ReceiverStats()
    seqs = [65530, 65531, 65533, 65534, 65535, 0, 1, 3]  # 65532 and 2 lost
    for i, seq in enumerate(seqs):
        st.update(1, seq, i * 160, i * 0.02)
    assert st.extended_max == (1 << 16) + 3
    assert st.expected == 10 and st.received == 8 and st.lost == 2
    assert st.jitter < 1  # perfectly paced arrivals
    st.update(1, 4, 8 * 160, 8 * 0.02 + 0.05)  # 50 ms late
    assert st.jitter > 10


def test_rtcp_sender_report_round_trip() -> None:
    sender = RtpSender(0, ssrc=111)
    for _ in range(10):
        sender.packet(b"\x00" * 160, 160)
    stats = ReceiverStats()
    for i in range(5):
        stats.update(222, 100 + i * 2, i * 320, i * 0.04)
    state = RtcpState("atende@test")
    data = state.build(sender, stats, 1.0, 1_700_000_000.5, sent_anything=True)
    assert looks_like_rtcp(data)
    (sr,) = parse_compound(data)  # SDES is skipped by the parser
    assert sr.packet_type == SR and sr.ssrc == 111 and sr.packets == 10 and sr.octets == 1600
    (block,) = sr.blocks
    assert block.ssrc == 222 and block.cumulative_lost == 4 and block.highest_seq == 108
    assert block.fraction_lost == (4 << 8) // 9
    assert b"atende@test" in data


def test_rtcp_receiver_report_and_lsr() -> None:
    peer = RtcpState("peer")
    peer_sender = RtpSender(0, ssrc=9)
    peer_sender.packet(b"", 160)
    sr = peer.build(peer_sender, ReceiverStats(), 0.0, 1000.25, sent_anything=True)
    ours = RtcpState("us")
    for report in parse_compound(sr):
        ours.on_report(report, 10.0)
    stats = ReceiverStats()
    stats.update(9, 1, 0, 10.0)
    rr = ours.build(RtpSender(0, ssrc=3), stats, 10.5, 2000.0, sent_anything=False)
    (report,) = parse_compound(rr)
    assert report.packet_type == RR
    assert report.blocks[0].dlsr == 32768  # 0.5 s in 1/65536 units
    assert report.blocks[0].lsr != 0


def test_rtcp_detection_and_malformed() -> None:
    assert not looks_like_rtcp(RtpPacket(0, 1, 1, 1, b"").encode())
    with pytest.raises(ValueError):
        parse_compound(b"\x81\xc8\x00\x10")
