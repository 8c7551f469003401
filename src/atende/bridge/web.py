"""The bridge's page on ``wasmServerPort``: a small WebRTC calling page and the routes it
signals over (browser.py does the calls).

    GET    /                  the page (and /call.js)
    POST   /calls             {"to", "sdp"} → 201 {"call_id", "state"}
    GET    /calls/{id}?seen=  the call once its state is other than ``seen`` (long poll)
    DELETE /calls/{id}        hang up, give up while it rings, or decline a call to us
    GET    /incoming?seen=    the next call to the page (its offer in it), or 204 (long
                              poll; a page that asks is one that calls to the bridge's
                              extension may ring)
    POST   /calls/{id}/answer {"sdp"} → the call, connecting (the first page to answer)

It listens on ``wasmServerIP`` when set (else atende's bind address), over HTTPS when
atende has a certificate configured (ATENDE_TLS_CERT) and HTTP otherwise: browsers give
a page the microphone only over HTTPS or on localhost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from atende.bridge.browser import BrowserCalls, check_call
from atende.bridge.page_auth import Caller, PageAuth
from atende.channels.webrtc import PAGE_SCRIPT

log = logging.getLogger(__name__)
T = TypeVar("T")
WAIT_S = 25.0  # a long poll returns after this with the state unchanged
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {**HEADERS, "Content-Security-Policy":
                "default-src 'self'; style-src 'self' 'unsafe-inline'; media-src 'self' blob:;"
                " frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def _static(name: str) -> bytes:
    return resources.files("atende.bridge").joinpath("static", name).read_bytes()


class _Refused(Exception):
    """A request the page's routes turn away: answered ``_error(status, message)``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str) -> JSONResponse:
    headers = dict(HEADERS)
    if status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{PageAuth.REALM}", charset="UTF-8"'
    return JSONResponse({"error": message}, status_code=status, headers=headers)


REFUSED = {401: "sign in with the bridge's listener user and secret",
           403: "not allowed from this address"}


