"""RTCP sender and receiver reports with SDES CNAME (RFC 3550 §6), sans-IO."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from atende.media.rtp import ReceiverStats, RtpSender

SR, RR, SDES, BYE = 200, 201, 202, 203
NTP_EPOCH_OFFSET = 2208988800


def ntp_timestamp(unix_time: float) -> tuple[int, int]:
    secs = int(unix_time) + NTP_EPOCH_OFFSET
    frac = int((unix_time % 1) * (1 << 32))
    return secs & 0xFFFFFFFF, frac & 0xFFFFFFFF


@dataclass
class ReportBlock:
    """One reception report block of an RTCP sender or receiver report."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int

    def encode(self) -> bytes:
        lost = max(-(1 << 23), min(self.cumulative_lost, (1 << 23) - 1)) & 0xFFFFFF
        return struct.pack("!IIIIII", self.ssrc, (self.fraction_lost << 24) | lost,
                           self.highest_seq & 0xFFFFFFFF, self.jitter, self.lsr, self.dlsr)


@dataclass
class RtcpReport:
    """An RTCP sender or receiver report, parsed."""

    packet_type: int
    ssrc: int
    ntp: tuple[int, int] | None = None
    rtp_timestamp: int | None = None
    packets: int | None = None
    octets: int | None = None
    blocks: tuple[ReportBlock, ...] = ()


class RtcpState:
    """Builds our compound reports and remembers the peer's last SR for LSR/DLSR."""

    def __init__(self, cname: str) -> None:
        self.cname = cname
        self._last_sr_mid: int | None = None
        self._last_sr_at: float | None = None
        self.reports_received = 0

    def on_report(self, report: RtcpReport, now: float) -> None:
        self.reports_received += 1
        if report.packet_type == SR and report.ntp is not None:
            secs, frac = report.ntp
            self._last_sr_mid = ((secs & 0xFFFF) << 16) | (frac >> 16)
            self._last_sr_at = now

    def build(self, sender: RtpSender, stats: ReceiverStats, now: float, wallclock: float,
              sent_anything: bool) -> bytes:
        blocks: list[ReportBlock] = []
        if stats.ssrc is not None and stats.received:
            lsr, dlsr = 0, 0
            if self._last_sr_mid is not None and self._last_sr_at is not None:
                lsr = self._last_sr_mid
                dlsr = int((now - self._last_sr_at) * 65536)
            blocks.append(ReportBlock(stats.ssrc, stats.fraction_lost_since_last(), stats.lost,
                                      stats.extended_max, int(stats.jitter), lsr, dlsr))
        body = b"".join([b.encode() for b in blocks])
        if sent_anything:
            secs, frac = ntp_timestamp(wallclock)
            payload = struct.pack("!IIIIII", sender.ssrc, secs, frac, sender.timestamp,
                                  sender.packets_sent, sender.octets_sent) + body
            first = _header(SR, len(blocks), payload)
        else:
            first = _header(RR, len(blocks), struct.pack("!I", sender.ssrc) + body)
        return first + self._sdes(sender.ssrc)

    def _sdes(self, ssrc: int) -> bytes:
        cname = self.cname.encode()[:255]
        chunk = struct.pack("!IBB", ssrc, 1, len(cname)) + cname + b"\x00"
        chunk += b"\x00" * (-len(chunk) % 4)
        return _header(SDES, 1, chunk)


def _header(pt: int, count: int, payload: bytes) -> bytes:
    return struct.pack("!BBH", 0x80 | count, pt, len(payload) // 4) + payload


def parse_compound(data: bytes) -> list[RtcpReport]:
    """Parse the SR/RR packets of a compound RTCP packet; others are skipped."""
    out: list[RtcpReport] = []
    off = 0
    while off + 4 <= len(data):
        b0, pt, length = struct.unpack_from("!BBH", data, off)
        size = (length + 1) * 4
        if b0 >> 6 != 2 or off + size > len(data):
            raise ValueError("malformed RTCP")
        count = b0 & 0x1F
        body = data[off + 4 : off + size]
        if pt == SR and len(body) >= 24:
            ssrc, secs, frac, ts, pkts, octs = struct.unpack_from("!IIIIII", body)
            out.append(RtcpReport(SR, ssrc, (secs, frac), ts, pkts, octs,
                                  _blocks(body[24:], count)))
        elif pt == RR and len(body) >= 4:
            (ssrc,) = struct.unpack_from("!I", body)
            out.append(RtcpReport(RR, ssrc, blocks=_blocks(body[4:], count)))
        off += size
    return out


def _blocks(data: bytes, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for i in range(count):
        if len(data) < (i + 1) * 24:
            break
        ssrc, fl, hs, jit, lsr, dlsr = struct.unpack_from("!IIIIII", data, i * 24)
        lost = fl & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        blocks.append(ReportBlock(ssrc, fl >> 24, lost, hs, jit, lsr, dlsr))
    return tuple(blocks)
