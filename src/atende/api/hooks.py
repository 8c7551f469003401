"""Webhook triggers (integration level 2): a secret URL that Zapier, n8n or Make POST the
call payload to — JSON or form-encoded — to start a call without writing code."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.api import examples as ex
from atende.api.outbound import CallCreate, CallStarter
from atende.api.schemas import CallSummary
from atende.store import models
from atende.store.apikeys import key_hash
from atende.store.db import Store, as_utc

PREFIX = "hk_"
MAX_BODY = 64 * 1024


class HookCreate(BaseModel):
    """A new trigger URL for an automation platform."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.HOOK_CREATE))

    name: str = Field(..., min_length=1, max_length=200, examples=["calendar"])
    trunk_id: str | None = Field(None, description="trunk for its calls (default: the "
                                 "only enabled trunk)")
    assistant_id: str | None = Field(None, description="assistant for its calls (default: "
                                     "the trunk's)")


class HookOut(BaseModel):
    """A trigger URL, its token masked."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.HOOK))

    id: str
    name: str
    url_path: str = Field(description="POST here; the token is shown at creation only, "
                          "masked afterwards")
    trunk_id: str | None
    assistant_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, h: models.Hook, token: str | None = None) -> HookOut:
        return cls(id=h.id, name=h.name,
                   url_path=f"/v1/hooks/{token or h.prefix + '…'}", trunk_id=h.trunk_id,
                   assistant_id=h.assistant_id, created_at=as_utc(h.created_at),
                   revoked_at=as_utc(h.revoked_at), last_used_at=as_utc(h.last_used_at))


OBJECT_FIELDS = ("metadata", "calling_hours")  # objects in the JSON payload


def form_payload(raw: bytes) -> dict[str, Any]:
    """A form-encoded body as the JSON payload. An object field (``metadata``,
    ``calling_hours``) is a JSON string, or one form field per key as ``metadata[key]``
    or ``metadata.key``."""
    out: dict[str, Any] = {}
    objects: dict[str, dict[str, Any]] = {}
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        name, _, sub = key.partition("[") if "[" in key else key.partition(".")
        if name not in OBJECT_FIELDS:
            if value != "":
                out[key] = value
            continue
        into = objects.setdefault(name, {})
        if not sub:
            try:
                parsed = json.loads(value) if value else {}
            except json.JSONDecodeError:
                raise HTTPException(422, f"{name}: not valid JSON") from None
            if not isinstance(parsed, dict):
                raise HTTPException(422, f"{name}: must be a JSON object")
            into.update(parsed)
        elif "[" in key and not key.endswith("]"):
            raise HTTPException(422, f"{key}: a form field for {name} is {name}[key]")
        else:
            into[sub.removesuffix("]")] = value
    out.update(objects)
    return out


class Hooks:
    """Trigger URLs made, listed and revoked: for the API and the dashboard. Refusals are
    HTTPExceptions whose detail says what to fix."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, body: HookCreate) -> HookOut:
        """A new trigger; its token is in ``url_path`` this once."""
        # Checked now: a hook pointing at nothing would only fail when the platform fires.
        if body.trunk_id is not None and await self.store.run(
                lambda s: s.get(models.Trunk, body.trunk_id)) is None:
            raise HTTPException(422, f"trunk_id: no trunk with id {body.trunk_id!r}")
        if body.assistant_id is not None and await self.store.assistant_by_id(
                body.assistant_id) is None:
            raise HTTPException(422, f"assistant_id: no assistant with id "
                                f"{body.assistant_id!r}")
        token = PREFIX + secrets.token_urlsafe(24)
        row = models.Hook(id=uuid.uuid4().hex[:12], name=body.name,
                          prefix=token[:len(PREFIX) + 4], token_hash=key_hash(token),
                          trunk_id=body.trunk_id, assistant_id=body.assistant_id,
                          created_at=datetime.now(UTC))
        await self.store.run(lambda s: s.add(row))
        return HookOut.of(row, token)

    async def all(self) -> list[HookOut]:
        rows = await self.store.run(lambda s: list(s.scalars(
            select(models.Hook).order_by(models.Hook.created_at))))
        return [HookOut.of(h) for h in rows]

    async def revoke(self, hook_id: str) -> None:
        """Its URL answers 404 from now on."""
        def fn(s: Session) -> bool:
            row = s.get(models.Hook, hook_id)
            if row is None:
                return False
            row.revoked_at = row.revoked_at or datetime.now(UTC)
            return True

        if not await self.store.run(fn):
            raise HTTPException(404, f"no hook with id {hook_id!r}")


def hooks_router(hooks: Hooks) -> APIRouter:
    """Managing hooks: needs an API key like the rest of /v1."""
    router = APIRouter(prefix="/v1/hooks", tags=["hooks"])

    @router.post("", response_model=HookOut, status_code=201)
    async def create(body: HookCreate) -> HookOut:
        """Make a trigger URL. Its token is in `url_path` this once: keep it secret."""
        return await hooks.create(body)

    @router.get("", response_model=list[HookOut])
    async def list_hooks() -> list[HookOut]:
        return await hooks.all()

    @router.delete("/{hook_id}", status_code=204, response_class=Response)
    async def revoke(hook_id: str) -> Response:
        """Revoke a trigger: its URL answers 404 from now on."""
        await hooks.revoke(hook_id)
        return Response(status_code=204)

    return router


def trigger_router(store: Store, starter: CallStarter) -> APIRouter:
    """The trigger itself: its token is the credential, so no API key."""
    router = APIRouter(tags=["hooks"])

    @router.post("/v1/hooks/{token}", response_model=CallSummary, status_code=202,
                 responses={404: {"description": "no such trigger (or it was revoked)"},
                            415: {"description": "send JSON or a form"},
                            422: {"description": "a field is missing or wrong"}},
                 openapi_extra={"requestBody": {"content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/"
                                                             "CallCreate"}},
                     "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}})
    async def trigger(token: str, request: Request) -> CallSummary:
        """Start a call with the same payload as `POST /v1/calls` (JSON, or form fields
        with `metadata` and `calling_hours` as JSON or as `metadata[key]` fields).
        Accepted: 202."""
        hook = await store.run(lambda s: s.scalars(select(models.Hook).where(
            models.Hook.token_hash == key_hash(token))).first())
        if hook is None or hook.revoked_at is not None:
            raise HTTPException(404, "no such hook")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise HTTPException(413, "body larger than 64 KB")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            payload: Any = form_payload(raw)
        elif ctype in ("application/json", "") or ctype.endswith("+json"):
            try:
                payload = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                raise HTTPException(422, f"body: not valid JSON ({exc.msg})") from None
        else:
            raise HTTPException(415, "send application/json or a form "
                                "(application/x-www-form-urlencoded)")
        try:
            body = CallCreate.model_validate(payload)
        except ValidationError as exc:
            raise HTTPException(422, [{k: e[k] for k in ("loc", "msg", "type")}
                                      for e in exc.errors()]) from None
        row, _ = await starter.start(body, "webhook", request.headers.get("idempotency-key"),
                                     hook)
        store.submit(_touch(hook.id))
        return CallSummary.of(row)

    return router


def _touch(hook_id: str) -> Any:
    def fn(s: Session) -> None:
        row = s.get(models.Hook, hook_id)
        if row is not None:
            row.last_used_at = datetime.now(UTC)

    return fn
