"""POST /v1/calls: place a call through a trunk and let an assistant talk."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from atende.api.schemas import CallSummary
from atende.calls.engine import CallEngine
from atende.store import models
from atende.store.db import Store
from atende.telephony.trunks import DestinationError, TrunkConfig, TrunkManager


def destination(trunk: TrunkConfig, to: str) -> str:
    """The Request-URI user for ``to``, or a 422 that says what is wrong with it."""
    try:
        return trunk.dial_user(to)
    except DestinationError as exc:
        raise HTTPException(422, f"to: {exc}") from None


class CallCreate(BaseModel):
    to: str = Field(..., max_length=64, description="phone number (any usual format) or, on "
                    "an extension trunk, an internal extension", examples=["+351912345678"])
    trunk_id: str
    assistant_id: str | None = Field(None, description="default: the trunk's assistant")
    ring_timeout_s: float = Field(30, ge=3, le=180, description="give up (CANCEL) after "
                                  "ringing this long")


def outbound_router(store: Store, engine: CallEngine, trunks: TrunkManager) -> APIRouter:
    router = APIRouter(tags=["calls"])

    @router.post("/v1/calls", response_model=CallSummary, status_code=201)
    async def place(body: CallCreate) -> CallSummary:
        live = trunks.trunks.get(body.trunk_id)
        if live is None:
            raise HTTPException(422, f"trunk_id: no trunk with id {body.trunk_id!r}")
        trunk = live.config
        if not trunk.enabled:
            raise HTTPException(422, f"trunk_id: trunk {trunk.name!r} is disabled")
        user = destination(trunk, body.to)
        assistant_id = body.assistant_id or trunk.assistant_id
        assistant: models.Assistant | None = await store.assistant_by_id(assistant_id)
        if assistant is None:
            raise HTTPException(422, f"assistant_id: no assistant with id {assistant_id!r}")
        problem = engine.capacity_problem(trunk)
        if problem:
            raise HTTPException(429, f"cannot place the call now: {problem[1]}")
        try:
            row = await engine.dial_through(trunk, user, assistant, body.ring_timeout_s)
        except OSError as exc:
            raise HTTPException(422, f"trunk_id: cannot resolve the trunk's host: {exc}"
                                ) from None
        return CallSummary.of(row)

    return router
