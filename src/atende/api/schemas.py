"""Response models of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atende.api import examples as ex
from atende.calls.hours import CallingHours
from atende.store import models
from atende.store.db import as_utc


class TurnOut(BaseModel):
    """One turn of a call's conversation, with its timings."""

    seq: int
    speaker: str = Field(description="caller or assistant")
    text: str
    intent: str | None
    started_at: datetime
    ended_at: datetime
    interrupted: bool = Field(description="the caller barged in while the assistant spoke")
    latency_ms: int | None = Field(
        description="end of caller speech → first audio packet of this reply")
    stt_ms: int | None = Field(description="speech recognition of the caller's turn")
    llm_ms: int | None = Field(None, description="STT done → the language model's first "
                               "token (LLM assistants)")
    tts_ms: int | None = Field(description="synthesis of the reply's first sentence")
    played_ms: int | None = Field(description="audio of the reply actually played")


class EventOut(BaseModel):
    """Something that happened on a call."""

    at: datetime
    kind: str
    data: dict[str, Any]


class AttemptOut(BaseModel):
    """One dialling attempt of a call and how it went."""

    seq: int = Field(description="1 for the first attempt")
    started_at: datetime
    ended_at: datetime | None
    status: str | None = Field(description="answered, no_answer, busy, rejected, failed, "
                               "cancelled, or interrupted (by a restart of atende)")
    sip_status: int | None = Field(description="the final SIP status of the INVITE")
    reason: str | None

    @classmethod
    def of(cls, a: models.CallAttempt) -> AttemptOut:
        return cls(seq=a.seq, started_at=as_utc(a.started_at), ended_at=as_utc(a.ended_at),
                   status=a.status, sip_status=a.sip_status, reason=a.reason)


class CallSummary(BaseModel):
    """A call: who, its status, outcome and times."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.CALL, ex.QUEUED_CALL))

    id: str
    channel: str
    direction: str
    status: str = Field(description="queued (waiting for its time, a free place or its "
                        "next attempt), dialing, ringing, in_progress, completed, no_answer, "
                        "busy, cancelled, rejected, failed")
    from_uri: str
    to_uri: str
    from_user: str | None
    from_display: str | None
    to_user: str | None
    remote_address: str | None
    external_id: str | None = Field(description="the channel's id for the call: the SIP "
                                    "Call-ID for SIP calls")
    assistant_id: str | None
    trunk_id: str | None = Field(None, description="the trunk the call came through")
    node_id: str | None = Field(None, description="the atende node the call is (or was "
                                "last) live on; none while it waits in the queue")
    hangup_cause: str | None
    sip_status: int | None = Field(None, description="outbound: the SIP status that ended "
                                   "the attempt (200 answered, 486 busy, 480 …)")
    invite_at: datetime = Field(description="when the INVITE came in; for a call placed "
                                "through the API, when it was asked for")
    answer_at: datetime | None
    end_at: datetime | None
    duration_s: float | None = Field(description="answer to end, in seconds")
    source: str | None = Field(None, description="how an outbound call was started: api, "
                               "webhook, manual, or callback (an assistant promised it on "
                               "the call in metadata.callback_of)")
    phone_number: str | None = Field(None, description="the number asked for")
    task: str | None = None
    caller_name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict,
                                     description="as given when the call was placed")
    webhook_url: str | None = None
    outcome: str | None = Field(None, description="confirmed, reschedule_requested, "
                                "declined, wrong_person, no_answer, busy, failed, "
                                "cancelled or completed")
    summary: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict, description="what was extracted "
                                   "from the conversation, e.g. proposed_time")
    scheduled_at: datetime | None = Field(None, description="when the call was asked to "
                                          "happen, if not at once")
    next_attempt_at: datetime | None = Field(None, description="while queued: when the "
                                             "next attempt is due")
    attempts: int = Field(0, description="attempts made so far")
    max_attempts: int | None = None
    retry_after_s: float | None = None
    calling_hours: dict[str, Any] | None = Field(None, description="the window the call "
                                                 "keeps to, with the callee's time zones")

    @classmethod
    def of(cls, c: models.Call) -> CallSummary:
        answer, end = as_utc(c.answer_at), as_utc(c.end_at)
        duration = (end - answer).total_seconds() if answer and end else None
        return cls(
            id=c.id, channel=c.channel, direction=c.direction, status=c.status,
            from_uri=c.from_uri, to_uri=c.to_uri, from_user=c.from_user,
            from_display=c.from_display, to_user=c.to_user, remote_address=c.remote_address,
            external_id=c.external_id, trunk_id=c.trunk_id, assistant_id=c.assistant_id,
            node_id=c.node_id,
            hangup_cause=c.hangup_cause, sip_status=c.sip_status,
            invite_at=as_utc(c.invite_at), answer_at=answer, end_at=end,
            duration_s=duration, source=c.source, phone_number=c.phone_number, task=c.task,
            caller_name=c.caller_name, metadata=c.meta or {}, webhook_url=c.webhook_url,
            outcome=c.outcome, summary=c.summary, fields=c.fields or {},
            scheduled_at=as_utc(c.scheduled_at), next_attempt_at=as_utc(c.next_attempt_at),
            attempts=c.attempts or 0, max_attempts=c.max_attempts,
            retry_after_s=c.retry_after_s,
            calling_hours=(CallingHours.from_stored(c.calling_hours).to_api()
                           if c.calling_hours else None),
        )


class CallDetail(CallSummary):
    """A call with its transcript, events, attempts and recording."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.CALL_DETAIL))

    turns: list[TurnOut]
    events: list[EventOut]
    attempt_log: list[AttemptOut] = Field(description="each attempt at reaching the callee")
    recording: str | None = Field(None, description="where its two-channel WAV is (caller "
                                  "left, assistant right), when its assistant records calls")

    @classmethod
    def of(cls, c: models.Call) -> CallDetail:
        base = CallSummary.of(c).model_dump()
        turns = [TurnOut(
            seq=t.seq, speaker=t.speaker, text=t.text, intent=t.intent,
            started_at=as_utc(t.started_at),
            ended_at=as_utc(t.ended_at), interrupted=t.interrupted,
            latency_ms=t.latency_ms, stt_ms=t.stt_ms, llm_ms=t.llm_ms, tts_ms=t.tts_ms,
            played_ms=t.played_ms,
        ) for t in c.turns]
        events = [EventOut(at=as_utc(e.at), kind=e.kind, data=e.data) for e in c.events]
        return cls(**base, turns=turns, events=events,
                   attempt_log=[AttemptOut.of(a) for a in c.attempt_log],
                   recording=f"/v1/calls/{c.id}/recording" if c.recorded else None)


class CallList(BaseModel):
    """A page of calls."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.CALL_LIST))

    items: list[CallSummary]
    total: int
    limit: int
    offset: int
