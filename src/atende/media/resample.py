"""Sample-rate conversion: streaming at the channel edges (our own polyphase filter, about a
millisecond of delay) and one-shot for whole buffers (soxr).

Why not soxr for streams too: fed 20 ms frames, its streaming mode holds audio back and
releases it in bursts (at 16↔8 kHz in its HQ setting, nothing for five frames, then 110 ms
at once), which added ~90 ms to every call's audio each way and left a backlog that a
barge-in then threw away unheard. Telephony needs neither its steepness nor its latency."""

from __future__ import annotations

from functools import lru_cache
from math import gcd
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

TAPS_PER_PHASE = 24  # stop band about -70 dB; delay ~TAPS/2 input samples (1.5 ms at 8 kHz)


def _lowpass(length: int, cutoff: float, gain: float) -> npt.NDArray[np.float64]:
    """A Kaiser-windowed sinc: ``cutoff`` in cycles per sample (0.5 is Nyquist)."""
    k = np.arange(length) - (length - 1) / 2
    return np.asarray(gain * 2 * cutoff * np.sinc(2 * cutoff * k) * np.kaiser(length, 8.0),
                      dtype=np.float64)


@lru_cache(maxsize=32)
def _polyphase(up: int, down: int) -> npt.NDArray[np.float64]:
    """The filter for L/M = ``up``/``down``, one row per phase: the taps that meet input
    samples at upsampled offset p. Made once per ratio (every call needs the same few, and
    a Kaiser window of thousands of taps costs more than a call's setup), never written."""
    # Pass band to 0.92 of the lower Nyquist: the transition band sits above speech.
    h = _lowpass(TAPS_PER_PHASE * up, 0.46 / max(up, down), float(up))
    phases = np.stack([h[p::up] for p in range(up)])
    phases.setflags(write=False)
    return phases


# Frames whose whole filter, as one matrix, is at most this many entries are resampled
# for many calls in one product (20 ms at 8 ↔ 16 kHz: 343 × 160 and 183 × 320).
MAX_FRAME_MAP = 120_000


