"""Database tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """The declarative base of atende's tables."""

    pass


class Assistant(Base):
    """An assistant as stored: its extension, voice, rules or model, tools and settings."""

    __tablename__ = "assistants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    extension: Mapped[str] = mapped_column(String(64), index=True)  # unique in its domain
    # A FusionPBX domain's (None: every domain's): only that domain's calls and API keys
    # reach it
    domain_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    voice: Mapped[str] = mapped_column(String(300), default="piper")
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set through /v1/assistants (agent/assistant.py reads them). Keys inside ``llm``,
    # ``realtime``, ``stt`` and ``tts`` and headers of ``http_tools`` are encrypted
    # (store/secrets.py).
    greeting: Mapped[str | None] = mapped_column(Text, nullable=True)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    mode: Mapped[str] = mapped_column(String(16), default="pipeline")
    llm: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    tools: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    http_tools: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    transfers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    fallback: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    conversation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    voicemail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    realtime: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # mode realtime
    record: Mapped[bool] = mapped_column(Boolean, default=False)  # two-channel WAV per call
    stt: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # cloud recogniser
    tts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # cloud voice
    hold_music: Mapped[str | None] = mapped_column(String(500), nullable=True)  # a WAV path
    # Calls it takes at once, over all nodes; None: no limit of its own
    max_concurrent_calls: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AiProvider(Base):
    """An AI vendor's account, shared by the assistants that name it: its key (encrypted;
    None: the server's OPENAI_API_KEY … for the vendor), the ElevenLabs agent id and the
    model, voice and URL that assistants use unless they name their own."""

    __tablename__ = "ai_providers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    domain_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))  # realtime | llm | stt | tts
    provider: Mapped[str] = mapped_column(String(32))  # openai, elevenlabs, gemini …
    api_key_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    voice: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# A call's statuses while it is on a node (its dialog and media are up, or being set up);
# before them it is "queued", after them it has its final status.
LIVE_STATUSES = ("ringing", "dialing", "in_progress")


class Call(Base):
    """A call's record: who, how it went, its task and outcome, with its turns, events and
    attempts."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    from_uri: Mapped[str] = mapped_column(String(500))
    to_uri: Mapped[str] = mapped_column(String(500))
    from_user: Mapped[str | None] = mapped_column(String(200), nullable=True)
    from_display: Mapped[str | None] = mapped_column(String(200), nullable=True)
    to_user: Mapped[str | None] = mapped_column(String(200), nullable=True)
    remote_address: Mapped[str | None] = mapped_column(String(100), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    trunk_id: Mapped[str | None] = mapped_column(
        ForeignKey("trunks.id", ondelete="SET NULL"), nullable=True, index=True)
    assistant_id: Mapped[str | None] = mapped_column(
        ForeignKey("assistants.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    hangup_cause: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sip_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    invite_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answer_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recorded: Mapped[bool] = mapped_column(Boolean, default=False)  # its WAV is on disk
    # Calls placed to get something done (call automation)
    source: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    task: Mapped[str | None] = mapped_column(Text, nullable=True)
    caller_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    hook_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # started by
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True,
                                                        unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The queue: when the next attempt is due (None once it is not queued) and the policy
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    retry_after_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    calling_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    ring_timeout_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The atende node the call lives on while it is live (None while queued); if that
    # node dies, another closes or requeues the call (cluster/nodes.py)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)

    turns: Mapped[list[Turn]] = relationship(order_by="Turn.seq", cascade="all, delete-orphan")
    events: Mapped[list[CallEvent]] = relationship(order_by="CallEvent.id",
                                                   cascade="all, delete-orphan")
    attempt_log: Mapped[list[CallAttempt]] = relationship(order_by="CallAttempt.seq",
                                                         cascade="all, delete-orphan")


class CallAttempt(Base):
    """One try at reaching the callee: a call with retries has several."""

    __tablename__ = "call_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, …
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # answered, no_answer, busy, rejected, failed, cancelled, interrupted (by a restart)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sip_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Turn(Base):
    """One turn of a call as stored: who spoke, what, and its timings."""

    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stt_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    llm_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tts_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    played_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CallEvent(Base):
    """Something that happened on a call, as stored (a transfer, a tool call, DTMF …)."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Trunk(Base):
    """A connection to the customer's telephony: a PBX extension atende registers as, or a
    DID trunk from a carrier. The password is stored encrypted (store/secrets.py)."""

    __tablename__ = "trunks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # extension | did | freeswitch
    number: Mapped[str] = mapped_column(String(64))  # the extension or the DID number
    username: Mapped[str] = mapped_column(String(200))
    password_enc: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    transport: Mapped[str] = mapped_column(String(8))
    domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    outbound_proxy: Mapped[str | None] = mapped_column(String(300), nullable=True)
    number_format: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    inbound_auth: Mapped[str] = mapped_column(String(16))  # ip | digest
    allowed_ips: Mapped[list[str]] = mapped_column(JSON)
    contact_user: Mapped[str] = mapped_column(String(64), unique=True)
    assistant_id: Mapped[str | None] = mapped_column(
        ForeignKey("assistants.id", ondelete="SET NULL"), nullable=True)
    max_concurrent_calls: Mapped[int] = mapped_column(Integer)
    allowed_countries: Mapped[list[str]] = mapped_column(JSON)
    accept_transfers: Mapped[bool] = mapped_column(Boolean, default=False)
    # extension trunks: a regular expression for internal extensions (None: 2-6 digits)
    extension_pattern: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tls_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # extension trunks, with several atende nodes: the one that registers it (None: none
    # yet); not a change to the trunk, so updated_at stays (cluster/trunks.py)
    registrar_node: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # freeswitch trunks: what FreeSWITCH dials, {number} replaced (e.g.
    # sofia/gateway/carrier/{number}); SIP fields are empty on them
    dial_string: Mapped[str | None] = mapped_column(String(300), nullable=True)


class Node(Base):
    """An atende process sharing this database: it says it is alive every few seconds;
    one that stops is taken over by another (its live calls closed or requeued)."""

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Which process of that name is running now: a second one started with the same name
    # by mistake is told apart from a restart
    incarnation: Mapped[str] = mapped_column(String(32))
    # Set by the node that took it over, so only one does; a later seen_at means it is
    # back and may be taken over again when it next dies
    taken_over_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)
    taken_over_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Delivery(Base):
    """A result webhook in the outbox: kept until delivered or given up, so none is lost
    to a receiver that is down or to a restart."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # one entry per attempt


class ApiKey(Base):
    """A key for the REST API. Only its SHA-256 is kept: the key is shown once, at
    creation (keys are 256 random bits, so a fast hash is enough)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A key of one FusionPBX domain sees and changes that domain's assistants, AI providers
    # and calls only (api/domains.py); None: every domain's, and everything else
    domain_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)


class Hook(Base):
    """A webhook trigger: a secret URL an automation platform POSTs to start calls. Only
    the token's SHA-256 is kept."""

    __tablename__ = "hooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    trunk_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    assistant_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)


class User(Base):
    """Someone who signs in to the dashboard: an admin (changes things) or a viewer (reads).
    Only a slow hash of the password is kept (dashboard/accounts.py)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16))  # admin | viewer
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)


class WebSession(Base):
    """A signed-in browser: the SHA-256 of its cookie's token (the token itself is never
    stored), its CSRF token and when it expires."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class BridgeSettings(Base):
    """The SIP bridge's configuration (seed 004), one row: its plain settings as JSON and
    its two passwords encrypted (store/secrets.py)."""

    __tablename__ = "bridge_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    sip_password_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    listen_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
