"""Testing a trunk the way a user would: is it registered, and does a call through it
connect with audio both ways? Every failure is explained with its SIP evidence."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Any

from atende.channels.dialer import Dialer, DialError, DialRequest
from atende.channels.leg import LegEnded, PlayoutDone
from atende.media.audio import BYTES_PER_SECOND
from atende.providers.tts.base import CachedTTS

log = logging.getLogger(__name__)

TEST_PHRASE = "This is a test call from atende. Your trunk works. Goodbye."
MEDIA_WAIT_S = 3.0


async def check_call(dialer: Dialer, request: DialRequest, voice: CachedTTS,
                     executor: Executor) -> dict[str, Any]:
    """Place a short call that says TEST_PHRASE and hangs up: the 'call' step of a trunk
    test, with what went wrong in words a user can act on."""
    loop = asyncio.get_running_loop()
    try:
        prepared = await dialer.prepare(request)
    except DialError as exc:
        return {"check": "call", "ok": False, "outcome": "failed", "detail": str(exc)}
    outcome = await dialer.dial(prepared)
    step: dict[str, Any] = {"check": "call", "to": prepared.address,
                            "sip_status": outcome.sip_status, "events": outcome.events}
    leg = outcome.leg
    if leg is None:
        step.update(ok=False, outcome=outcome.status, detail=_explain(outcome.status,
                                                                      outcome.reason))
        return step
    try:
        pcm = await loop.run_in_executor(executor, voice.synthesize, TEST_PHRASE)
        leg.play(pcm, "trunk-test")
        async with asyncio.timeout(len(pcm) / BYTES_PER_SECOND + 10):
            while True:
                ev = await leg.events.get()
                if isinstance(ev, PlayoutDone) or isinstance(ev, LegEnded):
                    break
        received, _ = leg.media_counts()
        if received == 0 and not leg.ended:
            # Give a silent far end a moment: many phones send nothing until spoken to.
            await asyncio.sleep(MEDIA_WAIT_S)
        received, sent = leg.media_counts()
        step.update(
            ok=received > 0, outcome="answered", media_received=received > 0,
            media_sent=sent,
            detail=("answered, and audio flowed both ways" if received else
                    "answered, but no audio came back: check NAT, firewall rules for the RTP "
                    "ports, or set ATENDE_PUBLIC_IP"))
    except TimeoutError:
        step.update(ok=False, outcome="answered", detail="answered, but playing the test "
                    "message did not finish")
    finally:
        if not leg.ended:
            await leg.hangup("trunk_test")
    return step


def _explain(status: str, reason: str) -> str:
    hints = {
        "busy": "the destination is busy",
        "no_answer": "nobody answered (or the destination is not reachable right now)",
        "rejected": "the PBX or carrier refused the call: check the number and its format",
        "failed": "the call could not be placed",
    }
    return f"{hints.get(status, status)} — {reason}"
