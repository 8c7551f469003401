"""asyncio RTP/RTCP endpoint for one call: a socket pair, symmetric-RTP latching, paced
sending on a 20 ms (ptime) grid, decoding to 16 kHz frames, RTCP reports and DTMF."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from collections import deque
from collections.abc import Callable

import numpy as np

from atende.media import g711
from atende.media.audio import FRAME_BYTES, SAMPLE_RATE
from atende.media.codecs import G711, AudioCodec, codec_for
from atende.media.dtmf import DtmfEvent, DtmfReceiver, dtmf_payloads
from atende.media.jitter import JitterBuffer, SendClock
from atende.media.pacer import MediaPacer
from atende.media.ports import Addr, PortAllocator, UdpPort
from atende.media.resample import StreamResampler
from atende.media.rtcp import RtcpState, parse_compound
from atende.media.rtp import (
    HEADER,
    ReceiverStats,
    RtpError,
    RtpPacket,
    RtpSender,
    looks_like_rtcp,
)
from atende.media.srtp import SrtpPair
from atende.sip.sdp import NegotiatedAudio

log = logging.getLogger(__name__)

RTCP_INTERVAL = 5.0
# Relayed packets stopped this long ago (silence suppression, a stall): our own pacing
# takes over, and the next relayed packet is re-anchored.
RELAY_GAP_S = 0.06
TIMEOUT_CHECK_S = 0.2  # how often a call's silence is weighed against its RTP timeout


def rtcp_delay(first: bool) -> float:
    """RFC 3550 §6.3: half the interval before the first report, and each interval scaled
    by a random factor in [0.5, 1.5] so calls started together do not report in lockstep."""
    base = RTCP_INTERVAL / 2 if first else RTCP_INTERVAL
    return base * (0.5 + secrets.randbelow(1001) / 1000)


class RtpEndpoint:
    """One call's media socket pair (RTP and RTCP): latches to the peer, reorders what arrives
    through the jitter buffer into 16 kHz frames, and paces what we send every ptime,
    with RTCP reports and RFC 4733 DTMF."""

    def __init__(self, ports: PortAllocator, cname: str,
                 pull: Callable[[int, float], bytes | None],
                 on_audio: Callable[[bytes, float], None],
                 on_dtmf: Callable[[DtmfEvent, float], None],
                 on_timeout: Callable[[], None] | None = None, rtp_timeout: float = 0.0
                 ) -> None:
        self.ports = ports
        self.pull = pull
        self.on_audio = on_audio
        self.on_dtmf = on_dtmf
        self.on_timeout = on_timeout
        self.rtp_timeout = rtp_timeout
        self._timed_out = False
        self._next_timeout_check = 0.0
        self._media_ref = 0.0  # when we last (re)started expecting media
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # once open
        self._rtp: UdpPort | None = None
        self._rtcp: UdpPort | None = None
        self.neg: NegotiatedAudio | None = None
        self.ptime_s = 0.02  # how far apart our packets go: the pacer reads it every slot
        self.remote: Addr | None = None
        self.remote_rtcp: Addr | None = None
        self.latched = False
        # Hosts whose RTP we may latch onto: the SDP address and the signalling peer. RTP
        # from anywhere else is ignored, so a stranger cannot hijack the stream (RTP bleed).
        self.trusted_hosts: set[str] = set()
        self.sender = RtpSender(0)
        self.stats = ReceiverStats()
        self.rtcp = RtcpState(cname)
        self.jitter = JitterBuffer(depth=3)
        self.heard_clock = SendClock(FRAME_BYTES / (2 * SAMPLE_RATE))
        self.dtmf = DtmfReceiver()
        self.audio_ssrc: int | None = None  # of the caller's audio, once it comes
        self.codec: AudioCodec | None = None  # the negotiated one's state, both ways
        self.srtp: SrtpPair | None = None  # when the call's media is SRTP (SDES)
        self._in_rs = StreamResampler(8000, SAMPLE_RATE)
        self._out_rs = StreamResampler(SAMPLE_RATE, 8000)
        self._in_buf = bytearray()
        self._out_buf = bytearray()
        # What a whole packet's audio, each way, is batched with other calls' by (the
        # resampler's and the codec's), and its length: worked out once per negotiation.
        self._in_frame: tuple[int, tuple[object, ...] | None] = (0, None)
        self._out_frame: tuple[int, tuple[object, ...] | None] = (0, None)
        self._packet_samples = 0
        # Packets the jitter buffer released, waiting for the tick that decodes them:
        # (payload or None if lost, the payload after it, when it arrived).
        self._inbox: deque[tuple[bytes | None, bytes | None, float]] = deque()
        self._pacer: MediaPacer[RtpEndpoint] | None = None  # while started
        self._closed = False
        self._next_rtcp = 0.0
        self.last_rtp_at: float | None = None
        self.started_at = 0.0
        self.packets_received = 0
        # A bridge of two calls with one codec: our peer's audio packets go straight to
        # the other endpoint's peer (relay_to); what the other sends us is re-stamped.
        self._relay: RtpEndpoint | None = None
        self._relayed_at: float | None = None  # when a relayed packet last went out
        self._relay_source: int | None = None  # SSRC of the relayed stream
        self._relay_offset = 0  # our timestamp minus theirs
        self.send_times: list[float] = []  # kept only when record_send_times is set
        self.record_send_times = False

    def open(self, host: str) -> int:
        """Bind the call's port pair on ``host``, in the running loop (OSError: none
        free)."""
        self.port, self._rtp, self._rtcp = self.ports.open_pair(
            host, self._on_rtp, self._on_rtcp)
        # Kept: asyncio.get_running_loop() asks the kernel for the process's id on
        # Python 3.11, and every packet wants the time.
        self._loop = asyncio.get_running_loop()
        return self.port

    def configure(self, neg: NegotiatedAudio) -> None:
        """Apply (re-)negotiated media. A new remote address re-arms latching."""
        new_remote = (neg.remote_host, neg.remote_port)
        if self.neg is None or (self.neg.remote_host, self.neg.remote_port) != new_remote:
            self.remote = new_remote
            self.remote_rtcp = (neg.remote_host, neg.remote_port + 1)
            self.latched = False
            if self._rtp is not None:
                self._rtp.disconnect()
            self.audio_ssrc = None
        self.trusted_hosts.add(neg.remote_host)
        if self.dtmf.clock_rate != neg.dtmf_clock:
            self.dtmf = DtmfReceiver(neg.dtmf_clock)
        if neg.crypto is None:
            self.srtp = None
        elif self.srtp is None or self.srtp.crypto != neg.crypto:
            self.srtp = SrtpPair(neg.crypto)  # new keys (a re-INVITE may change them)
        if self.neg is None or self.neg.codec != neg.codec:
            self.sender.payload_type = neg.codec.payload_type
            codec = codec_for(neg.codec.name, neg.ptime_ms)
            self.codec = codec
            self._in_rs = StreamResampler(codec.decode_rate, SAMPLE_RATE)
            self._out_rs = StreamResampler(SAMPLE_RATE, codec.encode_rate)
            self._in_buf.clear()
            self._out_buf.clear()
        assert self.codec is not None
        self._in_frame = _frame_key(self.codec, self._in_rs,
                                    2 * self.codec.decode_rate * neg.ptime_ms // 1000)
        self._out_frame = _frame_key(self.codec, self._out_rs,
                                     2 * SAMPLE_RATE * neg.ptime_ms // 1000)
        self._packet_samples = self.codec.clock_rate * neg.ptime_ms // 1000  # RTP clock
        self.neg = neg
        self.ptime_s = neg.ptime_ms / 1000
        self._media_ref = asyncio.get_running_loop().time()

    def start(self) -> None:
        """Start sending (once: early media starts it before the answer does)."""
        if self._pacer is not None or self._closed:
            return
        loop = asyncio.get_running_loop()
        self.started_at = loop.time()
        self._next_rtcp = self.started_at + rtcp_delay(first=True)
        self._pacer = _pacer_for(loop)
        self._pacer.add(self, self.started_at)

    def close(self) -> None:
        if self._pacer is not None:
            self._pacer.remove(self)
        self._pacer, self._closed = None, True
        self._inbox.clear()
        for t in (self._rtp, self._rtcp):
            if t is not None:
                t.close()
        if self.port:
            self.ports.release(self.port)

    def relay_to(self, other: RtpEndpoint | None) -> None:
        """Send our peer's audio packets to ``other``'s peer as they arrive: no jitter
        buffer, no decoding (both sides agreed on ``other``'s codec and ptime; checked on
        every packet, so a re-INVITE that changes either goes back to decoding). None:
        decode again. Keys (RFC 4733) still arrive as events."""
        self._relay = other

    def _relays(self, neg: NegotiatedAudio) -> RtpEndpoint | None:
        other = self._relay
        if other is None or other.neg is None:
            return None
        if other.neg.codec.name != neg.codec.name or other.neg.ptime_ms != neg.ptime_ms:
            return None
        return other

    def send_relayed(self, pkt: RtpPacket, now: float) -> None:
        """One audio packet from the other side of a bridge, sent on as ours: our SSRC
        and sequence, its timestamps moved into our timeline (re-anchored, with the
        marker bit, when its source changes or our own packets filled a gap)."""
        neg = self.neg
        if neg is None or self._rtp is None or self.remote is None or not neg.we_send:
            return
        sender = self.sender
        anchor = (pkt.ssrc != self._relay_source or self._relayed_at is None
                  or now - self._relayed_at > RELAY_GAP_S)
        if anchor:
            self._relay_source = pkt.ssrc
            self._relay_offset = (sender.timestamp - pkt.timestamp) & 0xFFFFFFFF
        timestamp = (pkt.timestamp + self._relay_offset) & 0xFFFFFFFF
        out = RtpPacket(neg.codec.payload_type, sender.sequence, timestamp, sender.ssrc,
                        pkt.payload, pkt.marker or anchor)
        sender.sequence = (sender.sequence + 1) & 0xFFFF
        sender.timestamp = (timestamp + neg.codec.clock_rate * neg.ptime_ms // 1000) \
            & 0xFFFFFFFF
        sender.packets_sent += 1
        sender.octets_sent += len(pkt.payload)
        self._relayed_at = now
        self._rtp.sendto(self._protect(out.encode()), self.remote)

    def reset_outbound(self) -> None:
        """After a clear: drop what is inside the resampler so no tail leaks out."""
        self._out_rs.reset()
        self._out_buf.clear()
        self.sender.mark_talkspurt()

    # receive ----------------------------------------------------------------------------
    def _on_rtp(self, data: bytes, addr: Addr) -> None:
        if len(data) >= 12 and data[0] == 0x80 and self.srtp is None \
                and not 192 <= data[1] <= 223:
            # Nearly every packet: RTP 2 in the clear, no CSRC, extension or padding,
            # and not RTCP sharing the port (RFC 5761): read as it is, no object made.
            _, b1, seq, timestamp, ssrc = HEADER.unpack_from(data)
            pt, marker, payload = b1 & 0x7F, b1 > 0x7F, data[12:]
        else:
            if looks_like_rtcp(data):
                self._on_rtcp(data, addr)
                return
            if self.srtp is not None:
                clear = self.srtp.unprotect(data)
                if clear is None:
                    return  # forged, damaged or replayed: as if it never came
                data = clear
            try:
                pkt = RtpPacket.parse(data)
            except RtpError:
                return
            pt, seq, timestamp, ssrc = pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc
            marker, payload = pkt.marker, pkt.payload
        neg = self.neg
        if neg is None:
            return
        audio_pt = neg.codec.payload_type
        if pt != audio_pt and pt != neg.dtmf_payload_type and pt != 13:
            return
        loop = self._loop
        assert loop is not None  # the sockets that call this are opened with it
        now = loop.time()
        if addr != self.remote:
            if self.latched or addr[0] not in self.trusted_hosts:
                return
            log.debug("latching RTP to %s:%s (SDP said %s)", addr[0], addr[1], self.remote)
            self.remote = addr
            self.remote_rtcp = (addr[0], addr[1] + 1)
        if not self.latched:
            self.latched = True
            if self._rtp is not None:  # from now on only the peer's packets come in
                self._rtp.connect(addr)
        self.last_rtp_at = now
        self.packets_received += 1
        self.stats.update(ssrc, seq, timestamp, now)
        if pt != audio_pt:
            if pt != neg.dtmf_payload_type:
                return  # comfort noise
            if self.audio_ssrc is not None and ssrc != self.audio_ssrc:
                return  # key presses come in the caller's own audio stream (RFC 4733 §2.1)
            try:
                for ev in self.dtmf.on_packet(timestamp, payload):
                    self.on_dtmf(ev, now)
            except ValueError:
                pass
            return
        if ssrc != self.audio_ssrc:
            # A new source (or the first): its sequence numbers are its own (RFC 3550
            # §5.1), and one behind the old stream's would be taken for late ones.
            self.audio_ssrc = ssrc
            self.jitter.restart()
        if not neg.we_receive:
            return
        if self._relay is not None and (relay := self._relays(neg)) is not None:
            relay.send_relayed(RtpPacket(pt, seq, timestamp, ssrc, payload, marker), now)
            return
        if self.codec is None:
            return
        ready = self.jitter.push(seq, payload)
        if self._pacer is None:
            self._hear(ready, now)
            return
        # Decoded at the next tick (within 10 ms), with every other call's packets.
        if len(ready) == 1:  # the usual: one packet in, in order
            self._inbox.append((ready[0], None, now))
        else:
            for i, released in enumerate(ready):
                following = ready[i + 1] if i + 1 < len(ready) else None
                self._inbox.append((released, following, now))
        if ready:
            self._pacer.wake(self)

    def _hear(self, ready: list[bytes | None], now: float) -> None:
        """Decode what the jitter buffer released, one packet at a time."""
        for i, payload in enumerate(ready):
            following = ready[i + 1] if i + 1 < len(ready) else None
            self._hear_pcm(self._decode(payload, following), now)

    def _decode(self, payload: bytes | None, following: bytes | None) -> bytes:
        """One packet at the codec's rate; a lost one (None) is made up by the codec
        (Opus: from the FEC that the packet after it carries, when that one is here)."""
        codec, neg = self.codec, self.neg
        assert codec is not None and neg is not None
        if payload is None:
            return codec.conceal(following, codec.decode_rate * neg.ptime_ms // 1000)
        return codec.decode(payload)

    def _hear_pcm(self, pcm: bytes, arrived: float, resampled: bytes | None = None) -> None:
        """Hand the caller's audio on in 16 kHz frames (``resampled``: already done)."""
        if resampled is not None and len(resampled) == FRAME_BYTES and not self._in_buf:
            self.on_audio(resampled, self.heard_clock.stamp(arrived))  # a frame, as it is
            return
        self._in_buf += self._in_rs.process(pcm) if resampled is None else resampled
        while len(self._in_buf) >= FRAME_BYTES:
            frame = bytes(self._in_buf[:FRAME_BYTES])
            del self._in_buf[:FRAME_BYTES]
            self.on_audio(frame, self.heard_clock.stamp(arrived))

    def _inbox_key(self) -> tuple[object, ...] | None:
        """What the first packet waiting can be decoded and resampled together with: a
        G.711 packet of the agreed length (one octet a sample)."""
        payload = self._inbox[0][0]
        nbytes, key = self._in_frame
        if (key is None or payload is None or 2 * len(payload) != nbytes
                or not self._in_rs.on_boundary):
            return None
        return key

    def _on_rtcp(self, data: bytes, addr: Addr) -> None:
        if self.srtp is not None:
            clear = self.srtp.unprotect_rtcp(data)
            if clear is None:
                return
            data = clear
        try:
            reports = parse_compound(data)
        except ValueError:
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        for r in reports:
            self.rtcp.on_report(r, now)

    # send -------------------------------------------------------------------------------
    # The pacer calls send_slots (below) with every endpoint due in a tick; each one's
    # slot is: its audio (_slot_audio), made into a payload alone (_send_audio) or
    # with the other calls' (same rate and codec), sent (_send_payload), then RTCP.

    def _check_timeout(self, now: float) -> None:
        """A peer that vanished without a BYE must not keep a call alive forever. Only a
        sendrecv stream is expected to carry media; hold (sendonly/inactive) may be silent.
        Looked at every TIMEOUT_CHECK_S, not at every slot."""
        self._next_timeout_check = now + TIMEOUT_CHECK_S
        neg = self.neg
        if (self._timed_out or not self.rtp_timeout or neg is None
                or neg.direction != "sendrecv" or self.on_timeout is None):
            return
        last = max(self.last_rtp_at or 0.0, self._media_ref, self.started_at)
        if now - last > self.rtp_timeout:
            self._timed_out = True
            log.warning("no RTP for %.0f s: ending the call", now - last)
            self.on_timeout()

    def _slot_audio(self, now: float, slot: float) -> bytes | None:
        """The 16 kHz audio for the pacer's grid ``slot`` (earlier than ``now`` when the
        pacer catches up after a stall: the frame belongs there, in the recording too);
        b"" for silence, None when no packet goes out."""
        if now >= self._next_timeout_check:
            self._check_timeout(now)
        neg = self.neg
        if neg is None or self.codec is None or self._rtp is None or self.remote is None:
            return None
        if self._relayed_at is not None and now - self._relayed_at < RELAY_GAP_S:
            return None  # the other side of the bridge feeds this stream
        pcm16 = self.pull(self._out_frame[0], slot)
        if not neg.we_send:
            return None
        if pcm16 is None:
            self._out_rs.reset()  # silence: what the filter holds must not leak after it
            self._out_buf.clear()
            return b""
        return pcm16

    def _batch_key(self, pcm16: bytes) -> tuple[object, ...] | None:
        """What this slot's audio can be resampled and encoded together with, if
        anything: G.711, a whole frame, nothing left over from earlier frames."""
        nbytes, key = self._out_frame
        if (key is None or len(pcm16) != nbytes or self._out_buf
                or not self._out_rs.on_boundary):
            return None
        return key

    def _send_audio(self, pcm16: bytes, now: float) -> None:
        """Encode and send one slot's audio alone."""
        neg, codec = self.neg, self.codec
        assert neg is not None and codec is not None
        need = 2 * codec.encode_rate * neg.ptime_ms // 1000
        if not pcm16:
            chunk = bytes(need)  # silence, through the codec (it keeps its state)
        else:
            self._out_buf += self._out_rs.process(pcm16)
            if len(self._out_buf) < need:
                self._out_buf += bytes(need - len(self._out_buf))
            chunk = bytes(self._out_buf[:need])
            del self._out_buf[:need]
        self._send_payload(codec.encode(chunk), now)

    def _send_payload(self, payload: bytes, now: float) -> None:
        remote = self.remote
        assert self._rtp is not None and remote is not None  # (else no slot audio)
        data = self.sender.encoded(payload, self._packet_samples)
        self._rtp.sendto(data if self.srtp is None else self.srtp.protect(data), remote)
        if self.record_send_times:
            self.send_times.append(now)

    def _send_report(self, now: float) -> None:
        """This interval's RTCP report (at ``_next_rtcp``), and when the next is due."""
        self._next_rtcp = now + rtcp_delay(first=False)
        self._send_rtcp(now)

    def _send_rtcp(self, now: float) -> None:
        if self._rtcp is None or self.remote_rtcp is None:
            return
        data = self.rtcp.build(self.sender, self.stats, now, time.time(),
                               sent_anything=self.sender.packets_sent > 0)
        if self.srtp is not None:
            data = self.srtp.protect_rtcp(data)
        self._rtcp.sendto(data, self.remote_rtcp)

    def _protect(self, packet: bytes) -> bytes:
        return packet if self.srtp is None else self.srtp.protect(packet)

    @property
    def sends_dtmf(self) -> bool:
        """Whether the peer agreed to RFC 4733 events (telephone-event)."""
        return self.neg is not None and self.neg.dtmf_payload_type is not None

    def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """Send one RFC 4733 event immediately (the pacer keeps audio flowing)."""
        neg = self.neg
        if neg is None or neg.dtmf_payload_type is None or self._rtp is None or not self.remote:
            raise RuntimeError("the peer did not negotiate telephone-event")
        for payload, marker in dtmf_payloads(digit, duration_ms, clock_rate=neg.dtmf_clock):
            pkt = self.sender.packet(payload, 0, payload_type=neg.dtmf_payload_type,
                                     marker=marker, advance=False)
            self._rtp.sendto(self._protect(pkt.encode()), self.remote)
        # The audio goes on after the event: the stream's clock moved by its length.
        step = duration_ms * neg.codec.clock_rate // 1000
        self.sender.timestamp = (self.sender.timestamp + step) & 0xFFFFFFFF


