"""Your phone numbers: the trunks with their live state in plain words, "Integrate SIP
trunk" (the seeds' form: type, credentials, outbound settings and proxy switch, number
format, inbound settings, country), the trunk's page with atende's SIP address and the
test call, editing and deleting. All of it through TrunkService, as the API does."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from atende.api.trunk_fields import (
    TrunkCreate,
    TrunkOut,
    TrunkTestIn,
    TrunkTestOut,
    TrunkUpdate,
)
from atende.api.trunks import TrunkService
from atende.dashboard import trunk_forms as tf
from atende.dashboard.web import HEADERS, PageError, SignedIn, Web, blame, first, refusal
from atende.telephony.passwords import MIN_LENGTH

NEW_TRUNK = {"kind": "extension", "transport": "udp", "number_format": "intl_plus",
             "country": "US", "inbound_auth": "ip", "enabled": True, "tls_verify": True,
             "max_concurrent_calls": 10, "use_outbound_proxy": False}


def trunk_pages(web: Web, trunks: TrunkService) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def trunk(trunk_id: str) -> TrunkOut:
        try:
            return await trunks.get(trunk_id)
        except HTTPException:
            raise PageError(404, f"no trunk with id {trunk_id!r}") from None

    async def form_page(who: SignedIn, values: dict[str, Any], problems: dict[str, str],
                        editing: TrunkOut | None, status: int = 200) -> Response:
        assistants = await web.store.assistants()
        country = str(values.get("country") or "US")
        return web.page(
            "trunk_form.html", status, who=who, values=values, problems=problems,
            editing=editing, kinds=tf.KINDS, transports=tf.TRANSPORTS,
            countries=tf.countries(), assistants=assistants, min_length=MIN_LENGTH,
            examples=tf.format_examples(country, str(values.get("host") or "")),
            error="Please fix what is marked below." if problems else None)

    async def show(who: SignedIn, t: TrunkOut, status: int = 200, done: str | None = None,
                   test: TrunkTestOut | None = None, tried: str = "",
                   error: str | None = None) -> Response:
        # None: the default assistant, which the page names as such
        assistant = await web.store.assistant_by_id(t.assistant_id) if t.assistant_id \
            else None
        return web.page("trunk.html", status, who=who, trunk=t, state=tf.state_words(t),
                        assistant=assistant, test=test, tried=tried, done=done, error=error)

    @router.get("/trunks")
    async def listing(request: Request, deleted: str = "") -> Response:
        who = await web.need(request)
        rows = await trunks.all()
        return web.page("trunks.html", who=who, trunks=[(t, tf.state_words(t)) for t in rows],
                        done=f"Trunk {deleted!r} is deleted." if deleted else None)

    @router.get("/trunks/state")
    async def states(request: Request) -> Response:
        """Each trunk's state in words, for the list to follow without a reload."""
        await web.need(request)
        out = {t.id: dict(zip(("level", "words"), tf.state_words(t), strict=True))
               for t in await trunks.all()}
        return JSONResponse(out, headers=HEADERS)

    @router.get("/trunks/examples")
    async def examples(request: Request, country: str = "US", host: str = "") -> Response:
        """The number formats' examples for a country, for the form as it changes."""
        await web.need(request)
        code = country.strip().upper()
        if code not in dict(tf.countries()):
            raise PageError(404, f"no country {country!r}")
        return JSONResponse([e.__dict__ for e in tf.format_examples(code, host.strip()[:200])],
                            headers=HEADERS)

    @router.get("/trunks/new")
    async def new(request: Request, kind: str = "extension") -> Response:
        who = await web.need(request, admin=True)
        values = {**NEW_TRUNK, "kind": kind if kind in tf.BY_KIND else "extension"}
        return await form_page(who, values, {}, None)

    @router.post("/trunks/new")
    async def create(request: Request) -> Response:
        who, form = await web.posted(request, admin=True)
        kind = first(form, "kind")
        posted, fields = tf.read_form(form, kind, editing=False)
        body = tf.checked(posted, fields, editing=False)
        if isinstance(body, TrunkCreate):
            try:
                made = await trunks.create(body)
            except HTTPException as exc:
                posted.problems.update(blame(exc, tf.BY_KIND.get(kind, ())))
            else:
                warned = " ".join(made.warnings)
                return await show(who, made, 201, done="The trunk is saved. " + warned)
        return await form_page(who, {**NEW_TRUNK, **posted.values}, posted.problems, None, 400)

    @router.get("/trunks/{trunk_id}")
    async def page(request: Request, trunk_id: str) -> Response:
        who = await web.need(request)
        return await show(who, await trunk(trunk_id))

    @router.post("/trunks/{trunk_id}/test")
    async def test(request: Request, trunk_id: str) -> Response:
        who, form = await web.posted(request, admin=True)
        t = await trunk(trunk_id)
        to = first(form, "to").strip()[:64]
        try:
            result = await trunks.test(trunk_id, TrunkTestIn(to=to or None, ring_timeout_s=20))
        except HTTPException as exc:
            return await show(who, t, 400, tried=to, error=refusal(exc))
        return await show(who, await trunk(trunk_id), test=result, tried=to)

    @router.get("/trunks/{trunk_id}/edit")
    async def edit(request: Request, trunk_id: str) -> Response:
        who = await web.need(request, admin=True)
        t = await trunk(trunk_id)
        return await form_page(who, tf.values_of(t), {}, t)

    @router.post("/trunks/{trunk_id}/edit")
    async def update(request: Request, trunk_id: str) -> Response:
        who, form = await web.posted(request, admin=True)
        t = await trunk(trunk_id)
        posted, fields = tf.read_form(form, t.kind, editing=True)
        body = tf.checked(posted, fields, editing=True)
        if isinstance(body, TrunkUpdate):
            try:
                changed = await trunks.update(trunk_id, body)
            except HTTPException as exc:
                posted.problems.update(blame(exc, tf.BY_KIND.get(t.kind, ())))
            else:
                return await show(who, changed, done="Saved. " + " ".join(changed.warnings))
        return await form_page(who, {**tf.values_of(t), **posted.values}, posted.problems, t,
                               400)

    @router.post("/trunks/{trunk_id}/delete")
    async def delete(request: Request, trunk_id: str) -> Response:
        await web.posted(request, admin=True)
        t = await trunk(trunk_id)
        await trunks.delete(trunk_id)
        return web.to(f"/trunks?deleted={quote(t.name)}")

    return router
