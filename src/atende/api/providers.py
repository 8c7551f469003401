"""/v1/providers: AI vendors' accounts shared by assistants (seed 003's "AI Providers" tab).
An assistant's section (realtime, llm[i], stt, tts) names one by provider_id instead of
carrying its own key; changing the provider's key reaches every assistant that uses it,
and a provider without a key uses the server's (OPENAI_API_KEY …)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.api import examples as ex
from atende.api.domains import CallerDomain, domain_uuid, owner, visible
from atende.api.provider_settings import ws_url
from atende.calls.assistant_rows import refresh_shared, shared_ids
from atende.egress import EgressPolicy
from atende.store import models
from atende.store.db import Store, as_utc
from atende.store.secrets import SecretBox

# The vendors each type of provider may be (the assistants' sections take the same).
VENDORS = {"realtime": ("openai", "elevenlabs", "gemini"),
           "llm": ("openai", "anthropic", "gemini"),
           "stt": ("deepgram", "openai"),
           "tts": ("elevenlabs", "openai")}
ProviderType = Literal["realtime", "llm", "stt", "tts"]
Vendor = Literal["openai", "elevenlabs", "gemini", "anthropic", "deepgram"]
Domain = Annotated[str | None, Field(None, description="the FusionPBX domain_uuid it belongs "
                                     "to; null: shared by every domain")]


class ProviderFields(BaseModel):
    """An AI provider's settings, as given to change it (type and vendor stay)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=ex.examples(ex.PROVIDER_UPDATE))
    name: str | None = Field(None, min_length=1, max_length=200,
                             description="yours to tell providers apart, unique in the domain")
    api_key: str | None = Field(None, min_length=1, max_length=1000, description="write-only; "
                                "stored encrypted. null (or never set): the server's key for "
                                "the vendor (OPENAI_API_KEY, ELEVENLABS_API_KEY, "
                                "GOOGLE_API_KEY …)")
    agent_id: str | None = Field(None, min_length=1, max_length=200, description="an "
                                 "ElevenLabs Conversational AI agent (realtime type): "
                                 "optional here, but a realtime assistant needs one here "
                                 "or in its own realtime.model")
    model: str | None = Field(None, min_length=1, max_length=200, description="the model "
                              "assistants use unless they name their own, e.g. gpt-realtime")
    base_url: str | None = Field(None, max_length=500, description="default: the vendor's "
                                 "own API")
    voice: str | None = Field(None, min_length=1, max_length=100, description="the voice "
                              "assistants use unless they name their own (tts, realtime)")

    # one URL check for every provider setting (a host is needed too)
    _url = field_validator("base_url")(ws_url)


class ProviderCreate(ProviderFields):
    """A new AI provider."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.PROVIDER_CREATE))
    type: ProviderType = Field(description="what assistants use it for: realtime "
                               "(speech-to-speech), llm, stt (recogniser) or tts (voice)")
    provider: Vendor = Field(description="the vendor (seed 003's \"Provider Name\"): "
                             "realtime: openai, elevenlabs, gemini; llm: openai, anthropic, "
                             "gemini; stt: deepgram, openai; tts: elevenlabs, openai")
    domain_uuid: Domain = None

    @field_validator("domain_uuid")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        return domain_uuid(v) if v is not None else None

    @model_validator(mode="after")
    def _vendor(self) -> ProviderCreate:
        if self.provider not in VENDORS[self.type]:
            raise ValueError(f"provider: a {self.type} provider is one of "
                             f"{', '.join(VENDORS[self.type])}")
        return self


class ProviderOut(BaseModel):
    """An AI provider, its key masked, with the assistants that use it."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.PROVIDER))

    id: str
    name: str
    type: str
    provider: str
    api_key_set: bool = Field(description="false: the server's key for the vendor is used")
    agent_id: str | None
    model: str | None
    base_url: str | None
    voice: str | None
    domain_uuid: str | None
    used_by: list[str] = Field(description="ids of the assistants that name it")
    created_at: datetime
    updated_at: datetime


def _out(p: models.AiProvider, used_by: list[str]) -> ProviderOut:
    return ProviderOut(id=p.id, name=p.name, type=p.type, provider=p.provider,
                       api_key_set=p.api_key_enc is not None, agent_id=p.agent_id,
                       model=p.model, base_url=p.base_url, voice=p.voice,
                       domain_uuid=p.domain_uuid, used_by=used_by,
                       created_at=as_utc(p.created_at), updated_at=as_utc(p.updated_at))


def users(s: Session, provider_id: str) -> list[models.Assistant]:
    """The assistants that name the provider."""
    return [a for a in s.scalars(select(models.Assistant).order_by(models.Assistant.created_at))
            if provider_id in shared_ids(a)]


