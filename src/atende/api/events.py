"""GET /v1/events: what happens on calls, live, as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from atende.api import examples as ex
from atende.calls.events import EventBus
from atende.store.db import Store

SAMPLE = (f"event: call.dialing\nid: 5f2a9c01-17\ndata: {{\"call_id\": \"{ex.CALL_ID}\", "
          "\"at\": 1763631000.1, \"attempt\": 1, \"to\": \"sip:+351912345678@pbx.example"
          ".com\"}\n\n")
KINDS = ("call.queued, call.dialing, call.ringing (incoming), call.answered, call.turn, "
         "call.outcome, call.hold, call.resume, call.dtmf, call.transfer_started, "
         "call.transfer, call.transfer_refused, call.retry_scheduled, call.finished; "
         "stream.reset and stream.lagged about the stream itself")


def events_router(bus: EventBus, store: Store) -> APIRouter:
    router = APIRouter(tags=["events"])

    async def known_call(call_id: Annotated[str | None, Query(
            description="only this call's events", examples=[ex.CALL_ID])] = None
            ) -> str | None:
        # A dependency: it answers 404 before the stream starts (a generator cannot).
        if call_id is not None and await store.get_call(call_id) is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        return call_id

    @router.get("/v1/events", response_class=EventSourceResponse,
                responses={200: {"description": "a text/event-stream: one event per thing "
                                 "that happens, `event:` its kind, `id:` for Last-Event-ID, "
                                 "`data:` JSON with call_id, at (Unix time) and details. "
                                 "Kinds: " + KINDS,
                                 "content": {"text/event-stream": {"example": SAMPLE}}},
                           404: {"description": "no call with that call_id"}})
    async def stream(
            # A default, not Annotated: known_call is local to this function, which a
            # postponed annotation could not name.
            call_id: str | None = Depends(known_call),
            last_event_id: Annotated[str | None, Header(
                description="resume after this event (browsers' EventSource sends it when "
                "they reconnect)")] = None) -> AsyncIterator[ServerSentEvent]:
        """Calls as they happen. A client that reconnects with `Last-Event-ID` gets what
        it missed from a short backlog; when that is not possible (atende restarted, the
        gap is too long) the stream starts with a `stream.reset` event, and the calls'
        state is in `GET /v1/calls`. A client too slow to keep up gets `stream.lagged` and
        is disconnected. A comment line is sent every 15 s to keep proxies from closing
        an idle stream."""
        async for event in bus.subscribe(call_id, last_event_id):
            yield ServerSentEvent(data=event.payload(), event=event.kind, id=event.id)

    return router
