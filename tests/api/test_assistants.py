"""/v1/assistants: configuration stored with its secrets encrypted, never shown back, and
every mistake answered with a 4xx that says what to fix."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atende.agent.assistant import after_hours, voicemail
from atende.agent.brain import DEFAULT_RULES
from atende.agent.fallback import MessageTaker
from atende.agent.profile import AssistantProfile, TurnTaking
from atende.agent.turn_policy import TurnPolicy
from atende.api.app import create_api
from atende.api.assistants import AssistantService, assistants_router
from atende.calls.assistant_rows import profile_of
from atende.providers.registry import ProviderRegistry
from atende.store import apikeys, models
from atende.store.db import Store
from atende.store.secrets import SecretBox, new_key
from tests.peers.debian import require

KEY = apikeys.new_key()
BOX = SecretBox(new_key().encode())
LLM = {"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-secret-1"}
TOOL = {"name": "find_slot", "description": "Free slots on a day.",
        "parameters": {"type": "object", "properties": {"day": {"type": "string"}}},
        "url": "https://crm.example.com/slots", "headers": {"Authorization": "Bearer crm-9"}}


@pytest.fixture
def api(store_url: str) -> Iterator[tuple[TestClient, Store]]:
    require("espeak-ng")
    store = Store(store_url)
    asyncio.run(store.init(DEFAULT_RULES.to_dict()))
    asyncio.run(store.run(apikeys.create("tests", KEY)))
    voices = ProviderRegistry(None)  # type: ignore[arg-type]  # no recogniser needed here

    async def prepare(a: models.Assistant) -> None:
        voices.load_voice(a.voice)  # ValueError for a voice that does not exist

    app = create_api(store, [assistants_router(AssistantService(store, BOX, prepare))])
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client, store


def profile(store: Store, assistant_id: str) -> AssistantProfile:
    """The assistant as a call gets it."""
    return profile_of(stored(store, assistant_id), BOX)


def stored(store: Store, assistant_id: str) -> models.Assistant:
    row = asyncio.run(store.assistant_by_id(assistant_id))
    assert row is not None
    return row


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/assistants", json={"name": "Reception", "extension": "reception",
                                            **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_keys_and_headers_are_encrypted_and_never_shown(
        api: tuple[TestClient, Store]) -> None:
    client, store = api
    a = create(client, llm=[LLM, {"provider": "anthropic", "model": "claude-x"}],
               http_tools=[TOOL], prompt="Be brief.", greeting="Clinic, hello.",
               voice="espeak:en-us")
    assert a["llm"][0]["api_key_set"] and not a["llm"][1]["api_key_set"]
    assert a["http_tools"][0]["header_names"] == ["Authorization"]
    assert a["tools"] == ["set_outcome", "end_call", "transfer_call", "send_dtmf"]
    assert a["fallback"] == {"message": None, "action": "continue", "destination": None}
    text = json.dumps(client.get(f"/v1/assistants/{a['id']}").json())
    assert "sk-secret-1" not in text and "crm-9" not in text
    row = stored(store, a["id"])
    assert row.llm is not None and row.http_tools is not None
    assert "sk-secret-1" not in json.dumps(row.llm) and "crm-9" not in json.dumps(row.http_tools)
    assert BOX.decrypt(row.llm[0]["api_key_enc"]) == "sk-secret-1"
    assert json.loads(BOX.decrypt(row.http_tools[0]["headers_enc"])) == TOOL["headers"]

    # An update without the key keeps it (same provider, same place); another provider
    # there does not inherit it; headers are kept by tool name.
    r = client.patch(f"/v1/assistants/{a['id']}", json={
        "llm": [{**LLM, "api_key": None, "model": "gpt-4.1"}, {"provider": "gemini",
                                                              "model": "g"}],
        "http_tools": [{**TOOL, "headers": None, "description": "Slots."}]})
    assert r.status_code == 200, r.text
    row = stored(store, a["id"])
    assert row.llm is not None and row.http_tools is not None
    assert BOX.decrypt(row.llm[0]["api_key_enc"]) == "sk-secret-1"
    assert row.llm[0]["model"] == "gpt-4.1" and "api_key_enc" not in row.llm[1]
    assert row.http_tools[0]["description"] == "Slots."
    assert json.loads(BOX.decrypt(row.http_tools[0]["headers_enc"])) == TOOL["headers"]
    # A call gets them in clear, the second model without a key.
    call = profile(store, a["id"])
    assert [(m.provider, m.model, m.api_key) for m in call.llm] == [
        ("openai", "gpt-4.1", "sk-secret-1"), ("gemini", "g", None)]
    assert call.http_tools[0].headers == TOOL["headers"]
    assert call.greeting == "Clinic, hello." and call.prompt == "Be brief."


def test_realtime_settings_keep_their_key_encrypted(api: tuple[TestClient, Store]) -> None:
    client, store = api
    a = create(client, mode="realtime", realtime={
        "provider": "openai", "voice": "marin", "api_key": "sk-live-7",
        "base_url": "wss://realtime.example.com/v1"})
    assert a["mode"] == "realtime"
    assert a["realtime"] == {"provider": "openai", "provider_id": None,
                             "model": "gpt-realtime", "voice": "marin",
                             "base_url": "wss://realtime.example.com/v1", "timeout_s": 10.0,
                             "api_key_set": True}
    row = stored(store, a["id"])
    assert row.realtime is not None and "sk-live-7" not in json.dumps(row.realtime)
    assert BOX.decrypt(row.realtime["api_key_enc"]) == "sk-live-7"
    # Changing the model without the key keeps it; the call gets it decrypted.
    r = client.patch(f"/v1/assistants/{a['id']}", json={"realtime": {
        "provider": "openai", "model": "gpt-realtime-mini", "voice": "cedar"}})
    assert r.status_code == 200, r.text
    assert "sk-live-7" not in r.text and r.json()["realtime"]["api_key_set"]
    settings = profile(store, a["id"]).realtime
    assert settings is not None and settings.api_key == "sk-live-7"
    assert (settings.model, settings.voice) == ("gpt-realtime-mini", "cedar")
    # Another vendor: the key is not carried over to it; its model has its own default.
    r = client.patch(f"/v1/assistants/{a['id']}", json={"realtime": {"provider": "gemini"}})
    assert r.status_code == 200, r.text
    assert r.json()["realtime"]["model"] == "gemini-live-2.5-flash-preview"
    assert not r.json()["realtime"]["api_key_set"]
    r = client.patch(f"/v1/assistants/{a['id']}", json={"realtime": {
        "provider": "elevenlabs", "model": "agent_7", "api_key": "xi-9", "voice": "v1"}})
    settings = profile(store, a["id"]).realtime
    assert settings is not None and (settings.provider, settings.model, settings.api_key) == (
        "elevenlabs", "agent_7", "xi-9")
    # Back to the pipeline: the call no longer uses the realtime model.
    r = client.patch(f"/v1/assistants/{a['id']}", json={"mode": "pipeline"})
    assert r.status_code == 200 and profile(store, a["id"]).realtime is None


def test_hold_music_and_the_hold_tools(api: tuple[TestClient, Store], tmp_path: Path
                                       ) -> None:
    client, _ = api
    music = tmp_path / "music.wav"
    with wave.open(str(music), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(16000))
    a = create(client, tools=["hold", "end_call"], hold_music=str(music))
    assert a["hold_music"] == str(music) and a["tools"] == ["hold", "end_call"]
    r = client.patch(f"/v1/assistants/{a['id']}", json={"hold_music": None})
    assert r.status_code == 200 and r.json()["hold_music"] is None


def test_cloud_speech_settings_keep_their_keys_encrypted(api: tuple[TestClient, Store]
                                                         ) -> None:
    client, store = api
    a = create(client, language="pt-BR", stt={"provider": "deepgram", "api_key": "dg-live-3"},
               tts={"provider": "elevenlabs", "voice": "v-42", "api_key": "xi-live-4",
                    "base_url": "https://tts.example.com"})
    assert a["stt"] == {"provider": "deepgram", "provider_id": None, "model": "nova-3",
                        "voice": None,
                        "language": None, "base_url": None, "timeout_s": 5.0,
                        "api_key_set": True}
    assert a["tts"] == {"provider": "elevenlabs", "provider_id": None,
                        "model": "eleven_flash_v2_5",
                        "voice": "v-42", "language": None,
                        "base_url": "https://tts.example.com", "timeout_s": 5.0,
                        "api_key_set": True}
    row = stored(store, a["id"])
    for column, key in ((row.stt, "dg-live-3"), (row.tts, "xi-live-4")):
        assert column is not None and key not in json.dumps(column)
        assert BOX.decrypt(column["api_key_enc"]) == key
    stt = profile(store, a["id"]).stt
    assert stt is not None and (stt.api_key, stt.language) == ("dg-live-3", "pt-BR")
    # A new model without the key keeps it; another vendor does not inherit it.
    r = client.patch(f"/v1/assistants/{a['id']}", json={
        "stt": {"provider": "deepgram", "model": "nova-2", "language": "pt"},
        "tts": {"provider": "openai"}})
    assert r.status_code == 200, r.text
    assert "live" not in r.text
    stt, tts = profile(store, a["id"]).stt, profile(store, a["id"]).tts
    assert stt is not None and (stt.model, stt.api_key, stt.language) == (
        "nova-2", "dg-live-3", "pt")
    assert tts is not None and (tts.provider, tts.model, tts.voice, tts.api_key) == (
        "openai", "gpt-4o-mini-tts", "alloy", None)
    # null: back to the local engines.
    r = client.patch(f"/v1/assistants/{a['id']}", json={"stt": None, "tts": None})
    assert r.status_code == 200 and r.json()["stt"] is None and r.json()["tts"] is None
    assert profile(store, a["id"]).stt is None


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"voice": "klingon"}, 422, "voice: unknown voice"),
    # Issue 16.10: these were 500s
    ({"voice": "piper:/missing"}, 422, "cannot load the Piper voice '/missing'"),
    ({"voice": "espeak:<bad>"}, 422, "is not an espeak-ng voice name"),
    ({"voice": "espeak:xx-nowhere"}, 422, "espeak-ng has no voice 'xx-nowhere'"),
    ({"llm": [{"provider": "acme", "model": "x"}]}, 422, "provider"),
    ({"llm": [{**LLM, "base_url": "ftp://x"}]}, 422, "http:// or https://"),
    ({"tools": ["launch_rockets"]}, 422, "tools"),
    ({"http_tools": [{**TOOL, "name": "end_call"}]}, 422, "not those of the built-in"),
    ({"http_tools": [{**TOOL, "parameters": {"type": "string"}}]}, 422, '"type": "object"'),
    ({"fallback": {"action": "transfer", "destination": "desk"}}, 422,
     "fallback.destination: name one of the transfers (there are none)"),
    ({"transfers": [{"name": "a", "target": "1"}, {"name": "a", "target": "2"}]}, 422,
     "its own name"),
    ({"turn_taking": {"end_of_turn_ms": 50}}, 422, "end_of_turn_ms"),
    ({"rules": {"intents": [{"phrases": ["x"]}]}}, 422, "rules: each intent needs"),
    ({"rules": {"intents": [{"name": "s", "reply": "ok", "action": "dance"}]}}, 422,
     "rules.intents[0].action: hangup, transfer or none, not 'dance'"),
    ({"transfers": [{"name": "desk", "target": "100"}],
      "rules": {"intents": [{"name": "s", "reply": "ok", "action": "transfer",
                             "destination": "sales"}]}}, 422,
     "rules.intents[0].destination: name one of the transfers (desk)"),
    ({"voicemail": {"detect": True, "action": "leave_message"}}, 422,
     "message: needed for action leave_message"),
    ({"voicemail": {"detect": "yes"}}, 422, "detect"),
    ({"transfers": [{"name": "a", "target": "1", "mode": "conference"}]}, 422, "mode"),
    ({"hold_music": "/nonexistent/music.wav"}, 422, "hold_music: /nonexistent/music.wav: "
     "no such file"),
    ({"hold_music": __file__}, 422, "not a readable WAV file"),  # this file: Python
    ({"tts": {"provider": "elevenlabs"}}, 422, "voice: the ElevenLabs voice_id is needed"),
    ({"tts": {"provider": "acme", "voice": "v"}}, 422, "provider"),
    ({"stt": {"provider": "openai", "base_url": "wss://x"}}, 422,
     "base_url: must be an http:// or https:// URL"),
    ({"stt": {"provider": "deepgram", "base_url": "ftp://x"}}, 422, "wss://"),
    ({"stt": {"provider": "deepgram", "timeout_s": 0}}, 422, "timeout_s"),
    ({"business_hours": {"timezone": "Mars/Olympus", "weekly": {}}}, 422,
     "not an IANA time zone"),
    ({"business_hours": {"timezone": "UTC", "weekly": {"mon": ["9-5"]}}}, 422,
     "not a window such as 09:00-13:00"),
    ({"business_hours": {"timezone": "UTC", "weekly": {"funday": ["09:00-10:00"]}}}, 422,
     "weekly"),
    ({"business_hours": {"timezone": "UTC", "weekly": {}, "holidays": ["xmas"]}}, 422,
     "not a date"),
    ({"business_hours": {"timezone": "UTC", "weekly": {},
                         "closed": {"action": "transfer", "destination": "desk"}}}, 422,
     "business_hours.closed.destination: name one of the transfers"),
    ({"turn_taking": {"reprompt_after_ms": 500}}, 422, "reprompt_after_ms"),
    ({"turn_taking": {"backchannels": [""]}}, 422, "backchannels"),
    ({"extension": "assistant"}, 409, "extension 'assistant' is taken"),
    ({"extension": "has space"}, 422, "extension"),
    ({"mode": "realtime"}, 422, "realtime: mode realtime needs its speech-to-speech"),
    ({"mode": "streaming"}, 422, "mode"),
    ({"mode": "realtime", "realtime": {"provider": "openai", "base_url": "ftp://x"}}, 422,
     "wss://"),
    ({"mode": "realtime", "realtime": {"provider": "acme"}}, 422, "provider"),
    ({"mode": "realtime", "realtime": {"provider": "elevenlabs"}}, 422,
     "the ElevenLabs agent's id is needed"),
    ({"mode": "realtime", "realtime": {"provider": "openai"},
      "voicemail": {"detect": True}}, 422, "voicemail.detect: answering-machine detection"),
    ({"max_concurrent_calls": 0}, 422, "max_concurrent_calls"),
    ({"max_concurrent_calls": "3"}, 422, "max_concurrent_calls"),
])
def test_mistakes_are_refused_with_what_to_fix(api: tuple[TestClient, Store],
                                               body: dict[str, Any], status: int,
                                               says: str) -> None:
    client, _ = api
    r = client.post("/v1/assistants", json={"name": "X", "extension": "x", **body})
    assert r.status_code == status, r.text
    assert says in str(r.json()), r.json()
    assert len(client.get("/v1/assistants").json()) == 1  # nothing was saved


def test_turn_taking_and_voicemail_round_trip_and_reach_the_call(
        api: tuple[TestClient, Store]) -> None:
    client, store = api
    a = create(client, turn_taking={"reprompt_after_ms": 5000, "max_reprompts": 1,
                                    "backchannels": ["d'accord"]},
               voicemail={"detect": True, "action": "leave_message",
                          "message": "Hello {caller_name}, please call {metadata.shop}."})
    assert a["turn_taking"]["reprompt_after_ms"] == 5000
    assert a["turn_taking"]["min_barge_in_ms"] == 150  # defaults shown
    assert a["voicemail"]["max_greeting_ms"] == 2500
    row = profile(store, a["id"])
    policy = row.turns.policy
    assert policy.reprompt_after_ms == 5000 and policy.max_reprompts == 1
    assert policy.is_backchannel("D'accord.") and not policy.is_backchannel("Okay.")
    screen = voicemail(row, {"caller_name": "Ana", "metadata": {"shop": "the bakery"}})
    assert screen is not None and screen.config.action == "leave_message"
    assert screen.config.message == "Hello Ana, please call the bakery."
    # Off again; a partial update leaves the other settings alone.
    r = client.patch(f"/v1/assistants/{a['id']}", json={"voicemail": {"detect": False}})
    assert r.status_code == 200 and r.json()["turn_taking"]["max_reprompts"] == 1
    assert voicemail(profile(store, a["id"]), None) is None
    # Opening hours: calls outside them get the closed message and a message taker.
    r = client.patch(f"/v1/assistants/{a['id']}", json={"business_hours": {
        "timezone": "Europe/Lisbon", "weekly": {"mon": [" 09:00-18:00 "]},
        "holidays": ["2026-12-07"], "closed": {"action": "message"}}})
    assert r.status_code == 200, r.text
    assert r.json()["business_hours"]["weekly"] == {"mon": ["09:00-18:00"]}
    row = profile(store, a["id"])
    assert after_hours(row, datetime(2026, 11, 23, 10, tzinfo=UTC)) is None  # a Monday
    closed = after_hours(row, datetime(2026, 12, 7, 10, tzinfo=UTC))  # a holiday
    assert closed is not None and isinstance(closed[1], MessageTaker)
    r = client.patch(f"/v1/assistants/{a['id']}", json={"business_hours": None})
    assert r.status_code == 200 and r.json()["business_hours"] is None
    assert after_hours(profile(store, a["id"]), datetime(2026, 12, 7, 10, tzinfo=UTC)) is None
    # Assistants stored before these settings existed get the defaults.
    assert TurnTaking.of({"end_of_turn_ms": 700}).policy == TurnPolicy()


def test_default_assistant_and_deletion(api: tuple[TestClient, Store]) -> None:
    client, store = api
    (default,) = client.get("/v1/assistants").json()
    a = create(client, is_default=True, transfers=[{"name": "desk", "target": "100"}],
               fallback={"action": "transfer", "destination": "desk"})
    listed = {x["id"]: x["is_default"] for x in client.get("/v1/assistants").json()}
    assert listed == {default["id"]: False, a["id"]: True}
    r = client.patch(f"/v1/assistants/{a['id']}", json={"is_default": False})
    assert r.status_code == 409 and "another assistant the default" in r.json()["detail"]
    r = client.delete(f"/v1/assistants/{a['id']}")
    assert r.status_code == 409 and "cannot be deleted" in r.json()["detail"]
    assert client.patch(f"/v1/assistants/{default['id']}",
                        json={"is_default": True}).status_code == 200

    created = stored(store, a["id"]).created_at

    def add_trunk(s: Any) -> None:
        s.add(models.Trunk(id="t1", name="PBX", kind="extension", number="1", username="1",
                           password_enc=BOX.encrypt("x"), host="127.0.0.1", transport="udp",
                           assistant_id=a["id"], contact_user="t1", number_format="e164",
                           country="PT", inbound_auth="ip", max_concurrent_calls=2,
                           allowed_ips=[], allowed_countries=[], updated_at=created,
                           created_at=created))

    asyncio.run(store.run(add_trunk))
    r = client.delete(f"/v1/assistants/{a['id']}")
    assert r.status_code == 409 and "trunk 'PBX'" in r.json()["detail"]
    asyncio.run(store.run(lambda s: s.delete(s.get(models.Trunk, "t1"))))
    assert client.delete(f"/v1/assistants/{a['id']}").status_code == 204
    assert client.get(f"/v1/assistants/{a['id']}").status_code == 404
    r = client.patch("/v1/assistants/nope", json={"name": "y"})
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_a_limit_of_calls_at_once_reaches_the_call_and_can_be_lifted(
        api: tuple[TestClient, Store]) -> None:
    client, store = api
    a = create(client, max_concurrent_calls=3)
    assert a["max_concurrent_calls"] == 3
    assert profile(store, a["id"]).max_calls == 3
    r = client.patch(f"/v1/assistants/{a['id']}", json={"greeting": "Hello."})
    assert r.json()["max_concurrent_calls"] == 3  # untouched by other changes
    r = client.patch(f"/v1/assistants/{a['id']}", json={"max_concurrent_calls": None})
    assert r.status_code == 200 and r.json()["max_concurrent_calls"] is None
    assert profile(store, a["id"]).max_calls is None
