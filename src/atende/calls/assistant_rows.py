"""The stored form of an assistant's settings, in one place: the API writes it (keys and
header values encrypted, a key kept when it is not sent again) and a call reads it back as
an AssistantProfile (keys decrypted, in memory only). The non-secret fields are stored as
the API's models dump them; the agent's dataclasses take the same names."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from atende.agent.business_hours import BusinessHours
from atende.agent.fallback import Fallback
from atende.agent.profile import AssistantProfile, TurnTaking
from atende.agent.tools import Destination, HttpTool
from atende.agent.voicemail import VoicemailConfig
from atende.providers.llm.base import LlmSettings
from atende.providers.realtime.base import RealtimeSettings
from atende.providers.realtime.gemini import DEFAULT_MODEL as GEMINI_REALTIME
from atende.providers.realtime.openai import DEFAULT_MODEL as OPENAI_REALTIME
from atende.providers.speech import STT_MODELS, TTS_MODELS, TTS_VOICES, SpeechSettings
from atende.store import models
from atende.store.secrets import SecretBox

KEY = "api_key_enc"  # a provider's API key, encrypted
HEADERS = "headers_enc"  # an HTTP tool's headers (JSON), encrypted
HEADER_NAMES = "header_names"  # their names, in clear, for the API to show
# A section that names a shared AI provider (provider_id) holds a copy of the provider's
# settings under this key, refreshed in the same transaction as any change to the provider:
# a call reads one row, and a new key reaches every assistant that uses the provider.
SHARED = "shared"
DEFAULT_MODELS: dict[str, dict[str, str]] = {
    "realtime": {"openai": OPENAI_REALTIME, "gemini": GEMINI_REALTIME},
    "stt": STT_MODELS, "tts": TTS_MODELS}


class ProviderFields(Protocol):
    """An API model of a provider (language model, realtime, recogniser, voice)."""

    @property
    def provider(self) -> str | None: ...
    @property
    def provider_id(self) -> str | None: ...
    @property
    def api_key(self) -> str | None: ...
    def model_dump(self, *, exclude: set[str]) -> dict[str, Any]: ...


class ToolFields(Protocol):
    """An API model of an HTTP tool."""

    @property
    def name(self) -> str: ...
    @property
    def headers(self) -> dict[str, str] | None: ...
    def model_dump(self, *, exclude: set[str]) -> dict[str, Any]: ...


# Writing (the API) ------------------------------------------------------------------------
def provider_row(new: ProviderFields | None, old: Mapping[str, Any] | None, box: SecretBox
                 ) -> dict[str, Any] | None:
    """A provider as stored: its key encrypted; without a new key, the old one is kept if
    the provider is the same."""
    if new is None:
        return None
    row = new.model_dump(exclude={"api_key"})
    if new.api_key is not None:
        row[KEY] = box.encrypt(new.api_key)
    elif new.provider_id is None and old and old.get("provider") == new.provider and \
            old.get(KEY) and not old.get("provider_id"):
        row[KEY] = old[KEY]
    return row


# Shared AI providers ----------------------------------------------------------------------
def snapshot(p: models.AiProvider) -> dict[str, Any]:
    """What a section that names ``p`` keeps of it."""
    return {"provider": p.provider, KEY: p.api_key_enc, "agent_id": p.agent_id,
            "model": p.model, "base_url": p.base_url, "voice": p.voice}


def effective(kind: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A section as a call uses it: its own settings, else its shared provider's, else the
    vendor's defaults (an ElevenLabs realtime model is the provider's agent id)."""
    out = {k: v for k, v in row.items() if k != SHARED}
    shared = row.get(SHARED)
    if not shared:
        return out
    out["provider"] = vendor = shared["provider"]
    if shared.get(KEY):
        out[KEY] = shared[KEY]
    out["base_url"] = out.get("base_url") or shared.get("base_url")
    out["voice"] = out.get("voice") or shared.get("voice") or (
        TTS_VOICES.get(vendor) if kind == "tts" else None)
    if kind == "realtime" and vendor == "elevenlabs":
        out["model"] = out.get("model") or shared.get("agent_id") or shared.get("model")
    else:
        out["model"] = out.get("model") or shared.get("model") or \
            DEFAULT_MODELS.get(kind, {}).get(vendor)
    return out


def missing(kind: str, row: Mapping[str, Any]) -> str | None:
    """What an effective section lacks to be used, said for the API, or None."""
    vendor = row.get("provider")
    if kind == "realtime" and vendor == "elevenlabs" and not row.get("model"):
        return "the ElevenLabs agent's id is needed: set agent_id on the AI provider (or " \
            "realtime.model)"
    if kind == "tts" and vendor == "elevenlabs" and not row.get("voice"):
        return "the ElevenLabs voice_id is needed: set voice on the AI provider (or tts.voice)"
    if not row.get("model"):
        return "a model is needed: set model on the AI provider (or on this section)"
    return None


