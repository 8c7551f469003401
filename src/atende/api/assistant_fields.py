"""The shapes of /v1/assistants: what a client sends (each field checked on its own, with
a message that says what to fix) and what it gets back (keys never included)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from atende.agent.business_hours import DEFAULT_CLOSED, holiday, parse_window
from atende.agent.tools import BUILTINS, OPTIONAL, TOOL_NAME, HttpTool
from atende.agent.turn_policy import TurnPolicy
from atende.agent.vad import VadConfig
from atende.agent.voicemail import VoicemailConfig
from atende.api import examples as ex
from atende.api.domains import domain_uuid
from atende.api.provider_settings import (
    LlmIn,
    LlmOut,
    RealtimeIn,
    RealtimeOut,
    SpeechOut,
    SttIn,
    TtsIn,
    http_url,
)
from atende.calls.assistant_rows import shown_provider, shown_tool
from atende.calls.hours import known_zone
from atende.store import models
from atende.store.db import as_utc

NAME_PATTERN = TOOL_NAME.pattern
Builtin = Literal["set_outcome", "end_call", "transfer_call", "send_dtmf",
                  "schedule_callback", "hold", "resume"]
assert set(Builtin.__args__) == set(BUILTINS + OPTIONAL)  # type: ignore[attr-defined]


class HttpToolIn(BaseModel):
    """An HTTP endpoint of yours the assistant's model may call as a tool."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1, max_length=1000)
    parameters: dict[str, Any] = Field(description="JSON Schema of the arguments: an object")
    url: str = Field(max_length=1000)
    method: Literal["GET", "POST"] = HttpTool.method  # type: ignore[assignment]
    headers: dict[str, str] | None = Field(None, description="write-only (e.g. "
                                           "Authorization); stored encrypted")
    timeout_s: float = Field(HttpTool.timeout_s, ge=0.5, le=30)

    _url = field_validator("url")(http_url)

    @field_validator("parameters")
    @classmethod
    def _object(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get("type") != "object":
            raise ValueError('must be a JSON Schema with "type": "object"')
        return v


class HttpToolOut(BaseModel):
    """An assistant's HTTP tool, its header values masked."""

    name: str
    description: str
    parameters: dict[str, Any]
    url: str
    method: str
    timeout_s: float
    header_names: list[str]


class DestinationIn(BaseModel):
    """Somewhere the assistant may transfer calls to, by name."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, examples=["reception"])
    target: str = Field(min_length=1, max_length=200,
                        description="extension, number or sip: URI", examples=["100"])
    description: str = Field("", max_length=300, description="when to use it (the model "
                             "reads this)")
    mode: Literal["refer", "bridge"] = Field(
        "refer", description="refer: a blind transfer (SIP REFER: the PBX or carrier calls "
        "the target); bridge: atende calls the target on the call's trunk and joins the two "
        "calls (for trunks that do not take REFER), the caller hearing ringback meanwhile")


class FallbackIn(BaseModel):
    """What the assistant does when its provider fails."""

    model_config = ConfigDict(extra="forbid")
    message: str | None = Field(None, min_length=1, max_length=500)
    action: Literal["continue", "hangup", "transfer", "message"] = "continue"
    destination: str | None = Field(None, description="a transfer destination's name, "
                                    "for action transfer")


class TurnTakingIn(BaseModel):
    """How the assistant takes turns: reprompts, end-of-turn silence, barge-in, call length."""

    model_config = ConfigDict(extra="forbid")
    end_of_turn_ms: int = Field(VadConfig.end_ms, ge=200, le=3000,
                                description="caller silence that ends their turn")
    vad_aggressiveness: int = Field(VadConfig.aggressiveness, ge=0, le=3,
                                    description="0 hears the most as speech")
    end_of_turn_model: StrictBool = Field(
        False, description="let the end-of-turn model (Smart Turn v3, offline) end the "
        "caller's turn 200 ms into a pause it judges final instead of after end_of_turn_ms "
        "of silence (otherwise end_of_turn_ms applies). Off by default: on phone audio it "
        "takes some pauses mid-sentence for the end (docs/performance.md)")
    max_call_seconds: int | None = Field(None, ge=10, le=86400)
    min_barge_in_ms: int = Field(TurnPolicy.min_barge_in_ms, ge=60, le=2000,
                                 description="caller speech that stops the assistant")
    backchannels: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        None, max_length=200, description="words that, said over the assistant, do not "
        "take the turn (it carries on); null: the built-in English/Portuguese/Spanish list")
    reprompt_after_ms: int | None = Field(
        TurnPolicy.reprompt_after_ms, ge=2000, le=120_000,
        description="caller silence before the reprompt; null: never reprompt")
    reprompt: str = Field(TurnPolicy.reprompt, min_length=1, max_length=300)
    max_reprompts: int = Field(TurnPolicy.max_reprompts, ge=0, le=10,
                               description="unanswered reprompts before the call is ended")
    silence_goodbye: str = Field(TurnPolicy.silence_goodbye, min_length=1, max_length=300)


class VoicemailIn(BaseModel):
    """Answering-machine detection on calls the assistant places."""

    model_config = ConfigDict(extra="forbid")
    detect: StrictBool = Field(False, description="on calls atende places, listen before "
                               "greeting: a machine ends the call with outcome voicemail")
    action: Literal["hangup", "leave_message"] = "hangup"
    message: str | None = Field(None, min_length=1, max_length=2000, description="left "
                                "after the beep, for leave_message; {caller_name}, {task}, "
                                "{metadata.x} are filled in")
    initial_silence_ms: int = Field(VoicemailConfig.initial_silence_ms, ge=1000, le=10_000,
                                    description="silence after answering before greeting "
                                    "anyway")
    max_greeting_ms: int = Field(VoicemailConfig.max_greeting_ms, ge=1000, le=10_000,
                                 description="longer speech is a machine's greeting")
    after_greeting_ms: int = Field(VoicemailConfig.after_greeting_ms, ge=300, le=3000,
                                   description="silence that ends a person's hello")
    message_silence_ms: int = Field(VoicemailConfig.message_silence_ms, ge=500, le=10_000,
                                    description="without a beep, silence after the machine's "
                                    "greeting before the message")
    max_message_wait_ms: int = Field(VoicemailConfig.max_message_wait_ms, ge=1000,
                                     le=120_000)

    @model_validator(mode="after")
    def _message_to_leave(self) -> VoicemailIn:
        if self.action == "leave_message" and not self.message:
            raise ValueError("message: needed for action leave_message")
        return self


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ClosedIn(BaseModel):
    """What the assistant does outside its business hours."""

    model_config = ConfigDict(extra="forbid")
    message: str | None = Field(None, min_length=1, max_length=1000,
                                description=f"said first; default: {DEFAULT_CLOSED!r}")
    action: Literal["hangup", "message", "transfer"] = Field(
        "hangup", description="then hang up, take a message, or transfer")
    destination: str | None = Field(None, description="a transfer destination's name, for "
                                    "action transfer")


class BusinessHoursIn(BaseModel):
    """When the assistant takes calls: weekly windows in a time zone, and holidays."""

    model_config = ConfigDict(extra="forbid")
    timezone: str = Field(examples=["Europe/Lisbon"], description="IANA time zone")
    weekly: dict[Day, list[str]] = Field(
        description="open windows per day, HH:MM-HH:MM (24:00 for midnight); a day not "
        "listed is closed", examples=[{"mon": ["09:00-13:00", "14:00-18:00"]}])
    holidays: list[str] = Field([], max_length=400, description="dates closed all day, "
                                "YYYY-MM-DD")
    closed: ClosedIn = Field(default_factory=lambda: ClosedIn.model_validate({}))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if not known_zone(v):
            raise ValueError(f"{v!r} is not an IANA time zone such as Europe/Lisbon")
        return v

    @field_validator("weekly")
    @classmethod
    def _windows(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for windows in v.values():
            if len(windows) > 10:
                raise ValueError("at most 10 windows a day")
            for w in windows:
                parse_window(w)
        return {day: [w.strip() for w in windows] for day, windows in v.items()}

    @field_validator("holidays")
    @classmethod
    def _dates(cls, v: list[str]) -> list[str]:
        return [holiday(d) for d in v]


class AssistantFields(BaseModel):
    """An assistant's settings, as given to create or change it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(
        ex.ASSISTANT_UPDATE))
    name: str | None = Field(None, min_length=1, max_length=200)
    extension: str | None = Field(None, pattern=r"^[A-Za-z0-9_.+-]{1,64}$",
                                  description="SIP user part that reaches it")
    language: str | None = Field(None, min_length=2, max_length=16)
    voice: str | None = Field(None, min_length=1, max_length=300,
                              description="the local voice: piper, piper:/path/voice.onnx or "
                              "espeak:<voice>; with `tts` it speaks when the cloud voice "
                              "fails")
    stt: SttIn | None = Field(None, description="a cloud recogniser; null: the local one "
                              "(Whisper), which also takes over when the cloud one fails")
    tts: TtsIn | None = Field(None, description="a cloud voice; null: the local `voice`, "
                              "which also takes over when the cloud one fails")
    greeting: str | None = Field(None, max_length=2000, description="said first; "
                                 "{caller_name}, {task}, {metadata.x} are filled in")
    prompt: str | None = Field(None, max_length=20000,
                               description="system prompt of the language model")
    mode: Literal["pipeline", "realtime"] | None = Field(
        None, description="pipeline: STT → LLM (or rules) → TTS; realtime: a "
        "speech-to-speech model (set `realtime`), the pipeline taking over if it fails")
    realtime: RealtimeIn | None = Field(None, description="the speech-to-speech model of "
                                        "mode realtime")
    llm: list[LlmIn] | None = Field(None, max_length=3, description="first is used; the "
                                    "others are backups. Empty: the offline rules answer")
    tools: list[Builtin] | None = Field(None, description="built-in tools the model may "
                                        "call; default: all but schedule_callback, hold "
                                        "and resume (naming hold brings resume)")
    hold_music: str | None = Field(None, min_length=1, max_length=500, description="a WAV "
                                   "file on the server, played while the assistant holds "
                                   "the caller; null: a built-in soft chime")
    http_tools: list[HttpToolIn] | None = Field(None, max_length=20)
    transfers: list[DestinationIn] | None = Field(None, max_length=20)
    fallback: FallbackIn | None = None
    turn_taking: TurnTakingIn | None = None
    voicemail: VoicemailIn | None = None
    business_hours: BusinessHoursIn | None = Field(None, description="calls coming outside "
                                                   "them get `closed`; null: always open")
    rules: dict[str, Any] | None = Field(None, description="the offline brain's greeting, "
                                         "intents and fallback")
    record: StrictBool | None = Field(None, description="keep a two-channel WAV of each "
                                      "call (GET /v1/calls/{id}/recording)")
    max_concurrent_calls: StrictInt | None = Field(
        None, ge=1, le=100_000, description="calls it takes at once, counted over all "
        "atende nodes; more are refused as busy (queued calls wait). null: no limit of "
        "its own (ATENDE_MAX_CALLS and the trunks' limits still hold)")
    is_default: StrictBool | None = None


