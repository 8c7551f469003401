"""What every dashboard page shares: the templates, who is signed in, the checks a form
that changes something must pass (session, same origin, CSRF token, role), and the
answer to a request that cannot be served (a page that says why)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from atende.dashboard import accounts
from atende.store import users
from atende.store.db import Store
from atende.store.models import User, WebSession

HERE = Path(__file__).parent
COOKIE = "atende_session"
HEADERS = {"Content-Security-Policy": "default-src 'self'; form-action 'self'; "
                                      "frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Cache-Control": "no-store"}

templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html"]))


class PageError(Exception):
    """A request the dashboard answers with a page that says why (or, without a message,
    by sending the browser to ``location``)."""

    def __init__(self, status: int, message: str = "", location: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.location = location


class SignedIn:
    """The user a request comes from, with their session (its CSRF token)."""

    def __init__(self, user: User, session: WebSession) -> None:
        self.user = user
        self.session = session

    @property
    def admin(self) -> bool:
        return self.user.role == "admin"


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each)."""
    return {k: v[0] for k, v in (await many_of(request)).items()}


async def many_of(request: Request) -> dict[str, list[str]]:
    """An urlencoded form's fields with every value (checkbox groups)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def same_origin(request: Request) -> bool:
    """A form posted from our own pages: its Origin (or Referer) names this host, or the
    browser sent neither."""
    said = request.headers.get("origin") or request.headers.get("referer")
    if not said:
        return True
    return urlsplit(said).netloc == request.headers.get("host", "")


def said(error: Mapping[str, Any]) -> str:
    """One of pydantic's complaints in words ("needed" where it would say "Input should be
    a valid string" of a field left empty)."""
    if error.get("input", "") is None or error.get("type") == "missing":
        return "needed"
    return str(error.get("msg", "")).removeprefix("Value error, ")


def problems_of(exc: ValidationError, fields: Collection[str] = ()) -> dict[str, str]:
    """A model's complaints by field ("" for the form as a whole), in words. A check across
    fields names them first ("username, host: …"): it goes on the first of ``fields`` it
    names."""
    out: dict[str, str] = {}
    for error in exc.errors():
        loc = error.get("loc") or ()
        words = said(dict(error))
        key = str(loc[0]) if loc else ""
        if not key:
            named = (h.strip() for h in words.partition(":")[0].split(","))
            key = next((k for k in named if k in fields), "")
        out[key] = (out.get(key, "") + " " + words).strip()
    return out


def refusal(exc: HTTPException) -> str:
    """A service's refusal in words (its detail is a sentence, or pydantic's list)."""
    detail = exc.detail
    if isinstance(detail, str):
        return detail
    return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d)
                     for d in detail) if isinstance(detail, list) else str(detail)


def whole(text: str) -> int | None:
    """A form's whole number, or None when the text is not one ("²" is a digit to
    str.isdigit, not to int). At most 9 digits: the models bound what they take."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def blame(exc: HTTPException, fields: Collection[str]) -> dict[str, str]:
    """A service's refusal as a form's problem: on the field it names first
    ("business_hours.closed.destination: …" → business_hours) when the form has it, else
    on the form as a whole."""
    words = refusal(exc)
    head = words.partition(":")[0].split(".")[0].split("[")[0].strip()
    return {head if head in fields else "": words}


class Web:
    """Rendering and the session checks, for the routers of each section."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def page(self, name: str, status: int = 200, who: SignedIn | None = None,
             **values: Any) -> HTMLResponse:
        html = templates.get_template(name).render(who=who, **values)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    @staticmethod
    def to(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303, headers=HEADERS)

    async def signed_in(self, request: Request) -> SignedIn | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        found = await self.store.run(users.session_user(accounts.token_id(token),
                                                        datetime.now(UTC)))
        return SignedIn(*found) if found else None

    async def need(self, request: Request, admin: bool = False) -> SignedIn:
        who = await self.signed_in(request)
        if who is None:
            raise PageError(303, location="/login")
        if admin and not who.admin:
            raise PageError(403, "viewers cannot change anything; ask an admin")
        return who

    async def posted(self, request: Request, admin: bool = False
                     ) -> tuple[SignedIn, dict[str, list[str]]]:
        """A form that changes something: signed in, same origin, the session's token.
        Every value of each field (see ``first``)."""
        who = await self.need(request, admin)
        form = await many_of(request)
        token = (form.get("csrf") or [""])[0]
        if not same_origin(request) or not accounts.same_token(token, who.session.csrf):
            raise PageError(403, "the form is stale or from another site: reload the page "
                            "and try again")
        return who, form


def first(form: dict[str, list[str]], key: str, default: str = "") -> str:
    values = form.get(key)
    return values[0] if values else default


def install(app: FastAPI, routers: list[APIRouter]) -> None:
    """Serve the dashboard's sections on ``app`` (beside the API, which keeps its
    keys)."""
    for router in routers:
        app.include_router(router)

    async def explain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        if exc.location:
            return RedirectResponse(exc.location, status_code=exc.status, headers=HEADERS)
        html = templates.get_template("error.html").render(who=None, message=exc.message)
        return HTMLResponse(html, status_code=exc.status, headers=HEADERS)

    app.add_exception_handler(PageError, explain)
