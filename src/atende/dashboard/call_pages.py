"""Calls: the list, filtered as the API filters it (status, outcome, source, direction,
trunk, assistant, days), and a call's page: who, how it ended, its outcome and fields, the
conversation with the recording beside it, each reply's latency as a waterfall with the
call's p50/p95, its attempts, and its result webhooks with sending one again."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

from atende.agent import tools
from atende.api.app import CALL_STATUSES
from atende.api.deliveries import Deliveries, DeliveryOut
from atende.api.recordings import recording_file
from atende.api.schemas import CallDetail, CallSummary
from atende.calls import automation
from atende.dashboard.latency import latency_figures, waterfall
from atende.dashboard.web import PageError, SignedIn, Web, first, refusal, whole
from atende.store.db import CallFilter

PAGE = 100
OUTCOMES = tuple(dict.fromkeys(automation.OUTCOMES + tools.OUTCOMES))
SOURCES = ("manual", "webhook", "api")
DIRECTIONS = ("inbound", "outbound")


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def read_filters(params: dict[str, str]) -> tuple[CallFilter, dict[str, str], list[str]]:
    """The list's filters from its query: (for the store, as chosen — to show and to page
    with —, what could not be read, in words)."""
    chosen: dict[str, str] = {}
    problems: list[str] = []
    for key, allowed in (("status", CALL_STATUSES), ("outcome", OUTCOMES),
                         ("source", SOURCES), ("direction", DIRECTIONS)):
        value = params.get(key, "")
        if value and value not in allowed:
            problems.append(f"{key}: {value!r} is not one of {', '.join(allowed)}")
        elif value:
            chosen[key] = value
    for key in ("trunk_id", "assistant_id"):
        if params.get(key):
            chosen[key] = params[key][:64]
    days: dict[str, datetime] = {}
    for key in ("since", "until"):
        text = params.get(key, "")
        day = _day(text)
        if text and day is None:
            problems.append(f"{key}: a date like 2026-12-01")
        elif day is not None:
            chosen[key] = text
            # "until" a day includes that day
            days[key] = datetime.combine(day + timedelta(days=key == "until"), time(),
                                         tzinfo=UTC)
    filters = CallFilter(status=chosen.get("status"), outcome=chosen.get("outcome"),
                         source=chosen.get("source"), direction=chosen.get("direction"),
                         trunk_id=chosen.get("trunk_id"), since=days.get("since"),
                         until=days.get("until"), assistant_id=chosen.get("assistant_id"))
    return filters, chosen, problems


def call_pages(web: Web, deliveries: Deliveries, recordings: Path) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/calls")
    async def listing(request: Request) -> Response:
        who = await web.need(request)
        params = dict(request.query_params)
        filters, chosen, problems = read_filters(params)
        offset = min(whole(params.get("offset", "")) or 0, 10_000_000)
        rows, total = await web.store.list_calls(filters, PAGE, offset)
        names = {a.id: a.name for a in await web.store.assistants()}
        trunk_names = {t.id: t.name for t in await web.store.trunks()}
        older = urlencode({**chosen, "offset": offset + PAGE}) \
            if offset + PAGE < total else None
        newer = urlencode({**chosen, "offset": max(0, offset - PAGE)}) if offset else None
        return web.page("calls.html", 400 if problems else 200, who=who,
                        calls=[CallSummary.of(c) for c in rows], total=total, offset=offset,
                        chosen=chosen, statuses=CALL_STATUSES, outcomes=OUTCOMES,
                        sources=SOURCES, directions=DIRECTIONS, assistants=names,
                        trunks=trunk_names, older=older, newer=newer,
                        error="; ".join(problems) or None)

    async def show(who: SignedIn, call_id: str, status: int = 200, done: str | None = None,
                   error: str | None = None) -> Response:
        row = await web.store.get_call(call_id)
        if row is None:
            return web.page("missing.html", 404, who=who, what=f"no call with id {call_id!r}")
        detail = CallDetail.of(row)
        replies, scale = waterfall(detail.turns)
        sent: list[DeliveryOut] = await deliveries.of_call(call_id)
        # a call no assistant took has none (assistant_by_id(None) is the default one)
        assistant = await web.store.assistant_by_id(detail.assistant_id) \
            if detail.assistant_id else None
        trunk = next((t for t in await web.store.trunks() if t.id == detail.trunk_id), None)
        offsets: dict[int, float] = {}
        if detail.answer_at is not None:  # the recording starts when the call is answered
            offsets = {t.seq: max(0.0, (t.started_at - detail.answer_at).total_seconds())
                       for t in detail.turns}
        return web.page("call.html", status, who=who, call=detail,
                        figures=latency_figures(detail.turns), replies=replies, scale=scale,
                        deliveries=sent, assistant=assistant, trunk=trunk, offsets=offsets,
                        recorded=row.recorded and detail.end_at is not None, done=done,
                        error=error)

    @router.get("/calls/{call_id}")
    async def page(request: Request, call_id: str) -> Response:
        return await show(await web.need(request), call_id)

    @router.get("/calls/{call_id}/recording")
    async def recording(request: Request, call_id: str) -> Response:
        await web.need(request)
        try:
            path = await recording_file(web.store, recordings, call_id)
        except HTTPException as exc:
            raise PageError(exc.status_code, refusal(exc)) from None
        return FileResponse(path, media_type="audio/wav")

    @router.post("/calls/{call_id}/deliveries")
    async def redeliver(request: Request, call_id: str) -> Response:
        who, form = await web.posted(request, admin=True)
        url = first(form, "url").strip() or None
        try:
            sent = await deliveries.redeliver(call_id, url)
        except HTTPException as exc:
            return await show(who, call_id, 400, error=refusal(exc))
        return await show(who, call_id, 201,
                          done=f"The result is being sent again to {sent.url}.")

    return router

