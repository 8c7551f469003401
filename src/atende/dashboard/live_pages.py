"""Live calls: the calls atende is handling now (on every node that shares the store),
following the event stream without a reload, each with a hang-up button (the API's
cancel, passed on to the call's node when it is another)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from atende.api.events import CALL_EVENTS, watch
from atende.api.live import CallControl
from atende.api.schemas import CallSummary
from atende.calls.events import EventBus
from atende.dashboard.web import SignedIn, Web
from atende.store.db import CallFilter
from atende.store.models import LIVE_STATUSES

WORDS = {"call.queued": "queued", "call.dialing": "dialling", "call.ringing": "ringing",
         "call.answered": "answered", "call.turn": "turn",
         "call.outcome": "outcome settled", "call.hold": "put on hold",
         "call.resume": "taken off hold", "call.dtmf": "key pressed",
         "call.transfer_started": "transfer started", "call.transfer": "transferred",
         "call.transfer_refused": "transfer refused",
         "call.retry_scheduled": "retry scheduled", "call.finished": "ended"}
assert set(WORDS) == set(CALL_EVENTS)


def live_pages(web: Web, bus: EventBus, control: CallControl) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def rows() -> list[CallSummary]:
        found, _ = await web.store.list_calls(CallFilter(statuses=LIVE_STATUSES), 500, 0)
        return [CallSummary.of(c) for c in found]

    def nodes_shown(calls: list[CallSummary]) -> bool:
        """Whether to say which node has each call: when any is not this one's."""
        return any(c.node_id not in (None, web.store.node_id) for c in calls)

    async def show(who: SignedIn, status: int = 200,
                   done: str | None = None, error: str | None = None) -> Response:
        calls = await rows()
        return web.page("live.html", status, who=who, calls=calls, nodes=nodes_shown(calls),
                        now=datetime.now(UTC), words=WORDS, done=done, error=error)

    @router.get("/live")
    async def page(request: Request) -> Response:
        return await show(await web.need(request))

    @router.get("/live/table")
    async def table(request: Request) -> Response:
        """The table alone, for the page to swap in when something happens."""
        who = await web.need(request)
        calls = await rows()
        return web.page("live_table.html", who=who, calls=calls, nodes=nodes_shown(calls),
                        now=datetime.now(UTC))

    async def signed_in(request: Request) -> SignedIn:
        # A dependency: a generator could not answer with a redirect once it streams.
        return await web.need(request)

    @router.get("/live/events", response_class=EventSourceResponse)
    async def events(request: Request,
                     # A default, not Annotated (as in api/events.py): signed_in is
                     # local, which a postponed annotation could not name.
                     who: SignedIn = Depends(signed_in),  # noqa: B008
                     ) -> AsyncIterator[ServerSentEvent]:
        """The API's event stream, opened by a signed-in session (until it ends)."""

        async def still_signed_in() -> bool:
            now = await web.signed_in(request)
            return now is not None and now.session.id == who.session.id

        last = request.headers.get("last-event-id")
        async with aclosing(watch(bus, None, last, still_signed_in)) as stream:
            async for event in stream:
                yield event

    @router.post("/calls/{call_id}/hangup")
    async def hang_up(request: Request, call_id: str) -> Response:
        who, _ = await web.posted(request, admin=True)
        try:
            doing = await control.cancel(call_id)
        except HTTPException as exc:  # its node could not be asked
            return await show(who, exc.status_code, error=str(exc.detail))
        if doing is None:
            return await show(who, 409, error="that call is already over")
        said = {"queued": "The queued call will not be placed.",
                "dialing": "The call is being cancelled."}.get(doing, "Hanging up the call.")
        return await show(who, done=said)

    return router
