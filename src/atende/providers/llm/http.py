"""The one HTTP streaming loop every chat dialect shares: POST the request, read the
event stream, hand each event to the dialect's decoder, and turn every way the exchange can
fail into a ProviderError the agent can act on."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from atende.providers.errors import ProviderError, kind_for_status
from atende.providers.httpio import (
    MAX_ERROR_BODY,
    error_text,
    raise_for_status,
    timeout,
    transport_failures,
)
from atende.providers.llm.base import Conversation, LlmEvent, LlmSettings
from atende.providers.sse import SseEvent, SseParser


@dataclass(frozen=True)
class HttpRequest:
    """A request to a vendor's HTTP API."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]


class Decoder(Protocol):
    """Reads one vendor's streamed response into text and tool calls."""

    done: bool  # the reply is complete; anything after it is ignored

    def feed(self, event: SseEvent) -> list[LlmEvent]: ...

    def end(self) -> list[LlmEvent]:
        """The stream closed: the last events, or ProviderError if the reply was cut."""
        ...


class Dialect(Protocol):
    """One vendor's HTTP request shape and stream decoder."""

    name: str

    def request(self, settings: LlmSettings, conversation: Conversation) -> HttpRequest: ...

    def decoder(self) -> Decoder: ...


def stream_error(provider: str, data: Any) -> ProviderError | None:
    """An error object sent inside a stream that started well, if ``data`` is one."""
    if not isinstance(data, dict) or "error" not in data:
        return None
    err = data["error"]
    message = err.get("message", json.dumps(err)) if isinstance(err, dict) else str(err)
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    kind = kind_for_status(status) if status else "server"
    return ProviderError(provider, kind, str(message), status)


def decode_json(provider: str, event: SseEvent) -> Any:
    try:
        return json.loads(event.data)
    except ValueError:
        raise ProviderError(provider, "protocol",
                            f"not JSON in the stream: {event.data[:120]!r}") from None


class HttpLanguageModel:
    """A language model reached over HTTP, speaking ``dialect``. Share one ``client``
    among calls: reusing its connections saves a TLS handshake per turn."""

    def __init__(self, settings: LlmSettings, dialect: Dialect,
                 client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.dialect = dialect
        self.name = f"{dialect.name}:{settings.model}"
        self._client = client

    async def stream(self, conversation: Conversation) -> AsyncGenerator[LlmEvent, None]:
        req = self.dialect.request(self.settings, conversation)
        t = self.settings.timeout_s
        client = self._client or httpx.AsyncClient()
        try:
            async with transport_failures(self.name, t), client.stream(
                    "POST", req.url, headers=req.headers, json=req.body,
                    timeout=timeout(t)) as resp:
                await self._check(resp)
                parser, decoder = SseParser(), self.dialect.decoder()
                async for chunk in resp.aiter_text():
                    for sse in parser.feed(chunk):
                        for event in decoder.feed(sse):
                            yield event
                        if decoder.done:
                            return
                for event in decoder.end():
                    yield event
        except ProviderError as exc:
            if exc.provider == self.name:
                raise
            raise ProviderError(self.name, exc.kind, exc.message, exc.status,
                                exc.retry_after_s) from None
        finally:
            if self._client is None:
                await client.aclose()

    async def _check(self, resp: httpx.Response) -> None:
        await raise_for_status(self.name, resp)
        ctype = resp.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            raw = (await resp.aread())[:MAX_ERROR_BODY]
            raise ProviderError(self.name, "protocol",
                                f"expected an event stream, got {ctype or 'no type'}: "
                                f"{error_text(raw)}", resp.status_code)
