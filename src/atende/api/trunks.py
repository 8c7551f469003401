"""/v1/trunks: connect a PBX extension or a DID trunk."""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import phonenumbers
from fastapi import APIRouter, HTTPException, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.api import examples as ex
from atende.api.outbound import destination
from atende.sip.grammar import is_user
from atende.sip.uri import UriError, split_hostport
from atende.store import models
from atende.store.db import Store, as_utc
from atende.store.secrets import SecretBox
from atende.telephony.numbers import NumberError, NumberFormat, format_for_trunk, parse_number
from atende.telephony.passwords import check_password
from atende.telephony.trunks import DEFAULT_EXTENSIONS, TrunkConfig, TrunkManager


class Kind(StrEnum):
    """extension: atende registers with a PBX; did: a carrier sends calls to atende."""

    EXTENSION = "extension"
    DID = "did"


class Transport(StrEnum):
    """The SIP transport to the PBX or carrier."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class InboundAuth(StrEnum):
    """How calls from a DID trunk are recognised: by source address or by digest."""

    IP = "ip"
    DIGEST = "digest"


def _host(v: str) -> str:
    v = v.strip()
    if "://" in v or v.startswith("sip:"):
        raise ValueError("give the host name or address only, without sip: or a scheme")
    if ":" in v and not _is_ipv6(v):
        raise ValueError("give the host without a port: use the port field")
    try:  # what the SIP stack will parse later, checked now: a 422, not a 500
        split_hostport(f"[{v.strip('[]')}]" if _is_ipv6(v) else v)
    except UriError:
        raise ValueError(f"{v!r} is not a host name or address") from None
    return v


def _is_ipv6(v: str) -> bool:
    try:
        return ipaddress.ip_address(v.strip("[]")).version == 6
    except ValueError:
        return False


def _country(v: str) -> str:
    v = v.strip().upper()
    if len(v) != 2 or phonenumbers.country_code_for_region(v) == 0:
        raise ValueError(f"{v!r} is not an ISO 3166 alpha-2 country code (e.g. US, BR, PT)")
    return v


class TrunkFields(BaseModel):
    """Fields shared by create and update (all optional here; create requires some)."""

    name: str | None = Field(None, max_length=200, examples=["Office PBX"])
    number: str | None = Field(None, max_length=64, description="extension number (e.g. "
                               "1000) or the DID phone number (e.g. +1 202 555 0123)")
    username: str | None = Field(None, max_length=200)
    password: str | None = Field(None, max_length=200, description="12+ characters with "
                                 "digits, upper- and lower-case letters")
    host: str | None = Field(None, description="PBX or provider address, without port",
                             examples=["pbx.example.com"])
    port: int | None = Field(None, ge=1, le=65535)
    transport: Transport | None = None
    domain: str | None = Field(None, description="SIP domain if it differs from host")
    outbound_proxy: str | None = Field(None, description="host[:port] every outbound "
                                       "request goes through; null to disable")
    number_format: NumberFormat | None = None
    country: str | None = Field(None, description="ISO 3166 alpha-2, e.g. BR")
    inbound_auth: InboundAuth | None = Field(None, description="DID trunks: ip (allowlist) "
                                             "or digest (same username and password)")
    allowed_ips: list[str] | None = Field(None, description="IPs or CIDRs the provider "
                                          "calls from (inbound_auth=ip)")
    assistant_id: str | None = None
    max_concurrent_calls: int | None = Field(None, ge=1, le=10000)
    allowed_countries: list[str] | None = Field(None, description="countries outbound calls "
                                                "may reach; default: the trunk's country")
    tls_verify: StrictBool | None = Field(None, description="transport tls: check the PBX's "
                                    "certificate against the system's CAs (default true; "
                                    "false for self-signed PBX certificates: still "
                                    "encrypted, but not authenticated)")
    accept_transfers: StrictBool | None = Field(None, description="when the other party transfers "
                                          "the assistant (SIP REFER), call the target "
                                          "through this trunk; default false: refused with "
                                          "403")
    extension_pattern: str | None = Field(
        None, max_length=200, description="extension trunks: a regular expression the whole "
        "destination must match to be dialled as an internal extension (e.g. "
        "[0-9]{3,4}|\\*[0-9]{2}); anything else is a phone number, checked against "
        f"allowed_countries. Default (null): {DEFAULT_EXTENSIONS}", examples=["[0-9]{3,4}"])
    enabled: StrictBool | None = None

    @field_validator("extension_pattern")
    @classmethod
    def _check_pattern(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"extension_pattern: not a regular expression ({exc})") from None
        if re.fullmatch(v, "") is not None:
            raise ValueError("extension_pattern: it must not match an empty destination")
        return v

    @field_validator("host", "domain")
    @classmethod
    def _check_host(cls, v: str | None) -> str | None:
        return None if v is None else _host(v)

    @field_validator("username")
    @classmethod
    def _check_username(cls, v: str | None) -> str | None:
        # It is written into REGISTER's Authorization and our From: a quote or a line
        # break there would write headers of the caller's choosing.
        if v is not None and not is_user(v):
            raise ValueError("username: letters, digits and - _ . ! ~ * ' ( ) & = + $ , ; ? / "
                             "(or %XX escapes) only, as in a SIP address's user part")
        return v

    @field_validator("number")
    @classmethod
    def _number_chars(cls, v: str | None) -> str | None:
        if v is not None and not is_user("".join(v.split())):
            raise ValueError("number: an extension (e.g. 1000) or a phone number (e.g. "
                             "+1 202 555 0123): no quotes, spaces inside words, @ or :")
        return v

    @field_validator("outbound_proxy")
    @classmethod
    def _check_proxy(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        host, _, port = v.strip().rpartition(":") if v.count(":") == 1 else (v, "", "")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError("outbound_proxy must be host or host:port")
        _host(host or v)
        return v.strip()

    @field_validator("country")
    @classmethod
    def _check_country(cls, v: str | None) -> str | None:
        return None if v is None else _country(v)

    @field_validator("allowed_countries")
    @classmethod
    def _check_countries(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_country(c) for c in v]

    @field_validator("allowed_ips")
    @classmethod
    def _check_ips(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        out = []
        for item in v:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR range") from None
        return out

    @field_validator("password")
    @classmethod
    def _check_password(cls, v: str | None) -> str | None:
        if v is None:
            return None
        errors, _ = check_password(v)
        if errors:
            raise ValueError("; ".join(errors))
        return v


class TrunkCreate(TrunkFields):
    """A new trunk."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TRUNK_CREATE))

    kind: Kind
    name: str = Field(..., max_length=200, examples=["Office PBX"])
    number: str = Field(..., max_length=64)
    username: str = Field(..., max_length=200)
    password: str = Field(..., max_length=200)
    host: str
    country: str

    @model_validator(mode="after")
    def _check_number(self) -> TrunkCreate:
        if self.kind == Kind.DID:
            try:
                parse_number(self.number, self.country)
            except NumberError as exc:
                raise ValueError(f"number: {exc}") from None
        elif not self.number.replace("-", "").replace("_", "").isalnum():
            raise ValueError("number: an extension is letters and digits, e.g. 1000")
        return self


