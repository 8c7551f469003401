"""When an unanswered call is tried again: which failures are worth another attempt, and
when that attempt may happen. Pure: the time is always given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from atende.calls.hours import CallingHours

DEFAULT_RETRY_AFTER_S = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    """How a queued call is tried again when nobody answers."""

    max_attempts: int = 1  # 1: no retries
    retry_after_s: float = DEFAULT_RETRY_AFTER_S
    hours: CallingHours | None = None


def retryable(status: str, sip_status: int | None) -> bool:
    """Whether an attempt that ended unanswered may go better later (the Dialer's
    statuses, plus ``interrupted`` for an attempt cut by a restart).

    Nobody answering, a busy line, a declined call (603) and trouble on the way (no
    response, 5xx, a restart) are worth another try; a number that does not exist, a
    forbidden destination or refused credentials are not: retrying cannot fix them."""
    if status in ("no_answer", "busy", "interrupted"):
        return True
    if status == "rejected":
        return sip_status == 603
    if status == "failed":
        if sip_status is None:
            return True  # no response, no route, no port: may be passing
        return sip_status >= 500 and sip_status not in (501, 505)
    return False  # cancelled, answered


def next_attempt_at(policy: RetryPolicy, attempts_made: int, status: str,
                    sip_status: int | None, now: datetime) -> datetime | None:
    """When to try again, or None when this attempt was the last."""
    if attempts_made >= policy.max_attempts or not retryable(status, sip_status):
        return None
    at = now + timedelta(seconds=policy.retry_after_s)
    return policy.hours.next_open(at) if policy.hours is not None else at


def first_attempt_at(policy: RetryPolicy, wanted: datetime) -> datetime | None:
    """The first attempt: when it was asked for, moved into the calling hours."""
    return policy.hours.next_open(wanted) if policy.hours is not None else wanted
