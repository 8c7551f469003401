"""FastAPI application: health and calls; every /v1 route needs an API key."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError

from atende import __version__
from atende.api import examples as ex
from atende.api.auth import key_check, key_checker
from atende.api.domains import caller_domain
from atende.api.faults import Faults
from atende.api.intake import Intake, Routes
from atende.api.openapi import IsoTime, install, require_zones
from atende.api.schemas import CallDetail, CallList, CallSummary
from atende.store.db import CallFilter, Store

log = logging.getLogger(__name__)
CALL_STATUSES = ("queued", "ringing", "dialing", "in_progress", "completed", "cancelled",
                 "rejected", "failed", "busy", "no_answer")


# A part of atende /health reports on: its name, what to show of it, and its problem
# (None: all is well).
HealthProbe = Callable[[], tuple[str, object, str | None]]


def create_api(store: Store, routers: list[APIRouter] | None = None,
               public: list[APIRouter] | None = None,
               probes: Sequence[HealthProbe] = ()) -> FastAPI:
    """``routers`` need an API key; ``public`` ones carry their own credential (a hook's
    token) and are matched first. ``probes``: what /health reports besides the
    database."""
    # No redirect from /v1/trunks/ to /v1/trunks: a client with an empty id in its URL
    # gets a 404, not somebody else's resource.
    app = FastAPI(title="atende", version=__version__, redirect_slashes=False,
                  description="Self-hosted voice-AI for phone lines.")

    @app.get("/health", tags=["system"], responses={
        200: {"content": {"application/json": {"example": {
            "status": "ok", "checks": {"database": "ok"}}}}},
        503: {"description": "a dependency is failing: the database does not answer, or "
                             "writes wait for it; FreeSWITCH's event socket (when ESL_HOST "
                             "is set) is not connected", "content": {"application/json": {
                                 "example": {"status": "degraded", "checks": {
                                     "database": "database unreachable: connection refused"},
                                     "problems": [
                                         "database unreachable: connection refused"]}}}}})
    async def health() -> JSONResponse:
        problem = await store.health()
        checks: dict[str, object] = {"database": problem or "ok"}
        problems = [problem] if problem else []
        for probe in probes:
            name, shown, trouble = probe()
            checks[name] = shown
            if trouble:
                problems.append(trouble)
        if not problems:
            return JSONResponse({"status": "ok", "checks": checks})
        return JSONResponse({"status": "degraded", "checks": checks, "problems": problems},
                            status_code=503)

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unreachable for %s %s: %s", request.method, request.url.path,
                  str(exc).splitlines()[0][:200])
        return JSONResponse({"detail": "the database is unreachable; try again shortly"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Without the input pydantic would echo: it may be a rejected password or key, or
        # (for a check across fields) the whole body with its secrets.
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(
            [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()])})

    v1 = APIRouter()

    @v1.get("/v1/calls", response_model=CallList, tags=["calls"])
    async def list_calls(
        request: Request,
        status: Annotated[str | None, Query(description=f"one of {', '.join(CALL_STATUSES)}",
                                            examples=["completed"])] = None,
        outcome: Annotated[str | None, Query(description="e.g. confirmed, no_answer",
                                             examples=["confirmed"])] = None,
        source: Annotated[str | None, Query(description="manual, webhook or api",
                                            examples=["webhook"])] = None,
        direction: Annotated[str | None, Query(description="inbound or outbound",
                                               examples=["outbound"])] = None,
        trunk_id: Annotated[str | None, Query(examples=[ex.TRUNK_ID])] = None,
        since: Annotated[IsoTime | None, Query(description="placed or received at or after "
                                               "(ISO 8601 with zone)",
                                               examples=["2026-11-01T00:00:00Z"])] = None,
        until: Annotated[IsoTime | None, Query(description="… and before",
                                               examples=["2026-12-01T00:00:00Z"])] = None,
        limit: Annotated[int, Query(ge=1, le=500, examples=[50])] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000, examples=[0])] = 0,
    ) -> CallList:
        """Newest first. Also filters by metadata: `?metadata.event_id=evt_123` (any
        number of `metadata.<key>=<value>`, compared as text)."""
        if status is not None and status not in CALL_STATUSES:
            raise HTTPException(422, f"status must be one of {', '.join(CALL_STATUSES)}")
        require_zones(since=since, until=until)
        meta = tuple((k[9:], v) for k, v in request.query_params.multi_items()
                     if k.startswith("metadata.") and len(k) > 9)
        filters = CallFilter(status, outcome, source, direction, trunk_id, since, until, meta,
                             domain=caller_domain(request))
        rows, total = await store.list_calls(filters, limit, offset)
        return CallList(items=[CallSummary.of(c) for c in rows], total=total, limit=limit,
                        offset=offset)

    @v1.get("/v1/calls/{call_id}", response_model=CallDetail, tags=["calls"])
    async def get_call(call_id: str, request: Request) -> CallDetail:
        call = await store.get_call(call_id, caller_domain(request))
        if call is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        return CallDetail.of(call)

    for router in public or []:
        app.include_router(router)
    auth = [Depends(key_checker(store))]
    keyed = [v1, *(routers or [])]
    for router in keyed:
        app.include_router(router, dependencies=auth)
    app.add_middleware(Intake, keys=key_check(store), routes=Routes(
        keyed=tuple(r for router in keyed for r in router.routes),
        public=tuple(r for router in public or [] for r in router.routes)))
    app.add_middleware(Faults)  # added last: outermost, around the intake too
    install(app, {r.path for router in keyed for r in router.routes
                  if isinstance(r, APIRoute)})
    return app