class TrunkUpdate(TrunkFields):
    """Changes to a trunk (only the fields given)."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TRUNK_UPDATE))


class RegistrationOut(BaseModel):
    """An extension trunk's registration, in plain words."""

    state: str = Field(description="unregistered, registering, registered, failed")
    expires_in_s: int | None
    last_status: int | None = Field(description="SIP status of the last REGISTER answer")
    reason: str = Field(description="in plain words, e.g. why it failed")


class TrunkOut(BaseModel):
    """A trunk, its password never shown."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TRUNK))

    id: str
    name: str
    kind: str
    number: str
    username: str
    host: str
    port: int | None
    transport: str
    domain: str | None
    outbound_proxy: str | None
    number_format: str
    country: str
    inbound_auth: str
    allowed_ips: list[str]
    sip_address: str = Field(description="atende's SIP address for this trunk: point the "
                             "provider's inbound calls here")
    assistant_id: str | None
    max_concurrent_calls: int
    allowed_countries: list[str]
    accept_transfers: bool
    extension_pattern: str | None
    tls_verify: bool
    enabled: bool
    created_at: datetime
    updated_at: datetime
    registration: RegistrationOut | None = Field(
        None, description="extension trunks: the live registration with the PBX")
    warnings: list[str] = Field(default_factory=list)


class TrunkTestIn(BaseModel):
    """A trunk test: the registration, and a short call when a number is given."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TRUNK_TEST_IN))

    to: str | None = Field(None, description="number or extension to call as a test",
                           examples=["+351912345678"])
    ring_timeout_s: float = Field(20, ge=3, le=60)


