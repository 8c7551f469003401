"""POST /v1/calls: place a call through a trunk and let an assistant talk — optionally
with a task to accomplish, metadata to carry and a webhook for the result."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from atende.api.schemas import CallSummary
from atende.calls.automation import Callback, CallJob
from atende.calls.hours import CallingHours, HoursError, zones_for
from atende.calls.queue import CallQueue
from atende.calls.retry import RetryPolicy, first_attempt_at
from atende.egress import EgressPolicy
from atende.store import models
from atende.store.db import Store, as_utc
from atende.telephony.trunks import DestinationError, LiveTrunk, TrunkConfig, TrunkManager

MAX_METADATA_BYTES = 16 * 1024
MAX_AHEAD_S = 90 * 86400  # how far ahead a call can be scheduled
PAST_GRACE_S = 600  # a scheduled_at this far in the past is taken as "now" (clock skew)
EXAMPLE: dict[str, JsonValue] = {
    "phone_number": "+351912345678",
    "task": "Confirm tomorrow's appointment at 10:00. If they cannot come, offer to "
            "reschedule.",
    "caller_name": "Ana",
    "webhook_url": "https://crm.example.com/atende/callback",
    "metadata": {"event_id": "evt_123", "calendar_id": "main"},
}


def destination(trunk: TrunkConfig, to: str, field: str = "to") -> str:
    """The Request-URI user for ``to``, or a 422 that says what is wrong with it."""
    try:
        return trunk.dial_user(to)
    except DestinationError as exc:
        raise HTTPException(422, f"{field}: {exc}") from None


class CallingHoursIn(BaseModel):
    """When the callee may be called, in their time zone."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"start": "09:00", "end": "20:00", "days": ["mon", "tue", "wed", "thu", "fri"]}]})

    start: str = Field(description="HH:MM, the callee's local time", examples=["09:00"])
    end: str = Field(description="HH:MM, exclusive; after start (no crossing midnight)",
                     examples=["20:00"])
    days: list[str] | None = Field(None, description="mon … sun; default every day")
    timezone: str | None = Field(None, description="IANA zone, e.g. Europe/Lisbon; default "
                                 "the zone(s) of the number's country, all of which must "
                                 "be inside the window")

    @field_validator("days", mode="before")
    @classmethod
    def _days_in_a_form(cls, v: object) -> object:
        # A form field carries "mon,tue,wed" rather than a list.
        return [d.strip() for d in v.split(",") if d.strip()] if isinstance(v, str) else v


