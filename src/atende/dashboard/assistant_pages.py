"""Assistants (seed 003's secretaries) and the AI providers they share: the list, "+ Add
assistant", every section of an assistant in one form (with a "listen" preview of its
voice), deleting; the AI providers as their own tab. Through the API's services, as an
admin of every domain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import ValidationError

from atende.api.assistant_fields import AssistantCreate, AssistantFields, AssistantOut
from atende.api.assistants import AssistantService
from atende.api.providers import VENDORS, ProviderCreate, ProviderFields, ProviderService
from atende.dashboard import assistant_forms as af
from atende.dashboard.web import (
    PageError,
    SignedIn,
    Web,
    blame,
    first,
    problems_of,
    refusal,
)

# (voice, text) → a WAV of the voice saying the text; ValueError: no such voice
VoiceSample = Callable[[str, str], Awaitable[bytes]]
SAMPLE = "Hello, this is how I sound on the phone."
VOICES = ("piper", "espeak:en-us", "espeak:en-gb", "espeak:pt-br", "espeak:pt",
          "espeak:es", "espeak:fr", "espeak:de", "espeak:it")


def assistant_pages(web: Web, assistants: AssistantService, providers: ProviderService,
                    sample: VoiceSample) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def form_page(who: SignedIn, values: dict[str, Any], problems: dict[str, str],
                        current: AssistantOut | None, status: int = 200,
                        done: str | None = None) -> Response:
        shared = await providers.all(None)
        return web.page("assistant_form.html", status, who=who, values=values,
                        problems=problems, current=current, days=af.DAYS, tools=af.TOOLS,
                        voices=VOICES, keep=af.KEEP, sections=af.SECTIONS,
                        shared={s: [p for p in shared if p.type == s] for s in af.SECTIONS},
                        blank=af.BLANK_TRANSFERS, done=done,
                        error="Not saved: fix what is marked below." if problems else None)

    async def assistant(assistant_id: str) -> AssistantOut:
        try:
            return await assistants.get(assistant_id, None)
        except HTTPException as exc:
            raise PageError(exc.status_code, refusal(exc)) from None

    async def save(request: Request, current: AssistantOut | None) -> Response:
        who, form = await web.posted(request, admin=True)
        shared = await providers.all(None)
        payload, problems = af.read_form(form, current, shared)
        values = {**af.values_of(current), **{k: first(form, k) for k in form}}
        values["tools"] = form.get("tools", [])
        values["transfers"] = list(payload.get("transfers", []))
        values["hours"] = {d: first(form, f"hours_{d}") for d in af.DAYS}
        for key in ("is_default", "record", "hours_on", "vm_detect"):
            values[key] = first(form, key) == "on"
        if not problems:
            try:
                if current is None:
                    saved = await assistants.create(AssistantCreate.model_validate(payload),
                                                    None)
                else:
                    saved = await assistants.update(
                        current.id, AssistantFields.model_validate(payload), None)
            except ValidationError as exc:
                problems = problems_of(exc)
            except HTTPException as exc:
                problems = blame(exc, {*payload, "voice"})
            else:
                return await form_page(who, af.values_of(saved), {}, saved,
                                       201 if current is None else 200,
                                       done=f"{saved.name} is saved: calls to "
                                            f"{saved.extension} reach it.")
        return await form_page(who, values, problems, current, 400)

    @router.get("/assistants")
    async def listing(request: Request, deleted: str = "") -> Response:
        who = await web.need(request)
        rows = await assistants.all(None)
        names = {p.id: p.name for p in await providers.all(None)}
        return web.page("assistants.html", who=who, assistants=rows, names=names,
                        done=f"{deleted} is deleted." if deleted else None)

    @router.get("/assistants/new")
    async def new(request: Request) -> Response:
        who = await web.need(request, admin=True)
        return await form_page(who, af.values_of(None), {}, None)

    @router.post("/assistants/new")
    async def create(request: Request) -> Response:
        return await save(request, None)

    @router.get("/assistants/voice")
    async def voice(request: Request, voice: str = "piper", text: str = "") -> Response:
        """A sample of a voice, for the form's "listen" button (admins: a voice may be a
        model file on the server)."""
        await web.need(request, admin=True)
        try:
            wav = await sample(voice.strip()[:300], (text.strip() or SAMPLE)[:300])
        except ValueError as exc:
            return Response(f"voice: {exc}", status_code=422, media_type="text/plain")
        return Response(wav, media_type="audio/wav", headers={"Cache-Control": "no-store"})

    @router.get("/assistants/{assistant_id}")
    async def edit(request: Request, assistant_id: str) -> Response:
        who = await web.need(request)
        a = await assistant(assistant_id)
        return await form_page(who, af.values_of(a), {}, a)

    @router.post("/assistants/{assistant_id}")
    async def update(request: Request, assistant_id: str) -> Response:
        await web.need(request, admin=True)
        return await save(request, await assistant(assistant_id))

    @router.post("/assistants/{assistant_id}/delete")
    async def delete(request: Request, assistant_id: str) -> Response:
        who, _ = await web.posted(request, admin=True)
        a = await assistant(assistant_id)
        try:
            await assistants.delete(assistant_id, None)
        except HTTPException as exc:
            return await form_page(who, af.values_of(a), {"": refusal(exc)}, a, exc.status_code)
        return web.to(f"/assistants?deleted={a.name}")

    # AI providers -------------------------------------------------------------------------
    async def providers_page(who: SignedIn, status: int = 200, **values: Any) -> Response:
        rows = await providers.all(None)
        used = {a.id: a.name for a in await assistants.all(None)}
        return web.page("providers.html", status, who=who, providers=rows, used=used,
                        vendors=VENDORS, **values)

    @router.get("/providers")
    async def provider_list(request: Request) -> Response:
        return await providers_page(await web.need(request))

    @router.post("/providers/new")
    async def provider_create(request: Request) -> Response:
        who, form = await web.posted(request, admin=True)
        kind = first(form, "type")
        body = {"type": kind, "provider": first(form, f"provider_{kind}") or None,
                **provider_fields(form)}
        try:
            made = await providers.create(ProviderCreate.model_validate(body), None)
        except ValidationError as exc:
            return await providers_page(who, 400, error="; ".join(
                f"{k}: {v}" if k else v for k, v in problems_of(exc).items()), posted=body)
        except HTTPException as exc:
            return await providers_page(who, 400, error=refusal(exc), posted=body)
        return await providers_page(who, 201, done=f"AI provider {made.name!r} is saved.")

    @router.post("/providers/{provider_id}")
    async def provider_update(request: Request, provider_id: str) -> Response:
        who, form = await web.posted(request, admin=True)
        changes = provider_fields(form)
        if first(form, "clear_key") == "on":
            changes["api_key"] = None
        try:
            saved = await providers.update(provider_id, ProviderFields.model_validate(changes),
                                           None)
        except ValidationError as exc:
            return await providers_page(who, 400, error="; ".join(
                f"{k}: {v}" for k, v in problems_of(exc).items()))
        except HTTPException as exc:
            return await providers_page(who, exc.status_code if exc.status_code < 500
                                        else 400, error=refusal(exc))
        return await providers_page(who, done=f"AI provider {saved.name!r} is saved; the "
                                              "assistants that use it have it from their "
                                              "next call.")

    @router.post("/providers/{provider_id}/delete")
    async def provider_delete(request: Request, provider_id: str) -> Response:
        who, _ = await web.posted(request, admin=True)
        try:
            await providers.delete(provider_id, None)
        except HTTPException as exc:
            return await providers_page(who, exc.status_code, error=refusal(exc))
        return await providers_page(who, done="The AI provider is deleted.")

    return router


def provider_fields(form: dict[str, list[str]]) -> dict[str, Any]:
    """A provider form's settings: an empty field is unset (a new key only when given)."""
    out: dict[str, Any] = {}
    for key in ("name", "api_key", "agent_id", "model", "base_url", "voice"):
        value = first(form, key).strip()
        if value:
            out[key] = value
        elif key in ("agent_id", "model", "base_url", "voice") and key in form:
            out[key] = None  # emptied: cleared
    return out
