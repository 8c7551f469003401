"""Settings: environment variables prefixed ATENDE_ (or in a .env file in the working
folder), overridable by `atende serve` flags. Seed 003's names (DB_HOST, ESL_HOST,
OPENAI_API_KEY, AUDIO_MODE …) are accepted too, so that a FusionPBX voice-AI .env works
as it is; where both are set, the ATENDE_ name wins."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from atende.calls.hours import CallingHours, HoursError
from atende.sip.auth import SUPPORTED as DIGEST_ALGORITHMS
from atende.telephony.guard import DEFAULT_DIRECT, parse_cidrs


def _env(name: str) -> AliasChoices:
    """ATENDE_<name>, else seed 003's <name>."""
    return AliasChoices(f"ATENDE_{name}", name)


class Settings(BaseSettings):
    """atende's settings, from ATENDE_* environment variables or the command line, checked at
    start."""

    model_config = SettingsConfigDict(env_prefix="ATENDE_", extra="ignore", env_file=".env",
                                      populate_by_name=True)

    bind: str = Field("0.0.0.0", description="address SIP, RTP and the API listen on")
    sip_port: int = Field(5060, ge=1, le=65535, description="SIP port, UDP and TCP")
    sip_tls_port: int = Field(5061, ge=0, le=65535, description="SIP over TLS port (0: no "
                              "TLS listener)")
    tls_cert: Path | None = Field(None, description="PEM certificate (chain) for the TLS "
                                  "listener; default: a self-signed one in the data folder")
    tls_key: Path | None = Field(None, description="PEM private key for ATENDE_TLS_CERT")
    api_port: int = Field(8100, ge=1, le=65535, description="REST API port")
    esl_server_port: int = Field(8022, ge=0, le=65535, description="where FreeSWITCH's "
                                 "dialplan `socket` hands calls over (ESL outbound); 0: no "
                                 "FreeSWITCH channel")
    audio_stream_port: int = Field(8085, ge=1, le=65535, description="where "
                                   "mod_audio_stream sends FreeSWITCH calls' audio "
                                   "(WebSocket)")
    audio_mode: Literal["websocket", "rtp"] = Field(
        "websocket", validation_alias=_env("AUDIO_MODE"),
        description="how FreeSWITCH calls reach atende, in the dialplan `atende freeswitch "
        "dialplan` prints: websocket (mod_audio_stream, port 8085) or rtp (bridged to "
        "atende's SIP port: its jitter buffer and codecs)")
    esl_host: str | None = Field(None, validation_alias=_env("ESL_HOST"),
                                 description="FreeSWITCH's event socket (inbound mode), for "
                                 "/health and calls placed through FreeSWITCH")
    esl_port: int = Field(8021, ge=1, le=65535, validation_alias=_env("ESL_PORT"))
    esl_password: SecretStr = Field(SecretStr("ClueCon"),
                                    validation_alias=_env("ESL_PASSWORD"))
    db_host: str | None = Field(None, validation_alias=_env("DB_HOST"), description=(
        "PostgreSQL by parts (seed 003's DB_*), when ATENDE_DATABASE_URL is not set"))
    db_port: int = Field(5432, ge=1, le=65535, validation_alias=_env("DB_PORT"))
    db_name: str = Field("atende", validation_alias=_env("DB_NAME"))
    db_user: str = Field("atende", validation_alias=_env("DB_USER"))
    db_pass: SecretStr = Field(SecretStr(""), validation_alias=_env("DB_PASS"))
    # Keys for assistants whose provider settings carry none of their own.
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    elevenlabs_api_key: SecretStr | None = Field(None,
                                                 validation_alias=_env("ELEVENLABS_API_KEY"))
    google_api_key: SecretStr | None = Field(None, validation_alias=_env("GOOGLE_API_KEY"))
    anthropic_api_key: SecretStr | None = Field(None,
                                                validation_alias=_env("ANTHROPIC_API_KEY"))
    deepgram_api_key: SecretStr | None = Field(None, validation_alias=_env("DEEPGRAM_API_KEY"))
    data_dir: Path = Field(Path("data"), description="SQLite database and recordings")
    public_ip: str | None = Field(None, description="address put in SDP and Contact (NAT)")
    webrtc_addresses: str = Field("", description="comma-separated addresses offered to "
                                  "browsers for WebRTC calls (their ICE host candidates); "
                                  "empty: the bind address, or every address but loopback "
                                  "when binding to all")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite")
    rtp_port_min: int = Field(10000, ge=1024, le=65534)
    rtp_port_max: int = Field(20000, ge=1026, le=65535)
    allow_direct: str = Field(
        ",".join(DEFAULT_DIRECT),
        description="comma-separated CIDRs allowed to call without a trunk",
    )
    sip_proxies: str = Field("", description="comma-separated CIDRs of SIP proxies in front "
                             "of atende (Kamailio's dispatcher, docs/scaling.md): a call "
                             "they relay is judged by the address it came to them from; "
                             "they get a trunk's rate limit and are never blocked")
    stt_model_path: Path | None = Field(None, description="CTranslate2 Whisper model directory")
    stt_beam_size: int = Field(5, ge=1, le=10, description="Whisper beam size (1 is faster "
                               "and less accurate)")
    stt_workers: int = Field(2, ge=1, le=16, description="transcriptions Whisper runs at once "
                             "(each on ATENDE_MODEL_THREADS threads: all the cores for one "
                             "caller, shared when several talk at once); more callers wait "
                             "their turn")
    stt_window_s: int = Field(10, ge=1, le=30, description="the shortest window Whisper "
                              "encodes a turn in, in seconds (30: always the 30 s it was "
                              "trained on, four times the work for a short turn)")
    stt_language: str | None = Field("en", description="language for speech recognition")
    turn_model: str = Field("", description="Smart Turn v3 ONNX file that judges, 200 ms "
                            "into a pause, whether the caller has finished (their turn then "
                            "ends without waiting for end_of_turn_ms); empty: the one `make "
                            "install` unpacks, if there; 'off': none")
    tts_voice_path: Path | None = Field(None, description="Piper voice (.onnx) to use")
    answer_delay_ms: int = Field(0, ge=0, le=60000, description="ring time before answering")
    rtp_timeout_s: float = Field(60.0, ge=0, description="hang up after this long without "
                                 "RTP from the caller (0: never)")
    max_calls: int = Field(10, ge=1, description="calls handled at once; more get 486 Busy. "
                           "Offline speech models manage about 10 per 2 cores")
    max_call_seconds: float = Field(3600, gt=0, description="hang up calls longer than this")
    drain_timeout_s: float = Field(0, ge=0, le=86400, description="on SIGTERM, first take "
                                   "no new calls (503 to INVITE and OPTIONS, /health 503) "
                                   "and let the live ones end, for up to this long; a "
                                   "second signal ends it. 0: hang up at once. Behind a "
                                   "load balancer, your longest call")
    shutdown_timeout_s: float = Field(10.0, gt=0, le=300, description="on SIGTERM, how long "
                                      "to wait in all for calls to hang up and peers to answer")
    model_threads: int = Field(2, ge=1, le=64, description="threads for the speech models: each "
                               "transcription uses this many, and so many run at once "
                               "(STT/TTS)")
    abuse_max_failures: int = Field(5, ge=1, description="refused or failed-auth INVITEs "
                                    "from one address before it is blocked")
    abuse_window_s: float = Field(60, gt=0, description="window for counting failures")
    abuse_max_user_failures: int = Field(10, ge=1, description="failed digests for one "
                                         "username, from any addresses, before it is locked")
    abuse_block_s: float = Field(600, ge=0, description="how long a blocked address stays "
                                 "blocked")
    sip_rate_per_s: float = Field(10, gt=0, description="new INVITE/REGISTER per second per "
                                  "address (burst: twice that)")
    trunk_rate_per_s: float = Field(200, gt=0, description="the same for a trunk's own PBX "
                                    "or carrier (burst: twice that); past it they are "
                                    "answered 503 with Retry-After, never ignored")
    node_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=64,
                         pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                         description="this node's name among atende nodes sharing one "
                         "database; each node's must differ (default: the host name)")
    redis_url: str | None = Field(
        None, validation_alias=_env("REDIS_URL"), pattern=r"^(redis|rediss|unix)://",
        description="Redis, for several nodes: the abuse guard and live call events "
        "shared (redis://host:6379/0); without it each node has its own")
    node_lease_s: float = Field(15, ge=2, le=600, description="a node that has not said it "
                                "is alive for this long is taken for dead: another node "
                                "closes or requeues its calls")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop", description="the event loop `atende serve` runs on: uvloop (libuv; "
        "about twice the SIP calls per second) or Python's own")
    overload_lag_ms: float = Field(125, gt=0, description="when atende's event loop runs "
                                   "this late (smoothed), new calls are answered 503 with "
                                   "Retry-After until it catches up, then taken at a "
                                   "capped rate that grows until callers ask for less")
    allow_private_urls: str = Field("", description="where webhooks, HTTP tools and model "
                                    "base URLs may point besides public addresses: empty "
                                    "(nowhere else), all, or private CIDRs, comma-separated")
    secret_key: str | None = Field(None, description="Fernet key for secrets at rest; "
                                   "default: secret.key in the data folder")
    webhook_secret: str | None = Field(None, description="key that signs result webhooks; "
                                       "default: derived from the secret key (see `atende "
                                       "webhook-secret`)")
    webhook_retry_base_s: float = Field(10, gt=0, description="first webhook retry after "
                                        "this long, then doubling up to an hour")
    webhook_give_up_s: float = Field(48 * 3600, gt=0, description="stop retrying a webhook "
                                     "this long after the call ended")
    calling_hours: str = Field("", description="daily window for calls placed through "
                               "the API when the request gives none, as HH:MM-HH:MM in the "
                               "callee's time zone (e.g. 09:00-20:00); empty: any time")
    bridge_digest: str = Field("MD5", description="digest algorithms the SIP bridge's "
                               "listener challenges with, comma-separated, preferred first: "
                               "MD5, SHA-256 or both (each is one challenge; some clients, "
                               "Debian 12's baresip among them, give up when any challenge "
                               "is one they cannot answer)")
    log_level: str = Field("info")

    @field_validator("bridge_digest")
    @classmethod
    def _check_digest(cls, v: str) -> str:
        names = [a.strip().upper() for a in v.split(",") if a.strip()]
        if not names or any(a not in DIGEST_ALGORITHMS for a in names):
            raise ValueError("give MD5, SHA-256 or both, comma-separated (e.g. SHA-256,MD5)")
        return ",".join(dict.fromkeys(names))

    @property
    def bridge_digest_algorithms(self) -> tuple[str, ...]:
        return tuple(self.bridge_digest.split(","))

    @field_validator("allow_direct", "sip_proxies")
    @classmethod
    def _check_cidrs(cls, v: str, info: ValidationInfo) -> str:
        try:
            parse_cidrs([c for c in v.split(",") if c.strip()])
        except ValueError as exc:
            raise ValueError(f"ATENDE_{str(info.field_name).upper()}: {exc}") from None
        return v

    @field_validator("webrtc_addresses")
    @classmethod
    def _check_webrtc(cls, v: str) -> str:
        for a in (a.strip() for a in v.split(",") if a.strip()):
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise ValueError(f"ATENDE_WEBRTC_ADDRESSES: {a!r} is not an IP address") \
                    from None
        return v

    @property
    def webrtc_hosts(self) -> list[str]:
        """The addresses WebRTC offers browsers (empty: all but loopback)."""
        given = [a.strip() for a in self.webrtc_addresses.split(",") if a.strip()]
        return given or ([self.bind] if self.bind not in ("0.0.0.0", "::") else [])

    @field_validator("calling_hours")
    @classmethod
    def _check_hours(cls, v: str) -> str:
        if v.strip():
            try:
                CallingHours.parse(_window(v), ("UTC",))
            except HoursError as exc:
                raise ValueError(f"ATENDE_CALLING_HOURS: {exc} (as HH:MM-HH:MM)") from None
        return v.strip()

    @property
    def default_calling_hours(self) -> dict[str, str] | None:
        return _window(self.calling_hours) if self.calling_hours else None

    @model_validator(mode="after")
    def _check_tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("ATENDE_TLS_CERT and ATENDE_TLS_KEY go together")
        return self

    @property
    def allow_direct_list(self) -> list[str]:
        return [c.strip() for c in self.allow_direct.split(",") if c.strip()]

    @property
    def sip_proxy_list(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.sip_proxies.split(",") if c.strip())

    @property
    def sip_host(self) -> str:
        """The address we tell others to send SIP to."""
        if self.public_ip:
            return self.public_ip
        if self.bind not in ("0.0.0.0", "::"):
            return self.bind
        return socket.getfqdn()

    @property
    def reach_host(self) -> str:
        """atende's address as a PBX on its network reaches it (FreeSWITCH's dialplan and
        originate): the public address, else the bind address, else loopback."""
        if self.public_ip:
            return self.public_ip
        return self.bind if self.bind not in ("0.0.0.0", "::") else "127.0.0.1"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.db_host:
            user = quote(self.db_user, safe="")
            password = quote(self.db_pass.get_secret_value(), safe="")
            auth = f"{user}:{password}" if password else user
            return (f"postgresql+psycopg://{auth}@{self.db_host}:{self.db_port}/"
                    f"{quote(self.db_name, safe='')}")
        return f"sqlite:///{(self.data_dir / 'atende.db').resolve()}"

    @property
    def provider_keys(self) -> dict[str, str]:
        """Default API keys by provider name (gemini's is GOOGLE_API_KEY)."""
        keys = {"openai": self.openai_api_key, "elevenlabs": self.elevenlabs_api_key,
                "gemini": self.google_api_key, "anthropic": self.anthropic_api_key,
                "deepgram": self.deepgram_api_key}
        return {name: k.get_secret_value() for name, k in keys.items()
                if k is not None and k.get_secret_value()}


def _window(text: str) -> dict[str, str]:
    start, _, end = text.partition("-")
    return {"start": start.strip(), "end": end.strip()}


def from_env() -> Settings:
    """Settings from ATENDE_* variables alone (for commands run beside the server)."""
    none: dict[str, Any] = {}
    return Settings(**none)
