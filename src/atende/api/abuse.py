"""GET /v1/abuse: who is blocked or rate limited, and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from atende.api import examples as ex
from atende.telephony.abuse import AbuseGuard


def abuse_router(guard: AbuseGuard, now: Callable[[], float]) -> APIRouter:
    router = APIRouter(tags=["system"])

    @router.get("/v1/abuse", responses={200: {"content": {"application/json": {
        "example": ex.ABUSE}}}})
    async def abuse() -> dict[str, Any]:
        """Blocked addresses (with the time left and the reason), addresses with recent
        failures, and how many requests were dropped for flooding."""
        return guard.snapshot(now())

    return router
