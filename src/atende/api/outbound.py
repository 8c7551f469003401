"""POST /v1/calls: place a call through a trunk and let an assistant talk."""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from atende.api.schemas import CallSummary
from atende.calls.engine import CallEngine
from atende.channels.leg import CallInfo
from atende.store import models
from atende.store.db import Store
from atende.telephony.numbers import NumberError, format_for_trunk, number_country
from atende.telephony.trunks import TrunkConfig, TrunkManager

EXTENSION_RE = re.compile(r"^[A-Za-z0-9*#_.\-]{1,64}$")


class CallCreate(BaseModel):
    to: str = Field(..., max_length=64, description="phone number (any usual format) or, on "
                    "an extension trunk, an internal extension", examples=["+351912345678"])
    trunk_id: str
    assistant_id: str | None = Field(None, description="default: the trunk's assistant")
    ring_timeout_s: float = Field(30, ge=3, le=180, description="give up (CANCEL) after "
                                  "ringing this long")


def destination(trunk: TrunkConfig, to: str) -> str:
    """The Request-URI user for ``to``, or HTTPException 422 saying what is wrong."""
    try:
        user = format_for_trunk(to, trunk.country, trunk.number_format)
    except NumberError as exc:
        if trunk.kind == "extension" and EXTENSION_RE.match(to):
            return to  # an internal extension of the PBX
        raise HTTPException(422, f"to: {exc}") from None
    region = number_country(to, trunk.country)
    if region not in trunk.allowed_countries:
        raise HTTPException(422, f"to: calls to {region} are not allowed on trunk "
                            f"{trunk.name!r} (allowed_countries: "
                            f"{', '.join(trunk.allowed_countries)})")
    return user


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
        user = destination(trunk, body.to.strip())
        assistant_id = body.assistant_id or trunk.assistant_id
        assistant: models.Assistant | None = await store.assistant_by_id(assistant_id)
        if assistant is None:
            raise HTTPException(422, f"assistant_id: no assistant with id {assistant_id!r}")
        problem = engine.capacity_problem(trunk)
        if problem:
            raise HTTPException(429, f"cannot place the call now: {problem[1]}")
        info = CallInfo(id=uuid.uuid4().hex, channel="sip", direction="outbound",
                        from_uri=f"sip:{trunk.username}@{trunk.domain or trunk.host}",
                        to_uri="", from_user=trunk.username, to_user=user,
                        extra={"trunk_id": trunk.id})
        try:
            dial = await trunks.dial_request(trunk, user, info, body.ring_timeout_s)
        except OSError as exc:
            raise HTTPException(422, f"trunk_id: cannot resolve the trunk's host: {exc}"
                                ) from None
        info.to_uri = str(dial.ruri)
        row = await engine.place_call(info, dial, assistant)
        return CallSummary.of(row)

    return router
