"""Whether the Node helper at ``nodeRemoteHelper`` answers: atende stores the URL and
shows this in the bridge's status, and does nothing else with it (the helper belongs to
deployments where a Node process drives the WhatsApp side; atende's own bridge needs
none). One GET, no credentials, no redirects followed; any HTTP answer counts as
reachable, since the helper's routes are its own."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

CHECK_TIMEOUT_S = 3.0
RECHECK_AFTER_S = 60.0


@dataclass(frozen=True)
class Reachability:
    """What the last look at the helper found."""

    url: str
    reachable: bool
    detail: str  # "HTTP 200", or why it could not be reached
    checked_at: float  # Unix time

    def shown(self) -> dict[str, object]:
        return {"url": self.url, "reachable": self.reachable, "detail": self.detail,
                "checked_at": round(self.checked_at)}

    def stale(self, now: float) -> bool:
        return now - self.checked_at > RECHECK_AFTER_S


async def check(url: str) -> Reachability:
    try:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S, trust_env=False,
                                     follow_redirects=False) as client:
            resp = await client.get(url)
        return Reachability(url, True, f"HTTP {resp.status_code}", time.time())
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError) as exc:
        words = type(exc).__name__ if not str(exc) else str(exc).splitlines()[0][:200]
        return Reachability(url, False, words, time.time())
