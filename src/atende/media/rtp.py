"""RTP packets and per-stream sender/receiver state (RFC 3550), sans-IO."""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")  # the fixed header (RFC 3550 §5.1)


class RtpError(ValueError):
    """A datagram that is not a usable RTP packet."""

    pass


@dataclass
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1), parsed and built."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()

    def encode(self) -> bytes:
        b0 = (RTP_VERSION << 6) | len(self.csrcs)
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        head = HEADER.pack(b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                            self.ssrc)
        if self.csrcs:
            head += struct.pack(f"!{len(self.csrcs)}I", *self.csrcs)
        return head + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < 12:
            raise RtpError("packet shorter than the RTP header")
        b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
        if b0 == 0x80:  # what nearly every packet is: no CSRC, extension or padding
            return cls(b1 & 0x7F, seq, ts, ssrc, data[12:], bool(b1 & 0x80))
        if b0 >> 6 != RTP_VERSION:
            raise RtpError("not RTP version 2")
        cc = b0 & 0x0F
        offset = 12 + 4 * cc
        if len(data) < offset:
            raise RtpError("truncated CSRC list")
        csrcs = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
        if b0 & 0x10:  # header extension: skip it
            if len(data) < offset + 4:
                raise RtpError("truncated header extension")
            (ext_words,) = struct.unpack_from("!H", data, offset + 2)
            offset += 4 + 4 * ext_words
        end = len(data)
        if b0 & 0x20:  # padding: last octet says how much
            pad = data[-1]
            if pad == 0 or offset + pad > len(data):
                raise RtpError("bad padding")
            end -= pad
        if offset > end:
            raise RtpError("truncated packet")
        return cls(b1 & 0x7F, seq, ts, ssrc, data[offset:end], bool(b1 & 0x80), tuple(csrcs))


def looks_like_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: payload types 64–95 (packet types 192–223) are RTCP."""
    return len(data) >= 2 and data[0] >> 6 == 2 and 192 <= data[1] <= 223


class RtpSender:
    """Numbers outgoing packets: random initial sequence and timestamp (RFC 3550 §5.1)."""

    def __init__(self, payload_type: int, clock_rate: int = 8000, ssrc: int | None = None) -> None:
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.ssrc = ssrc if ssrc is not None else secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self.packets_sent = 0
        self.octets_sent = 0
        self._talkspurt_start = True

    def mark_talkspurt(self) -> None:
        """The next packet starts a talkspurt and carries the marker bit."""
        self._talkspurt_start = True

    def encoded(self, payload: bytes, samples: int) -> bytes:
        """The next audio packet as it goes on the wire: ``packet(payload, samples)``
        encoded, without the object in between (every call sends 50 a second)."""
        b1 = (0x80 if self._talkspurt_start else 0) | (self.payload_type & 0x7F)
        data = HEADER.pack(0x80, b1, self.sequence, self.timestamp, self.ssrc) + payload
        self._talkspurt_start = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return data

    def packet(self, payload: bytes, samples: int, payload_type: int | None = None,
               marker: bool | None = None, advance: bool = True) -> RtpPacket:
        m = self._talkspurt_start if marker is None else marker
        pkt = RtpPacket(self.payload_type if payload_type is None else payload_type,
                        self.sequence, self.timestamp, self.ssrc, payload, m)
        self._talkspurt_start = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        if advance:
            self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return pkt


class ReceiverStats:
    """Sequence tracking, loss and interarrival jitter (RFC 3550 §6.4.1, §A.1, §A.8)."""

    MAX_DROPOUT = 3000
    MAX_MISORDER = 100

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0
        self._transit: float | None = None

    def update(self, ssrc: int, sequence: int, timestamp: int, arrival: float) -> None:
        """Record a packet of stream ``ssrc`` (its header's fields: every packet of every
        call comes through here, so no packet object is made for it)."""
        if self.ssrc != ssrc:
            self.ssrc = ssrc
            self.base_seq = self.max_seq = sequence
            self.cycles = 0
            self.received = 0
            self.expected_prior = self.received_prior = 0
            self._transit = None
        udelta = (sequence - self.max_seq) & 0xFFFF
        if 0 < udelta < self.MAX_DROPOUT:
            if sequence < self.max_seq:
                self.cycles += 1 << 16
            self.max_seq = sequence
        elif udelta != 0 and udelta <= 0xFFFF - self.MAX_MISORDER:
            # A big jump: the sender restarted; resync.
            self.base_seq = self.max_seq = sequence
            self.cycles = 0
        self.received += 1
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16
        self._transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def fraction_lost_since_last(self) -> int:
        expected_int = self.expected - self.expected_prior
        received_int = self.received - self.received_prior
        self.expected_prior, self.received_prior = self.expected, self.received
        lost_int = expected_int - received_int
        if expected_int <= 0 or lost_int <= 0:
            return 0
        return min(255, (lost_int << 8) // expected_int)