def shared_ids(a: models.Assistant) -> dict[str, list[str]]:
    """The shared providers ``a`` names: provider id → the sections that name it."""
    out: dict[str, list[str]] = {}
    for name, row in named_sections(a):
        if pid := row.get("provider_id"):
            out.setdefault(pid, []).append(name)
    return out


def named_sections(a: models.Assistant) -> list[tuple[str, Mapping[str, Any]]]:
    """(field, section) of every provider section of ``a``: llm[0], realtime …"""
    found: list[tuple[str, Mapping[str, Any]]] = [
        (f"llm[{i}]", m) for i, m in enumerate(a.llm or [])]
    found += [(name, row) for name in ("realtime", "stt", "tts")
              if (row := getattr(a, name))]
    return found


# (kind, field, section) → the section to keep; kind is the type of provider it takes
SectionFn = Callable[[str, str, dict[str, Any] | None], dict[str, Any] | None]


def map_sections(a: models.Assistant, fn: SectionFn) -> None:
    """Replace each provider section of ``a`` by ``fn``'s (llm[0] …, realtime, stt,
    tts): new values, so that the store sees the JSON change."""
    if a.llm:
        a.llm = [fn("llm", f"llm[{i}]", m) or {} for i, m in enumerate(a.llm)]
    a.realtime = fn("realtime", "realtime", a.realtime)
    a.stt = fn("stt", "stt", a.stt)
    a.tts = fn("tts", "tts", a.tts)


def with_shared(kind: str, row: dict[str, Any], p: models.AiProvider) -> dict[str, Any]:
    """The section naming ``p``, given its current settings; ValueError (what it lacks)
    when it cannot be used with them."""
    row = {**row, "provider": p.provider, SHARED: snapshot(p)}
    if (why := missing(kind, effective(kind, row))) is not None:
        raise ValueError(why)
    return row