class ProviderService:
    """AI providers kept, changed and removed, for the API and the dashboard. ``domain``:
    the caller's (a domain API key's), None for an admin who sees every domain. Refusals
    are HTTPExceptions whose detail says what to fix."""

    def __init__(self, store: Store, box: SecretBox, egress: EgressPolicy | None = None
                 ) -> None:
        self.store = store
        self.box = box
        self.reachable = egress or EgressPolicy()

    @staticmethod
    def _load(s: Session, provider_id: str, domain: str | None) -> models.AiProvider:
        row = s.get(models.AiProvider, provider_id)
        if row is None or not visible(row.domain_uuid, domain):
            raise HTTPException(404, f"no AI provider with id {provider_id!r}")
        return row

    def _apply(self, s: Session, row: models.AiProvider, body: ProviderFields) -> None:
        changes = body.model_dump(exclude_unset=True)
        if "name" in changes:
            if body.name is None:
                raise HTTPException(422, "name: cannot be empty")
            row.name = body.name
        if "api_key" in changes:
            row.api_key_enc = self.box.encrypt(body.api_key) if body.api_key else None
        for key in ("agent_id", "model", "base_url", "voice"):
            if key in changes:
                setattr(row, key, changes[key])
        if row.base_url and (why := self.reachable.check_url(
                row.base_url, ("http", "https", "ws", "wss"))) is not None:
            raise HTTPException(422, f"base_url: {why}")
        if row.agent_id and not (row.type == "realtime" and row.provider == "elevenlabs"):
            raise HTTPException(422, "agent_id: only an ElevenLabs realtime provider has one")
        taken = s.scalars(select(models.AiProvider.id).where(
            models.AiProvider.name == row.name, models.AiProvider.id != row.id,
            models.AiProvider.domain_uuid.is_(None) if row.domain_uuid is None
            else models.AiProvider.domain_uuid == row.domain_uuid)).first()
        if taken is not None:
            raise HTTPException(409, f"name: AI provider {taken} is already named "
                                f"{row.name!r}")

    async def all(self, domain: str | None, only: str | None = None) -> list[ProviderOut]:
        """Those ``domain`` may see (``only``: of that domain alone), oldest first."""
        def q(s: Session) -> list[ProviderOut]:
            rows = s.scalars(select(models.AiProvider).order_by(models.AiProvider.created_at))
            used_by: dict[str, list[str]] = {}
            for a in s.scalars(select(models.Assistant).order_by(models.Assistant.created_at)):
                for pid in shared_ids(a):
                    used_by.setdefault(pid, []).append(a.id)
            return [_out(p, used_by.get(p.id, [])) for p in rows
                    if visible(p.domain_uuid, domain)
                    and (only is None or p.domain_uuid == only)]

        return await self.store.run(q)

    async def create(self, body: ProviderCreate, domain: str | None) -> ProviderOut:
        now = datetime.now(UTC)

        def write(s: Session) -> ProviderOut:
            row = models.AiProvider(id=uuid.uuid4().hex, type=body.type,
                                    provider=body.provider,
                                    name=body.name or f"{body.provider} {body.type}",
                                    domain_uuid=owner(body.domain_uuid, domain),
                                    created_at=now, updated_at=now)
            self._apply(s, row, body)
            s.add(row)
            s.flush()
            return _out(row, [])

        return await self.store.run(write)

    async def get(self, provider_id: str, domain: str | None) -> ProviderOut:
        def q(s: Session) -> ProviderOut:
            row = self._load(s, provider_id, domain)
            return _out(row, [a.id for a in users(s, row.id)])

        return await self.store.run(q)

    async def update(self, provider_id: str, body: ProviderFields, domain: str | None
                     ) -> ProviderOut:
        """Changed in the same transaction as the copies of it its assistants keep; 409
        when one of them would be left without what it needs."""
        def write(s: Session) -> ProviderOut:
            row = self._load(s, provider_id, domain)
            self._apply(s, row, body)
            row.updated_at = datetime.now(UTC)
            using = users(s, row.id)
            for a in using:
                if problems := refresh_shared(a, row):
                    raise HTTPException(409, f"assistant {a.id} ({a.name!r}) uses this "
                                        f"provider: {'; '.join(problems)}")
            return _out(row, [a.id for a in using])

        return await self.store.run(write)

    async def delete(self, provider_id: str, domain: str | None) -> None:
        def remove(s: Session) -> None:
            row = self._load(s, provider_id, domain)
            if using := users(s, row.id):
                names = ", ".join(f"{a.id} ({a.name!r})" for a in using)
                raise HTTPException(409, f"assistants use this provider: {names}; point "
                                    "them elsewhere first")
            s.delete(row)

        await self.store.run(remove)


def providers_router(service: ProviderService) -> APIRouter:
    router = APIRouter(prefix="/v1/providers", tags=["ai providers"])

    @router.get("", response_model=list[ProviderOut])
    async def list_providers(
        domain: CallerDomain,
        domain_uuid_: Annotated[str | None, Query(
            alias="domain_uuid", description="only this domain's",
            examples=[ex.DOMAIN_UUID])] = None,
    ) -> list[ProviderOut]:
        return await service.all(domain, domain_uuid_)

    @router.post("", response_model=ProviderOut, status_code=201, responses={
        409: {"description": "the name is taken in the domain"}})
    async def create(body: ProviderCreate, domain: CallerDomain) -> ProviderOut:
        return await service.create(body, domain)

    @router.get("/{provider_id}", response_model=ProviderOut)
    async def get(provider_id: str, domain: CallerDomain) -> ProviderOut:
        return await service.get(provider_id, domain)

    @router.patch("/{provider_id}", response_model=ProviderOut, responses={
        409: {"description": "the name is taken, or an assistant that uses it would be left "
                             "without what it needs (an ElevenLabs agent id, a model)"}})
    async def patch(provider_id: str, body: ProviderFields, domain: CallerDomain
                    ) -> ProviderOut:
        return await service.update(provider_id, body, domain)

    @router.delete("/{provider_id}", status_code=204, response_class=Response, responses={
        409: {"description": "an assistant uses it"}})
    async def delete(provider_id: str, domain: CallerDomain) -> Response:
        await service.delete(provider_id, domain)
        return Response(status_code=204)

    return router
