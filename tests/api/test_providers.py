"""/v1/providers: AI vendors' accounts that assistants share (seed 003's "AI Providers"):
the key kept encrypted and never shown, every assistant that names a provider using its
current key, URL and agent id, and nothing left pointing at a provider that is gone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.testclient import TestClient

from atende.agent.profile import AssistantProfile
from atende.calls.assistant_rows import profile_of
from atende.store import models
from tests.api.conftest import Tenants


def provider(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/providers", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def assistant(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/assistants", json={"name": "Secretary", "extension": "8000", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def profile(t: Tenants, assistant_id: str, keys: dict[str, str] | None = None
            ) -> AssistantProfile:
    """The assistant as its next call gets it."""
    row = asyncio.run(t.store.assistant_by_id(assistant_id))
    assert row is not None
    return profile_of(row, t.box, keys or {})


def stored_provider(t: Tenants, provider_id: str) -> models.AiProvider:
    row = asyncio.run(t.store.run(lambda s: s.get(models.AiProvider, provider_id)))
    assert row is not None
    return row


def test_an_elevenlabs_agent_shared_by_secretaries(tenants: Tenants) -> None:
    t = tenants
    p = provider(t.admin, type="realtime", provider="elevenlabs", name="ElevenLabs",
                 api_key="sk_eleven_1", agent_id="agent_01")
    assert p["api_key_set"] and p["agent_id"] == "agent_01" and p["used_by"] == []
    assert "sk_eleven_1" not in json.dumps(t.admin.get("/v1/providers").json())
    assert "sk_eleven_1" not in (stored_provider(t, p["id"]).api_key_enc or "")
    first = assistant(t.admin, mode="realtime", realtime={"provider_id": p["id"]})
    second = assistant(t.admin, name="Night desk", extension="8001", mode="realtime",
                       realtime={"provider_id": p["id"], "voice": "v-night"})
    assert first["realtime"]["provider"] == "elevenlabs"
    assert first["realtime"]["provider_id"] == p["id"]
    assert not first["realtime"]["api_key_set"]  # none of its own
    assert "sk_eleven_1" not in json.dumps(first)
    for a in (first, second):
        rt = profile(t, a["id"]).realtime
        assert rt is not None and (rt.provider, rt.model, rt.api_key) == (
            "elevenlabs", "agent_01", "sk_eleven_1")
    assert profile(t, second["id"]).realtime.voice == "v-night"  # type: ignore[union-attr]
    assert sorted(t.admin.get(f"/v1/providers/{p['id']}").json()["used_by"]) == sorted(
        [first["id"], second["id"]])

    # A new key and agent reach every secretary that names the provider, at once.
    r = t.admin.patch(f"/v1/providers/{p['id']}", json={"api_key": "sk_eleven_2",
                                                        "agent_id": "agent_02"})
    assert r.status_code == 200, r.text
    for a in (first, second):
        rt = profile(t, a["id"]).realtime
        assert rt is not None and (rt.model, rt.api_key) == ("agent_02", "sk_eleven_2")

    # Without its agent id the secretaries could not talk: refused, nothing changed.
    r = t.admin.patch(f"/v1/providers/{p['id']}", json={"agent_id": None})
    assert r.status_code == 409 and "agent" in r.json()["detail"]
    assert first["id"] in r.json()["detail"] or second["id"] in r.json()["detail"]
    assert stored_provider(t, p["id"]).agent_id == "agent_02"
    # ... unless the secretary names its own agent.
    for a in (first, second):
        t.admin.patch(f"/v1/assistants/{a['id']}", json={
            "realtime": {"provider_id": p["id"], "model": f"own-{a['name']}"}})
    assert t.admin.patch(f"/v1/providers/{p['id']}", json={"agent_id": None}
                         ).status_code == 200
    rt = profile(t, first["id"]).realtime
    assert rt is not None and (rt.model, rt.api_key) == ("own-Secretary", "sk_eleven_2")


def test_a_provider_without_a_key_uses_the_servers(tenants: Tenants) -> None:
    t = tenants
    p = provider(t.admin, type="llm", provider="openai", model="gpt-4o-mini",
                 base_url="https://llm.example.com/v1")
    assert not p["api_key_set"] and p["name"] == "openai llm"
    a = assistant(t.admin, llm=[{"provider_id": p["id"]},
                                {"provider_id": p["id"], "model": "gpt-4o"}])
    llm = profile(t, a["id"], {"openai": "sk-from-env"}).llm
    assert [(m.provider, m.model, m.api_key, m.base_url) for m in llm] == [
        ("openai", "gpt-4o-mini", "sk-from-env", "https://llm.example.com/v1"),
        ("openai", "gpt-4o", "sk-from-env", "https://llm.example.com/v1")]
    # The key given later is used from the next call on.
    t.admin.patch(f"/v1/providers/{p['id']}", json={"api_key": "sk-own"})
    assert {m.api_key for m in profile(t, a["id"], {"openai": "sk-from-env"}).llm} == {
        "sk-own"}
    # And removed again: the server's once more.
    t.admin.patch(f"/v1/providers/{p['id']}", json={"api_key": None})
    assert {m.api_key for m in profile(t, a["id"], {"openai": "sk-from-env"}).llm} == {
        "sk-from-env"}


def test_speech_providers_fill_in_what_the_section_leaves_out(tenants: Tenants) -> None:
    t = tenants
    stt = provider(t.admin, type="stt", provider="deepgram", api_key="dg-1")
    tts = provider(t.admin, type="tts", provider="elevenlabs", api_key="xi-1", voice="v-1")
    a = assistant(t.admin, language="pt-BR", stt={"provider_id": stt["id"]},
                  tts={"provider_id": tts["id"]})
    prof = profile(t, a["id"])
    assert prof.stt is not None and (prof.stt.provider, prof.stt.model, prof.stt.api_key,
                                     prof.stt.language) == ("deepgram", "nova-3", "dg-1",
                                                            "pt-BR")
    assert prof.tts is not None and (prof.tts.provider, prof.tts.voice, prof.tts.api_key) == (
        "elevenlabs", "v-1", "xi-1")
    # Back to a vendor of its own, without a key: the shared key does not linger.
    r = t.admin.patch(f"/v1/assistants/{a['id']}", json={
        "tts": {"provider": "elevenlabs", "voice": "v-2"}})
    assert r.status_code == 200 and not r.json()["tts"]["api_key_set"]
    prof = profile(t, a["id"])
    assert prof.tts is not None and prof.tts.api_key is None and prof.tts.voice == "v-2"
    assert t.admin.get(f"/v1/providers/{tts['id']}").json()["used_by"] == []


def test_a_provider_in_use_cannot_be_deleted(tenants: Tenants) -> None:
    t = tenants
    p = provider(t.admin, type="llm", provider="anthropic", model="claude-x")
    a = assistant(t.admin, llm=[{"provider_id": p["id"]}])
    r = t.admin.delete(f"/v1/providers/{p['id']}")
    assert r.status_code == 409 and a["id"] in r.json()["detail"]
    t.admin.patch(f"/v1/assistants/{a['id']}", json={"llm": []})
    assert t.admin.delete(f"/v1/providers/{p['id']}").status_code == 204
    assert t.admin.get(f"/v1/providers/{p['id']}").status_code == 404


def test_mistakes_are_answered_with_what_to_fix(tenants: Tenants) -> None:
    t = tenants
    rt = provider(t.admin, type="realtime", provider="openai", name="OpenAI realtime")
    llm = provider(t.admin, type="llm", provider="openai")
    answers = {
        "vendor of another type": t.admin.post("/v1/providers", json={
            "type": "stt", "provider": "elevenlabs"}),
        "agent on openai": t.admin.post("/v1/providers", json={
            "type": "realtime", "provider": "openai", "agent_id": "a1"}),
        "name taken": t.admin.post("/v1/providers", json={
            "type": "llm", "provider": "gemini", "name": "OpenAI realtime"}),
        "bad url": t.admin.post("/v1/providers", json={
            "type": "llm", "provider": "openai", "base_url": "ftp://x"}),
        "vendor cannot change": t.admin.patch(f"/v1/providers/{llm['id']}", json={
            "provider": "anthropic"}),
        "wrong type": t.admin.post("/v1/assistants", json={
            "name": "x", "extension": "x1", "llm": [{"provider_id": rt["id"]}]}),
        "unknown": t.admin.post("/v1/assistants", json={
            "name": "x", "extension": "x2", "llm": [{"provider_id": "nope"}]}),
        "key beside": t.admin.post("/v1/assistants", json={
            "name": "x", "extension": "x3", "llm": [{"provider_id": llm["id"],
                                                     "api_key": "sk-x"}]}),
        "other vendor": t.admin.post("/v1/assistants", json={
            "name": "x", "extension": "x4", "llm": [{"provider_id": llm["id"],
                                                     "provider": "gemini"}]}),
        "no model anywhere": t.admin.post("/v1/assistants", json={
            "name": "x", "extension": "x5", "llm": [{"provider_id": llm["id"]}]}),
        "neither": t.admin.post("/v1/assistants", json={
            "name": "x", "extension": "x6", "llm": [{"model": "m"}]}),
    }
    expected = {
        "vendor of another type": (422, "stt provider is one of deepgram, openai"),
        "agent on openai": (422, "only an ElevenLabs realtime provider"),
        "name taken": (409, "already named 'OpenAI realtime'"),
        "bad url": (422, "must be an https://, wss://, http:// or ws:// URL"),
        "vendor cannot change": (422, "provider"),
        "wrong type": (422, f"llm[0].provider_id: {rt['id']} is of type realtime"),
        "unknown": (422, "llm[0].provider_id: no AI provider 'nope'"),
        "key beside": (422, "the key is the shared provider's"),
        "other vendor": (422, "llm[0].provider: the shared provider is openai"),
        "no model anywhere": (422, "llm[0]: a model is needed"),
        "neither": (422, "provider: name the vendor, or a shared AI provider"),
    }
    for name, r in answers.items():
        status, words = expected[name]
        assert r.status_code == status, (name, r.text)
        assert words in r.text, (name, r.text)
    assert len(t.admin.get("/v1/providers").json()) == 2
