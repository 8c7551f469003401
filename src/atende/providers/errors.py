"""How a provider failed, in words the agent can act on (fall back, retry elsewhere)."""

from __future__ import annotations

from typing import Any, Literal

FailureKind = Literal["timeout", "rate_limited", "server", "connection", "auth", "request",
                      "protocol"]


class ProviderError(Exception):
    """A provider call failed. ``kind`` says why; ``status`` is the HTTP status if any."""

    def __init__(self, provider: str, kind: FailureKind, message: str,
                 status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(f"{provider}: {kind}: {message}")
        self.provider = provider
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s

    def report(self, **extra: Any) -> dict[str, Any]:
        """What a call's ``provider_error`` event says of it (``extra`` added or
        overriding). The message is the vendor's words: never a key."""
        return {"provider": self.provider, "kind": self.kind, "status": self.status,
                "message": self.message, **extra}


def kind_for_status(status: int) -> FailureKind:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server"
    return "request"


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from APIs and ignored)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def kind_for_close(code: int | None, reason: str) -> FailureKind:
    """Why a vendor closed a WebSocket (``code`` None: without a close frame), from the
    close code (RFC 6455 §7.4.1) and the words of its reason."""
    kinds: dict[int, FailureKind] = {1003: "request", 1007: "request", 1008: "request",
                                     1011: "server", 1012: "server", 1013: "rate_limited"}
    why = reason.lower()
    if "quota" in why or "rate" in why:
        return "rate_limited"
    if any(w in why for w in ("api key", "auth", "permission", "unauthori")):
        return "auth"
    return kinds.get(code or 0, "connection")
