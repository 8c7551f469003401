"""The SIP bridge's configuration over HTTP, two ways to one BridgeService:

- ``POST``/``GET /call/bridge/config``: seed 004's route, its camelCase fields, answering
  exactly as the seed says (200 applied, 400 naming each invalid field, 401 without a
  valid key, 500 only for real faults);
- ``PUT``/``GET /v1/bridge``: the same in atende's own style (snake_case, 422).

Both answer with the configuration, its secrets masked, and the bridge's live status."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atende.bridge.service import BridgeProblem, BridgeService, BrowserCallProblem
from atende.bridge.settings import (
    MASK,
    SEED_FIELDS,
    BridgeIn,
    from_seed,
    problems,
    seed_field,
)

SEED_EXAMPLE: dict[str, Any] = {
    "enabled": True, "sipServer": "sip.example.com:5060", "sipUser": "whatsapp_trunk",
    "sipPass": "mySecurePassword123", "sipListenPort": 5080, "sipListenUser": "incoming_user",
    "sipListenSecret": "incomingSecret123", "sipExtension": "", "wasmServerPort": 9080,
    "wasmServerIP": "10.0.0.5", "chromeRemoteURL": "ws://10.1.0.7:9223",
    "nodeRemoteHelper": "http://10.1.0.7:3000"}
STATUS_EXAMPLE: dict[str, Any] = {
    "state": "listening", "problem": None,
    "listener": {"port": 5080, "transports": ["udp", "tcp"], "calls": 0,
                 "sip_server": {"address": "192.0.2.10:5060", "transport": "udp"},
                 "registration": None,
                 "registered_client": None},
    "closing": [], "webrtc": {"state": "serving", "page": "http://10.0.0.5:9080/",
                              "ice_addresses": ["10.0.0.5"], "calls": 0,
                              "chrome_remote_url": "ws://10.1.0.7:9223"}}


class BrowserCallIn(BaseModel):
    """A call to place from the calling page, opened in the remote Chrome."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to": "1001"}]})
    to: str = Field(pattern=r"^[0-9A-Za-z+*#._-]{1,64}$", examples=["1001"],
                    description="the number or extension to call on the SIP server")


def _seed_schema() -> dict[str, Any]:
    """BridgeIn's JSON schema in the seed's names (one model, two spellings)."""
    ours = BridgeIn.model_json_schema()
    props = {seed: ours["properties"][name] for seed, name in SEED_FIELDS.items()}
    for seed in ("sipPass", "sipListenSecret"):
        props[seed] = {**props[seed], "description": props[seed].get("description", "")
                       + f"; {MASK} or left out: keep the stored one"}
    return {"type": "object", "title": "BridgeConfig", "required": ["enabled"],
            "additionalProperties": False, "properties": props, "example": SEED_EXAMPLE}


def _seed_reply(service: BridgeService) -> dict[str, Any]:
    return {**service.config.shown_as_seed(), "status": service.status()}


def _our_reply(service: BridgeService) -> dict[str, Any]:
    return {**service.config.shown(), "status": service.status()}


def _bad(found: dict[str, str]) -> JSONResponse:
    """The seed's 400, naming each field (in the seed's names) and what to fix in it."""
    return JSONResponse(status_code=400, content={"detail": [
        {"loc": ["body", field], "msg": msg, "type": "value_error"}
        for field, msg in found.items()]})