class AssistantCreate(AssistantFields):
    """A new assistant."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.ASSISTANT_CREATE))
    name: str = Field(min_length=1, max_length=200)
    extension: str = Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$", description="SIP user part "
                           "that reaches it; unique in its domain")
    domain_uuid: str | None = Field(None, description="the FusionPBX domain_uuid it belongs "
                                    "to: only that domain's calls reach it and only keys of "
                                    "that domain (or without one) see it; null: every "
                                    "domain's. A key with a domain puts it in its own")

    @field_validator("domain_uuid")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        return domain_uuid(v) if v is not None else None


class AssistantOut(BaseModel):
    """An assistant, its secrets masked."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.ASSISTANT))

    id: str
    name: str
    extension: str = Field(description="SIP user part that reaches it: sip:<extension>@host")
    domain_uuid: str | None = None
    language: str
    voice: str
    stt: SpeechOut | None
    tts: SpeechOut | None
    greeting: str | None
    prompt: str | None
    mode: str
    realtime: RealtimeOut | None
    llm: list[LlmOut]
    tools: list[str]
    http_tools: list[HttpToolOut]
    transfers: list[DestinationIn]
    fallback: FallbackIn
    turn_taking: TurnTakingIn
    voicemail: VoicemailIn
    business_hours: BusinessHoursIn | None
    rules: dict[str, Any]
    hold_music: str | None
    record: bool
    max_concurrent_calls: int | None = None
    is_default: bool
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, a: models.Assistant) -> AssistantOut:
        return cls(
            id=a.id, name=a.name, extension=a.extension, domain_uuid=a.domain_uuid,
            language=a.language, voice=a.voice,
            stt=SpeechOut.of(a.stt), tts=SpeechOut.of(a.tts),
            greeting=a.greeting, prompt=a.prompt, mode=a.mode,
            realtime=RealtimeOut(**shown_provider(a.realtime)) if a.realtime else None,
            llm=[LlmOut(**shown_provider(m)) for m in a.llm or []],
            tools=list(a.tools if a.tools is not None else BUILTINS),
            http_tools=[HttpToolOut(**shown_tool(t)) for t in a.http_tools or []],
            transfers=[DestinationIn(**d) for d in a.transfers or []],
            fallback=FallbackIn(**(a.fallback or {})),
            turn_taking=TurnTakingIn(**(a.conversation or {})),
            voicemail=VoicemailIn(**(a.voicemail or {})),
            business_hours=BusinessHoursIn(**a.business_hours) if a.business_hours else None,
            rules=a.rules, hold_music=a.hold_music, record=bool(a.record),
            max_concurrent_calls=a.max_concurrent_calls, is_default=a.is_default,
            created_at=as_utc(a.created_at),
            updated_at=as_utc(a.updated_at) if a.updated_at else None)
