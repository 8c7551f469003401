"""The fields of /v1/trunks: what a trunk is made of, checked field by field (a 422 that
says what to fix), and how it is shown."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from atende.api import examples as ex
from atende.sip.grammar import is_user
from atende.sip.uri import UriError, split_hostport
from atende.telephony.numbers import NumberError, NumberFormat, parse_number
from atende.telephony.passwords import check_password
from atende.telephony.trunks import DEFAULT_EXTENSIONS


class Kind(StrEnum):
    """extension: atende registers with a PBX; did: a carrier sends calls to atende;
    freeswitch: calls placed through FreeSWITCH's event socket (ESL_HOST)."""

    EXTENSION = "extension"
    DID = "did"
    FREESWITCH = "freeswitch"


SIP_KINDS = (Kind.EXTENSION, Kind.DID)
_DIAL_STRING = re.compile(r"[^\s'\\]{1,300}")  # one word, no quote or backslash


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
    dial_string: str | None = Field(
        None, max_length=300, description="freeswitch trunks: what FreeSWITCH dials, with "
        "{number} where the number goes (e.g. sofia/gateway/carrier/{number}, "
        "user/{number}, loopback/{number}/default to go through its dialplan)",
        examples=["sofia/gateway/carrier/{number}"])

    @field_validator("dial_string")
    @classmethod
    def _check_dial_string(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not _DIAL_STRING.fullmatch(v) or v.count("{number}") != 1:
            raise ValueError("dial_string: one word with {number} once, e.g. "
                             "sofia/gateway/carrier/{number} (no spaces, quotes or "
                             "backslashes)")
        return v

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
    number: str = Field(..., max_length=64, description="extension number, the DID phone "
                        "number, or (freeswitch) the caller id its calls present")
    username: str | None = Field(None, max_length=200, description="SIP trunks: required")
    password: str | None = Field(None, max_length=200, description="SIP trunks: required; "
                                 "12+ characters with digits, upper- and lower-case letters")
    host: str | None = Field(None, description="SIP trunks: required; the PBX or provider "
                             "address, without port", examples=["pbx.example.com"])
    country: str

    @model_validator(mode="after")
    def _check_kind(self) -> TrunkCreate:
        if self.kind in SIP_KINDS:
            missing = [f for f in ("username", "password", "host") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)}: needed for a {self.kind.value} trunk")
            if self.dial_string is not None:
                raise ValueError("dial_string: for freeswitch trunks only")
        else:
            if self.dial_string is None:
                raise ValueError("dial_string: needed for a freeswitch trunk, e.g. "
                                 "sofia/gateway/carrier/{number}")
            sip = [f for f in ("username", "password", "host", "outbound_proxy", "domain")
                   if getattr(self, f) is not None]
            if sip:
                raise ValueError(f"{', '.join(sip)}: a freeswitch trunk has no SIP settings "
                                 "(FreeSWITCH places its calls)")
        return self

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
    sip_address: str | None = Field(description="atende's SIP address for this trunk: "
                                    "point the provider's inbound calls here (none on "
                                    "freeswitch trunks)")
    assistant_id: str | None
    max_concurrent_calls: int
    allowed_countries: list[str]
    accept_transfers: bool
    extension_pattern: str | None
    dial_string: str | None = Field(None, description="freeswitch trunks: what FreeSWITCH "
                                    "dials")
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