def bridge_routers(service: BridgeService) -> list[APIRouter]:
    seed = APIRouter(tags=["bridge"])
    masked = {k: (MASK if k in ("sipPass", "sipListenSecret") else v)
              for k, v in SEED_EXAMPLE.items()}
    reply: dict[int | str, dict[str, Any]] = {200: {
        "description": "the configuration (secrets masked) and the bridge's live status",
        "content": {"application/json": {"example": {**masked, "status": STATUS_EXAMPLE}}}}}

    @seed.get("/call/bridge/config", responses=reply)
    async def seed_config() -> dict[str, Any]:
        """The SIP bridge's configuration (secrets masked) and what it is doing now."""
        return _seed_reply(service)

    @seed.post("/call/bridge/config", responses={
        **reply, 400: {"description": "invalid configuration: each invalid field is named "
                       "(in the seed's names)"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": _seed_schema()}}}})
    async def configure(request: Request) -> JSONResponse:
        """Configure the SIP bridge (seed 004) and apply it at once: the listener moves to
        a new port, registration follows new credentials, ``enabled: false`` refuses new
        bridge calls and lets those in progress end. Answers 400 (never 422) naming each
        invalid field."""
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _bad({"body": "send the configuration as a JSON object"})
        if not isinstance(body, dict):
            return _bad({"body": "send the configuration as a JSON object"})
        ours, found = from_seed(body)
        try:
            given = BridgeIn.model_validate(ours)
        except ValidationError as exc:
            found = {**{seed_field(k): v for k, v in problems(exc).items()}, **found}
        if found:
            return _bad(found)
        try:
            await service.update(given, keep_ours=True)
        except BridgeProblem as exc:
            return _bad({seed_field(k): v for k, v in exc.problems.items()})
        return JSONResponse(_seed_reply(service))

    ours = APIRouter(prefix="/v1/bridge", tags=["bridge"])
    example = {**BridgeIn.model_json_schema()["examples"][0], "sip_password": MASK,
               "listen_secret": MASK, "chrome_remote_url": "", "node_remote_helper": "",
               "status": STATUS_EXAMPLE}
    ours_reply: dict[int | str, dict[str, Any]] = {200: {
        "description": "the configuration (secrets masked) and the bridge's live status",
        "content": {"application/json": {"example": example}}}}

    @ours.get("", responses=ours_reply)
    async def get_bridge() -> dict[str, Any]:
        """The SIP bridge's configuration (secrets masked) and what it is doing now."""
        return _our_reply(service)

    @ours.put("", responses=ours_reply)
    async def put_bridge(body: BridgeIn) -> dict[str, Any]:
        """Configure the SIP bridge and apply it at once (as ``POST /call/bridge/config``
        does, in atende's field names)."""
        try:
            await service.update(body)
        except BridgeProblem as exc:
            raise HTTPException(422, str(exc)) from None
        return _our_reply(service)

    call_example = {"call_id": "3f2b9c1e5d7a4b6c8e0f1a2b3c4d5e6f", "to": "1001",
                    "state": "ringing"}
    shown_call: dict[str, Any] = {"content": {"application/json": {"example": call_example}}}

    @ours.post("/browser-calls", status_code=201, responses={
        201: {"description": "the page is opening in Chrome", **shown_call},
        409: {"description": "the bridge, its page or chrome_remote_url is not set up"},
        502: {"description": "Chrome could not be reached, or refused"}})
    async def browser_call(body: BrowserCallIn) -> dict[str, Any]:
        """Open the bridge's calling page in the Chrome at ``chrome_remote_url`` (over
        the DevTools Protocol), calling ``to``: that browser's microphone and speaker are
        bridged to the SIP server. Follow the call here or at ``/v1/calls/{call_id}``
        once it is placed; the tab is closed when it ends. 409 when the bridge or its
        Chrome is not configured, 502 when Chrome cannot be reached."""
        try:
            call = await service.open_browser_call(body.to)
        except BrowserCallProblem as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return call.shown()

    @ours.get("/browser-calls/{call_id}", responses={
        200: {"description": "the call's state", **shown_call},
        404: {"description": "no such browser call"}})
    async def browser_call_state(call_id: str) -> dict[str, Any]:
        """A browser call's state: opening, calling, ringing, answered, ended; refused or
        failed (with status and reason)."""
        call = service.browser.get(call_id)
        if call is None:
            raise HTTPException(404, "no such browser call (or it ended a while ago)")
        shown = call.shown()
        shown.pop("sdp", None)
        return shown

    @ours.delete("/browser-calls/{call_id}", responses={
        200: {"description": "hung up", "content": {"application/json": {"example": {
            "ended": call_example["call_id"]}}}},
        404: {"description": "no such browser call"},
        409: {"description": "that call is already over"}})
    async def end_browser_call(call_id: str) -> dict[str, Any]:
        """Hang up a browser call (or give up on it while it rings)."""
        if service.browser.get(call_id) is None:
            raise HTTPException(404, "no such browser call")
        if not await service.browser.end(call_id):
            raise HTTPException(409, "that call is already over")
        return {"ended": call_id}

    return [seed, ours]