@lru_cache(maxsize=16)
def _frame_map(up: int, down: int, n_in: int) -> npt.NDArray[np.float64]:
    """The filter as a matrix for one frame of ``n_in`` samples that starts on an output
    (the history's taps - 1 samples, then the frame, times this = the frame's output)."""
    reversed_ = _polyphase(up, down)[:, ::-1]
    taps = reversed_.shape[1]
    u = np.arange(0, n_in * up, down)
    m = np.zeros((taps - 1 + n_in, len(u)))
    for j, (q, p) in enumerate(zip(u // up, u % up, strict=True)):
        m[q:q + taps, j] = reversed_[p]
    m.setflags(write=False)
    return m


# Outputs per block of the banded product (below): fewer means less of the band's zeros
# multiplied, more means fewer products; 32 was the quickest at 8 <-> 16 kHz.
BLOCK_OUTPUTS = 32

Block = tuple[int, int, int, int, npt.NDArray[np.float32]]


@lru_cache(maxsize=16)
def _frame_blocks(up: int, down: int, n_in: int) -> tuple[Block, ...]:
    """``_frame_map`` cut into blocks of output columns, each with only the input rows
    its band touches: (first row, end row, first output, end output, matrix). The map
    is a band (an output sees just its taps), so most of it is zeros; at 8 <-> 16 kHz
    the blocks hold a fifth of it. In float32: rounding to int16 hides the difference,
    and the products take half the time."""
    m = _frame_map(up, down, n_in)
    blocks = []
    for start in range(0, m.shape[1], BLOCK_OUTPUTS):
        stop = min(start + BLOCK_OUTPUTS, m.shape[1])
        rows = np.flatnonzero(np.any(m[:, start:stop] != 0, axis=1))
        first, end = int(rows[0]), int(rows[-1]) + 1
        part = np.ascontiguousarray(m[first:end, start:stop], dtype=np.float32)
        part.setflags(write=False)
        blocks.append((first, end, start, stop, part))
    return tuple(blocks)


def _to_int16(y: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int16]:
    """``y`` rounded to the nearest 16-bit sample (clipped first: the bounds are whole,
    so the rounding lands in range, and is written as int16 in the same pass)."""
    np.clip(y, -32768, 32767, out=y)
    out = np.empty(y.shape, dtype=np.int16)
    np.rint(y, out=out, casting="unsafe")
    return out


class StreamResampler:
    """int16 mono PCM bytes in at one rate, out at another (rational ratio L/M), keeping
    the filter's state across chunks so 20 ms frames join without clicks. Every frame gives
    its exact share of output at once: 20 ms in, 20 ms out."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        g = gcd(in_rate, out_rate)
        self._up, self._down = out_rate // g, in_rate // g
        self._phases = _polyphase(self._up, self._down)
        self._taps = self._phases.shape[1]
        self.reset()

    def reset(self) -> None:
        """Start afresh (after a clear: nothing of the old audio may leak out)."""
        # The last taps - 1 samples of input, as int16 bytes: a batch joins every
        # stream's history and chunk in one go (per-stream arrays cost more than the sums)
        self._history = bytes(2 * (self._taps - 1))
        self._next = 0  # upsampled index of the next output, from the history's end

    def process(self, pcm: bytes) -> bytes:
        if self._up == self._down:
            return pcm
        joined = self._history + pcm
        x = np.frombuffer(joined, dtype=np.int16).astype(np.float64)
        n_new = len(x) - (self._taps - 1)
        if self._up == 1:  # decimation (16 → 8 kHz): one phase, every M-th position
            y = np.convolve(x, self._phases[0], mode="valid")[self._next::self._down]
            last = self._next + (len(y) - 1) * self._down
        elif self._down == 1:  # interpolation (8 → 16 kHz): the phases side by side
            y = np.column_stack([np.convolve(x, ph, mode="valid") for ph in self._phases]
                                ).ravel()[self._next:]
            last = n_new * self._up - 1
        else:
            y, last = self._any_ratio(x, n_new)
        self._next = last + self._down - n_new * self._up if len(y) else \
            self._next - n_new * self._up
        self._history = joined[len(joined) - len(self._history):]
        return _to_int16(y).tobytes()

    def frame_key(self, nbytes: int) -> tuple[int, int, int] | None:
        """What a chunk of ``nbytes`` is resampled with in a batch whenever the stream
        is ``on_boundary``, or None if never: a short filter map, and the chunk giving
        whole outputs, so the stream is on a boundary after it too (every 20 ms frame
        at 8 ↔ 16 kHz does)."""
        n = nbytes // 2
        if (self._up == self._down or (n * self._up) % self._down
                or (self._taps - 1 + n) * (n * self._up // self._down) > MAX_FRAME_MAP):
            return None
        return self._up, self._down, n

    @property
    def on_boundary(self) -> bool:
        """Whether the next output falls at the start of the next chunk (what a batch
        assumes); true until a chunk of an odd length moves it."""
        return self._next == 0

    @staticmethod
    def process_many(streams: list[StreamResampler], x: npt.NDArray[np.int16]
                     ) -> npt.NDArray[np.int16]:
        """``process`` for many streams with the same ``frame_key``, each
        ``on_boundary``, in one matrix product: row i of ``x`` is stream i's chunk, row i
        of the result its output. Equal to ``process`` to within rounding."""
        first = streams[0]
        n = x.shape[1]
        keep = first._taps - 1
        history = np.frombuffer(b"".join([rs._history for rs in streams]), dtype=np.int16)
        full = np.concatenate((history.reshape(len(streams), keep), x), axis=1,
                              dtype=np.float32)
        blocks = _frame_blocks(first._up, first._down, n)
        y = np.empty((len(streams), blocks[-1][3]), dtype=np.float32)
        for lo, hi, start, stop, part in blocks:
            np.matmul(full[:, lo:hi], part, out=y[:, start:stop])
        # Each stream keeps its last taps - 1 samples, sliced from one bytes (the
        # stream stays on an output boundary: _next 0).
        tail = full[:, n:].astype(np.int16).tobytes()
        w = 2 * keep
        for i, rs in enumerate(streams):
            rs._history = tail[i * w:(i + 1) * w]
        return _to_int16(y)

    def _any_ratio(self, x: npt.NDArray[np.float64], n_new: int
                   ) -> tuple[npt.NDArray[np.float64], int]:
        """Outputs for L/M in general, and the upsampled index of the last one."""
        u = np.arange(self._next, n_new * self._up, self._down)
        # Output j sits at upsampled index u: phase u % L of the filter over the input up to
        # q = u // L (x holds the taps - 1 samples before the chunk, so "valid" convolution
        # index q is exactly that). Each phase is one convolution in C, read at its q.
        q, phase = u // self._up, u % self._up
        y = np.empty(len(u))
        for p in range(self._up):
            at = phase == p
            if at.any():
                y[at] = np.convolve(x, self._phases[p], mode="valid")[q[at]]
        return y, int(u[-1]) if len(u) else self._next

    def flush(self) -> bytes:
        """The end of a stretch of audio (what the filter's delay still holds); the
        stream starts afresh after it."""
        if self._up == self._down:
            return b""
        tail = self.process(bytes(2 * (self._taps // 2 + 1)))
        self.reset()
        return tail


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """One-shot conversion of a whole buffer (synthesised speech, test audio)."""
    if in_rate == out_rate:
        return pcm
    out = soxr.resample(np.frombuffer(pcm, dtype=np.int16), in_rate, out_rate, quality="HQ")
    return bytes(np.asarray(out, dtype=np.int16).tobytes())