async def _gone(request: Request) -> None:
    """Until the client of ``request`` (a GET, whose body there is none of) goes away."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless(closing: asyncio.Event, request: Request, wait: Awaitable[T]) -> T | None:
    """What ``wait`` gives, or None as soon as the page server closes or the page goes
    away: an open page holds a long poll at all times, and neither the server nor the
    count of pages waiting for calls may wait for it to run out."""
    task = asyncio.ensure_future(wait)
    stops = (asyncio.ensure_future(closing.wait()), asyncio.ensure_future(_gone(request)))
    try:
        await asyncio.wait((task, *stops), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for stop in stops:
            stop.cancel()
        if not task.done():
            task.cancel()
    return None if task.cancelled() or not task.done() else task.result()


def page_app(calls: BrowserCalls, auth: PageAuth, now: Callable[[], float]) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    closing = app.state.closing = asyncio.Event()  # set by PageServer.close
    page, script = _static("call.html"), _static("call.js")
    shared = PAGE_SCRIPT.read_bytes()

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> Response:
        return _error(exc.status, exc.message)

    def who(request: Request) -> Caller:
        """Who sent ``request``; _Refused if nobody allowed to use the page."""
        ip = request.client.host if request.client else ""
        token = request.headers.get("X-Bridge-Token") or request.query_params.get("token")
        found = auth.check(ip, request.headers.get("Authorization"), token, now())
        if isinstance(found, int):
            raise _Refused(found, REFUSED.get(found, "refused"))
        return found

    def mine(caller: Caller, call_id: str) -> bool:
        """A token follows its own call only."""
        return caller.grant is None or caller.grant.call_id == call_id

    @app.get("/")
    async def index(request: Request) -> Response:
        who(request)
        return Response(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @app.get("/call.js")
    async def code() -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8", headers=HEADERS)

    @app.get("/webrtc.js")
    async def shared_code() -> Response:
        return Response(shared, media_type="text/javascript; charset=utf-8", headers=HEADERS)

    @app.post("/calls")
    async def place(request: Request) -> Response:
        caller = who(request)
        body = await _json(request)
        if not isinstance(body, dict) or not all(
                isinstance(body.get(k), str) for k in ("to", "sdp")):
            return _error(400, 'send {"to": "<number>", "sdp": "<the offer>"} as JSON')
        to, sdp = body["to"].strip(), body["sdp"]
        problem = check_call(to, sdp)
        if problem is not None:
            return _error(400, problem)
        if caller.grant is not None:
            if to != caller.grant.to:
                return _error(403, f"this page may call {caller.grant.to} only")
            placed = calls.get(caller.grant.call_id)
            if placed is not None and placed.state != "opening":
                return _error(409, "this page's call was placed already")
        call = calls.start(to, _crlf(sdp), caller,
                           request.client.host if request.client else None)
        return JSONResponse(call.shown(), status_code=201, headers=HEADERS)

    def answerer(request: Request) -> Caller:
        """Who may take calls: any page but one atende opened for its one call."""
        caller = who(request)
        if caller.grant is not None:
            raise _Refused(403, "this page may place its one call only")
        return caller

    @app.get("/incoming")
    async def incoming(request: Request, seen: str = "") -> Response:
        answerer(request)
        call = await _unless(closing, request, calls.incoming(seen, WAIT_S))
        if call is None:
            return Response(status_code=204, headers=HEADERS)
        return JSONResponse(call.shown(), headers=HEADERS)

    @app.post("/calls/{call_id}/answer")
    async def answer(request: Request, call_id: str) -> Response:
        answerer(request)
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("sdp"), str):
            return _error(400, 'send {"sdp": "<the answer>"} as JSON')
        taken = await calls.take(call_id, _crlf(body["sdp"]))
        if isinstance(taken, tuple):
            return _error(*taken)
        return JSONResponse(taken.shown(), headers=HEADERS)

    @app.get("/calls/{call_id}")
    async def follow(request: Request, call_id: str, seen: str = "") -> Response:
        caller = who(request)
        if not mine(caller, call_id):
            return _error(404, "no such call (or it ended a while ago)")
        call = (await _unless(closing, request, calls.wait(call_id, seen, WAIT_S))
                or calls.get(call_id))
        if call is None:
            return _error(404, "no such call (or it ended a while ago)")
        return JSONResponse(call.shown(), headers=HEADERS)

    @app.delete("/calls/{call_id}")
    async def end(request: Request, call_id: str) -> Response:
        caller = who(request)
        if not mine(caller, call_id) or calls.get(call_id) is None:
            return _error(404, "no such call")
        if not await calls.end(call_id):
            return _error(409, "that call is already over")
        return JSONResponse({"ended": call_id}, headers=HEADERS)

    return app


async def _json(request: Request) -> Any:
    """The request's JSON body (None: it has none that parses)."""
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None


def _crlf(sdp: str) -> str:
    """SDP's lines end in CRLF; a browser's JSON may carry bare LFs."""
    return sdp.replace("\r\n", "\n").replace("\n", "\r\n")


class PageServer:
    """The page's HTTP(S) server on one address and port."""

    def __init__(self, host: str, port: int, app: FastAPI,
                 tls: tuple[Path, Path] | None) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self._app = app
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    async def start(self) -> None:
        """Listen (OSError: the address or port cannot be had)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        cert, key = self.tls if self.tls else (None, None)
        config = uvicorn.Config(self._app, log_config=None, access_log=False, lifespan="off",
                                ssl_certfile=cert, ssl_keyfile=key)
        server = uvicorn.Server(config)
        # atende's serve() owns SIGINT and SIGTERM: uvicorn must not take them.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                sock.close()
                self._task.result()
                raise OSError("the bridge's page server stopped while starting")
            await asyncio.sleep(0.02)
        log.info("SIP bridge: the calling page is at %s://%s:%d/", self.scheme, self.host,
                 self.port)

    async def close(self) -> None:
        if self._server is not None and self._task is not None:
            self._app.state.closing.set()  # long polls answer now
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._task
        self._server = self._task = None
