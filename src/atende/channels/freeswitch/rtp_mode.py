"""AUDIO_MODE=rtp: the call reaches atende over the event socket like any other — its
control is still FreeSWITCH's event socket — but instead of streaming its audio atende
has FreeSWITCH bridge it to atende's own SIP port, where the conversation runs over RTP
(atende's jitter buffer and codecs). The SIP call names the secretary, the domain and the
FreeSWITCH call in headers; if atende refuses it there, the caller is hung up with the
cause FreeSWITCH got back (an unknown secretary: UNALLOCATED_NUMBER)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from atende.channels.freeswitch.esl import ChannelData, EslChannel
from atende.channels.secretary import (
    CALL_HEADER,
    DOMAIN_HEADER,
    DOMAIN_VARIABLE,
    SECRETARY_HEADER,
    SECRETARY_VARIABLE,
)
from atende.esl import commands
from atende.esl.message import EslEvent

log = logging.getLogger(__name__)

BRIDGE_VARIABLE = "VOICE_AI_BRIDGE"  # the dialplan's: where atende's SIP port is
_TARGET = re.compile(r"sofia/[0-9A-Za-z_.-]{1,64}/[0-9A-Za-z+*#_.-]{1,64}"
                     r"@[0-9A-Za-z.:\[\]-]{1,260}")
_VALUE = re.compile(r"[0-9A-Za-z-]{1,64}")  # what a header may carry into the dial string
_CAUSE = re.compile(r"[A-Z_]{3,40}")


def bridge_string(data: ChannelData) -> str | None:
    """What FreeSWITCH dials to bring the call to atende's SIP port, with the headers that
    name it; None when the dialplan's target is not a sofia address."""
    target = data.variables.get(BRIDGE_VARIABLE, "").strip()
    if not _TARGET.fullmatch(target):
        return None
    headers = ((SECRETARY_HEADER, data.variables.get(SECRETARY_VARIABLE, "")),
               (DOMAIN_HEADER, data.variables.get(DOMAIN_VARIABLE, "")),
               (CALL_HEADER, data.uuid))
    values = [f"sip_h_{name}={value}" for name, value in headers if _VALUE.fullmatch(value)]
    return "{" + ",".join(values) + "}" + target


def failure_cause(event: EslEvent) -> str | None:
    """Why a bridge that returned never carried the call (FreeSWITCH's cause name), or
    None when it did: the call is then FreeSWITCH's (hung up after the bridge, or handed
    elsewhere by a transfer atende asked for)."""
    disposition = event.headers.get("variable_originate_disposition", "")
    if disposition in ("SUCCESS", "ANSWER"):
        return None
    return disposition if _CAUSE.fullmatch(disposition) else "NORMAL_TEMPORARY_FAILURE"


async def bridge_to_sip(channel: EslChannel) -> None:
    """Have FreeSWITCH bridge the call to atende's SIP port and follow it until the bridge
    returns. After a conversation FreeSWITCH hangs the caller up itself
    (hangup_after_bridge), or has handed it on (a transfer); a bridge that never connected
    (atende refused the call) hangs the caller up with its cause."""
    data = channel.data
    dial = bridge_string(data)
    if dial is None:
        log.warning("FreeSWITCH call %s: %s=%r is not a sofia address (print the dialplan "
                    "again with `atende freeswitch dialplan --mode rtp`); hanging up",
                    data.uuid, BRIDGE_VARIABLE, data.variables.get(BRIDGE_VARIABLE, "")[:80])
        await channel.send(commands.hangup("NORMAL_TEMPORARY_FAILURE"))
        return
    await channel.send(commands.execute("bridge", dial))
    gone = asyncio.ensure_future(channel.ended.wait())
    try:
        while not channel.ended.is_set():
            got = asyncio.ensure_future(channel.events.get())
            await asyncio.wait([got, gone], return_when=asyncio.FIRST_COMPLETED)
            if not got.done():
                got.cancel()
                return
            event = got.result()
            if event.name == "CHANNEL_EXECUTE_COMPLETE" and \
                    event.headers.get("Application") == "bridge":
                if (cause := failure_cause(event)) is not None:
                    log.info("FreeSWITCH call %s: atende's SIP port did not take it (%s)",
                             data.uuid, cause)
                    # FreeSWITCH hangs up after a failed bridge itself, unless the
                    # dialplan set continue_on_fail
                    with contextlib.suppress(ConnectionError, TimeoutError):
                        await channel.send(commands.hangup(cause))
                return
    finally:
        gone.cancel()