class CallCreate(BaseModel):
    """A call to place: who, what for, when, and where its result goes."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    phone_number: str | None = Field(None, max_length=64, description="who to call: a phone "
                                     "number in any usual format or, on an extension trunk, "
                                     "an internal extension", examples=["+351912345678"])
    to: str | None = Field(None, max_length=64, description="the same as phone_number")
    task: str | None = Field(None, max_length=2000, description="what the assistant must "
                             "accomplish, in plain words")
    caller_name: str | None = Field(None, max_length=200, description="the name of the "
                                    "person called, used in the conversation")
    webhook_url: AnyHttpUrl | None = Field(None, description="where the signed result is "
                                           "POSTed when the call is over")
    metadata: dict[str, Any] = Field(default_factory=dict, description="your own data (up "
                                     "to 16 KB of JSON), returned untouched in the result")
    trunk_id: str | None = Field(None, description="default: the only enabled trunk")
    assistant_id: str | None = Field(None, description="default: the trunk's assistant")
    ring_timeout_s: float = Field(30, ge=3, le=180, description="give up (CANCEL) after "
                                  "ringing this long")
    scheduled_at: AwareDatetime | None = Field(None, description="place the call at this "
                                               "time (ISO 8601 with its zone) instead of now",
                                               examples=["2026-12-01T09:30:00+00:00"])
    delay_seconds: int | None = Field(None, ge=0, le=MAX_AHEAD_S, description="place the "
                                      "call this many seconds from now")
    max_attempts: int = Field(1, ge=1, le=10, description="how many times to try when "
                              "nobody answers, the line is busy or the network fails")
    retry_after_seconds: int = Field(300, ge=1, le=7 * 86400, description="wait between "
                                     "attempts")
    calling_hours: CallingHoursIn | None = Field(None, description="never call outside "
                                                 "this daily window (the first attempt "
                                                 "waits for it too)")
    source: Literal["api", "manual"] = Field("api", description="manual when a person "
                                             "started it (e.g. `atende call`), for the "
                                             "statistics per integration level")

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(v, separators=(",", ":")).encode()) > MAX_METADATA_BYTES:
            raise ValueError("metadata is larger than 16 KB of JSON")
        return v

    @model_validator(mode="after")
    def _one_time(self) -> CallCreate:
        if self.scheduled_at is not None and self.delay_seconds is not None:
            raise ValueError("give scheduled_at or delay_seconds, not both")
        return self

    @model_validator(mode="after")
    def _one_number(self) -> CallCreate:
        if not (self.phone_number or self.to):
            raise ValueError("phone_number is required")
        if self.phone_number and self.to and self.phone_number != self.to:
            raise ValueError("give phone_number or to, not two different numbers")
        return self

    @property
    def number(self) -> str:
        return (self.phone_number or self.to or "").strip()


def pick_trunk(trunks: TrunkManager, trunk_id: str | None) -> TrunkConfig:
    if trunk_id is None:
        enabled = [t for t in trunks.trunks.values() if t.config.enabled]
        if len(enabled) != 1:
            raise HTTPException(422, "trunk_id: required when there is not exactly one "
                                f"enabled trunk (there are {len(enabled)})")
        return enabled[0].config
    live: LiveTrunk | None = trunks.trunks.get(trunk_id)
    if live is None:
        raise HTTPException(422, f"trunk_id: no trunk with id {trunk_id!r}")
    if not live.config.enabled:
        raise HTTPException(422, f"trunk_id: trunk {live.config.name!r} is disabled")
    return live.config


class CallStarter:
    """Starts calls for the REST API and the webhook triggers alike: the same checks, the
    same idempotency, the same record. Every call goes through the queue, which places it
    at once when it is due and has a place."""

    def __init__(self, store: Store, queue: CallQueue, trunks: TrunkManager,
                 default_hours: dict[str, Any] | None = None,
                 egress: EgressPolicy | None = None) -> None:
        self.store = store
        self.queue = queue
        self.trunks = trunks
        self.default_hours = default_hours  # ATENDE_CALLING_HOURS
        self.egress = egress or EgressPolicy()  # where webhook_url may point

    async def start(self, body: CallCreate, source: str, idempotency_key: str | None = None,
                    hook: models.Hook | None = None) -> tuple[models.Call, bool]:
        """(the call, whether it is new). A repeated Idempotency-Key with the same request
        returns the first call; with another request it is a 409."""
        request_hash = None
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 200:
                raise HTTPException(422, "Idempotency-Key: 1 to 200 characters")
            request_hash = hashlib.sha256(json.dumps(
                [source, body.model_dump(mode="json")], sort_keys=True).encode()).hexdigest()
            earlier = await self._by_key(idempotency_key, request_hash)
            if earlier is not None:
                return earlier, False
        if body.webhook_url is not None and (
                why := self.egress.check_url(str(body.webhook_url))) is not None:
            raise HTTPException(422, f"webhook_url: {why}")
        if hook is not None:
            # A trigger URL's holder places calls the way its maker chose, nothing else.
            for name, bound, asked in (("trunk_id", hook.trunk_id, body.trunk_id),
                                       ("assistant_id", hook.assistant_id, body.assistant_id)):
                if bound and asked and asked != bound:
                    raise HTTPException(422, f"{name}: this trigger URL places its calls "
                                        f"with {bound!r}; leave {name} out")
        trunk = pick_trunk(self.trunks, body.trunk_id or (hook.trunk_id if hook else None))
        field = "phone_number" if body.phone_number else "to"
        user = destination(trunk, body.number, field)
        assistant_id = body.assistant_id or (hook.assistant_id if hook else None) \
            or trunk.assistant_id
        assistant = await self.store.assistant_by_id(assistant_id)
        if assistant is None:
            raise HTTPException(422, f"assistant_id: no assistant with id {assistant_id!r}")
        now = datetime.now(UTC)
        policy = RetryPolicy(body.max_attempts, float(body.retry_after_seconds),
                             self._hours(body, trunk))
        wanted = self._when(body, now)
        first = first_attempt_at(policy, wanted)
        if first is None:  # parse() refuses windows that never open; kept for mypy
            raise HTTPException(422, "calling_hours: the window never opens")
        job = CallJob(phone_number=body.number, task=body.task, caller_name=body.caller_name,
                      metadata=body.metadata,
                      webhook_url=str(body.webhook_url) if body.webhook_url else None,
                      source=source, hook_id=hook.id if hook else None,
                      idempotency_key=idempotency_key, request_hash=request_hash,
                      ring_timeout_s=body.ring_timeout_s, retry=policy)
        from_uri, from_user = trunk.identity()
        row = models.Call(
            id=uuid.uuid4().hex, channel=trunk.channel, direction="outbound",
            from_uri=from_uri, to_uri=trunk.address_of(user),
            from_user=from_user, to_user=user, trunk_id=trunk.id,
            assistant_id=assistant.id, status="queued", invite_at=now, attempts=0,
            scheduled_at=wanted if wanted > now else None, next_attempt_at=first,
            **job.columns())
        try:
            await self.store.run(lambda s: s.add(row))
        except IntegrityError:
            # The same key raced in twice: the other request recorded its call first.
            if idempotency_key is None or request_hash is None:
                raise
            earlier = await self._by_key(idempotency_key, request_hash)
            if earlier is None:
                raise
            return earlier, False
        await self.queue.place(row, assistant)
        fresh = await self.store.get_call(row.id)
        return fresh or row, True

    async def callback(self, req: Callback) -> dict[str, Any]:
        """Queue the call back an assistant promised (``CallEngine.callbacks``): what the
        model is told, the new call's id and first attempt, or what went wrong."""
        try:
            body = CallCreate.model_validate({
                "phone_number": req.number, "task": req.reason,
                "caller_name": req.caller_name, "webhook_url": req.webhook_url,
                "metadata": {**req.metadata, "callback_of": req.of_call},
                "trunk_id": req.trunk_id, "assistant_id": req.assistant_id,
                "scheduled_at": req.at})
            row, _ = await self.start(body, "callback")
        except ValidationError as exc:
            return {"error": "; ".join(str(e["msg"]) for e in exc.errors())}
        except HTTPException as exc:
            return {"error": str(exc.detail)}
        first = row.next_attempt_at or req.at
        return {"ok": True, "call_id": row.id, "number": req.number,
                "first_attempt_at": as_utc(first).isoformat(timespec="minutes")}

    def _when(self, body: CallCreate, now: datetime) -> datetime:
        if body.delay_seconds is not None:
            return now + timedelta(seconds=body.delay_seconds)
        if body.scheduled_at is None:
            return now
        at = body.scheduled_at.astimezone(UTC)
        if at < now - timedelta(seconds=PAST_GRACE_S):
            raise HTTPException(422, f"scheduled_at: {at.isoformat()} is in the past")
        if at > now + timedelta(seconds=MAX_AHEAD_S):
            raise HTTPException(422, "scheduled_at: at most 90 days ahead")
        return max(at, now)

    def _hours(self, body: CallCreate, trunk: TrunkConfig) -> CallingHours | None:
        given = body.calling_hours.model_dump(exclude_none=True) if body.calling_hours \
            else self.default_hours
        if given is None:
            return None
        try:
            return CallingHours.parse(given, zones_for(body.number, trunk.country))
        except HoursError as exc:
            raise HTTPException(422, f"calling_hours: {exc}") from None

    async def _by_key(self, key: str, request_hash: str) -> models.Call | None:
        row = await self.store.run(lambda s: s.scalars(
            select(models.Call).where(models.Call.idempotency_key == key)).first())
        if row is not None and row.request_hash != request_hash:
            raise HTTPException(409, "Idempotency-Key was already used for a different "
                                "request; use a new key for a new call")
        return row


def outbound_router(starter: CallStarter) -> APIRouter:
    router = APIRouter(tags=["calls"])

    @router.post("/v1/calls", response_model=CallSummary, status_code=201,
                 responses={200: {"description": "the call made earlier with this "
                                  "Idempotency-Key and the same request"},
                            409: {"description": "the Idempotency-Key was used for another "
                                  "request"},
                            422: {"description": "a field is missing or wrong; the message "
                                  "names it"}})
    async def place(body: CallCreate, response: Response,
                    idempotency_key: Annotated[str | None, Header(
                        description="repeat a request safely: the same key and body give "
                        "the same call")] = None) -> CallSummary:
        """Call someone through a trunk. With `task`, the assistant works towards it and
        the call ends with an `outcome`; with `webhook_url`, the result is POSTed there.

        The call is `dialing` at once, or `queued` when it is scheduled for later, outside
        its `calling_hours`, or waiting for a free place (ATENDE_MAX_CALLS, the trunk's
        `max_concurrent_calls`). Unanswered, busy and failed attempts are retried up to
        `max_attempts` times, `retry_after_seconds` apart."""
        row, created = await starter.start(body, body.source, idempotency_key)
        if not created:
            response.status_code = 200
        return CallSummary.of(row)

    return router
