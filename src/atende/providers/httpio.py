"""What every provider reached over HTTP shares: a refusal read into a ProviderError (the
vendor's own message, the status, Retry-After) and transport failures named by kind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from atende.providers.errors import ProviderError, kind_for_status, retry_after

MAX_ERROR_BODY = 4096


def error_text(raw: bytes) -> str:
    """The message in a vendor's JSON error body ({"error": {"message": …}} for OpenAI,
    Anthropic and Gemini; {"detail": {"message": …}} for ElevenLabs; {"err_msg": …} for
    Deepgram), or the start of the body as it came."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:300].decode("utf-8", "replace").strip() or "(empty body)"
    if not isinstance(data, dict):
        return json.dumps(data)[:300]
    for key in ("error", "detail"):
        err = data.get(key)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
    if isinstance(data.get("err_msg"), str):
        return str(data["err_msg"])
    return json.dumps(data)[:300]


async def raise_for_status(provider: str, resp: httpx.Response) -> None:
    """A ProviderError for a 4xx/5xx answer (only the start of its body is read)."""
    if resp.status_code < 400:
        return
    raw = b""
    async for part in resp.aiter_bytes():
        raw += part
        if len(raw) >= MAX_ERROR_BODY:
            break
    raise ProviderError(provider, kind_for_status(resp.status_code), error_text(raw),
                        resp.status_code, retry_after(resp.headers.get("retry-after")))


def timeout(seconds: float) -> httpx.Timeout:
    """``seconds`` for the answer (and between its pieces); connecting gets at most 5."""
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


@asynccontextmanager
async def transport_failures(provider: str, seconds: float) -> AsyncIterator[None]:
    """httpx's timeouts and connection errors inside, as ProviderErrors of ``provider``."""
    try:
        yield
    except httpx.TimeoutException:
        raise ProviderError(provider, "timeout", f"no answer within {seconds:g} s") from None
    except httpx.HTTPError as exc:
        raise ProviderError(provider, "connection",
                            f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
