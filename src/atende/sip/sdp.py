"""SDP (RFC 4566) parsing and the answerer's side of offer/answer (RFC 3264) for audio."""

from __future__ import annotations

import base64
import ipaddress
import time
from dataclasses import dataclass, field
from functools import cached_property

from atende.sip.grammar import is_digits

# Static payload types we can speak (RFC 3551), and the names for dynamic ones.
STATIC_PT = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}
SUPPORTED_CODECS = ("PCMU", "PCMA", "G722", "OPUS")
# Taken first when offered (in the offer's order): G.711 costs the least to carry, and
# the phone network and speech vendors speak it. The others only when it is not offered.
PREFERRED_CODECS = ("PCMU", "PCMA")
CLOCK_RATES = {"PCMU": 8000, "PCMA": 8000, "G722": 8000, "OPUS": 48000}
OPUS_PT = 111  # our dynamic payload type for Opus in our offers
EVENT_PT, WIDE_EVENT_PT = 101, 110  # telephone-event at 8 kHz, and at Opus's 48 kHz
# What we offer: G.711 only for atende's own calls (what it has always offered); every
# codec for a bridge leg, whose far side may speak none of the caller's.
G711_ONLY = ("PCMU", "PCMA")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
PROTOCOLS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
SECURE_PROTOCOLS = ("RTP/SAVP", "RTP/SAVPF")
MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
          "inactive": "inactive"}


class SdpError(ValueError):
    """An SDP body atende cannot use."""

    pass


