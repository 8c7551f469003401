"""The API's last line: a route that fails unexpectedly answers a plain 500 (its traceback
in atende's log) and the client's keep-alive connection stays usable. Left to the server,
the exception would reach uvicorn, which drops the connection after the 500."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atende.api.intake import answer

log = logging.getLogger(__name__)


class Faults:
    """ASGI middleware, outermost of atende's own: contains what escapes the routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("error answering %s %s", scope["method"], scope["path"])
            if started:
                raise  # half a response went out: only closing the connection ends it
            await answer(send, 500, "internal error (it is in atende's log)")
