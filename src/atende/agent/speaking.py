"""How the assistant's sentences become audio. With a cloud voice, each sentence is
streamed and its pieces go to the phone as they arrive; phrases said whole before
(greetings, fixed lines) come from its cache. When the cloud voice fails, the local one
(Piper or espeak-ng) says the sentence, and every sentence after it on this call: a
second voice is better than silence, and better than waiting for a failing vendor again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from concurrent.futures import Executor
from contextlib import aclosing

from atende.agent.turns import CallReport
from atende.providers.errors import ProviderError
from atende.providers.tts.base import CachedStream, CachedTTS

log = logging.getLogger(__name__)


class Speaker:
    """What a call speaks with: a cloud voice while it works, the local one for the sentence
    and the rest of the call once it fails."""

    def __init__(self, local: CachedTTS, executor: Executor, report: CallReport,
                 cloud: CachedStream | None = None) -> None:
        self.local = local
        self.executor = executor
        self.report = report
        self.cloud = cloud

    def unprepared(self, texts: list[str]) -> list[str]:
        """Of ``texts``, those ``prepare`` would synthesise: none with a cloud voice (it
        fetches a line when it is said: each costs a request), and none the local voice
        has made already (lines every call prepares usually are)."""
        if self.cloud is not None:
            return []
        return [t for t in texts if not self.local.prepared(t)]

    async def prepare(self, texts: list[str]) -> None:
        """Synthesise with the local voice, ahead of time, lines the call may have to say
        at once (what a silent caller hears), so each starts when it is due rather than a
        synthesis later."""
        loop = asyncio.get_running_loop()
        for text in self.unprepared(texts):
            await loop.run_in_executor(self.executor, self.local.prepare, text)

    async def pieces(self, sentence: str) -> AsyncGenerator[bytes, None]:
        """16 kHz PCM of ``sentence``, piece by piece. If the cloud voice fails after some
        of it was given, the local voice says the whole sentence after that part."""
        if self.cloud is not None:
            hit = self.cloud.cached(sentence)
            if hit is not None:
                yield hit
                return
            try:
                # aclosing: a barge-in ends the download now, not when it is collected.
                async with aclosing(self.cloud.stream(sentence)) as stream:
                    async for pcm in stream:
                        yield pcm
                return
            except ProviderError as exc:
                log.warning("call %s: %s; the local voice takes over", self.report.call_id,
                            exc)
                self.report.event("provider_error", exc.report(
                    provider=f"tts:{exc.provider}", fallback="local"))
                self.cloud = None
        local = self.local.cached(sentence)
        if local is None:
            loop = asyncio.get_running_loop()
            local = await loop.run_in_executor(self.executor, self.local.synthesize, sentence)
        yield local