@dataclass
class MediaDescription:
    """One m= section of an SDP body with its attributes."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attr(self, name: str) -> str | None:
        for k, v in self.attributes:
            if k == name:
                return v
        return None

    def attrs(self, name: str) -> list[str]:
        return [v or "" for k, v in self.attributes if k == name]

    def direction(self, session_default: str) -> str:
        for k, _ in self.attributes:
            if k in DIRECTIONS:
                return k
        return session_default

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        out: dict[int, tuple[str, int]] = {}
        for v in self.attrs("rtpmap"):
            pt_s, _, enc = v.partition(" ")
            name, _, rest = enc.partition("/")
            rate_s = rest.split("/")[0]
            if is_digits(pt_s) and is_digits(rate_s):
                out[int(pt_s)] = (name.upper(), int(rate_s))
        return out


@dataclass
class SessionDescription:
    """An SDP body (RFC 4566) as far as atende reads it."""

    origin: str
    connection: str | None
    media: list[MediaDescription]
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def direction(self) -> str:
        for k, _ in self.attributes:
            if k in DIRECTIONS:
                return k
        return "sendrecv"


def parse_sdp(body: bytes) -> SessionDescription:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    origin = ""
    conn: str | None = None
    media: list[MediaDescription] = []
    sess_attrs: list[tuple[str, str | None]] = []
    seen_v = False
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line {line[:30]!r}")
        kind, value = line[0], line[2:]
        if kind == "v":
            seen_v = True
            if value != "0":
                raise SdpError("unsupported SDP version")
        elif kind == "o":
            origin = value
        elif kind == "c":
            parts = value.split()
            if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
                raise SdpError(f"bad connection line {value!r}")
            addr = parts[2].split("/")[0]
            if not _is_address(addr, parts[1]):
                # We send media to it: a name would be resolved, a wrong one dialled.
                raise SdpError(f"connection address is not an {parts[1]} address: "
                               f"{addr[:40]!r}")
            if media:
                media[-1].connection = addr
            else:
                conn = addr
        elif kind == "m":
            parts = value.split()
            port_s = parts[1].split("/")[0] if len(parts) >= 4 else ""
            if not is_digits(port_s) or int(port_s) > 65535:
                raise SdpError(f"bad media line {value[:60]!r}")
            media.append(MediaDescription(parts[0], int(parts[1].split("/")[0]), parts[2],
                                          parts[3:]))
        elif kind == "a":
            name, sep, v = value.partition(":")
            attr = (name, v if sep else None)
            (media[-1].attributes if media else sess_attrs).append(attr)
    if not seen_v or not origin:
        raise SdpError("SDP lacks v= or o=")
    return SessionDescription(origin, conn, media, sess_attrs)


def _is_address(text: str, kind: str) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return addr.version == (4 if kind == "IP4" else 6)


@dataclass(frozen=True)
class Codec:
    """An audio codec by name, payload type and clock rate."""

    name: str  # PCMU, PCMA, G722 or OPUS
    payload_type: int
    clock_rate: int = 8000

    @property
    def rtpmap(self) -> str:
        """Its a=rtpmap value (Opus is always named two-channel, RFC 7587 §7)."""
        if self.name == "OPUS":
            return f"{self.payload_type} opus/48000/2"
        return f"{self.payload_type} {self.name}/{self.clock_rate}"

    @property
    def fmtp(self) -> str | None:
        """What we ask of its stream (Opus: in-band FEC in what we receive, mono)."""
        if self.name == "OPUS":
            return f"{self.payload_type} useinbandfec=1;stereo=0;sprop-stereo=0"
        return None


# SDES crypto suites (RFC 4568 §6.2) we take: 128-bit AES counter mode, 80- or 32-bit tags.
CRYPTO_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
SRTP_KEY_BYTES = 30  # master key (16) and salt (14)


@dataclass(frozen=True)
class Crypto:
    """SRTP keys for one stream (SDES): the suite, the tag of the offer's a=crypto line
    we took, the key the other side sends with, and ours."""

    tag: str
    suite: str
    theirs: bytes = field(repr=False)
    ours: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class NegotiatedAudio:
    """What both sides agreed on for the audio stream."""

    codec: Codec
    remote_host: str
    remote_port: int
    dtmf_payload_type: int | None
    ptime_ms: int
    direction: str  # our direction (the answer's), e.g. recvonly when the peer holds us
    crypto: Crypto | None = None  # SRTP (RTP/SAVP with SDES), else plain RTP
    dtmf_clock: int = 8000  # telephone-event's RTP clock: the audio's (RFC 4733 §2.1)

    # Read for every packet of a call: worked out once (a cached property's value sits
    # in the instance's dict, which a frozen dataclass allows).
    @cached_property
    def we_send(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @cached_property
    def we_receive(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


class NoCommonCodec(SdpError):
    """An offer without a codec atende speaks."""

    pass


@dataclass(frozen=True)
class Offer:
    """An offer read and found answerable: the description, and which of its streams we
    take and how (``negotiate``'s result, worked out once)."""

    sdp: SessionDescription
    index: int
    audio: NegotiatedAudio

    @classmethod
    def of(cls, sdp: SessionDescription) -> Offer:
        """``sdp`` negotiated (NoCommonCodec, SdpError as ``negotiate`` raises them)."""
        index, audio = negotiate(sdp)
        return cls(sdp, index, audio)


def offered_crypto(m: MediaDescription) -> Crypto | None:
    """The first a=crypto line of ``m`` with a suite we take and a usable inline key
    (RFC 4568 §9.1: ``tag suite inline:key[|lifetime][|mki:len]``); a line with an MKI or
    a session parameter is passed over, as §6.1 lets an answerer."""
    for value in m.attrs("crypto"):
        parts = value.split()
        if len(parts) != 3 or parts[1] not in CRYPTO_SUITES:
            continue
        tag, suite, params = parts
        if not is_digits(tag) or len(tag) > 9 or not params.startswith("inline:"):
            continue
        key_b64, *rest = params[7:].split("|")
        if any(":" in r for r in rest):
            continue  # an MKI: every packet would carry it; we do not
        try:
            key = base64.b64decode(key_b64, validate=True)
        except ValueError:
            continue
        if len(key) == SRTP_KEY_BYTES:
            return Crypto(tag, suite, key)
    return None


def negotiate(offer: SessionDescription, supported: tuple[str, ...] = SUPPORTED_CODECS
              ) -> tuple[int, NegotiatedAudio]:
    """Pick the first audio stream we can serve; returns (m-line index, result). Its
    codec: the first offered of PREFERRED_CODECS, else the first offered we speak.
    Raises NoCommonCodec (answer 488) when no audio stream has a codec we speak."""
    for idx, m in enumerate(offer.media):
        proto = m.proto.upper()
        if m.media != "audio" or m.port == 0 or proto not in PROTOCOLS:
            continue
        crypto = offered_crypto(m) if proto in SECURE_PROTOCOLS else None
        if proto in SECURE_PROTOCOLS and crypto is None:
            continue  # SRTP with keys we cannot use (or exchanged some other way: DTLS)
        rtpmap = m.rtpmap()
        offered: list[Codec] = []
        events: dict[int, int] = {}  # telephone-event: its clock rate → the first such PT
        for fmt in m.formats:
            if not is_digits(fmt) or int(fmt) > 127:  # RTP has seven bits for it
                continue
            pt = int(fmt)
            name, rate = rtpmap.get(pt, STATIC_PT.get(pt, ("", 0)))
            if name == "TELEPHONE-EVENT" and rate in (8000, 48000):
                events.setdefault(rate, pt)
            elif name in supported and rate == CLOCK_RATES[name]:
                offered.append(Codec(name, pt, rate))
        if not offered:
            continue
        codec = next((c for c in offered if c.name in PREFERRED_CODECS), offered[0])
        # Events on the audio's own clock; else the 8 kHz kind, as peers commonly pair it
        # with any codec.
        dtmf_clock = codec.clock_rate if codec.clock_rate in events else 8000
        dtmf = events.get(dtmf_clock)
        host = m.connection or offer.connection
        if not host:
            raise SdpError("no connection address for the audio stream")
        ptime_s = m.attr("ptime")
        ptime = int(ptime_s) if ptime_s and is_digits(ptime_s) else 20
        ptime = min(max(10, ptime - ptime % 10), 60)
        direction = MIRROR[m.direction(offer.direction)]
        if host in ("0.0.0.0", "::"):
            # RFC 2543-style hold: treat as the peer not wanting our audio.
            direction = "recvonly" if direction == "sendrecv" else "inactive"
        return idx, NegotiatedAudio(codec, host, m.port, dtmf, ptime, direction, crypto,
                                    dtmf_clock)
    raise NoCommonCodec("no common audio codec")


def build_answer(offer: SessionDescription, chosen_index: int, neg: NegotiatedAudio,
                 local_ip: str, local_port: int, session_id: int, version: int) -> bytes:
    """Our answer: one m-line per offered stream (RFC 3264 §6), non-chosen ones rejected."""
    ip_ver = "IP6" if ":" in local_ip else "IP4"
    lines = [
        "v=0",
        f"o=atende {session_id} {version} IN {ip_ver} {local_ip}",
        "s=atende",
        f"c=IN {ip_ver} {local_ip}",
        "t=0 0",
    ]
    for idx, m in enumerate(offer.media):
        if idx != chosen_index:
            lines.append(f"m={m.media} 0 {m.proto} {m.formats[0] if m.formats else '0'}")
            continue
        fmts = [str(neg.codec.payload_type)]
        if neg.dtmf_payload_type is not None:
            fmts.append(str(neg.dtmf_payload_type))
        lines.append(f"m=audio {local_port} {m.proto} {' '.join(fmts)}")
        lines.append(f"a=rtpmap:{neg.codec.rtpmap}")
        if neg.codec.fmtp:
            lines.append(f"a=fmtp:{neg.codec.fmtp}")
        if neg.dtmf_payload_type is not None:
            lines.append(f"a=rtpmap:{neg.dtmf_payload_type} telephone-event/{neg.dtmf_clock}")
            lines.append(f"a=fmtp:{neg.dtmf_payload_type} 0-16")
        if neg.crypto is not None:
            lines.append(_crypto_line(neg.crypto.tag, neg.crypto.suite, neg.crypto.ours))
        lines.append(f"a=ptime:{neg.ptime_ms}")
        lines.append(f"a={neg.direction}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _crypto_line(tag: str, suite: str, key: bytes) -> str:
    return f"a=crypto:{tag} {suite} inline:{base64.b64encode(key).decode()}"


def build_offer(local_ip: str, local_port: int, session_id: int, version: int,
                direction: str = "sendrecv", codecs: tuple[str, ...] = G711_ONLY,
                crypto: Crypto | None = None) -> bytes:
    """Our offer of ``codecs`` (in that order of preference) and RFC 4733 events; with
    ``crypto``, as SRTP (RTP/SAVP) with our key in its suite (a call's re-INVITE keeps
    the SRTP it has)."""
    ip_ver = "IP6" if ":" in local_ip else "IP4"
    offered = [Codec(name, OPUS_PT if name == "OPUS" else _static_pt(name),
                     CLOCK_RATES[name]) for name in codecs]
    lines = [
        "v=0",
        f"o=atende {session_id} {version} IN {ip_ver} {local_ip}",
        "s=atende",
        f"c=IN {ip_ver} {local_ip}",
        "t=0 0",
        f"m=audio {local_port} {'RTP/SAVP' if crypto else 'RTP/AVP'} "
        + " ".join(str(c.payload_type) for c in offered) + f" {EVENT_PT}"
        + (f" {WIDE_EVENT_PT}" if "OPUS" in codecs else ""),
    ]
    if crypto is not None:
        lines.append(_crypto_line("1", crypto.suite, crypto.ours))
    for c in offered:
        lines.append(f"a=rtpmap:{c.rtpmap}")
        if c.fmtp:
            lines.append(f"a=fmtp:{c.fmtp}")
    lines += [f"a=rtpmap:{EVENT_PT} telephone-event/8000", f"a=fmtp:{EVENT_PT} 0-16"]
    if "OPUS" in codecs:
        lines += [f"a=rtpmap:{WIDE_EVENT_PT} telephone-event/48000",
                  f"a=fmtp:{WIDE_EVENT_PT} 0-16"]
    lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _static_pt(name: str) -> int:
    return next(pt for pt, (n, _) in STATIC_PT.items() if n == name)


def new_session_id() -> int:
    return int(time.time() * 1000) & 0x7FFFFFFF
