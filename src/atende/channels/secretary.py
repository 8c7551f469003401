"""How a call names the assistant (seed 003's "secretary") that takes it, and the FusionPBX
domain it comes from, whatever carries them: by UUID, in FreeSWITCH's channel variables or
stream path, or in SIP headers when FreeSWITCH bridges the call to atende's SIP port
(AUDIO_MODE=rtp)."""

from __future__ import annotations

import re

SECRETARY_VARIABLE = "VOICE_AI_SECRETARY_UUID"  # seed 003's dialplan sets these two
DOMAIN_VARIABLE = "VOICE_AI_DOMAIN_UUID"
SECRETARY_HEADER = "X-Atende-Secretary"
DOMAIN_HEADER = "X-Atende-Domain"
CALL_HEADER = "X-Atende-Call"  # FreeSWITCH's UUID of the call it bridges to atende
# A UUID as FreeSWITCH and seed 003 write them, the dashes optional (atende's ids have none).
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}",
                  re.IGNORECASE)


def assistant_id(named: str | None) -> str | None:
    """The assistant id a secretary UUID stands for (32 hex digits), or None when
    ``named`` is not a UUID."""
    text = (named or "").strip().lower()
    return text.replace("-", "") if UUID.fullmatch(text) else None


def _dashed(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def secretary_uuid(assistant: str) -> str:
    """An assistant's id as the UUID a dialplan names it by (8-4-4-4-12 hex)."""
    h = assistant_id(assistant)
    if h is None:
        raise ValueError(f"not an assistant id: {assistant!r}")
    return _dashed(h)


def domain_uuid(value: str) -> str:
    """A FusionPBX domain_uuid in one spelling (lower case, 8-4-4-4-12 hex, as FusionPBX
    writes it); ValueError when it is not a UUID."""
    h = assistant_id(value)
    if h is None:
        raise ValueError("must be a domain UUID such as "
                         "8d3b1a6e-0c3f-4c55-9a43-5e2f0f6d1b7a")
    return _dashed(h)


def known_uuid(value: str | None) -> str | None:
    """A domain's or FreeSWITCH call's UUID as a call carries it, in FreeSWITCH's
    spelling; None when there is none (FreeSWITCH without FusionPBX leaves ${domain_uuid}
    empty) or it is not a UUID."""
    try:
        return domain_uuid(value) if value else None
    except ValueError:
        return None
