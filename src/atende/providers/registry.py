"""Loads speech engines once, at start-up, and hands them to calls by name.

Voice specs: ``piper`` (bundled voice, or ATENDE_TTS_VOICE_PATH), ``piper:/path/voice.onnx``,
``espeak:<voice>`` (e.g. ``espeak:pt-br``). If Piper (an optional GPL extra) is not
installed, ``piper`` falls back to espeak-ng in English with a warning.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import httpx

from atende.egress import EgressPolicy, guarded_client
from atende.providers import cloud_speech
from atende.providers.speech import SpeechSettings
from atende.providers.stt.base import CloudTranscriber, SpeechToText
from atende.providers.tts.base import CachedStream, CachedTTS, TextToSpeech
from atende.providers.turn.base import TurnDetector

log = logging.getLogger(__name__)


def _load_tts(spec: str, default_piper: Path | None) -> TextToSpeech:
    """ValueError says what is wrong with ``spec`` (unknown kind, voice or file)."""
    kind, _, arg = spec.partition(":")
    if kind == "espeak":
        from atende.providers.tts.espeak import EspeakTTS

        return EspeakTTS.checked(arg or "en-us")
    if kind == "piper":
        try:
            from atende.providers.tts.piper import PiperTTS

            try:
                return PiperTTS(arg or default_piper)
            except Exception as exc:  # missing, unreadable or not a model: the user's path
                raise ValueError(f"cannot load the Piper voice {arg!r}: {exc}") from None
        except ImportError:
            log.warning("piper-tts is not installed; voice %r falls back to espeak-ng", spec)
            from atende.providers.tts.espeak import EspeakTTS

            return EspeakTTS("en-us")
    raise ValueError(f"unknown voice {spec!r}: use piper, piper:/path.onnx or espeak:<voice>")


class ProviderRegistry:
    """The speech engines atende has: loads each voice once and hands out recognisers, voices
    and cloud engines by name."""

    def __init__(self, stt: SpeechToText, default_piper: Path | None = None,
                 egress: EgressPolicy | None = None, turn_model: str = "off") -> None:
        self.stt = stt
        self._turn_model = turn_model  # ATENDE_TURN_MODEL
        self._turn_loaded = False
        self.turn: TurnDetector | None = None  # the end-of-turn model, once one uses it
        self.default_piper = default_piper
        self._voices: dict[str, CachedTTS] = {}
        # Cloud voices by their settings (key included: a changed key is a new entry), so
        # a greeting said whole once is not asked for again on the next call.
        self._cloud: OrderedDict[SpeechSettings, CachedStream] = OrderedDict()
        # One client for every cloud provider: kept-alive connections spare each turn a
        # TCP and TLS handshake. Base URLs and HTTP tools are the users': public addresses
        # only, unless the operator allows more.
        self.http = guarded_client(egress or EgressPolicy(),
                                   limits=httpx.Limits(max_keepalive_connections=20))

    def load_voice(self, spec: str) -> CachedTTS:
        """Load (once) and return a voice. Call this at start-up or when an assistant is
        saved, never while a call waits."""
        if spec not in self._voices:
            self._voices[spec] = CachedTTS(_load_tts(spec, self.default_piper))
        return self._voices[spec]

    def load_turn_model(self) -> TurnDetector | None:
        """Load (once) the end-of-turn model, for an assistant that uses it: at start-up or
        when the assistant is saved, never while a call waits. None when there is none
        (then its turns end after their silence)."""
        if not self._turn_loaded:
            from atende.providers.turn.smart_turn import turn_model

            self._turn_loaded = True
            try:
                self.turn = turn_model(self._turn_model)
            except (OSError, RuntimeError) as exc:  # a file missing or not a model
                log.error("end-of-turn model %s: %s; turns end after their silence",
                          self._turn_model, exc)
        return self.turn

    def cloud_voice(self, settings: SpeechSettings) -> CachedStream:
        voice = self._cloud.pop(settings, None) or CachedStream(
            cloud_speech.cloud_voice(settings, self.http))
        self._cloud[settings] = voice
        while len(self._cloud) > 16:
            self._cloud.popitem(last=False)
        return voice

    def transcriber(self, settings: SpeechSettings) -> CloudTranscriber:
        return cloud_speech.transcriber(settings, self.http)

    async def close(self) -> None:
        await self.http.aclose()

    def voice(self, spec: str) -> CachedTTS:
        if spec not in self._voices:
            log.warning("voice %r was not preloaded: loading it now, this call waits", spec)
        return self.load_voice(spec)
