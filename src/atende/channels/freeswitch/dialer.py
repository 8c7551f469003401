"""Calls placed through FreeSWITCH: ``originate`` over the inbound event socket, the
answered call handed back to atende by the ``socket`` application and its audio by
mod_audio_stream, like a call FreeSWITCH sends in. A trunk of kind ``freeswitch`` names
the dial string; the engine, the queue, call-backs and trunk tests use it as any trunk."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass

from atende.channels.dialer import DialError, DialOutcome, DialRequest, PreparedDial
from atende.channels.freeswitch.channel import ORIGINATED, FreeSwitchChannel
from atende.channels.freeswitch.inbound import EslInbound, EslUnavailable

log = logging.getLogger(__name__)

HANDOVER_TIMEOUT_S = 10.0  # from the answer to the call's event socket and stream
NO_SECRETARY = "00000000-0000-0000-0000-000000000000"
_SAFE = re.compile(r"[0-9A-Za-z+*#._-]{1,64}")  # what a number may hold in a dial string
_SAFE_CHARS = re.compile(r"[^0-9A-Za-z+*#._-]")

# FreeSWITCH's hangup causes (originate's -ERR …) in the dialer's words, with the SIP
# status FreeSWITCH itself maps each to.
CAUSES: dict[str, tuple[str, int]] = {
    "USER_BUSY": ("busy", 486),
    "NO_ANSWER": ("no_answer", 480),
    "NO_USER_RESPONSE": ("no_answer", 408),
    "ALLOTTED_TIMEOUT": ("no_answer", 408),
    "PROGRESS_TIMEOUT": ("no_answer", 408),
    "CALL_REJECTED": ("rejected", 603),
    "USER_NOT_REGISTERED": ("failed", 404),
    "UNALLOCATED_NUMBER": ("failed", 404),
    "NO_ROUTE_DESTINATION": ("failed", 404),
    "INVALID_NUMBER_FORMAT": ("failed", 484),
    "SUBSCRIBER_ABSENT": ("failed", 480),
    "ORIGINATOR_CANCEL": ("cancelled", 487),
    "NORMAL_TEMPORARY_FAILURE": ("failed", 503),
    "DESTINATION_OUT_OF_ORDER": ("failed", 502),
}


@dataclass(frozen=True)
class FreeSwitchDial:
    """A call ready to be originated: the dial string and the variables it carries."""

    dial_string: str
    caller_id: str
    ring_timeout: float


def outcome_of(result: str) -> tuple[str, int | None, str]:
    """(status, SIP status, reason) of originate's answer when it is not +OK."""
    text = result.strip()
    cause = text.removeprefix("-ERR").strip().split()[0] if text.startswith("-ERR") and \
        text.removeprefix("-ERR").strip() else ""
    status, sip = CAUSES.get(cause, ("failed", None))
    return status, sip if cause else None, cause or text[:200] or "no answer from FreeSWITCH"


class FreeSwitchDialer:
    """Originates calls through FreeSWITCH for trunks of kind ``freeswitch``."""

    def __init__(self, esl: EslInbound | None, channel: FreeSwitchChannel, reach: str,
                 esl_port: int, audio_port: int) -> None:
        self.esl = esl  # None: ESL_HOST is not set
        self.channel = channel
        self.reach = reach  # atende's address as FreeSWITCH reaches it
        self.esl_port, self.audio_port = esl_port, audio_port

    def prepare(self, request: DialRequest, dial_string: str, caller_id: str
                ) -> PreparedDial:
        if self.esl is None:
            raise DialError("calls through FreeSWITCH need its event socket: set ESL_HOST")
        number = request.to.replace("%23", "#")  # a trunk writes # as in a SIP user part
        if not _SAFE.fullmatch(number):
            raise DialError(f"{request.to!r} cannot go into a FreeSWITCH dial string")
        address = dial_string.replace("{number}", number)
        return PreparedDial(request, address, FreeSwitchDial(
            address, _SAFE_CHARS.sub("", caller_id), request.ring_timeout))

    async def dial(self, prepared: PreparedDial, cancel: asyncio.Event | None = None
                   ) -> DialOutcome:
        plan = prepared.plan
        assert isinstance(plan, FreeSwitchDial) and self.esl is not None
        info = prepared.request.info
        call_uuid = str(uuid.uuid4())
        handed = self.channel.expect(call_uuid, info)
        try:
            command = self._originate(call_uuid, plan)
            log.info("call %s: originate %s through FreeSWITCH (%s)", info.id, plan.dial_string,
                     call_uuid)
            result = await self._ring(command, call_uuid, plan, cancel)
            if not result.startswith("+OK"):
                status, sip, reason = outcome_of(result)
                return DialOutcome(status, sip, reason)
            try:
                async with asyncio.timeout(HANDOVER_TIMEOUT_S):
                    leg = await asyncio.shield(handed)
            except TimeoutError:
                leg = "FreeSWITCH did not hand the answered call to atende"
            if isinstance(leg, str):
                await self._kill(call_uuid, "NORMAL_TEMPORARY_FAILURE")
                return DialOutcome("failed", None, f"answered, but {leg}")
            return DialOutcome("answered", 200, "answered", leg)
        except EslUnavailable as exc:
            return DialOutcome("failed", None, str(exc))
        finally:
            self.channel.forget(call_uuid)

    async def _ring(self, command: str, call_uuid: str, plan: FreeSwitchDial,
                    cancel: asyncio.Event | None) -> str:
        """originate's answer; a cancel while it rings kills the call (the answer then
        says ORIGINATOR_CANCEL)."""
        assert self.esl is not None
        ring = asyncio.ensure_future(self.esl.bgapi(command, plan.ring_timeout + 15))
        stop = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        try:
            waiting = [ring] if stop is None else [ring, stop]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not ring.done():
                await self._kill(call_uuid, "ORIGINATOR_CANCEL")
            try:
                return await ring
            except TimeoutError:
                await self._kill(call_uuid, "ALLOTTED_TIMEOUT")
                return "-ERR ALLOTTED_TIMEOUT"
        finally:
            if stop is not None:
                stop.cancel()

    async def _kill(self, call_uuid: str, cause: str) -> None:
        assert self.esl is not None
        try:
            await self.esl.api(f"uuid_kill {call_uuid} {cause}")
        except (EslUnavailable, TimeoutError):
            pass

    def _originate(self, call_uuid: str, plan: FreeSwitchDial) -> str:
        # The stream's path names no secretary: the call is known by its UUID.
        stream = (f"uuid_audio_stream {call_uuid} start ws://{self.reach}:{self.audio_port}"
                  f"/stream/{NO_SECRETARY}/{call_uuid}/{plan.caller_id or 'atende'} mono 16k")
        variables = {
            "origination_uuid": call_uuid,
            "origination_caller_id_number": plan.caller_id,
            "originate_timeout": str(max(1, round(plan.ring_timeout))),
            "api_on_answer": stream,
            "send_silence_when_idle": "-1",
            ORIGINATED: "true",
        }
        # Values are quoted: the stream command has spaces. None has a quote or a comma:
        # numbers are checked, and the host and ports come from the settings.
        text = ",".join(f"{k}='{v}'" for k, v in variables.items())
        return (f"originate {{{text}}}{plan.dial_string} "
                f"&socket('{self.reach}:{self.esl_port} async full')")
