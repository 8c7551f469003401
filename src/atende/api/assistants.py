"""/v1/assistants: who answers and places calls, what they say, which models they think
with, which tools they may use, and what they do when a provider fails."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from atende.agent.brain import DEFAULT_RULES, INTENT_ACTIONS, RuleSet
from atende.agent.fallback import FALLBACK_ACTIONS
from atende.agent.tools import BUILTINS, OPTIONAL
from atende.api.assistant_fields import (
    AssistantCreate,
    AssistantFields,
    AssistantOut,
)
from atende.calls.assistant_rows import assistant_urls, llm_rows, provider_row, tool_rows
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


def assistants_router(store: Store, box: SecretBox,
                      prepare: Callable[[models.Assistant], Awaitable[None]],
                      egress: EgressPolicy | None = None) -> APIRouter:
    """``prepare`` loads an assistant's voice and greeting (ValueError: unknown voice);
    ``egress``: where its tools and providers' URLs may point."""
    reachable = egress or EgressPolicy()
    router = APIRouter(prefix="/v1/assistants", tags=["assistants"])

    async def load(assistant_id: str) -> models.Assistant:
        row = await store.assistant_by_id(assistant_id)
        if row is None:
            raise HTTPException(404, f"no assistant with id {assistant_id!r}")
        return row

    def apply(row: models.Assistant, body: AssistantFields) -> None:
        changes = body.model_dump(exclude_unset=True)
        for key in ("name", "extension", "language", "voice", "mode", "record", "is_default"):
            if key in changes:
                if changes[key] is None:
                    raise HTTPException(422, f"{key}: cannot be empty")
                setattr(row, key, changes[key])
        for key in ("greeting", "prompt", "tools"):
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
            if (why := reachable.check_url(url, ("http", "https", "ws", "wss"))) is not None:
                raise HTTPException(422, f"{name}: {why}")

    async def save(row: models.Assistant) -> models.Assistant:
        try:
            await prepare(row)
        except ValueError as exc:
            raise HTTPException(422, f"voice: {exc}") from None

        def write(s: Session) -> models.Assistant:
            taken = s.scalars(select(models.Assistant.id).where(
                func.lower(models.Assistant.extension) == row.extension.lower(),
                models.Assistant.id != row.id)).first()
            if taken is not None:
                raise HTTPException(409, f"extension {row.extension!r} is taken by "
                                    f"assistant {taken}")
            if row.is_default:
                s.execute(update(models.Assistant).where(models.Assistant.id != row.id)
                          .values(is_default=False))
            merged = s.merge(row)
            s.flush()
            return merged

        return await store.run(write)

    @router.get("", response_model=list[AssistantOut])
    async def list_assistants() -> list[AssistantOut]:
        return [AssistantOut.of(a) for a in await store.assistants()]

    @router.post("", response_model=AssistantOut, status_code=201, responses={
        409: {"description": "the extension is taken"}})
    async def create(body: AssistantCreate) -> AssistantOut:
        """Without `llm` the assistant answers with its offline rules."""
        now = datetime.now(UTC)
        row = models.Assistant(id=uuid.uuid4().hex, name=body.name, extension=body.extension,
                               language="en", voice="piper", mode="pipeline",
                               rules=DEFAULT_RULES.to_dict(), is_default=False, record=False,
                               created_at=now, updated_at=now)
        apply(row, body)
        return AssistantOut.of(await save(row))

    @router.get("/{assistant_id}", response_model=AssistantOut)
    async def get(assistant_id: str) -> AssistantOut:
        return AssistantOut.of(await load(assistant_id))

    @router.patch("/{assistant_id}", response_model=AssistantOut, responses={
        409: {"description": "the extension is taken, or the default would be left "
                             "without a successor"}})
    async def patch(assistant_id: str, body: AssistantFields) -> AssistantOut:
        row = await load(assistant_id)
        was_default = row.is_default
        apply(row, body)
        if was_default and not row.is_default:
            raise HTTPException(409, "make another assistant the default instead")
        row.updated_at = datetime.now(UTC)
        return AssistantOut.of(await save(row))

    @router.delete("/{assistant_id}", status_code=204, response_class=Response, responses={
        409: {"description": "it is the default, or a trunk sends its calls to it"}})
    async def delete(assistant_id: str) -> Response:
        row = await load(assistant_id)
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

        await store.run(remove)
        return Response(status_code=204)

    return router
