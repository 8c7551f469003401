"""What the caller hears on a FreeSWITCH call, and when: sans-IO (time in, actions out).

mod_audio_stream cannot take a stream of audio to play: each reply is sent as one
``streamAudio`` message, which FreeSWITCH writes to a file, and atende has it played with
``playback``. So the assistant's audio is shipped in pieces, each a file: the first at once
(it starts the reply), the rest gathered while FreeSWITCH plays and shipped before what it
has queued runs out (``lead_s``) — queued playbacks follow one another without a gap.

What was heard is told from FreeSWITCH's own events (a piece's playback starting and
ending), not from what was shipped: the agent learns when each marked segment began and
ended for the caller, and how much of it was heard when the caller cut in (the playback is
stopped with ``uuid_break … all``, which also drops the pieces queued behind it)."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from atende.channels.leg import PlayoutDone, PlayoutStarted
from atende.media.audio import SAMPLE_RATE

BYTES_PER_S = SAMPLE_RATE * 2


@dataclass
class Piece:
    """Audio shipped as one file. ``start``: where it begins in all the call's output."""

    id: str
    pcm: bytes
    start: int
    started_at: float | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.pcm)

    def time_of(self, pos: int) -> float:
        assert self.started_at is not None
        return self.started_at + (pos - self.start) / BYTES_PER_S


@dataclass(frozen=True)
class Ship:
    """Send this piece to FreeSWITCH (``streamAudio``)."""

    piece: Piece


@dataclass(frozen=True)
class Break:
    """Stop what FreeSWITCH plays and drop what it has queued (``uuid_break … all``)."""


@dataclass(frozen=True)
class Heard:
    """This audio reached the caller from ``at`` on (for the call's recording)."""

    pcm: bytes
    at: float


@dataclass(frozen=True)
class Stalled:
    """FreeSWITCH never began playing this piece (its file was not written or played): the
    reply was dropped as if cut, so that the call goes on."""

    piece_id: str
    waited_s: float


Action = Ship | Break | Heard | Stalled | PlayoutStarted | PlayoutDone


@dataclass
class _Run:
    """A marked segment of the output not yet all heard."""

    mark: str | None
    nbytes: int
    open: bool  # more of it may come
    heard: int = 0
    started: bool = False


