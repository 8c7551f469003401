"""The text-to-speech interface, sentence splitting and a cache for fixed phrases."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Protocol


class TextToSpeech(Protocol):
    name: str

    def synthesize(self, text: str) -> bytes:
        """16 kHz mono int16 PCM for ``text`` (blocking; run it in a worker thread)."""
        ...


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def split_sentences(text: str, max_first_words: int = 12) -> list[str]:
    """Sentences, so the first can be spoken while the rest is synthesised. A long first
    sentence is cut at a comma: time to first audio grows with its length."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p.strip()]
    if parts and len(parts[0].split()) > max_first_words and "," in parts[0]:
        head, _, tail = parts[0].partition(",")
        parts = [head.strip() + ",", tail.strip(), *parts[1:]]
    return parts


class CachedTTS:
    """Remembers the audio of phrases said again and again (greetings, fixed replies)."""

    def __init__(self, inner: TextToSpeech, capacity: int = 256) -> None:
        self.inner = inner
        self.name = inner.name
        self.capacity = capacity
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> bytes:
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        pcm = self.inner.synthesize(text)
        with self._lock:
            self._cache[text] = pcm
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return pcm

    def prepare(self, text: str) -> None:
        """Synthesise ``text`` ahead of time, sentence by sentence, exactly as the agent
        will ask for it, so speaking it later is a cache hit."""
        for sentence in split_sentences(text):
            self.synthesize(sentence)

    def cached(self, text: str) -> bytes | None:
        with self._lock:
            return self._cache.get(text)
