"""The audio codecs on the wire, one object per call and direction: G.711 (μ-law and
A-law, our own tables), G.722 (FFmpeg's, in PyAV) and Opus (libopus: PyAV encodes, and
decodes through ctypes, since only libopus's own call recovers a lost packet from the
next one's in-band FEC). Each turns one packet's payload into PCM and PCM into one
packet's payload, and stands in for a lost packet; the RTP endpoint resamples between a
codec's rate and atende's 16 kHz.

RTP clock rates are not always the audio's: G.722 is 16 kHz audio on an 8 kHz RTP clock
(RFC 3551 §4.5.2), Opus always counts 48 kHz (RFC 7587 §4.1) whatever it codes."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any, Literal, Protocol, cast

import av
import numpy as np

from atende.media import g711

log = logging.getLogger(__name__)


class AudioCodec(Protocol):
    """One direction's codec state for one call."""

    name: str
    decode_rate: int  # the PCM rate ``decode`` gives
    encode_rate: int  # the PCM rate ``encode`` takes
    clock_rate: int  # RTP timestamp units per second

    def decode(self, payload: bytes) -> bytes:
        """One packet's payload → 16-bit PCM at ``decode_rate`` (b"" if unusable)."""
        ...

    def encode(self, pcm: bytes) -> bytes:
        """One ptime of 16-bit PCM at ``encode_rate`` → one packet's payload."""
        ...

    def conceal(self, following: bytes | None, samples: int) -> bytes:
        """``samples`` of PCM at ``decode_rate`` standing in for a lost packet;
        ``following``: the payload of the packet after it, when it has come."""
        ...


def _silence(samples: int) -> bytes:
    return bytes(2 * samples)


class G711:
    """μ-law (PCMU) or A-law (PCMA): a byte per sample, 8 kHz."""

    decode_rate = 8000
    encode_rate = 8000
    clock_rate = 8000

    def __init__(self, name: str) -> None:
        self.name = name

    def decode(self, payload: bytes) -> bytes:
        return bytes(g711.decode(payload, self.name).tobytes())

    def encode(self, pcm: bytes) -> bytes:
        return g711.encode(np.frombuffer(pcm, dtype=np.int16), self.name)

    def conceal(self, following: bytes | None, samples: int) -> bytes:
        return _silence(samples)


class _Av:
    """A PyAV (FFmpeg) codec context, opened for one direction."""

    def __init__(self, codec: str, mode: Literal["r", "w"], rate: int, **options: str
                 ) -> None:
        self.ctx: Any = cast(Any, av.CodecContext.create(codec, mode))
        self.ctx.sample_rate = rate
        self.ctx.layout = "mono"
        if mode == "w":
            self.ctx.format = "s16"
        if options:
            self.ctx.options = options
        self.rate = rate
        self._pts = 0

    def decode(self, payload: bytes) -> bytes:
        try:
            frames = self.ctx.decode(av.Packet(payload))
        except av.FFmpegError:
            return b""  # a damaged packet: the jitter buffer's silence stands for it
        out = bytearray()
        for frame in frames:
            samples = frame.to_ndarray()
            if samples.dtype != np.int16:  # a float decoder: to 16 bits
                samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
            out += samples.reshape(-1)[: frame.samples].tobytes()
        return bytes(out)

    def encode(self, pcm: bytes) -> bytes:
        samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        return b"".join([bytes(p) for p in self.ctx.encode(frame)])


class G722:
    """G.722: 16 kHz audio in 64 kbit/s, counted on an 8 kHz RTP clock."""

    name = "G722"
    decode_rate = 16000
    encode_rate = 16000
    clock_rate = 8000

    def __init__(self) -> None:
        self._dec = _Av("g722", "r", 16000)
        self._enc = _Av("g722", "w", 16000)

    def decode(self, payload: bytes) -> bytes:
        return self._dec.decode(payload)

    def encode(self, pcm: bytes) -> bytes:
        return self._enc.encode(pcm)

    def conceal(self, following: bytes | None, samples: int) -> bytes:
        return _silence(samples)


