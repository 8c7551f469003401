"""G.711 μ-law and A-law (ITU-T G.711), table driven with numpy.

Tables are built once at import from the standard segment formulas: decoding is a 256-entry
lookup and encoding a 65536-entry lookup indexed by the 16-bit sample.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BIAS = 0x84
_CLIP = 32635


def _ulaw_encode_one(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_one(code: int) -> int:
    code = ~code & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    sample = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -sample if sign else sample


def _alaw_encode_one(sample: int) -> int:
    sign = 0x00 if sample < 0 else 0x80
    if sample < 0:
        sample = -sample - 1 if sample > -32768 else 32767
    sample >>= 3  # A-law works on 13-bit magnitudes
    if sample < 32:
        code = sample >> 1
    else:
        exponent = sample.bit_length() - 5
        mantissa = (sample >> exponent) & 0x0F
        code = (exponent << 4) | mantissa
    return (code | sign) ^ 0x55


def _alaw_decode_one(code: int) -> int:
    code ^= 0x55
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    if exponent == 0:
        sample = (mantissa << 4) + 8
    else:
        sample = ((mantissa << 4) + 0x108) << (exponent - 1)
    return sample if sign else -sample


_ALL = range(-32768, 32768)
ULAW_ENC = np.array([_ulaw_encode_one(s) for s in _ALL], dtype=np.uint8)
ALAW_ENC = np.array([_alaw_encode_one(s) for s in _ALL], dtype=np.uint8)
ULAW_DEC = np.array([_ulaw_decode_one(c) for c in range(256)], dtype=np.int16)
ALAW_DEC = np.array([_alaw_decode_one(c) for c in range(256)], dtype=np.int16)

# The encoding tables indexed by the sample's 16 bits read unsigned (0..32767, then
# -32768..-1): a frame is looked up as it is, with no widening or offset first.
_ULAW_BY_BITS = np.concatenate([ULAW_ENC[32768:], ULAW_ENC[:32768]])
_ALAW_BY_BITS = np.concatenate([ALAW_ENC[32768:], ALAW_ENC[:32768]])

Pcm = npt.NDArray[np.int16]


def encode(pcm: Pcm, codec: str) -> bytes:
    return bytes(encode_rows(pcm, codec))


def decode(payload: bytes, codec: str) -> Pcm:
    return decode_rows(np.frombuffer(payload, dtype=np.uint8), codec)


def encode_rows(pcm: npt.NDArray[np.int16], codec: str) -> npt.NDArray[np.uint8]:
    """``encode`` for many frames at once: one row each. (``take``, not
    ``table[indices]``: the same lookup, three times quicker on 20 ms frames.)"""
    table = _ULAW_BY_BITS if codec == "PCMU" else _ALAW_BY_BITS
    bits = np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)
    rows: npt.NDArray[np.uint8] = table.take(bits)  # (the method: no Python wrapper)
    return rows


def decode_rows(payloads: npt.NDArray[np.uint8], codec: str) -> Pcm:
    """``decode`` for many packets of one size at once: one row each."""
    table = ULAW_DEC if codec == "PCMU" else ALAW_DEC
    rows: Pcm = table.take(payloads)
    return rows
