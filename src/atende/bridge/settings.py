"""The SIP bridge's configuration (seed 004): the fields as users send them, checked one
by one with words that say what to fix, and the settings the bridge runs with.

The seed's route takes camelCase names (``sipServer`` …); /v1/bridge takes atende's own
snake_case ones. Both are read by one model, ``BridgeIn``: ``from_seed`` renames the
seed's keys first, ``seed_field`` names a problem in the seed's words."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from atende.sip.grammar import is_user
from atende.sip.uri import UriError, split_hostport
from atende.telephony.passwords import check_password

MASK = "********"  # what a stored secret reads as; sent back, it keeps the secret
DEFAULT_LISTEN_PORT = 5080
DEFAULT_WEBRTC_PORT = 9080
DEFAULT_RING_TIMEOUT_S = 60
OURS_ONLY = ("assistant_id", "assistant_when", "ring_timeout_s", "transcribe",  # not in the
             "server_transport", "server_srtp", "server_tls_verify")  # seed's fields

# The seed's names and ours, in the seed's order.
SEED_FIELDS = {
    "enabled": "enabled",
    "sipServer": "sip_server",
    "sipUser": "sip_user",
    "sipPass": "sip_password",
    "sipListenPort": "listen_port",
    "sipListenUser": "listen_user",
    "sipListenSecret": "listen_secret",
    "sipExtension": "extension",
    "wasmServerPort": "webrtc_port",
    "wasmServerIP": "webrtc_ip",
    "chromeRemoteURL": "chrome_remote_url",
    "nodeRemoteHelper": "node_remote_helper",
}
OUR_FIELDS = {ours: seed for seed, ours in SEED_FIELDS.items()}
SECRETS = ("sip_password", "listen_secret")
PAIRS = {"sip_password": "sip_user", "listen_secret": "listen_user"}  # secret → its user
_SECRET_TEXT = re.compile(r"[^\x00-\x1f\x7f]{1,128}")  # printable: it goes in no header


@dataclass(frozen=True)
class BridgeConfig:
    """The settings the bridge runs with; the defaults are the seed's."""

    enabled: bool = False
    sip_server: str = ""  # host:port of the SIP server calls are bridged to
    sip_user: str = ""
    sip_password: str = field(default="", repr=False)
    listen_port: int = DEFAULT_LISTEN_PORT
    listen_user: str = ""
    listen_secret: str = field(default="", repr=False)
    extension: str = ""  # registered with the SIP server: its calls come back through us
    webrtc_port: int = DEFAULT_WEBRTC_PORT
    webrtc_ip: str = ""
    chrome_remote_url: str = ""
    node_remote_helper: str = ""
    # atende's own, beyond the seed's fields (/v1/bridge only):
    assistant_id: str = ""  # answers the calls the far side does not take
    assistant_when: tuple[str, ...] = ("no_answer", "busy")
    ring_timeout_s: int = DEFAULT_RING_TIMEOUT_S
    transcribe: bool = False  # each side's speech as turns of the call's record
    server_transport: str = "udp"  # to the SIP server: udp, tcp or tls
    server_srtp: bool = False  # offer the SIP server SRTP only (over TLS)
    server_tls_verify: bool = True  # its certificate must be trusted and name it

    @property
    def server(self) -> tuple[str, int]:
        """The SIP server's host and port (5060, or 5061 over TLS, when none is given;
        no host: none set)."""
        default = 5061 if self.server_transport == "tls" else 5060
        if not self.sip_server:
            return "", default
        host, port = split_hostport(self.sip_server)
        return host.strip("[]"), port or default

    def plain(self) -> dict[str, Any]:
        """What is stored in the clear (the secrets are kept encrypted, apart)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()
                if k not in SECRETS}

    def shown(self) -> dict[str, Any]:
        """Every setting in atende's names, a secret only as MASK (or "" when unset)."""
        return {**self.plain(), **{k: MASK if getattr(self, k) else "" for k in SECRETS}}

    def shown_as_seed(self) -> dict[str, Any]:
        """The same in the seed's names and order."""
        shown = self.shown()
        return {seed: shown[ours] for seed, ours in SEED_FIELDS.items()}

    @classmethod
    def of(cls, plain: dict[str, Any], sip_password: str, listen_secret: str
           ) -> BridgeConfig:
        """The stored settings (fields an older version did not know take defaults)."""
        known: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                 for k, v in plain.items() if k in cls.__dataclass_fields__}
        return cls(**known, sip_password=sip_password, listen_secret=listen_secret)