def _libopus() -> Any:
    """The system's libopus (Debian's libopus0), or None without it."""
    name = ctypes.util.find_library("opus") or "libopus.so.0"
    try:
        lib: Any = ctypes.CDLL(name)
    except OSError:
        log.warning("libopus not found: Opus is decoded without recovering lost packets")
        return None
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_int)]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                ctypes.POINTER(ctypes.c_int16), ctypes.c_int, ctypes.c_int]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decoder_destroy.restype = None
    return lib


_LIB: list[Any] = []  # loaded once, on the first Opus call


class OpusDecoder:
    """libopus's decoder, mono at 48 kHz: packets, and losses concealed from the next
    packet's in-band FEC (RFC 6716 §2.1.7) or, without one, by its loss concealment."""

    MAX_SAMPLES = 5760  # 120 ms at 48 kHz, the longest Opus packet

    def __init__(self) -> None:
        if not _LIB:
            _LIB.append(_libopus())
        self._lib = _LIB[0]
        if self._lib is None:
            raise OSError("libopus is not available")
        err = ctypes.c_int(0)
        self._st = self._lib.opus_decoder_create(48000, 1, ctypes.byref(err))
        if err.value != 0 or not self._st:
            raise OSError(f"opus_decoder_create failed ({err.value})")
        self._pcm = (ctypes.c_int16 * self.MAX_SAMPLES)()
        self.recovered = 0  # losses made good from FEC

    def _decode(self, data: bytes | None, samples: int, fec: bool) -> bytes:
        n = self._lib.opus_decode(self._st, data, len(data) if data else 0, self._pcm,
                                  samples, 1 if fec else 0)
        if n < 0:
            return b""  # a damaged packet: the caller's silence stands for it
        return ctypes.string_at(self._pcm, 2 * n)

    def decode(self, payload: bytes) -> bytes:
        return self._decode(payload, self.MAX_SAMPLES, fec=False)

    def conceal(self, following: bytes | None, samples: int) -> bytes:
        samples = min(samples, self.MAX_SAMPLES)
        if following:
            pcm = self._decode(following, samples, fec=True)
            if len(pcm) == 2 * samples:
                self.recovered += 1
                return pcm
        return self._decode(None, samples, fec=False) or _silence(samples)

    def __del__(self) -> None:
        st, self._st = getattr(self, "_st", None), None
        if st and self._lib is not None:
            self._lib.opus_decoder_destroy(st)


class Opus:
    """Opus, voice mode: decoded at 48 kHz, encoded from 16 kHz (wideband), mono, with
    in-band FEC in what we send so a peer can recover a lost packet."""

    name = "OPUS"
    decode_rate = 48000
    encode_rate = 16000
    clock_rate = 48000

    def __init__(self, ptime_ms: int = 20) -> None:
        self._dec: OpusDecoder | _Av
        try:
            self._dec = OpusDecoder()
        except OSError:
            self._dec = _Av("libopus", "r", 48000)
        self._enc = _Av("libopus", "w", 16000, application="voip",
                        frame_duration=str(ptime_ms), fec="1", packet_loss="5")
        self._enc.ctx.bit_rate = 24000

    def decode(self, payload: bytes) -> bytes:
        return self._dec.decode(payload)

    def encode(self, pcm: bytes) -> bytes:
        return self._enc.encode(pcm)

    def conceal(self, following: bytes | None, samples: int) -> bytes:
        if isinstance(self._dec, OpusDecoder):
            return self._dec.conceal(following, samples)
        return _silence(samples)

    @property
    def recovered(self) -> int:
        """Lost packets made good from FEC so far."""
        return self._dec.recovered if isinstance(self._dec, OpusDecoder) else 0


def codec_for(name: str, ptime_ms: int = 20) -> AudioCodec:
    """A fresh codec state for ``name`` (as SDP names it, upper case)."""
    if name in ("PCMU", "PCMA"):
        return G711(name)
    if name == "G722":
        return G722()
    if name == "OPUS":
        return Opus(ptime_ms)
    raise ValueError(f"no codec {name!r}")
