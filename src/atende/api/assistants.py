"""/v1/assistants: who answers and places calls, what they say, which models they think
with, which tools they may use, and what they do when a provider fails."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from atende.agent.brain import DEFAULT_RULES, INTENT_ACTIONS, RuleSet
from atende.agent.fallback import FALLBACK_ACTIONS
from atende.agent.tools import BUILTINS, OPTIONAL
from atende.api import examples as ex
from atende.api.assistant_fields import (
    AssistantCreate,
    AssistantFields,
    AssistantOut,
)
from atende.api.domains import CallerDomain, owner, visible
from atende.calls.assistant_rows import (
    assistant_urls,
    llm_rows,
    map_sections,
    provider_row,
    tool_rows,
    with_shared,
)
from atende.egress import EgressPolicy
from atende.media.music import load_music
from atende.store import models
from atende.store.db import Store
from atende.store.secrets import SecretBox


def check(a: models.Assistant) -> None:
    """What the fields allow one by one but not together."""
    names = [d["name"] for d in a.transfers or []]
    if len(set(names)) != len(names):
        raise HTTPException(422, "transfers: each destination needs its own name")
    tools = [t["name"] for t in a.http_tools or []]
    if len(set(tools)) != len(tools) or set(tools) & set(BUILTINS + OPTIONAL):
        raise HTTPException(422, "http_tools: names must be unique and not those of the "
                            f"built-in tools ({', '.join(BUILTINS + OPTIONAL)})")
    fb = a.fallback or {}
    if fb.get("action") == "transfer" and fb.get("destination") not in names:
        raise HTTPException(422, "fallback.destination: name one of the transfers "
                            f"({', '.join(names) or 'there are none'})")
    assert fb.get("action", "continue") in FALLBACK_ACTIONS
    closed = (a.business_hours or {}).get("closed") or {}
    if closed.get("action") == "transfer" and closed.get("destination") not in names:
        raise HTTPException(422, "business_hours.closed.destination: name one of the "
                            f"transfers ({', '.join(names) or 'there are none'})")
    if a.mode == "realtime" and not a.realtime:
        raise HTTPException(422, "realtime: mode realtime needs its speech-to-speech "
                            "provider (realtime.provider, and realtime.api_key)")
    if a.mode == "realtime" and (a.voicemail or {}).get("detect"):
        raise HTTPException(422, "voicemail.detect: answering-machine detection works in "
                            "mode pipeline only, for now")
    try:
        rules = RuleSet.from_dict(a.rules)
    except (KeyError, TypeError, AttributeError) as exc:
        raise HTTPException(422, f"rules: each intent needs a name and a reply ({exc})"
                            ) from None
    for i, intent in enumerate(rules.intents):
        if intent.action not in INTENT_ACTIONS:
            raise HTTPException(422, f"rules.intents[{i}].action: hangup, transfer or none, "
                                f"not {intent.action!r}")
        if intent.action == "transfer" and intent.destination not in names:
            raise HTTPException(422, f"rules.intents[{i}].destination: name one of the "
                                f"transfers ({', '.join(names) or 'there are none'})")


def link_shared(s: Session, a: models.Assistant, caller: str | None) -> None:
    """Give each section of ``a`` that names a shared AI provider (provider_id) that
    provider's vendor and settings; 422 when it names one that is not there for it."""

    def linked(kind: str, field: str, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if not row or not (pid := row.get("provider_id")):
            return row
        p = s.get(models.AiProvider, pid)
        if p is None or not visible(p.domain_uuid, caller) or \
                p.domain_uuid not in (None, a.domain_uuid):
            raise HTTPException(422, f"{field}.provider_id: no AI provider {pid!r}"
                                + (f" in domain {a.domain_uuid}" if a.domain_uuid else ""))
        if p.type != kind:
            raise HTTPException(422, f"{field}.provider_id: {pid} is of type {p.type}; "
                                f"{field} needs one of type {kind}")
        if row.get("provider") not in (None, p.provider):
            raise HTTPException(422, f"{field}.provider: the shared provider is "
                                f"{p.provider}; leave provider out")
        try:
            return with_shared(kind, row, p)
        except ValueError as exc:
            raise HTTPException(422, f"{field}: {exc}") from None

    map_sections(a, linked)


class AssistantService:
    """Assistants kept, changed and removed, for the API and the dashboard. ``domain``: the
    caller's (a domain API key's), None for an admin who sees every domain. Refusals are
    HTTPExceptions whose detail says what to fix.

    ``prepare`` loads an assistant's voice and greeting (ValueError: unknown voice);
    ``egress``: where its tools and providers' URLs may point."""

    def __init__(self, store: Store, box: SecretBox,
                 prepare: Callable[[models.Assistant], Awaitable[None]],
                 egress: EgressPolicy | None = None) -> None:
        self.store = store
        self.box = box
        self.prepare = prepare
        self.reachable = egress or EgressPolicy()

    async def _load(self, assistant_id: str, domain: str | None) -> models.Assistant:
        row = await self.store.assistant_by_id(assistant_id)
        if row is None or not visible(row.domain_uuid, domain):
            raise HTTPException(404, f"no assistant with id {assistant_id!r}")
        return row

    def _apply(self, row: models.Assistant, body: AssistantFields) -> None:
        box = self.box
        changes = body.model_dump(exclude_unset=True)
        for key in ("name", "extension", "language", "voice", "mode", "record", "is_default"):
            if key in changes:
                if changes[key] is None:
                    raise HTTPException(422, f"{key}: cannot be empty")
                setattr(row, key, changes[key])
        for key in ("greeting", "prompt", "tools", "max_concurrent_calls"):
            if key in changes:
                setattr(row, key, changes[key])
        if "hold_music" in changes:
            if body.hold_music is not None:
                try:
                    load_music(body.hold_music)
                except ValueError as exc:
                    raise HTTPException(422, f"hold_music: {exc}") from None
            row.hold_music = body.hold_music
        if "realtime" in changes:
            row.realtime = provider_row(body.realtime, row.realtime, box)
        if "stt" in changes:
            row.stt = provider_row(body.stt, row.stt, box)
        if "tts" in changes:
            row.tts = provider_row(body.tts, row.tts, box)
        if "llm" in changes:
            row.llm = llm_rows(body.llm or [], row.llm or [], box)
        if "http_tools" in changes:
            row.http_tools = tool_rows(body.http_tools or [], row.http_tools or [], box)
        if "transfers" in changes:
            row.transfers = changes["transfers"] or []
        if "fallback" in changes:
            row.fallback = changes["fallback"]
        if "turn_taking" in changes:
            row.conversation = changes["turn_taking"]
        if "voicemail" in changes:
            row.voicemail = changes["voicemail"]
        if "business_hours" in changes:
            row.business_hours = changes["business_hours"]
        if "rules" in changes:
            row.rules = changes["rules"] or {}
        check(row)
        for name, url in assistant_urls(row):
            if (why := self.reachable.check_url(url, ("http", "https", "ws", "wss"))
                    ) is not None:
                raise HTTPException(422, f"{name}: {why}")

    async def _save(self, row: models.Assistant, domain: str | None) -> models.Assistant:
        try:
            await self.prepare(row)
        except ValueError as exc:
            raise HTTPException(422, f"voice: {exc}") from None

        def write(s: Session) -> models.Assistant:
            link_shared(s, row, domain)
            same_domain = models.Assistant.domain_uuid.is_(None) if row.domain_uuid is None \
                else models.Assistant.domain_uuid == row.domain_uuid
            taken = s.scalars(select(models.Assistant.id).where(
                func.lower(models.Assistant.extension) == row.extension.lower(),
                models.Assistant.id != row.id, same_domain)).first()
            if taken is not None:
                raise HTTPException(409, f"extension {row.extension!r} is taken by "
                                    f"assistant {taken}")
            if row.is_default:
                s.execute(update(models.Assistant).where(models.Assistant.id != row.id)
                          .values(is_default=False))
            merged = s.merge(row)
            s.flush()
            return merged

        return await self.store.run(write)

    async def all(self, domain: str | None, only: str | None = None) -> list[AssistantOut]:
        def q(s: Session) -> list[models.Assistant]:
            stmt = select(models.Assistant).order_by(models.Assistant.created_at)
            if domain is not None or only is not None:
                stmt = stmt.where(models.Assistant.domain_uuid == (domain or only))
            return list(s.scalars(stmt))

        return [AssistantOut.of(a) for a in await self.store.run(q)]

    async def create(self, body: AssistantCreate, domain: str | None) -> AssistantOut:
        """Without ``llm`` the assistant answers with its offline rules."""
        now = datetime.now(UTC)
        row = models.Assistant(id=uuid.uuid4().hex, name=body.name, extension=body.extension,
                               language="en", voice="piper", mode="pipeline",
                               rules=DEFAULT_RULES.to_dict(), is_default=False, record=False,
                               domain_uuid=owner(body.domain_uuid, domain),
                               created_at=now, updated_at=now)
        self._apply(row, body)
        if row.is_default and row.domain_uuid is not None:
            raise HTTPException(422, "is_default: the default assistant answers calls of "
                                "every domain; it cannot belong to one")
        return AssistantOut.of(await self._save(row, domain))

    async def get(self, assistant_id: str, domain: str | None) -> AssistantOut:
        return AssistantOut.of(await self._load(assistant_id, domain))

    async def update(self, assistant_id: str, body: AssistantFields, domain: str | None
                     ) -> AssistantOut:
        row = await self._load(assistant_id, domain)
        was_default = row.is_default
        self._apply(row, body)
        if was_default and not row.is_default:
            raise HTTPException(409, "make another assistant the default instead")
        if row.is_default and row.domain_uuid is not None:
            raise HTTPException(422, "is_default: the default assistant answers calls of "
                                "every domain; it cannot belong to one")
        row.updated_at = datetime.now(UTC)
        return AssistantOut.of(await self._save(row, domain))

    async def delete(self, assistant_id: str, domain: str | None) -> None:
        row = await self._load(assistant_id, domain)
        if row.is_default:
            raise HTTPException(409, "the default assistant cannot be deleted; make "
                                "another one the default first")

        def remove(s: Session) -> None:
            trunk = s.scalars(select(models.Trunk.name).where(
                models.Trunk.assistant_id == assistant_id)).first()
            if trunk is not None:
                raise HTTPException(409, f"trunk {trunk!r} sends its calls to this "
                                    "assistant; point it elsewhere first")
            target = s.get(models.Assistant, assistant_id)
            if target is not None:
                s.delete(target)

        await self.store.run(remove)


def assistants_router(service: AssistantService) -> APIRouter:
    router = APIRouter(prefix="/v1/assistants", tags=["assistants"])

    @router.get("", response_model=list[AssistantOut])
    async def list_assistants(
        domain: CallerDomain,
        domain_uuid: Annotated[str | None, Query(description="only this domain's",
                                                 examples=[ex.DOMAIN_UUID])] = None,
    ) -> list[AssistantOut]:
        return await service.all(domain, domain_uuid)

    @router.post("", response_model=AssistantOut, status_code=201, responses={
        409: {"description": "the extension is taken"}})
    async def create(body: AssistantCreate, domain: CallerDomain) -> AssistantOut:
        """Without `llm` the assistant answers with its offline rules."""
        return await service.create(body, domain)

    @router.get("/{assistant_id}", response_model=AssistantOut)
    async def get(assistant_id: str, domain: CallerDomain) -> AssistantOut:
        return await service.get(assistant_id, domain)

    @router.patch("/{assistant_id}", response_model=AssistantOut, responses={
        409: {"description": "the extension is taken, or the default would be left "
                             "without a successor"}})
    async def patch(assistant_id: str, body: AssistantFields, domain: CallerDomain
                    ) -> AssistantOut:
        return await service.update(assistant_id, body, domain)

    @router.delete("/{assistant_id}", status_code=204, response_class=Response, responses={
        409: {"description": "it is the default, or a trunk sends its calls to it"}})
    async def delete(assistant_id: str, domain: CallerDomain) -> Response:
        await service.delete(assistant_id, domain)
        return Response(status_code=204)

    return router
