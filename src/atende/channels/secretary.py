"""How a call names the assistant (seed 003's "secretary") that takes it, whatever carries
it: by UUID, in FreeSWITCH's channel variable or stream path, or in a SIP header when
FreeSWITCH bridges the call to atende's SIP port (AUDIO_MODE=rtp)."""

from __future__ import annotations

import re

SECRETARY_HEADER = "X-Atende-Secretary"
# A UUID as FreeSWITCH and seed 003 write them, the dashes optional (atende's ids have none).
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}",
                  re.IGNORECASE)


def assistant_id(named: str | None) -> str | None:
    """The assistant id a secretary UUID stands for (32 hex digits), or None when
    ``named`` is not a UUID."""
    text = (named or "").strip().lower()
    return text.replace("-", "") if UUID.fullmatch(text) else None


def secretary_uuid(assistant: str) -> str:
    """An assistant's id as the UUID a dialplan names it by (8-4-4-4-12 hex)."""
    h = assistant_id(assistant)
    if h is None:
        raise ValueError(f"not an assistant id: {assistant!r}")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
