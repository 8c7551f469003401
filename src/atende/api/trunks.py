"""/v1/trunks: connect a PBX extension or a DID trunk. The work is TrunkService's, which
the dashboard's trunk pages use too (one source of truth); the router only maps it to
HTTP."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.api.outbound import destination
from atende.api.trunk_fields import (
    InboundAuth,
    RegistrationOut,
    Transport,
    TrunkCreate,
    TrunkOut,
    TrunkTestIn,
    TrunkTestOut,
    TrunkUpdate,
)
from atende.store import models
from atende.store.db import Store, as_utc
from atende.store.secrets import SecretBox
from atende.telephony.numbers import NumberError, NumberFormat, format_for_trunk, parse_number
from atende.telephony.passwords import check_password
from atende.telephony.trunks import TrunkConfig, TrunkManager

Tester = Callable[[TrunkConfig, str, float], Awaitable[dict[str, Any]]]


def e164(number: str, country: str) -> str | None:
    try:
        return format_for_trunk(number, country, NumberFormat.INTL_PLUS)
    except NumberError:
        return None


class TrunkService:
    """Trunks kept in the store and live in the manager (registrations, calls). Refusals
    are HTTPExceptions whose detail says what to fix: the API sends them as they are, the
    dashboard shows their words."""

    def __init__(self, store: Store, box: SecretBox, manager: TrunkManager, sip_host: str,
                 sip_port: int, tester: Tester | None = None) -> None:
        self.store = store
        self.box = box
        self.manager = manager
        self.sip_host = sip_host
        self.sip_port = sip_port
        self.tester = tester

    def out(self, t: models.Trunk, warnings: list[str] | None = None) -> TrunkOut:
        reg = self.manager.registration(t.id)
        host = f"[{self.sip_host}]" if ":" in self.sip_host else self.sip_host
        return TrunkOut(
            id=t.id, name=t.name, kind=t.kind, number=t.number, username=t.username,
            host=t.host, port=t.port, transport=t.transport, domain=t.domain,
            outbound_proxy=t.outbound_proxy, number_format=t.number_format,
            country=t.country, inbound_auth=t.inbound_auth, allowed_ips=t.allowed_ips,
            sip_address=None if t.kind == "freeswitch"
            else f"sip:{t.contact_user}@{host}:{self.sip_port}",
            assistant_id=t.assistant_id, max_concurrent_calls=t.max_concurrent_calls,
            allowed_countries=t.allowed_countries, accept_transfers=t.accept_transfers,
            extension_pattern=t.extension_pattern, dial_string=t.dial_string,
            tls_verify=t.tls_verify,
            enabled=t.enabled,
            created_at=as_utc(t.created_at), updated_at=as_utc(t.updated_at),
            registration=RegistrationOut(**reg) if reg else None,  # type: ignore[arg-type]
            warnings=warnings or [],
        )

    async def create(self, body: TrunkCreate) -> TrunkOut:
        await self._check_assistant(body.assistant_id)
        now = datetime.now(UTC)
        row = models.Trunk(
            id=uuid.uuid4().hex, name=body.name, kind=body.kind.value, number=body.number,
            username=body.username or "", password_enc=self.box.encrypt(body.password or ""),
            host=body.host or "", dial_string=body.dial_string,
            port=body.port, transport=(body.transport or Transport.UDP).value,
            domain=body.domain, outbound_proxy=body.outbound_proxy,
            number_format=(body.number_format or NumberFormat.INTL_PLUS).value,
            country=body.country,
            inbound_auth=(body.inbound_auth or InboundAuth.IP).value,
            allowed_ips=body.allowed_ips or [], contact_user="t" + secrets.token_hex(5),
            assistant_id=body.assistant_id,
            max_concurrent_calls=body.max_concurrent_calls or 10,
            allowed_countries=body.allowed_countries or [body.country],
            accept_transfers=bool(body.accept_transfers),
            extension_pattern=body.extension_pattern,
            tls_verify=True if body.tls_verify is None else body.tls_verify,
            enabled=True if body.enabled is None else body.enabled,
            created_at=now, updated_at=now,
        )

        def add(s: Session) -> None:
            _refuse_same_did(s, row)
            s.add(row)

        await self.store.run(add)
        await self.manager.apply(row)
        return self.out(row, check_password(body.password)[1] if body.password else [])

    async def all(self) -> list[TrunkOut]:
        rows = await self.store.run(lambda s: list(s.scalars(
            select(models.Trunk).order_by(models.Trunk.created_at))))
        return [self.out(r) for r in rows]

    async def get(self, trunk_id: str) -> TrunkOut:
        return self.out(await self._load(trunk_id))

    async def update(self, trunk_id: str, body: TrunkUpdate) -> TrunkOut:
        await self._load(trunk_id)
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        await self._check_assistant(changes.get("assistant_id"))
        columns = models.Trunk.__table__.columns
        for key, value in changes.items():
            # null clears what may be empty (domain, outbound_proxy, port …), nothing else
            if value is None and not columns["password_enc" if key == "password"
                                              else key].nullable:
                raise HTTPException(422, f"{key}: cannot be empty")
        warnings = check_password(changes["password"])[1] if "password" in changes else []
        box = self.box

        def apply(s: Session) -> models.Trunk:
            row = s.get(models.Trunk, trunk_id)
            assert row is not None
            for key, value in changes.items():
                if key == "password":
                    row.password_enc = box.encrypt(value)
                else:
                    setattr(row, key, value.value if isinstance(value, StrEnum) else value)
            if row.kind == "did":
                try:
                    parse_number(row.number, row.country)
                except NumberError as exc:
                    raise HTTPException(422, f"number: {exc}") from None
                _refuse_same_did(s, row)
            if (row.kind == "freeswitch") != (row.dial_string is not None):
                raise HTTPException(422, "dial_string: freeswitch trunks need one; others "
                                    "have none")
            row.updated_at = datetime.now(UTC)
            return row

        row = await self.store.run(apply)
        await self.manager.apply(row)
        return self.out(row, warnings)

    async def test(self, trunk_id: str, body: TrunkTestIn) -> TrunkTestOut:
        row = await self._load(trunk_id)
        live = self.manager.trunks.get(row.id)
        if live is None:
            raise HTTPException(409, "trunk is not loaded yet; try again")
        steps: list[dict[str, Any]] = []
        reg = self.manager.registration(row.id)
        if reg is not None:
            steps.append({"check": "registration", "ok": reg["state"] == "registered",
                          "detail": reg["reason"], "sip_status": reg["last_status"]})
        if body.to:
            if self.tester is None:
                raise HTTPException(503, "test calls are not available")
            user = destination(live.config, body.to.strip())
            steps.append(await self.tester(live.config, user, body.ring_timeout_s))
        if not steps:
            steps.append({"check": "configuration", "ok": True,
                          "detail": "DID trunks do not register: give 'to' to test a call"})
        return TrunkTestOut(ok=all(s["ok"] for s in steps), steps=steps)

    async def delete(self, trunk_id: str) -> None:
        row = await self._load(trunk_id)
        self.manager.remove(row.id)
        await self.store.run(lambda s: s.delete(s.get(models.Trunk, trunk_id)))

    async def _load(self, trunk_id: str) -> models.Trunk:
        row = await self.store.run(lambda s: s.get(models.Trunk, trunk_id))
        if row is None:
            raise HTTPException(404, f"no trunk with id {trunk_id!r}")
        return row

    async def _check_assistant(self, assistant_id: str | None) -> None:
        if assistant_id is None:
            return
        found = await self.store.run(lambda s: s.get(models.Assistant, assistant_id))
        if found is None:
            raise HTTPException(422, f"assistant_id: no assistant with id {assistant_id!r}")


def _refuse_same_did(s: Session, row: models.Trunk) -> None:
    """409 when another DID trunk has the same number, however written: the calls to it
    would go to whichever trunk matched first."""
    if row.kind != "did":
        return
    mine = e164(row.number, row.country)
    if mine is None:
        return
    for other in s.scalars(select(models.Trunk).where(models.Trunk.kind == "did",
                                                     models.Trunk.id != row.id)):
        if e164(other.number, other.country) == mine:
            raise HTTPException(409, f"number: trunk {other.name!r} already has {mine}")


def trunks_router(service: TrunkService) -> APIRouter:
    router = APIRouter(prefix="/v1/trunks", tags=["trunks"])

    @router.post("", response_model=TrunkOut, status_code=201)
    async def create(body: TrunkCreate) -> TrunkOut:
        return await service.create(body)

    @router.get("", response_model=list[TrunkOut])
    async def list_trunks() -> list[TrunkOut]:
        return await service.all()

    @router.get("/{trunk_id}", response_model=TrunkOut)
    async def get(trunk_id: str) -> TrunkOut:
        return await service.get(trunk_id)

    @router.patch("/{trunk_id}", response_model=TrunkOut)
    async def update(trunk_id: str, body: TrunkUpdate) -> TrunkOut:
        return await service.update(trunk_id, body)

    @router.post("/{trunk_id}/test", response_model=TrunkTestOut)
    async def test(trunk_id: str, body: TrunkTestIn) -> TrunkTestOut:
        """Check the registration (extension trunks) and, with ``to``, place a short test
        call: it says a test message and hangs up. Takes up to the ring timeout."""
        return await service.test(trunk_id, body)

    @router.delete("/{trunk_id}", status_code=204, response_class=Response)
    async def delete(trunk_id: str) -> Response:
        await service.delete(trunk_id)
        return Response(status_code=204)

    return router
