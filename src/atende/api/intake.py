"""What a request must be before any route reads it: from someone with an API key (where a
key is needed), no bigger than its route takes, and JSON that atende can store and read
back. Checked in this order, so that a stranger's request costs no more than its headers
and an oversized body is never held whole in memory."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atende.store.db import unavailable

# A request body past its route's limit is refused with 413 as it arrives.
DEFAULT_BODY_BYTES = 256 * 1024
BODY_BYTES_BY_PREFIX = (("/v1/assistants", 1024 * 1024),)  # prompts and rules run long
MAX_JSON_DEPTH = 32  # free-form metadata and rules: deep enough for any real use
# Routes whose specification answers bad input with 400 rather than atende's 422.
PLAIN_400_PREFIXES = ("/call/",)


@dataclass(frozen=True)
class Caller:
    """Who sent a request: their API key, and the FusionPBX domain it is limited to."""

    key_id: str
    domain: str | None = None


class KeyCheck:
    """Verdict on a request's Authorization header: who sent it, or why not (401)."""

    def __init__(self, lookup: Callable[[str], Awaitable[Caller | None]]) -> None:
        self._lookup = lookup  # a key → its caller, None when unknown or revoked

    async def __call__(self, authorization: str | None) -> tuple[Caller | None, str, str]:
        """(caller, problem, WWW-Authenticate): a caller, or a problem to answer 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, ("missing API key: send 'Authorization: Bearer <key>' (make one "
                          "with `atende apikey create --name NAME`)"), "Bearer"
        caller = await self._lookup(token.strip())
        if caller is None:
            return None, "unknown or revoked API key", 'Bearer error="invalid_token"'
        return caller, "", ""


def json_problem(body: bytes) -> str | None:
    """Why a JSON body cannot be taken, or None (also for one that is not JSON at all: the
    route's own parser says what is wrong with it)."""
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number: send a number or null")

    try:
        value = json.loads(body, parse_constant=no_constant)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
            return None
        return str(exc)
    except RecursionError:
        return f"nested too deeply: at most {MAX_JSON_DEPTH} levels of objects and lists"
    return _value_problem(value)


def _value_problem(value: Any) -> str | None:
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return (f"nested too deeply: at most {MAX_JSON_DEPTH} levels of objects "
                        "and lists")
            children: Iterable[Any] = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict):
                todo.extend((k, depth) for k in item)
            todo.extend((c, depth + 1) for c in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return ("a string holds a lone UTF-16 surrogate (e.g. \\ud800), which is "
                        "not text: send valid Unicode")
    return None


@dataclass(frozen=True)
class Routes:
    """Which routes need an API key: the keyed ones, unless a public one (a hook's own
    token) matches first."""

    keyed: tuple[BaseRoute, ...]
    public: tuple[BaseRoute, ...]

    def need_key(self, scope: Scope) -> bool:
        if any(r.matches(scope)[0] == Match.FULL for r in self.public):
            return False
        return any(r.matches(scope)[0] != Match.NONE for r in self.keyed)


def body_limit(path: str) -> int:
    return next((n for prefix, n in BODY_BYTES_BY_PREFIX if path.startswith(prefix)),
                DEFAULT_BODY_BYTES)


class Intake:
    """The ASGI middleware that applies these checks before the application runs."""

    def __init__(self, app: ASGIApp, keys: KeyCheck, routes: Routes) -> None:
        self.app = app
        self.keys = keys
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if self.routes.need_key(scope):
            try:
                caller, problem, challenge = await self.keys(headers.get("authorization"))
            except Exception as exc:
                if not unavailable(exc):
                    raise
                await answer(send, 503, "the database is unreachable; try again shortly",
                              [(b"retry-after", b"5")])
                return
            if caller is None:
                await answer(send, 401, problem, [(b"www-authenticate", challenge.encode())])
                return
            scope.setdefault("state", {})["api_key_id"] = caller.key_id
            scope["state"]["api_key_domain"] = caller.domain
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        too_big = f"the body is larger than this route takes ({limit} bytes)"
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await answer(send, 413, too_big)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > limit:
                await answer(send, 413, too_big)
                return
            if not message.get("more_body", False):
                break
        kind = headers.get("content-type", "application/json").lower()
        if body and "json" in kind and (unfit := json_problem(bytes(body))) is not None:
            bad = 400 if scope["path"].startswith(PLAIN_400_PREFIXES) else 422
            await answer(send, bad, unfit)
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # the disconnect, when it comes

    return again


async def answer(send: Send, status: int, detail: str,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """A whole JSON response ``{"detail": …}`` sent from ASGI middleware."""
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        *(extra or [])]})
    await send({"type": "http.response.body", "body": payload})