class Playout:
    """The assistant's audio on one FreeSWITCH call, from ``play`` to heard."""

    def __init__(self, lead_s: float = 0.3, max_piece_s: float = 1.0,
                 prefix: str = "atende", stall_s: float = 3.0) -> None:
        self.lead = int(lead_s * BYTES_PER_S) & ~1
        self.max_piece = int(max_piece_s * BYTES_PER_S) & ~1
        self.stall_s = stall_s
        self._waiting_since: float | None = None  # the next piece is due to start since
        self._ids = (f"{prefix}-{n}" for n in itertools.count(1))
        self._runs: deque[_Run] = deque()  # not yet all heard, in order
        self._unshipped = bytearray()
        self._pieces: deque[Piece] = deque()  # shipped, not finished
        self._cut: deque[str] = deque(maxlen=256)  # pieces cut before their file came
        self._heard_to = 0  # output heard up to here (bytes, from the call's first audio)
        self._shipped_to = 0

    # inputs -----------------------------------------------------------------------------
    def play(self, pcm: bytes, mark: str | None, more: bool, now: float) -> list[Action]:
        """Queue ``pcm`` (16 kHz, 16-bit); ``more``: the segment ``mark`` goes on."""
        pcm = pcm[:len(pcm) & ~1]
        last = self._runs[-1] if self._runs else None
        if last is not None and last.open and mark is not None and last.mark == mark:
            last.nbytes += len(pcm)
            last.open = more
        elif pcm:
            self._runs.append(_Run(mark, len(pcm), more))
        else:
            return []
        self._unshipped += pcm
        return self._settle(now)

    def file_ready(self, piece_id: str) -> Piece | None:
        """FreeSWITCH has written this piece's file: the piece to play, or None when it
        was cut meanwhile (or is not ours)."""
        return next((p for p in self._pieces if p.id == piece_id), None)

    def was_cut(self, piece_id: str) -> bool:
        """This piece was shipped, then cut before it played (its file is not played)."""
        return piece_id in self._cut

    def started(self, piece_id: str, now: float) -> list[Action]:
        """FreeSWITCH began playing this piece (its playback's CHANNEL_EXECUTE)."""
        piece = next((p for p in self._pieces if p.id == piece_id), None)
        if piece is None:
            return []
        out: list[Action] = []
        while self._pieces[0] is not piece:  # an earlier piece's end went unreported
            out += self.finished(self._pieces[0].id, now)
        piece.started_at = now
        return out + self._settle(now)

    def finished(self, piece_id: str, now: float) -> list[Action]:
        """This piece's playback ended (its CHANNEL_EXECUTE_COMPLETE)."""
        if not self._pieces or self._pieces[0].id != piece_id:
            return []  # not playing: cut already, or not ours
        piece = self._pieces[0]
        if piece.started_at is None:  # it ended without starting (FreeSWITCH refused it)
            piece.started_at = now
        out = self._hear(piece.end, piece, now)
        self._pieces.popleft()
        out.append(Heard(piece.pcm, piece.started_at))
        return out + self._settle(now)

    def clear(self, now: float) -> list[Action]:
        """Barge-in: what is playing stops where it is, nothing more is played. The
        segments not heard to their end are reported interrupted."""
        out: list[Action] = []
        playing = self._playing()
        if playing is not None:
            at = self._position(playing, now)
            out += self._hear(at, playing, now)
            out.append(Heard(playing.pcm[:at - playing.start], playing.started_at or now))
        for run in self._runs:
            if run.mark is not None:
                out.append(PlayoutDone(run.mark, now, _ms(run.heard), interrupted=True))
        if self._pieces:
            out.append(Break())
        self._cut.extend(p.id for p in self._pieces)
        self._pieces.clear()
        self._waiting_since = None
        self._runs.clear()
        self._unshipped.clear()
        self._heard_to = self._shipped_to
        return out

    def tick(self, now: float) -> list[Action]:
        """Time passed: segments heard since, pieces due to be shipped, and a piece that
        never started (Stalled)."""
        since = self._waiting_since
        if since is not None and now - since >= self.stall_s:
            head = self._pieces[0].id
            return [*self.clear(now), Stalled(head, now - since)]
        return self._settle(now)

    # questions --------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Something is queued or playing."""
        return bool(self._runs)

    @property
    def pending_bytes(self) -> int:
        """Audio queued and not yet heard."""
        return sum(r.nbytes - r.heard for r in self._runs)

    def deadline(self) -> float | None:
        """When ``tick`` next has something to do (None: only an input can change that)."""
        playing = self._playing()
        if playing is None:
            return self._stall_deadline()
        times = []
        if self._runs:
            run = self._runs[0]
            if not run.started and self._heard_to < playing.end:
                times.append(playing.time_of(self._heard_to))
            elif not run.open:
                end = self._heard_to + run.nbytes - run.heard
                if end <= playing.end:
                    times.append(playing.time_of(end))
        if self._unshipped:
            due = self._shipped_to - self.lead
            if due <= playing.end:
                times.append(playing.time_of(max(due, playing.start)))
        return min(times) if times else None

    def _stall_deadline(self) -> float | None:
        return None if self._waiting_since is None else self._waiting_since + self.stall_s

    # the rest ---------------------------------------------------------------------------
    def _playing(self) -> Piece | None:
        head = self._pieces[0] if self._pieces else None
        return head if head is not None and head.started_at is not None else None

    def _position(self, piece: Piece, now: float) -> int:
        assert piece.started_at is not None
        done = round((now - piece.started_at) * BYTES_PER_S) & ~1
        return min(piece.end, piece.start + max(0, done))

    def _settle(self, now: float) -> list[Action]:
        playing = self._playing()
        out = [] if playing is None else self._hear(self._position(playing, now), playing, now)
        run = self._runs[0] if self._runs else None
        if run is not None and run.started and run.heard == run.nbytes and not run.open:
            # All heard before its end was known: it ends now.
            self._runs.popleft()
            if run.mark is not None:
                out.append(PlayoutDone(run.mark, now, _ms(run.nbytes), interrupted=False))
        out += self._ship(now)
        head = self._pieces[0] if self._pieces else None
        if head is None or head.started_at is not None:
            self._waiting_since = None
        elif self._waiting_since is None:
            self._waiting_since = now
        return out

    def _ship(self, now: float) -> list[Action]:
        out: list[Action] = []
        playing = self._playing()
        if playing is not None:  # ship before what is queued runs out
            ahead = self._shipped_to - self._position(playing, now)
        else:  # nothing shipped ships at once; else the first piece is about to start
            ahead = 0 if not self._pieces else self.lead + 2
        while self._unshipped and (ahead <= self.lead
                                   or len(self._unshipped) >= self.max_piece):
            pcm = bytes(self._unshipped[:self.max_piece])
            del self._unshipped[:len(pcm)]
            piece = Piece(next(self._ids), pcm, self._shipped_to)
            self._shipped_to = piece.end
            self._pieces.append(piece)
            ahead += len(pcm)
            out.append(Ship(piece))
        return out

    def _hear(self, to: int, piece: Piece, now: float) -> list[Action]:
        """The output up to ``to`` (inside ``piece``) has been heard."""
        out: list[Action] = []
        pos = self._heard_to
        while self._runs:
            run = self._runs[0]
            if not run.started:
                if pos >= piece.end or pos > to:
                    break
                run.started = True
                if run.mark is not None:
                    out.append(PlayoutStarted(run.mark, min(now, piece.time_of(pos))))
            take = min(to - pos, run.nbytes - run.heard)
            run.heard += take
            pos += take
            if run.heard < run.nbytes or run.open:
                break
            self._runs.popleft()
            if run.mark is not None:
                out.append(PlayoutDone(run.mark, min(now, piece.time_of(pos)),
                                       _ms(run.nbytes), interrupted=False))
        self._heard_to = pos
        return out


def _ms(nbytes: int) -> int:
    return nbytes * 1000 // BYTES_PER_S
