"""GET /v1/events: what happens on calls, live, as server-sent events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from atende.api import examples as ex
from atende.calls.events import EventBus, LiveEvent
from atende.store import apikeys
from atende.store.db import Store

KEY_CHECK_S = 5.0  # how soon a revoked key's open stream ends

SAMPLE = (f"event: call.dialing\nid: 5f2a9c01-17\ndata: {{\"call_id\": \"{ex.CALL_ID}\", "
          "\"at\": 1763631000.1, \"attempt\": 1, \"to\": \"sip:+351912345678@pbx.example"
          ".com\"}\n\n")
CALL_EVENTS = ("call.queued", "call.dialing", "call.ringing", "call.answered", "call.turn",
               "call.outcome", "call.hold", "call.resume", "call.dtmf",
               "call.transfer_started", "call.transfer", "call.transfer_refused",
               "call.retry_scheduled", "call.finished")
STREAM_EVENTS = ("stream.reset", "stream.lagged", "stream.revoked")
KINDS = (", ".join(CALL_EVENTS).replace("call.ringing", "call.ringing (incoming)") + "; "
         + ", ".join(STREAM_EVENTS[:-1]) + f" and {STREAM_EVENTS[-1]} about the stream itself")


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
            request: Request,
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
        an idle stream. When the key the stream was opened with is revoked, the stream
        ends within a few seconds with `stream.revoked`."""
        key_id = request.scope.get("state", {}).get("api_key_id")

        async def key_live() -> bool:
            return key_id is None or await store.run(apikeys.is_live(key_id))

        # aclosing: a client that goes away closes this generator, and with it the
        # subscription at once (not whenever the inner generator is collected).
        async with aclosing(watch(bus, call_id, last_event_id, key_live)) as events:
            async for event in events:
                yield event

    return router


async def watch(bus: EventBus, call_id: str | None, last_event_id: str | None,
                allowed: Callable[[], Awaitable[bool]]) -> AsyncGenerator[ServerSentEvent]:
    """The bus's events as server-sent events, for as long as ``allowed`` (asked every few
    seconds while the stream is quiet: a revoked key, a closed session) says so; then a
    last ``stream.revoked``."""
    events = bus.subscribe(call_id, last_event_id)
    next_event: asyncio.Future[LiveEvent] | None = None
    try:
        while True:
            next_event = next_event or asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait([next_event], timeout=KEY_CHECK_S)
            if next_event in done:
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    return
                next_event = None
                yield ServerSentEvent(data=event.payload(), event=event.kind, id=event.id)
            elif not await allowed():
                yield ServerSentEvent(data=json.dumps({"at": time.time()}),
                                      event="stream.revoked")
                return
    finally:
        if next_event is not None:  # let it finish before the generator is closed
            next_event.cancel()
            await asyncio.gather(next_event, return_exceptions=True)
        await events.aclose()