def on_tick(due: list[tuple[RtpEndpoint, float]], woken: list[RtpEndpoint], now: float
            ) -> None:
    """One tick of the pacer: what every woken endpoint received is decoded, and every
    endpoint due sends its packet. Calls at the same rates with the same G.711 codec are
    decoded, resampled and encoded in one go (per call, numpy's overhead on a 20 ms
    frame is several times its arithmetic); a call's fault is logged and does not stop
    the others. Sending goes first: a packet held up by the decoding would stray from
    its grid, while what was heard only reaches the listener a few milliseconds later."""
    send_slots(due, now)
    hear_arrived(woken)


def hear_arrived(endpoints: list[RtpEndpoint]) -> None:
    """Decode the packets waiting in each endpoint, in rounds: each round takes every
    endpoint's oldest, so a stream's packets go through its resampler in order."""
    waiting = [ep for ep in endpoints if ep._inbox]
    while waiting:
        together: dict[tuple[object, ...], list[RtpEndpoint]] = {}
        for ep in waiting:
            try:
                key = ep._inbox_key()
                if key is None:
                    payload, following, arrived = ep._inbox.popleft()
                    ep._hear_pcm(ep._decode(payload, following), arrived)
                else:
                    if (members := together.get(key)) is None:
                        together[key] = [ep]
                    else:
                        members.append(ep)
            except Exception:
                log.exception("RTP receive failed")
                ep._inbox.clear()  # what it held is lost; the rounds must end
        for (_, codec_name), group in together.items():
            firsts = [ep._inbox.popleft() for ep in group]
            payloads = np.frombuffer(b"".join([f[0] or b"" for f in firsts]), dtype=np.uint8)
            pcm = g711.decode_rows(payloads.reshape(len(group), -1), str(codec_name))
            heard = StreamResampler.process_many([ep._in_rs for ep in group], pcm).tobytes()
            size = len(heard) // len(group)
            for i, (ep, first) in enumerate(zip(group, firsts, strict=True)):
                try:
                    ep._hear_pcm(b"", first[2], heard[i * size:(i + 1) * size])
                except Exception:
                    log.exception("RTP receive failed")
        waiting = [ep for ep in waiting if ep._inbox]


