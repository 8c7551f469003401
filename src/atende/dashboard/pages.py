"""The dashboard's front door, served by atende at :8100/: sign-in (and the first admin,
made by whoever holds the server's API key), the users, and the static files. Each other
section has its module (calls, live calls, trunks …). Server-rendered (Jinja2), working
without script, no external asset. Every form that changes something carries the
session's CSRF token; viewers change nothing."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from atende.channels.webrtc import PAGE_SCRIPT
from atende.dashboard import accounts
from atende.dashboard.web import (
    COOKIE,
    HERE,
    PageError,
    SignedIn,
    Web,
    form_of,
    same_origin,
)
from atende.store import users
from atende.store.models import User

log = logging.getLogger(__name__)

SESSION_TTL = timedelta(hours=12)
STATIC = {"atende.css": (HERE / "static" / "atende.css", "text/css"),
          "atende.js": (HERE / "static" / "atende.js", "text/javascript"),
          "webrtc.js": (PAGE_SCRIPT, "text/javascript")}


def dashboard_router(web: Web, api_key_ok: Callable[[str], Awaitable[bool]],
                     clock: Callable[[], float] | None = None,
                     limiter: accounts.LoginLimiter | None = None) -> APIRouter:
    """Signing in and the users. ``api_key_ok``: whether a key is a live API
    key of no domain (the first admin is made by whoever has one); ``clock``: monotonic
    seconds, for the sign-in limiter."""
    now_s = clock or time.monotonic
    guard = limiter or accounts.LoginLimiter()
    router = APIRouter(include_in_schema=False)
    store = web.store
    page, to, signed_in, need = web.page, web.to, web.signed_in, web.need

    async def posted(request: Request, admin: bool = False
                     ) -> tuple[SignedIn, dict[str, str]]:
        who, form = await web.posted(request, admin)
        return who, {k: v[0] for k, v in form.items()}

    async def sign_in(request: Request, user: User) -> RedirectResponse:
        token, csrf = accounts.new_token(), accounts.new_token()
        await store.run(users.open_session(accounts.token_id(token), user.id, csrf,
                                           datetime.now(UTC), SESSION_TTL))
        response = to("/calls")
        response.set_cookie(COOKIE, token, max_age=int(SESSION_TTL.total_seconds()),
                            httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https")
        return response

    @router.get("/")
    async def home(request: Request) -> Response:
        if await store.run(users.count) == 0:
            return to("/setup")
        return to("/calls" if await signed_in(request) else "/login")

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise PageError(404, "no such file")
        path, media_type = STATIC[name]
        return FileResponse(path, media_type=media_type,
                            headers={"Cache-Control": "max-age=3600"})

    # Signing in ---------------------------------------------------------------------------
    @router.get("/setup")
    async def setup_form() -> Response:
        if await store.run(users.count) > 0:
            return to("/login")
        return page("setup.html")

    @router.post("/setup")
    async def setup(request: Request) -> Response:
        """The first admin: whoever holds the server's API key (data/api.key)."""
        if await store.run(users.count) > 0:
            return to("/login")
        form = await form_of(request)
        username = form.get("username", "").strip()
        password = form.get("password", "")
        problem = None
        if not same_origin(request):
            problem = "the form came from another site"
        elif not await api_key_ok(form.get("api_key", "").strip()):
            problem = "that is not the server's API key (it is in data/api.key)"
        elif not username:
            problem = "choose a user name"
        else:
            problem = accounts.password_problem(password, username)
        if problem is not None:
            return page("setup.html", 400, error=problem, username=username)
        hashed = await _hash(password)
        user = await store.run(users.create_user(username, hashed, "admin"))
        if user is None:  # somebody else was quicker
            return to("/login")
        log.info("dashboard: first admin %r made", username)
        return await sign_in(request, user)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        if await store.run(users.count) == 0:
            return to("/setup")
        return page("login.html")

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await form_of(request)
        username = form.get("username", "").strip()
        client = request.client.host if request.client else "?"
        keys = (f"ip:{client}", f"user:{username.lower()}")
        wait = guard.wait_s(keys, now_s())
        if wait > 0:
            return page("login.html", 429, username=username,
                        error=f"too many failed sign-ins: try again in {math.ceil(wait)} s")
        user = await store.run(users.by_name(username)) if username else None
        ok = same_origin(request) and user is not None and \
            await _check(form.get("password", ""), user.password_hash)
        if not ok or user is None:
            guard.failed(keys, now_s())
            log.info("dashboard: failed sign-in for %r from %s", username[:100], client)
            return page("login.html", 401, username=username,
                        error="wrong user name or password")
        guard.succeeded(keys)
        return await sign_in(request, user)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        who, _ = await posted(request)
        await store.run(users.close_session(who.session.id))
        response = to("/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    # Users ---------------------------------------------------------------------------------
    @router.get("/users")
    async def user_list(request: Request) -> Response:
        who = await need(request)
        return page("users.html", who=who, users=await store.run(users.all_users),
                    roles=accounts.ROLES)

    @router.post("/users")
    async def add_user(request: Request) -> Response:
        who, form = await posted(request, admin=True)
        username = form.get("username", "").strip()
        role = form.get("role", "viewer")
        password = form.get("password", "")
        problem = None
        if not username or len(username) > 100:
            problem = "choose a user name (up to 100 characters)"
        elif role not in accounts.ROLES:
            problem = f"role: {' or '.join(accounts.ROLES)}"
        else:
            problem = accounts.password_problem(password, username)
        made = None
        if problem is None:
            made = await store.run(users.create_user(username, await _hash(password), role))
            problem = None if made is not None else f"user name {username!r} is taken"
        return page("users.html", 400 if problem else 200, who=who,
                    users=await store.run(users.all_users), roles=accounts.ROLES,
                    error=problem, done=f"{username} can now sign in as {role}"
                    if made else None)

    @router.post("/users/{user_id}/delete")
    async def remove_user(request: Request, user_id: str) -> Response:
        who, _ = await posted(request, admin=True)
        if user_id == who.user.id:
            raise PageError(409, "you cannot delete yourself; another admin can")
        await store.run(users.delete_user(user_id))
        return to("/users")

    return router


async def _hash(password: str) -> str:
    return await asyncio.to_thread(accounts.hash_password, password)


async def _check(password: str, stored: str) -> bool:
    return await asyncio.to_thread(accounts.check_password, password, stored)