class BridgeIn(BaseModel):
    """A new configuration of the bridge. ``enabled`` is required; another field left out
    takes its default, except the two secrets: left out (or sent as they are shown,
    ``********``) they keep what is stored, and an empty string clears them."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{
        "enabled": True, "sip_server": "sip.example.com:5060", "sip_user": "whatsapp_trunk",
        "sip_password": "mySecurePassword123", "listen_port": 5080,
        "listen_user": "incoming_user", "listen_secret": "incomingSecret123",
        "extension": "7001", "webrtc_port": 9080, "webrtc_ip": "10.0.0.5",
        "assistant_id": "", "assistant_when": ["no_answer", "busy"], "ring_timeout_s": 30,
        "transcribe": False}]})

    enabled: bool = Field(description="take bridge calls (false: new calls are refused, "
                          "calls in progress go on until they end)")
    sip_server: str | None = Field(None, max_length=300, examples=["sip.example.com:5060"],
                                   description="the SIP server calls are bridged to: "
                                   "host:port or ip:port (port 5060 when left out)")
    sip_user: str | None = Field(None, max_length=64, examples=["whatsapp_trunk"],
                                 description="the username the SIP server knows the bridge "
                                 "by (answers its 401/407 challenges)")
    sip_password: str | None = Field(None, max_length=128, description="its password "
                                     "(write-only)")
    listen_port: int | None = Field(None, ge=1, le=65535, examples=[DEFAULT_LISTEN_PORT],
                                    description="where the bridge takes SIP calls (UDP and "
                                    "TCP; TLS on the next port)")
    listen_user: str | None = Field(None, max_length=64, examples=["incoming_user"],
                                    description="the username calling clients must "
                                    "authenticate with (digest)")
    listen_secret: str | None = Field(None, max_length=128, description="their password "
                                      "(write-only; 12+ characters with digits, upper- and "
                                      "lower-case letters)")
    extension: str | None = Field(None, max_length=64, examples=["7001"],
                                  description="registered with the SIP server, so that its "
                                  "calls to this extension come through the bridge (empty: "
                                  "no registration)")
    webrtc_port: int | None = Field(None, ge=1, le=65535, examples=[DEFAULT_WEBRTC_PORT],
                                    description="the WebRTC side's port")
    webrtc_ip: str | None = Field(None, max_length=64, examples=["10.0.0.5"],
                                  description="the address the WebRTC side advertises in "
                                  "its ICE candidates")
    chrome_remote_url: str | None = Field(None, max_length=500,
                                          examples=["ws://10.1.0.7:9223"],
                                          description="a Chrome's remote debugging address "
                                          "(ws:// or wss://)")
    node_remote_helper: str | None = Field(None, max_length=500,
                                           examples=["http://10.1.0.7:3000"],
                                           description="the Node helper's URL (http:// or "
                                           "https://): stored, and its reachability shown")
    assistant_id: str | None = Field(None, max_length=32, description="an assistant that "
                                     "answers the calls the far side does not take (see "
                                     "assistant_when; empty: none). Not in the seed's route")
    assistant_when: list[Literal["no_answer", "busy", "failed"]] | None = Field(
        None, min_length=1, examples=[["no_answer", "busy"]],
        description="which outcomes of the far side the assistant takes: no_answer (it "
        "rang out), busy, failed (the SIP server could not be reached); default no_answer "
        "and busy")
    ring_timeout_s: int | None = Field(None, ge=5, le=300, examples=[30],
                                       description="how long the far side may ring "
                                       "(default 60 s)")
    transcribe: bool | None = Field(None, description="write each side's speech down as "
                                    "the call's turns (speaker caller or callee), with the "
                                    "local recogniser; audio is then always decoded")
    server_transport: Literal["udp", "tcp", "tls"] | None = Field(
        None, description="how the bridge reaches the SIP server (default udp; tls: port "
        "5061 unless sip_server names one)")
    server_srtp: bool | None = Field(None, description="offer the SIP server SRTP only "
                                     "(SDES keys: needs server_transport tls)")
    server_tls_verify: bool | None = Field(None, description="over TLS, the SIP server's "
                                           "certificate must be trusted and name its host "
                                           "(default true)")

    @field_validator("sip_server")
    @classmethod
    def _server(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return v
        return server_address(v)

    @field_validator("sip_user", "listen_user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v and not (is_user(v) and "@" not in v and ":" not in v):
            raise ValueError("a username is letters, digits and - _ . ! ~ * ' ( ) + = $ , ; "
                             "& %, without spaces, @ or :")
        return v

    @field_validator("sip_password", "listen_secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v and not _SECRET_TEXT.fullmatch(v):
            raise ValueError("control characters (line breaks, tabs) cannot be part of a "
                             "password")
        return v

    @field_validator("extension")
    @classmethod
    def _extension(cls, v: str | None) -> str | None:
        if v and not (is_user(v) and "@" not in v and ":" not in v):
            raise ValueError("an extension is letters, digits and + - _ . * #, such as 7001")
        return v

    @field_validator("assistant_id")
    @classmethod
    def _assistant(cls, v: str | None) -> str | None:
        if v and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", v):
            raise ValueError("an assistant id, as /v1/assistants shows it")
        return v

    @field_validator("webrtc_ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if not v:
            return v
        try:
            return str(ipaddress.ip_address(v.strip("[]")))
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address (such as 10.0.0.5)") from None

    @field_validator("chrome_remote_url")
    @classmethod
    def _chrome(cls, v: str | None) -> str | None:
        return _url(v, ("ws", "wss"), "ws://10.1.0.7:9223")

    @field_validator("node_remote_helper")
    @classmethod
    def _helper(cls, v: str | None) -> str | None:
        return _url(v, ("http", "https"), "http://10.1.0.7:3000")

    @model_validator(mode="after")
    def _together(self) -> BridgeIn:
        if self.enabled and not self.sip_server:
            raise ValueError("sip_server: required when the bridge is enabled (the SIP "
                             "server its calls go to, as host:port)")
        if self.listen_secret and self.listen_secret != MASK:
            errors, _ = check_password(self.listen_secret)
            if errors:
                raise ValueError("listen_secret: " + "; ".join(errors))
        listen = self.listen_port or DEFAULT_LISTEN_PORT
        if (self.webrtc_port or DEFAULT_WEBRTC_PORT) in (listen, listen + 1):
            raise ValueError("webrtc_port: must differ from listen_port and the TLS port "
                             "after it")
        if listen == 65535:
            raise ValueError("listen_port: at most 65534 (TLS takes the port after it)")
        if self.server_srtp and self.server_transport != "tls":
            raise ValueError("server_srtp: SRTP keys travel in the SIP messages (SDES): "
                             "set server_transport to tls as well")
        return self

    def applied_to(self, old: BridgeConfig, keep_ours: bool = False) -> BridgeConfig:
        """The configuration this makes of ``old``: see the class for the secrets.
        ``keep_ours``: the settings the seed's route does not know stay as they were."""
        given = self.model_dump(exclude_unset=True)
        if keep_ours:
            given = {**{k: getattr(old, k) for k in OURS_ONLY}, **given}
        plain: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                 for k, v in given.items()
                                 if k not in SECRETS and v is not None}
        new = BridgeConfig(**plain)
        # A secret left out is kept for the same account only: with no username (the
        # account was dropped) there is nothing to keep it for.
        secrets: dict[str, str] = {}
        for k, user in PAIRS.items():
            if given.get(k) is None or given.get(k) == MASK:
                secrets[k] = getattr(old, k) if getattr(new, user) else ""
            else:
                secrets[k] = str(given[k])
        new = replace(new, sip_password=secrets["sip_password"],
                      listen_secret=secrets["listen_secret"])
        if new.listen_user and not new.listen_secret:
            raise ValueError("listen_secret: required with listen_user (the password "
                             "calling clients authenticate with)")
        if new.listen_secret and not new.listen_user:
            raise ValueError("listen_user: required with listen_secret")
        if new.sip_password and not new.sip_user:
            raise ValueError("sip_user: required with sip_password")
        return new


