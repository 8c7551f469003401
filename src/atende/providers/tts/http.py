"""A voice streamed over HTTP: the request for one sentence, and its raw PCM answer turned
into 16 kHz pieces as they arrive (the first one plays while the rest is on its way)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx

from atende.media.audio import SAMPLE_RATE
from atende.media.resample import StreamResampler
from atende.providers.errors import ProviderError
from atende.providers.httpio import (
    MAX_ERROR_BODY,
    error_text,
    raise_for_status,
    timeout,
    transport_failures,
)


async def stream_pcm(client: httpx.AsyncClient, provider: str, url: str,
                     headers: dict[str, str], body: dict[str, Any], rate: int,
                     timeout_s: float) -> AsyncGenerator[bytes, None]:
    """POST ``body`` as JSON; the answer is int16 mono PCM at ``rate``. ``timeout_s`` bounds
    the wait for the first byte and every gap after it."""
    resampler = StreamResampler(rate, SAMPLE_RATE)
    async with transport_failures(provider, timeout_s), client.stream(
            "POST", url, headers=headers, json=body, timeout=timeout(timeout_s)) as resp:
        await raise_for_status(provider, resp)
        ctype = resp.headers.get("content-type", "")
        if ctype.startswith(("application/json", "text/")):
            raw = (await resp.aread())[:MAX_ERROR_BODY]
            raise ProviderError(provider, "protocol", f"expected audio, got {ctype}: "
                                f"{error_text(raw)}", resp.status_code)
        pending, given = b"", False
        async for chunk in resp.aiter_bytes():
            pending += chunk
            whole = len(pending) - len(pending) % 2  # a sample may straddle two chunks
            if whole == 0:
                continue
            out = resampler.process(pending[:whole])
            pending = pending[whole:]
            if out:
                given = True
                yield out
        if not given:
            raise ProviderError(provider, "protocol", "the answer had no audio",
                                resp.status_code)
        tail = resampler.flush()
        if tail:
            yield tail
