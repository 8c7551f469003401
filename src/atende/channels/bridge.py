"""Two legs joined: what each party says is played to the other, the keys each presses
are sent on, and a party that holds the call has the other held too; when either hangs
up, so does the other. Channel-neutral, like the legs: a SIP
caller can be bridged to a SIP callee today, and to any other channel's leg later.

When both legs carry the same codec (two SIP legs agreeing on PCMU, say), packets go
straight across, undecoded (CallLeg.carry_to): no delay is added beyond the packet's own
trip. Otherwise audio goes through atende's 16 kHz format, transcoded, and the relay adds
at most one 20 ms frame of delay: a party whose audio arrives faster than the other side's
clock sends it (clock drift, a burst after a network stall) has the excess dropped once
MAX_QUEUED_MS is waiting, so the delay can never grow."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from atende.aio import BackgroundTasks
from atende.channels.leg import AudioIn, CallLeg, DtmfIn, HoldChanged, LegEnded
from atende.media.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

MAX_QUEUED_MS = 120
_MAX_QUEUED_BYTES = SAMPLE_RATE * 2 * MAX_QUEUED_MS // 1000


# Hears each party's audio as it crosses (a transcript): the leg it came from, the frame.
Listener = Callable[[CallLeg, bytes, float], None]


async def _relay(src: CallLeg, dst: CallLeg, tasks: BackgroundTasks,
                 audio_only: bool = False, listen: Listener | None = None) -> CallLeg:
    """``src``'s audio and keys to ``dst`` until ``src`` ends; returns ``src``."""
    while True:
        ev = await src.events.get()
        if isinstance(ev, AudioIn):
            if dst.outbound.pending_bytes < _MAX_QUEUED_BYTES:
                dst.play(ev.pcm)
            if listen is not None:
                listen(src, ev.pcm, ev.at)
        elif audio_only and not isinstance(ev, LegEnded):
            continue
        elif isinstance(ev, DtmfIn):
            tasks.spawn(dst.send_dtmf(ev.digit))
        elif isinstance(ev, HoldChanged):  # held by one party: the other is held too
            tasks.spawn(dst.hold(ev.on_hold))
        elif isinstance(ev, LegEnded):
            return src


async def early_media(a: CallLeg, b: CallLeg) -> None:
    """Audio both ways before the call is answered, until cancelled (or a leg ends):
    what the callee plays before answering (ringback, announcements) reaches the
    caller. ``bridge`` takes over at the answer."""
    tasks = BackgroundTasks()
    await asyncio.gather(_relay(a, b, tasks, audio_only=True),
                         _relay(b, a, tasks, audio_only=True))


async def bridge(a: CallLeg, b: CallLeg, cause: str = "bridge_ended",
                 listen: Listener | None = None) -> CallLeg:
    """Join ``a`` and ``b`` until one of them ends; the other is then hung up with
    ``cause``. Returns the leg that ended first. ``listen`` hears both parties (their
    audio is then always decoded)."""
    tasks = BackgroundTasks()
    # One codec on both sides, and nobody listening: packets go straight across.
    direct = listen is None and a.carry_to(b) and b.carry_to(a)
    if not direct:
        a.carry_to(None)
    log.info("call %s: bridged %s", a.info.id,
             "packet for packet" if direct else "through 16 kHz audio (transcoded)")
    relays = [asyncio.ensure_future(_relay(a, b, tasks, listen=listen)),
              asyncio.ensure_future(_relay(b, a, tasks, listen=listen))]
    try:
        done, _ = await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        first = next(iter(done)).result()
    finally:
        for r in relays:
            r.cancel()
        tasks.cancel_all()
        a.carry_to(None)
        b.carry_to(None)
    other = b if first is a else a
    if not other.ended:
        await other.hangup(cause)
    log.info("call %s: bridge over (%s hung up first)", a.info.id,
             "the caller" if first is a else "the other party")
    return first