class TrunkTestOut(BaseModel):
    """What a trunk test found, step by step."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TRUNK_TEST_OUT))

    ok: bool
    steps: list[dict[str, Any]] = Field(description="each check with ok, detail in plain "
                                        "words and the SIP status behind it")


Tester = Callable[[TrunkConfig, str, float], Awaitable[dict[str, Any]]]


def e164(number: str, country: str) -> str | None:
    try:
        return format_for_trunk(number, country, NumberFormat.INTL_PLUS)
    except NumberError:
        return None


def trunks_router(store: Store, box: SecretBox, manager: TrunkManager, sip_host: str,
                  sip_port: int, tester: Tester | None = None) -> APIRouter:
    router = APIRouter(prefix="/v1/trunks", tags=["trunks"])

    def out(t: models.Trunk, warnings: list[str] | None = None) -> TrunkOut:
        reg = manager.registration(t.id)
        host = f"[{sip_host}]" if ":" in sip_host else sip_host
        return TrunkOut(
            id=t.id, name=t.name, kind=t.kind, number=t.number, username=t.username,
            host=t.host, port=t.port, transport=t.transport, domain=t.domain,
            outbound_proxy=t.outbound_proxy, number_format=t.number_format,
            country=t.country, inbound_auth=t.inbound_auth, allowed_ips=t.allowed_ips,
            sip_address=f"sip:{t.contact_user}@{host}:{sip_port}",
            assistant_id=t.assistant_id, max_concurrent_calls=t.max_concurrent_calls,
            allowed_countries=t.allowed_countries, accept_transfers=t.accept_transfers,
            extension_pattern=t.extension_pattern,
            tls_verify=t.tls_verify,
            enabled=t.enabled,
            created_at=as_utc(t.created_at), updated_at=as_utc(t.updated_at),
            registration=RegistrationOut(**reg) if reg else None,  # type: ignore[arg-type]
            warnings=warnings or [],
        )

    def refuse_same_did(s: Session, row: models.Trunk) -> None:
        """409 when another DID trunk has the same number, however written: the calls to
        it would go to whichever trunk matched first."""
        if row.kind != "did":
            return
        mine = e164(row.number, row.country)
        if mine is None:
            return
        for other in s.scalars(select(models.Trunk).where(models.Trunk.kind == "did",
                                                         models.Trunk.id != row.id)):
            if e164(other.number, other.country) == mine:
                raise HTTPException(409, f"number: trunk {other.name!r} already has "
                                    f"{mine}")

    async def check_assistant(assistant_id: str | None) -> None:
        if assistant_id is None:
            return
        found = await store.run(lambda s: s.get(models.Assistant, assistant_id))
        if found is None:
            raise HTTPException(422, f"assistant_id: no assistant with id {assistant_id!r}")

    @router.post("", response_model=TrunkOut, status_code=201)
    async def create(body: TrunkCreate) -> TrunkOut:
        await check_assistant(body.assistant_id)
        now = datetime.now(UTC)
        row = models.Trunk(
            id=uuid.uuid4().hex, name=body.name, kind=body.kind.value, number=body.number,
            username=body.username, password_enc=box.encrypt(body.password), host=body.host,
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
            refuse_same_did(s, row)
            s.add(row)

        await store.run(add)
        await manager.apply(row)
        return out(row, check_password(body.password)[1])

    @router.get("", response_model=list[TrunkOut])
    async def list_trunks() -> list[TrunkOut]:
        rows = await store.run(lambda s: list(s.scalars(select(models.Trunk)
                                                       .order_by(models.Trunk.created_at))))
        return [out(r) for r in rows]

    async def load(trunk_id: str) -> models.Trunk:
        row = await store.run(lambda s: s.get(models.Trunk, trunk_id))
        if row is None:
            raise HTTPException(404, f"no trunk with id {trunk_id!r}")
        return row

    @router.get("/{trunk_id}", response_model=TrunkOut)
    async def get(trunk_id: str) -> TrunkOut:
        return out(await load(trunk_id))

    @router.patch("/{trunk_id}", response_model=TrunkOut)
    async def update(trunk_id: str, body: TrunkUpdate) -> TrunkOut:
        await load(trunk_id)
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        await check_assistant(changes.get("assistant_id"))
        columns = models.Trunk.__table__.columns
        for key, value in changes.items():
            # null clears what may be empty (domain, outbound_proxy, port …), nothing else
            if value is None and not columns["password_enc" if key == "password"
                                              else key].nullable:
                raise HTTPException(422, f"{key}: cannot be empty")
        warnings = check_password(changes["password"])[1] if "password" in changes else []

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
                refuse_same_did(s, row)
            row.updated_at = datetime.now(UTC)
            return row

        row = await store.run(apply)
        await manager.apply(row)
        return out(row, warnings)

    @router.post("/{trunk_id}/test", response_model=TrunkTestOut)
    async def test(trunk_id: str, body: TrunkTestIn) -> TrunkTestOut:
        """Check the registration (extension trunks) and, with ``to``, place a short test
        call: it says a test message and hangs up. Takes up to the ring timeout."""
        row = await load(trunk_id)
        live = manager.trunks.get(row.id)
        if live is None:
            raise HTTPException(409, "trunk is not loaded yet; try again")
        steps: list[dict[str, Any]] = []
        reg = manager.registration(row.id)
        if reg is not None:
            steps.append({"check": "registration", "ok": reg["state"] == "registered",
                          "detail": reg["reason"], "sip_status": reg["last_status"]})
        if body.to:
            if tester is None:
                raise HTTPException(503, "test calls are not available")
            user = destination(live.config, body.to.strip())
            steps.append(await tester(live.config, user, body.ring_timeout_s))
        if not steps:
            steps.append({"check": "configuration", "ok": True,
                          "detail": "DID trunks do not register: give 'to' to test a call"})
        return TrunkTestOut(ok=all(s["ok"] for s in steps), steps=steps)

    @router.delete("/{trunk_id}", status_code=204, response_class=Response)
    async def delete(trunk_id: str) -> Response:
        row = await load(trunk_id)
        manager.remove(row.id)
        await store.run(lambda s: s.delete(s.get(models.Trunk, trunk_id)))
        return Response(status_code=204)

    return router