def send_slots(due: list[tuple[RtpEndpoint, float]], now: float) -> None:
    """The packet of every endpoint due, then its RTCP if it is time."""
    together: dict[tuple[object, ...], list[tuple[RtpEndpoint, bytes]]] = {}
    for ep, slot in due:
        try:
            pcm16 = ep._slot_audio(now, slot)
            if pcm16 is None:
                continue
            key = ep._batch_key(pcm16)
            if key is None:
                ep._send_audio(pcm16, now)
            else:
                if (slots := together.get(key)) is None:
                    together[key] = [(ep, pcm16)]
                else:
                    slots.append((ep, pcm16))
        except Exception:
            log.exception("RTP send failed")
    for (_, codec_name), group in together.items():
        pcm = np.frombuffer(b"".join([p for _, p in group]), dtype=np.int16)
        samples = StreamResampler.process_many([ep._out_rs for ep, _ in group],
                                               pcm.reshape(len(group), -1))
        payloads = g711.encode_rows(samples, str(codec_name)).tobytes()
        size = len(payloads) // len(group)  # (sliced from one bytes: no row objects)
        for i, (ep, _) in enumerate(group):
            try:
                ep._send_payload(payloads[i * size:(i + 1) * size], now)
            except Exception:
                log.exception("RTP send failed")
    for ep, _ in due:
        if now >= ep._next_rtcp:
            try:
                ep._send_report(now)
            except Exception:
                log.exception("RTCP send failed")


def _frame_key(codec: AudioCodec, rs: StreamResampler, nbytes: int
               ) -> tuple[int, tuple[object, ...] | None]:
    """``nbytes`` of 16-bit audio (one packet's) through ``rs``, and what it is
    resampled and coded with other calls' by: G.711 only, when the resampler can take
    it in a batch (None otherwise)."""
    key = rs.frame_key(nbytes) if isinstance(codec, G711) else None
    return nbytes, None if key is None else (key, codec.name)


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaPacer[RtpEndpoint]] = \
    weakref.WeakKeyDictionary()


def _pacer_for(loop: asyncio.AbstractEventLoop) -> MediaPacer[RtpEndpoint]:
    """The event loop's one pacer, made when its first call starts sending."""
    pacer = _PACERS.get(loop)
    if pacer is None:
        pacer = _PACERS[loop] = MediaPacer(loop, on_tick)
    return pacer
