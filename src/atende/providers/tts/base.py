"""The text-to-speech interface, sentence splitting and a cache for fixed phrases."""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Protocol


class TextToSpeech(Protocol):
    """A voice that turns a sentence into 16 kHz PCM."""

    name: str

    def synthesize(self, text: str) -> bytes:
        """16 kHz mono int16 PCM for ``text`` (blocking; run it in a worker thread)."""
        ...


class StreamingVoice(Protocol):
    """A voice reached over the network: a sentence's audio arrives in pieces, each to be
    played as soon as it comes."""

    name: str

    def stream(self, text: str) -> AsyncGenerator[bytes, None]:
        """16 kHz mono int16 PCM for ``text``, in pieces; ProviderError if it fails."""
        ...


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_COMMA = re.compile(r",\s+")


class SentenceChunker:
    """Cuts text that arrives in pieces (an LLM's stream) into sentences to speak, each as
    soon as it is complete, so the first is synthesised while the rest is generated. A long
    first sentence is cut at a comma: time to first audio grows with its length."""

    def __init__(self, max_first_words: int = 12) -> None:
        self.max_first_words = max_first_words
        self._buffer = ""
        self._first = True

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        while (m := _SENTENCE_END.search(self._buffer)) is not None:
            out.append(self._buffer[: m.start()].strip())
            self._buffer = self._buffer[m.end():]
        if self._first and not out and len(self._buffer.split()) > self.max_first_words:
            if (c := _COMMA.search(self._buffer)) is not None:
                out.append(self._buffer[: c.start() + 1].strip())
                self._buffer = self._buffer[c.end():]
        out = [s for s in out if s]
        if out:
            self._first = False
        return out

    def flush(self) -> list[str]:
        out = self.feed("") if self._first else []  # a long first sentence: its comma
        rest, self._buffer = self._buffer.strip(), ""
        return [*out, rest] if rest else out


def split_sentences(text: str, max_first_words: int = 12) -> list[str]:
    """``text`` cut as the chunker cuts a stream of it."""
    return list(_split(text, max_first_words))


@functools.lru_cache(maxsize=1024)
def _split(text: str, max_first_words: int) -> tuple[str, ...]:
    # Every call looks up the same few lines (its greeting, reprompt and goodbye).
    chunker = SentenceChunker(max_first_words)
    return tuple(chunker.feed(text) + chunker.flush())


class CachedTTS:
    """Remembers the audio of phrases said again and again (greetings, fixed replies)."""

    def __init__(self, inner: TextToSpeech, capacity: int = 256) -> None:
        self.inner = inner
        self.name = inner.name
        self.capacity = capacity
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._making: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> bytes:
        while True:
            with self._lock:
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    return hit
                making = self._making.get(text)
                if making is None:
                    making = self._making[text] = threading.Event()
                    break
            # Being made for another call: wait for it rather than make it again (a burst
            # of new calls all asked for the same lines at once, each on the voice).
            # Then look again: it failed, or was pushed out, if it is still not there.
            making.wait()
        try:
            pcm = self.inner.synthesize(text)
            with self._lock:
                self._cache[text] = pcm
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
        finally:
            with self._lock:
                del self._making[text]
            making.set()
        return pcm

    def prepare(self, text: str) -> None:
        """Synthesise ``text`` ahead of time, sentence by sentence, exactly as the agent
        will ask for it, so speaking it later is a cache hit."""
        for sentence in split_sentences(text):
            self.synthesize(sentence)

    def prepared(self, text: str) -> bool:
        """Whether ``prepare(text)`` would find every sentence made already (they then
        count as just used): what every call prepares is usually so, and a look here
        costs far less than a trip to a synthesis thread."""
        with self._lock:
            for sentence in split_sentences(text):
                if sentence not in self._cache:
                    return False
                self._cache.move_to_end(sentence)
        return True

    def cached(self, text: str) -> bytes | None:
        with self._lock:
            return self._cache.get(text)


class CachedStream:
    """A streaming voice that remembers the audio of phrases it said whole (greetings,
    fixed lines), so that saying one again costs no request. Bounded by bytes: a model's
    replies are mostly said once, and must not pile up."""

    def __init__(self, inner: StreamingVoice, max_bytes: int = 8 << 20) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_bytes = max_bytes  # 8 MiB: about four minutes of 16 kHz speech
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    def cached(self, text: str) -> bytes | None:
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
        return hit

    async def stream(self, text: str) -> AsyncGenerator[bytes, None]:
        parts: list[bytes] = []
        async with aclosing(self.inner.stream(text)) as stream:
            async for pcm in stream:
                parts.append(pcm)
                yield pcm
        self._keep(text, b"".join(parts))  # reached only when the vendor said it all

    def _keep(self, text: str, pcm: bytes) -> None:
        if len(pcm) > self.max_bytes // 4 or text in self._cache:
            return
        self._cache[text] = pcm
        self._bytes += len(pcm)
        while self._bytes > self.max_bytes:
            _, old = self._cache.popitem(last=False)
            self._bytes -= len(old)
