"""Automation (seed 002): place a call with a task by hand, the trigger URLs automation
platforms POST to (made, copied once, revoked), the API keys, and the calls waiting for
their time or their next attempt. Through the API's own services."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import ValidationError

from atende.api.hooks import HookCreate, HookOut, Hooks
from atende.api.outbound import CallCreate, CallStarter
from atende.api.schemas import CallSummary
from atende.channels.secretary import domain_uuid
from atende.dashboard.web import (
    SignedIn,
    Web,
    blame,
    first,
    problems_of,
    refusal,
    whole,
)
from atende.store import apikeys
from atende.store.db import CallFilter

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def read_call(form: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The task call form as CallCreate's payload (source manual), and what could not be
    read, by field."""
    def one(key: str) -> str:
        return first(form, key).strip()

    problems: dict[str, str] = {}
    payload: dict[str, Any] = {"source": "manual"}
    for key in ("phone_number", "task", "caller_name", "webhook_url", "trunk_id",
                "assistant_id"):
        if one(key):
            payload[key] = one(key)
    metadata: dict[str, str] = {}
    for line in one("metadata").splitlines():
        if not line.strip():
            continue
        key, eq, value = line.partition("=")
        if not eq or not key.strip():
            problems["metadata"] = f"metadata: write key=value, one per line ({line!r})"
            break
        metadata[key.strip()] = value.strip()
    payload["metadata"] = metadata
    for key, default in (("max_attempts", "1"), ("retry_after_minutes", "5")):
        number = whole(one(key) or default)
        if number is None:
            problems[key] = f"{key.replace('_', ' ')}: a whole number"
        elif key == "max_attempts":
            payload[key] = number
        else:
            payload["retry_after_seconds"] = number * 60
    if one("when") == "at":
        zone_name = one("timezone") or "UTC"
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            problems["timezone"] = f"time zone: {zone_name!r} is not one such as " \
                                   "Europe/Lisbon"
            zone = None
        try:
            at = datetime.fromisoformat(one("scheduled_at"))
        except ValueError:
            problems["scheduled_at"] = "when: choose a day and a time"
        else:
            if zone is not None:
                payload["scheduled_at"] = at.replace(tzinfo=zone).isoformat()
    if one("hours_start") or one("hours_end"):
        payload["calling_hours"] = {"start": one("hours_start"), "end": one("hours_end"),
                                    "days": [d for d in form.get("hours_days", [])
                                             if d in DAYS] or None}
    return payload, problems


def automation_pages(web: Web, starter: CallStarter, hooks: Hooks) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def show(request: Request, who: SignedIn, status: int = 200, **values: Any
                   ) -> Response:
        queued, _ = await web.store.list_calls(CallFilter(status="queued"), 200, 0)
        keys = await web.store.run(apikeys.all_keys)
        trunks = [t for t in await web.store.trunks() if t.enabled]
        assistants = await web.store.assistants()
        # Trigger URLs as the browser reaches this server (behind a proxy: its address)
        base = str(request.base_url).rstrip("/")
        values.setdefault("call", {"max_attempts": "1", "retry_after_minutes": "5",
                                   "when": "now", "timezone": "UTC"})
        return web.page("automation.html", status, who=who, hooks=await hooks.all(),
                        keys=keys, masked=apikeys.masked,
                        queued=[CallSummary.of(c) for c in queued], trunks=trunks,
                        assistants=assistants, base=base, days=DAYS,
                        example=json.dumps({"phone_number": "+351912345678",
                                            "task": "Confirm tomorrow's 10:00 appointment",
                                            "caller_name": "Ana",
                                            "metadata": {"appointment_id": "A-1"}}, indent=2),
                        problems=values.pop("problems", {}), **values)

    @router.get("/automation")
    async def page(request: Request) -> Response:
        return await show(request, await web.need(request))

    @router.post("/automation/calls")
    async def place(request: Request) -> Response:
        who, form = await web.posted(request, admin=True)
        payload, problems = read_call(form)
        shown: dict[str, Any] = {k: first(form, k) for k in form if k != "csrf"}
        shown["hours_days"] = form.get("hours_days", [])
        if not problems:
            try:
                row, _ = await starter.start(CallCreate.model_validate(payload), "manual")
            except ValidationError as exc:
                problems = problems_of(exc)
            except HTTPException as exc:
                problems = blame(exc, payload)
            else:
                return web.to(f"/calls/{row.id}")
        return await show(request, who, 400, call=shown, problems=problems,
                          error="The call was not placed: fix what is marked below.")

    @router.post("/automation/hooks")
    async def make_hook(request: Request) -> Response:
        who, form = await web.posted(request, admin=True)
        try:
            made: HookOut = await hooks.create(HookCreate.model_validate({
                "name": first(form, "name").strip(),
                "trunk_id": first(form, "trunk_id") or None,
                "assistant_id": first(form, "assistant_id") or None}))
        except ValidationError as exc:
            return await show(request, who, 400, error="; ".join(
                f"{k}: {v}" for k, v in problems_of(exc).items()))
        except HTTPException as exc:
            return await show(request, who, 400, error=refusal(exc))
        return await show(request, who, 201, made_hook=made,
                          done=f"Trigger {made.name!r} made: copy its URL now, it is "
                               "not shown again.")

    @router.post("/automation/hooks/{hook_id}/revoke")
    async def revoke_hook(request: Request, hook_id: str) -> Response:
        who, _ = await web.posted(request, admin=True)
        try:
            await hooks.revoke(hook_id)
        except HTTPException as exc:
            return await show(request, who, 404, error=refusal(exc))
        return await show(request, who,
                          done="The trigger is revoked: its URL answers 404 from now on.")

    @router.post("/automation/keys")
    async def make_key(request: Request) -> Response:
        who, form = await web.posted(request, admin=True)
        name = first(form, "name").strip()
        domain = first(form, "domain").strip() or None
        if not name or len(name) > 200:
            return await show(request, who, 400, error="name: give the key a name (up to 200 "
                                              "characters)")
        if domain is not None:
            try:
                domain = domain_uuid(domain)
            except ValueError as exc:
                return await show(request, who, 400, error=f"domain: {exc}")
        key = apikeys.new_key()
        await web.store.run(apikeys.create(name, key, domain))
        return await show(request, who, 201, made_key=key,
                          done=f"API key {name!r} made: copy it now, it is not shown again.")

    @router.post("/automation/keys/{key_id}/revoke")
    async def revoke_key(request: Request, key_id: str) -> Response:
        who, _ = await web.posted(request, admin=True)
        row = await web.store.run(apikeys.revoke(key_id))
        if row is None:
            return await show(request, who, 404, error=f"no API key with id {key_id!r}")
        return await show(request, who, done=f"API key {row.name!r} is revoked: requests "
                                             "with it are refused from now on.")

    return router