def refresh_shared(a: models.Assistant, p: models.AiProvider) -> list[str]:
    """Give every section of ``a`` that names ``p`` its current settings; the problems of
    the sections that no longer work with them ("realtime: the ElevenLabs agent's id …")."""
    problems = []

    def fresh(kind: str, field: str, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if not row or row.get("provider_id") != p.id:
            return row
        try:
            return with_shared(kind, row, p)
        except ValueError as exc:
            problems.append(f"{field}: {exc}")
            return row

    map_sections(a, fresh)
    return problems


def llm_rows(new: Sequence[ProviderFields], old: list[dict[str, Any]], box: SecretBox
             ) -> list[dict[str, Any]]:
    """The language models as stored, each keeping the key of the one at its place before."""
    return [provider_row(m, old[i] if i < len(old) else None, box) or {}
            for i, m in enumerate(new)]


def tool_rows(new: Sequence[ToolFields], old: list[dict[str, Any]], box: SecretBox
              ) -> list[dict[str, Any]]:
    """HTTP tools as stored: header values encrypted, names in clear; a tool sent without
    headers keeps those of the tool of the same name."""
    before = {t["name"]: t for t in old}
    rows = []
    for t in new:
        row = t.model_dump(exclude={"headers"})
        if t.headers is not None:
            row[HEADERS] = box.encrypt(json.dumps(t.headers)) if t.headers else None
            row[HEADER_NAMES] = sorted(t.headers)
        elif t.name in before:
            row[HEADERS] = before[t.name].get(HEADERS)
            row[HEADER_NAMES] = before[t.name].get(HEADER_NAMES, [])
        rows.append(row)
    return rows


def shown_provider(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored provider as the API shows it: whether it has a key of its own, not the key
    (nor the copy of its shared provider's settings)."""
    return {**{k: v for k, v in row.items() if k not in (KEY, SHARED)},
            "api_key_set": bool(row.get(KEY))}


def shown_tool(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored HTTP tool as the API shows it: its header names, not their values."""
    return {**{k: v for k, v in row.items() if k != HEADERS},
            HEADER_NAMES: row.get(HEADER_NAMES, [])}


def assistant_urls(a: models.Assistant) -> list[tuple[str, str]]:
    """(field, URL) of every address the assistant's settings send requests to."""
    found = [(f"llm[{i}].base_url", m.get("base_url")) for i, m in enumerate(a.llm or [])]
    found += [(f"http_tools[{i}].url", t.get("url")) for i, t in enumerate(a.http_tools or [])]
    found += [(f"{name}.base_url", (row or {}).get("base_url"))
              for name, row in (("realtime", a.realtime), ("stt", a.stt), ("tts", a.tts))]
    return [(name, str(url)) for name, url in found if url]


# Reading (a call) -------------------------------------------------------------------------
def _key(row: Mapping[str, Any], box: SecretBox, defaults: Mapping[str, str] = {}
         ) -> str | None:
    """The row's own key, else the default for its provider (OPENAI_API_KEY …)."""
    return box.decrypt(row[KEY]) if row.get(KEY) else defaults.get(row.get("provider", ""))


def llm_settings(stored: Mapping[str, Any], box: SecretBox,
                 defaults: Mapping[str, str] = {}) -> LlmSettings:
    row = effective("llm", stored)
    return LlmSettings(provider=row["provider"], model=row["model"],
                       api_key=_key(row, box, defaults),
                       base_url=row.get("base_url"), temperature=row.get("temperature"),
                       max_tokens=row["max_tokens"], timeout_s=row["timeout_s"])


def realtime_settings(row: Mapping[str, Any] | None, box: SecretBox,
                      defaults: Mapping[str, str] = {}) -> RealtimeSettings | None:
    """The speech-to-speech model, key decrypted."""
    if not row:
        return None
    row = effective("realtime", row)
    return RealtimeSettings(
        provider=row["provider"], model=row.get("model") or "",
        api_key=_key(row, box, defaults),
        voice=row.get("voice"), base_url=row.get("base_url"),
        timeout_s=row.get("timeout_s", RealtimeSettings.timeout_s))


def speech_settings(kind: str, row: Mapping[str, Any] | None, box: SecretBox,
                    language: str | None = None, defaults: Mapping[str, str] = {}
                    ) -> SpeechSettings | None:
    """A cloud recogniser's or voice's settings (``kind`` stt or tts), key decrypted;
    ``language``: the assistant's, when the row names none."""
    if not row:
        return None
    row = effective(kind, row)
    return SpeechSettings(
        provider=row["provider"], model=row["model"], api_key=_key(row, box, defaults),
        voice=row.get("voice"), language=row.get("language") or language,
        base_url=row.get("base_url"),
        timeout_s=row.get("timeout_s", SpeechSettings.timeout_s))


def http_tool(row: Mapping[str, Any], box: SecretBox) -> HttpTool:
    headers = json.loads(box.decrypt(row[HEADERS])) if row.get(HEADERS) else {}
    return HttpTool(row["name"], row["description"], row["parameters"], row["url"],
                    row["method"], headers, row["timeout_s"])


def destination(row: Mapping[str, Any]) -> Destination:
    return Destination(str(row["name"]), str(row["target"]), str(row.get("description", "")),
                       row.get("mode") == "bridge")


def fallback(row: Mapping[str, Any] | None, destinations: tuple[Destination, ...]
             ) -> Fallback:
    f = row or {}
    dest = next((d for d in destinations if d.name == f.get("destination")), None)
    kwargs = {"message": f["message"]} if f.get("message") else {}
    return Fallback(action=f.get("action", "continue"), target=dest.target if dest else None,
                    bridge=dest.bridge if dest else False, **kwargs)


def profile_of(a: models.Assistant, box: SecretBox, keys: Mapping[str, str] = {}
               ) -> AssistantProfile:
    """The assistant as a call sees it, its keys decrypted (for one call, in memory);
    ``keys``: by provider, for settings that carry none (ATENDE_OPENAI_API_KEY …)."""
    destinations = tuple(destination(d) for d in a.transfers or [])
    return AssistantProfile(
        id=a.id, name=a.name, rules=a.rules, voice=a.voice, language=a.language,
        mode=a.mode, record=a.record, greeting=a.greeting, prompt=a.prompt,
        llm=tuple(llm_settings(m, box, keys) for m in a.llm or []),
        tools=tuple(a.tools) if a.tools is not None else None,
        http_tools=tuple(http_tool(t, box) for t in a.http_tools or []),
        destinations=destinations, fallback=fallback(a.fallback, destinations),
        turns=TurnTaking.of(a.conversation), voicemail=VoicemailConfig.of(a.voicemail),
        hours=BusinessHours.of(a.business_hours),
        realtime=realtime_settings(a.realtime, box, keys) if a.mode == "realtime" else None,
        stt=speech_settings("stt", a.stt, box, a.language, keys),
        tts=speech_settings("tts", a.tts, box, defaults=keys),
        hold_music=a.hold_music, max_calls=a.max_concurrent_calls)