def server_address(v: str) -> str:
    """``host:port`` or ``ip:port`` as given (IPv6 in brackets), checked."""
    v = v.strip()
    if "://" in v or v.lower().startswith(("sip:", "sips:")) or "@" in v or "/" in v:
        raise ValueError("give host:port or ip:port only (such as sip.example.com:5060), "
                         "without sip:, a user or a path")
    try:
        host, port = split_hostport(v)
    except UriError:
        raise ValueError(f"{v!r} is not host:port or ip:port") from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} is not between 1 and 65535")
    if not host_ok(host.strip("[]")):
        raise ValueError(f"{host[:80]!r} is not a host name or IP address")
    return v


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def host_ok(host: str) -> bool:
    """An IP address, or a DNS name (RFC 1123 labels of up to 63 letters, digits and
    hyphens, 253 in all, not all digits: "0" would be taken for an address)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host.removesuffix(".")
    labels = name.split(".")
    return (0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit())


def _url(v: str | None, schemes: tuple[str, ...], example: str) -> str | None:
    if not v:
        return v
    words = f"a {' or '.join(s + '://' for s in schemes)} URL such as {example}"
    try:
        parts = urlsplit(v)
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError:
        raise ValueError(f"{v!r} is not {words}") from None
    if parts.scheme.lower() not in schemes or not parts.hostname \
            or not host_ok(parts.hostname):
        raise ValueError(f"{v[:200]!r} is not {words}")
    if parts.username or parts.password:
        raise ValueError("credentials in the URL would be shown to every reader: leave "
                         "them out")
    return v


def from_seed(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The seed's JSON in atende's names, and a problem for each key it does not know."""
    ours: dict[str, Any] = {}
    unknown = {}
    for key, value in body.items():
        if key in SEED_FIELDS:
            ours[SEED_FIELDS[key]] = value
        else:
            unknown[key] = ("not a field of the bridge configuration (the fields are "
                            f"{', '.join(SEED_FIELDS)})")
    return ours, unknown


def seed_field(name: str) -> str:
    """An atende field name in the seed's words (other names as they are)."""
    return OUR_FIELDS.get(name, name)


def problems(exc: ValidationError | ValueError) -> dict[str, str]:
    """Field → what to fix, from the model's complaints (a check across fields names its
    field first, as ``field: words``)."""
    found: dict[str, str] = {}
    errors = exc.errors() if isinstance(exc, ValidationError) else [
        {"loc": (), "msg": str(exc)}]
    for e in errors:
        msg = str(e["msg"]).removeprefix("Value error, ")
        loc = [str(part) for part in e["loc"]]
        if not loc:
            name, sep, rest = msg.partition(": ")
            loc, msg = ([name], rest) if sep and name.isidentifier() else (["body"], msg)
        found.setdefault(loc[0], msg)
    return found
