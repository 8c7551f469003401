"""Calls placed to get something done: the task and its context, the rules the assistant
follows for it, and the outcome in a word and a sentence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from atende.agent.brain import DEFAULT_TASK_RULES, RuleSet
from atende.agent.profile import AssistantProfile
from atende.calls.hours import CallingHours
from atende.calls.retry import DEFAULT_RETRY_AFTER_S, RetryPolicy
from atende.store import models

# What a finished call achieved. The first four come from the conversation, the rest from
# how the call went.
OUTCOMES = ("confirmed", "reschedule_requested", "declined", "wrong_person", "no_answer",
            "busy", "voicemail", "failed", "cancelled", "completed")


@dataclass(frozen=True)
class CallJob:
    """What the caller of the API asked for, kept with the call and returned untouched."""

    phone_number: str
    task: str | None = None
    caller_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    source: str = "api"  # manual | webhook | api: how the call was started
    hook_id: str | None = None  # the webhook trigger that started it
    idempotency_key: str | None = None
    request_hash: str | None = None  # what was asked under that key
    ring_timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def columns(self) -> dict[str, Any]:
        hours = self.retry.hours
        return {"phone_number": self.phone_number, "task": self.task,
                "caller_name": self.caller_name, "meta": self.metadata,
                "webhook_url": self.webhook_url, "source": self.source,
                "hook_id": self.hook_id, "idempotency_key": self.idempotency_key,
                "request_hash": self.request_hash, "ring_timeout_s": self.ring_timeout_s,
                "max_attempts": self.retry.max_attempts,
                "retry_after_s": self.retry.retry_after_s,
                "calling_hours": hours.to_stored() if hours else None}

    @classmethod
    def of(cls, row: models.Call) -> CallJob:
        """The job of a stored call, as the queue picks it up again."""
        hours = CallingHours.from_stored(row.calling_hours) if row.calling_hours else None
        return cls(phone_number=row.phone_number or row.to_user or "", task=row.task,
                   caller_name=row.caller_name, metadata=row.meta or {},
                   webhook_url=row.webhook_url, source=row.source or "api",
                   hook_id=row.hook_id, idempotency_key=row.idempotency_key,
                   request_hash=row.request_hash, ring_timeout_s=row.ring_timeout_s or 30.0,
                   retry=RetryPolicy(row.max_attempts or 1,
                                     row.retry_after_s or DEFAULT_RETRY_AFTER_S, hours))

    def context(self) -> dict[str, Any]:
        return {"task": self.task or "", "caller_name": self.caller_name or "",
                "metadata": self.metadata, "phone_number": self.phone_number}


@dataclass(frozen=True)
class Callback:
    """A call back an assistant promised on call ``of_call``: placed like any scheduled
    call, by the same assistant on the same trunk, with the first call's context."""

    of_call: str
    at: datetime
    number: str
    reason: str  # the new call's task
    assistant_id: str
    trunk_id: str | None = None
    caller_name: str | None = None
    webhook_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def rules_for(assistant: AssistantProfile, job: CallJob | None) -> RuleSet:
    """The assistant's usual rules, or for a call with a task its task rules (its own
    rules["task"], else the built-in appointment confirmation) filled in for this call."""
    if job is None or not job.task:
        return assistant.rule_set
    own = assistant.rules.get("task")
    rules = RuleSet.from_dict(own) if isinstance(own, dict) else DEFAULT_TASK_RULES
    return rules.rendered(job.context())


def dial_outcome(status: str) -> str:
    """The outcome of a call that was never answered (Dialer statuses)."""
    return {"busy": "busy", "no_answer": "no_answer", "cancelled": "cancelled"}.get(
        status, "failed")


def summarize(outcome: str, fields: dict[str, str], who: str | None, reason: str | None,
              attempts: int = 1) -> str:
    name = who or "The person called"
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if outcome == "confirmed":
        return f"{name} confirmed."
    if outcome == "reschedule_requested":
        proposed = fields.get("proposed_time")
        return f"{name} asked to reschedule" + (f" (proposed: {proposed})." if proposed
                                                 else ".")
    if outcome == "declined":
        return f"{name} declined."
    if outcome == "wrong_person":
        return "Whoever answered said it was the wrong number or person."
    if outcome == "no_answer":
        return f"Nobody answered{tries}" + (f" ({reason})." if reason else ".")
    if outcome == "busy":
        return f"The line was busy{tries}."
    if outcome == "voicemail":
        return "An answering machine took the call" + (
            "; the message was left." if fields.get("message_left") else ".")
    if outcome == "cancelled":
        return "Cancelled before it was over."
    if outcome == "failed":
        return f"The call could not be made{tries}" + (f" ({reason})." if reason else ".")
    return "The call ended without a clear answer to the task."
