"""The result webhooks of a call: what was sent, each attempt, and sending it again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from atende.api import examples as ex
from atende.egress import EgressPolicy
from atende.store import models
from atende.store.db import Store, as_utc
from atende.webhooks.outbox import Deliverer, new_delivery


class DeliveryOut(BaseModel):
    """A result webhook of a call: where it goes, its attempts and where it stands."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.DELIVERY))

    id: int = Field(description="also sent as the Atende-Delivery header: drop repeats")
    url: str
    status: str = Field(description="pending (will be retried), delivered or failed (gave "
                        "up)")
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    history: list[dict[str, Any]] = Field(description="each attempt: at, HTTP status, "
                                          "error, ms")
    payload: dict[str, Any]

    @classmethod
    def of(cls, d: models.Delivery) -> DeliveryOut:
        return cls(id=d.id, url=d.url, status=d.status, attempts=d.attempts,
                   next_attempt_at=as_utc(d.next_attempt_at),
                   created_at=as_utc(d.created_at),
                   delivered_at=as_utc(d.delivered_at), history=d.history, payload=d.payload)


class RedeliverIn(BaseModel):
    """Send a call's result webhook again, optionally elsewhere."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.REDELIVER_IN))

    url: AnyHttpUrl | None = Field(None, description="default: the call's webhook_url")


class Deliveries:
    """A call's result webhooks, and sending one again: for the API and the dashboard.
    Refusals are HTTPExceptions whose detail says what to fix."""

    def __init__(self, store: Store, deliverer: Deliverer,
                 egress: EgressPolicy | None = None) -> None:
        self.store = store
        self.deliverer = deliverer
        self.egress = egress or EgressPolicy()

    async def of_call(self, call_id: str) -> list[DeliveryOut]:
        def q(s: Session) -> list[models.Delivery] | None:
            if s.get(models.Call, call_id) is None:
                return None
            return list(s.scalars(select(models.Delivery)
                                  .where(models.Delivery.call_id == call_id)
                                  .order_by(models.Delivery.id)))

        rows = await self.store.run(q)
        if rows is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        return [DeliveryOut.of(d) for d in rows]

    async def redeliver(self, call_id: str, url: str | None) -> DeliveryOut:
        if url is not None and (why := self.egress.check_url(url)) is not None:
            raise HTTPException(422, f"url: {why}")

        def add(s: Session) -> models.Delivery | str:
            call = s.scalars(select(models.Call).where(models.Call.id == call_id)
                             .options(selectinload(models.Call.turns))).first()
            if call is None:
                return "404"
            if call.status in models.LIVE_STATUSES:
                return "409"
            target = url or call.webhook_url
            if not target:
                return "422"
            d = new_delivery(call, datetime.now(UTC), target)
            s.add(d)
            s.flush()
            return d

        result = await self.store.run(add)
        if result == "404":
            raise HTTPException(404, f"no call with id {call_id!r}")
        if result == "409":
            raise HTTPException(409, "the call is not over yet: its result is sent when it "
                                "ends")
        if result == "422":
            raise HTTPException(422, "url: the call has no webhook_url; give one")
        assert isinstance(result, models.Delivery)
        self.deliverer.wake()
        return DeliveryOut.of(result)


def deliveries_router(deliveries: Deliveries) -> APIRouter:
    router = APIRouter(tags=["calls"])

    @router.get("/v1/calls/{call_id}/deliveries", response_model=list[DeliveryOut])
    async def list_deliveries(call_id: str) -> list[DeliveryOut]:
        """Every result webhook of the call, oldest first, with each attempt."""
        return await deliveries.of_call(call_id)

    @router.post("/v1/calls/{call_id}/deliveries", response_model=DeliveryOut,
                 status_code=201,
                 responses={404: {"description": "no such call"},
                            409: {"description": "the call is not over yet"},
                            422: {"description": "no URL to send to"}})
    async def redeliver(call_id: str, body: RedeliverIn | None = None) -> DeliveryOut:
        """Send the call's result again (its current state), now, as a new delivery."""
        return await deliveries.redeliver(call_id, str(body.url) if body and body.url
                                          else None)

    return router
