"""Examples shown in /docs for every request and answer, in one place so that they can be
checked against their models (tests/api/test_examples.py) and stay true."""

from __future__ import annotations

from typing import Any

CALL_ID = "3f0c2a9e5b7d4c1e8a6f0b2d4c6e8a1f"
ASSISTANT_ID = "9c1d3e5f7a9b4c2d8e0f1a3b5c7d9e1f"
TRUNK_ID = "5b7d9f1a3c5e4d6f8a0b2c4d6e8f0a2b"
AT = "2026-11-20T09:30:00Z"
PROVIDER_ID = "2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e"
DOMAIN_UUID = "6f1c2e0a-5b7d-4e8f-9a01-23456789abcd"  # a FusionPBX domain

CALL: dict[str, Any] = {
    "id": CALL_ID, "channel": "sip", "direction": "outbound", "status": "completed",
    "from_uri": "sip:ai@pbx.example.com", "to_uri": "sip:+351912345678@pbx.example.com",
    "from_user": "ai", "from_display": None, "to_user": "+351912345678",
    "remote_address": None, "external_id": "a81c0e6f94d2b7c3e5f1a0d9@atende",
    "assistant_id": ASSISTANT_ID, "trunk_id": TRUNK_ID, "node_id": "atende-1",
    "hangup_cause": "assistant_hangup",
    "sip_status": 200, "invite_at": AT, "answer_at": "2026-11-20T09:30:06Z",
    "end_at": "2026-11-20T09:30:41Z", "duration_s": 35.0, "source": "webhook",
    "phone_number": "+351912345678",
    "task": "Confirm tomorrow's appointment at 10:00. If they cannot come, offer to "
            "reschedule.",
    "caller_name": "Ana", "metadata": {"event_id": "evt_123"},
    "webhook_url": "https://crm.example.com/atende/callback",
    "outcome": "reschedule_requested",
    "summary": "Ana asked to reschedule (proposed: thursday at 3 pm).",
    "fields": {"proposed_time": "thursday at 3 pm"}, "scheduled_at": None,
    "next_attempt_at": None, "attempts": 2, "max_attempts": 3, "retry_after_s": 300.0,
    "calling_hours": {"start": "09:00", "end": "20:00",
                      "days": ["mon", "tue", "wed", "thu", "fri"],
                      "timezones": ["Europe/Lisbon", "Atlantic/Azores"]},
}
QUEUED_CALL: dict[str, Any] = {
    **CALL, "status": "queued", "hangup_cause": None, "sip_status": None, "answer_at": None,
    "end_at": None, "duration_s": None, "outcome": None, "summary": None, "fields": {},
    "scheduled_at": "2026-11-21T09:00:00Z", "next_attempt_at": "2026-11-21T09:00:00Z",
    "attempts": 0, "source": "api", "node_id": None}
CALL_DETAIL: dict[str, Any] = {
    **CALL,
    "turns": [
        {"seq": 0, "speaker": "assistant", "text": "Hello Ana. I'm calling to confirm "
         "tomorrow's appointment at 10:00. Can you make it?", "intent": "greeting",
         "started_at": "2026-11-20T09:30:06Z", "ended_at": "2026-11-20T09:30:12Z",
         "interrupted": False, "latency_ms": None, "stt_ms": None, "tts_ms": 180,
         "played_ms": 5900},
        {"seq": 1, "speaker": "caller", "text": "I can't make it. Can we do Thursday at "
         "3 pm?", "intent": "reschedule", "started_at": "2026-11-20T09:30:13Z",
         "ended_at": "2026-11-20T09:30:17Z", "interrupted": False, "latency_ms": None,
         "stt_ms": 420, "tts_ms": None, "played_ms": None}],
    "events": [{"at": "2026-11-20T09:30:18Z", "kind": "outcome",
                "data": {"outcome": "reschedule_requested",
                         "fields": {"proposed_time": "thursday at 3 pm"}}}],
    "attempt_log": [
        {"seq": 1, "started_at": "2026-11-20T09:25:00Z", "ended_at": "2026-11-20T09:25:30Z",
         "status": "no_answer", "sip_status": 480, "reason": "480 Temporarily Unavailable"},
        {"seq": 2, "started_at": AT, "ended_at": "2026-11-20T09:30:41Z",
         "status": "answered", "sip_status": 200, "reason": "assistant_hangup"}],
    "recording": f"/v1/calls/{CALL['id']}/recording",
}
CALL_LIST: dict[str, Any] = {"items": [CALL], "total": 1, "limit": 50, "offset": 0}
ASSISTANT_CREATE: dict[str, Any] = {
    "name": "Reception", "extension": "reception", "voice": "piper",
    "stt": {"provider": "deepgram", "api_key": "dg-…"},
    "tts": {"provider": "elevenlabs", "voice": "JBFqnCBsd6RMkjVDRZzb", "api_key": "xi-…"},
    "greeting": "Hello, this is the clinic. How can I help?",
    "prompt": "You answer calls for a dental clinic. Be brief and friendly.",
    "llm": [{"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-…"},
            {"provider": "openai", "model": "llama3.1", "base_url": "http://127.0.0.1:11434/v1"}],
    "tools": ["set_outcome", "end_call", "transfer_call"],
    "http_tools": [{"name": "find_slot", "description": "Free appointment slots on a day.",
                    "parameters": {"type": "object", "properties": {
                        "day": {"type": "string", "description": "YYYY-MM-DD"}},
                        "required": ["day"]},
                    "url": "https://crm.example.com/slots", "method": "GET",
                    "headers": {"Authorization": "Bearer crm-token"}}],
    "transfers": [{"name": "reception", "target": "100",
                   "description": "the front desk, for anything you cannot answer"}],
    "fallback": {"message": "Sorry, I am having trouble.", "action": "transfer",
                 "destination": "reception"},
    "turn_taking": {"end_of_turn_ms": 600, "vad_aggressiveness": 2, "max_call_seconds": 600,
                    "reprompt_after_ms": 8000, "max_reprompts": 1},
    "voicemail": {"detect": True, "action": "leave_message",
                  "message": "Hello {caller_name}, this is the clinic about your "
                  "appointment. Please call us back on 210 000 000."},
    "business_hours": {"timezone": "Europe/Lisbon",
                       "weekly": {d: ["09:00-13:00", "14:00-18:00"]
                                  for d in ("mon", "tue", "wed", "thu", "fri")},
                       "holidays": ["2026-12-25"],
                       "closed": {"message": "We are closed. Please leave a message.",
                                  "action": "message", "destination": None}}}
ASSISTANT_UPDATE: dict[str, Any] = {"greeting": "Good morning, clinic here.",
                                    "fallback": {"action": "message"}}
ASSISTANT: dict[str, Any] = {
    "id": ASSISTANT_ID, "name": "Reception", "extension": "reception", "language": "en",
    "voice": "piper", "greeting": ASSISTANT_CREATE["greeting"],
    "stt": {"provider": "deepgram", "model": "nova-3", "voice": None, "language": None,
            "base_url": None, "timeout_s": 5.0, "api_key_set": True},
    "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5",
            "voice": "JBFqnCBsd6RMkjVDRZzb", "language": None, "base_url": None,
            "timeout_s": 5.0, "api_key_set": True},
    "prompt": ASSISTANT_CREATE["prompt"], "mode": "pipeline", "realtime": None,
    "llm": [{"provider": "openai", "model": "gpt-4o-mini", "base_url": None,
             "temperature": None, "max_tokens": 400, "timeout_s": 5.0, "api_key_set": True}],
    "tools": ["set_outcome", "end_call", "transfer_call"],
    "http_tools": [{"name": "find_slot", "description": "Free appointment slots on a day.",
                    "parameters": ASSISTANT_CREATE["http_tools"][0]["parameters"],
                    "url": "https://crm.example.com/slots", "method": "GET", "timeout_s": 5.0,
                    "header_names": ["Authorization"]}],
    "transfers": ASSISTANT_CREATE["transfers"], "fallback": ASSISTANT_CREATE["fallback"],
    "turn_taking": {**ASSISTANT_CREATE["turn_taking"], "min_barge_in_ms": 150,
                    "backchannels": None, "reprompt": "Are you still there?",
                    "silence_goodbye": "I cannot hear anyone, so I will end the call now. "
                    "Goodbye."},
    "voicemail": {**ASSISTANT_CREATE["voicemail"], "initial_silence_ms": 3500,
                  "max_greeting_ms": 2500, "after_greeting_ms": 800,
                  "message_silence_ms": 2000, "max_message_wait_ms": 30000},
    "business_hours": ASSISTANT_CREATE["business_hours"],
    "rules": {"greeting": "Hello, how can I help?", "intents": [], "fallback": "Sorry?"},
    "hold_music": None, "record": False, "is_default": False, "created_at": AT, "updated_at": AT,
    "domain_uuid": None}
PROVIDER_CREATE: dict[str, Any] = {
    "type": "realtime", "provider": "elevenlabs", "name": "ElevenLabs", "api_key": "sk_…",
    "agent_id": "agent_01jzq4v2r8e6", "domain_uuid": DOMAIN_UUID}
PROVIDER_UPDATE: dict[str, Any] = {"api_key": "sk_…new", "agent_id": "agent_01jzq9k3m1p7"}
PROVIDER: dict[str, Any] = {
    "id": PROVIDER_ID, "name": "ElevenLabs", "type": "realtime", "provider": "elevenlabs",
    "api_key_set": True, "agent_id": "agent_01jzq4v2r8e6", "model": None, "base_url": None,
    "voice": None, "domain_uuid": DOMAIN_UUID, "used_by": [ASSISTANT_ID], "created_at": AT,
    "updated_at": AT}
TRUNK_CREATE: dict[str, Any] = {
    "kind": "extension", "name": "Office PBX", "number": "1000", "username": "1000",
    "password": "Corr3ct-Horse-Battery", "host": "pbx.example.com", "country": "PT",
    "transport": "udp"}
TRUNK_UPDATE: dict[str, Any] = {"max_concurrent_calls": 4, "accept_transfers": True}
TRUNK: dict[str, Any] = {
    "id": TRUNK_ID, "name": "Office PBX", "kind": "extension", "number": "1000",
    "username": "1000", "host": "pbx.example.com", "port": None, "transport": "udp",
    "domain": None, "outbound_proxy": None, "number_format": "e164", "country": "PT",
    "inbound_auth": "digest", "allowed_ips": [],
    "sip_address": "sip:t-5b7d9f1a@atende.example.com:5060", "assistant_id": None,
    "max_concurrent_calls": 10, "allowed_countries": ["PT"], "accept_transfers": False,
    "extension_pattern": None,
    "tls_verify": True, "enabled": True, "created_at": AT, "updated_at": AT,
    "registration": {"state": "registered", "expires_in_s": 3412, "last_status": 200,
                     "reason": "registered"},
    "warnings": []}
TRUNK_TEST_IN: dict[str, Any] = {"to": "+351912345678", "ring_timeout_s": 20}
TRUNK_TEST_OUT: dict[str, Any] = {"ok": True, "steps": [
    {"check": "registration", "ok": True, "detail": "registered with pbx.example.com",
     "sip_status": 200},
    {"check": "call", "to": "sip:+351912345678@pbx.example.com", "ok": True,
     "outcome": "answered", "media_received": True, "sip_status": 200,
     "detail": "answered, and audio flowed both ways"}]}
HOOK_CREATE: dict[str, Any] = {"name": "calendar", "trunk_id": TRUNK_ID}
HOOK: dict[str, Any] = {
    "id": "a1b2c3d4e5f6", "name": "calendar", "url_path": "/v1/hooks/hk_3vQ…",
    "trunk_id": TRUNK_ID, "assistant_id": None, "created_at": AT, "revoked_at": None,
    "last_used_at": "2026-11-20T09:25:00Z"}
TRANSFER_IN: dict[str, Any] = {"to": "reception", "timeout_s": 60}
TRANSFER_OUT: dict[str, Any] = {"outcome": "transferred", "sip_status": 200,
                                "reason": "200 OK", "progress": [100, 180, 200]}
DELIVERY: dict[str, Any] = {
    "id": 17, "url": "https://crm.example.com/atende/callback", "status": "delivered",
    "attempts": 2, "next_attempt_at": None, "created_at": AT,
    "delivered_at": "2026-11-20T09:31:02Z",
    "history": [{"at": "2026-11-20T09:30:42Z", "status": 503, "error": "HTTP 503",
                 "ms": 41},
                {"at": "2026-11-20T09:31:02Z", "status": 200, "error": None, "ms": 38}],
    "payload": {"event": "call.finished", "call_id": CALL_ID,
                "outcome": "reschedule_requested", "metadata": {"event_id": "evt_123"}}}
REDELIVER_IN: dict[str, Any] = {"url": "https://crm.example.com/atende/callback-v2"}
ABUSE: dict[str, Any] = {
    "blocked": [{"address": "203.0.113.9", "blocked_for_s": 540,
                 "reason": "5 failed INVITEs in 60 s", "dropped": 212}],
    "watched": [{"address": "198.51.100.4", "recent_failures": 2}],
    "rate_limited": 31, "blocked_drops": 212,
    "policy": {"max_failures": 5, "window_s": 60.0, "block_s": 600.0, "rate_per_s": 10.0,
               "burst": 20.0}}


NODE: dict[str, Any] = {
    "id": "atende-1", "state": "alive", "started_at": "2026-11-20T08:00:02Z",
    "seen_at": "2026-11-20T09:30:05Z", "taken_over_by": None, "live_calls": 3,
    "registers": [TRUNK_ID]}


def examples(*items: dict[str, Any]) -> dict[str, Any]:
    """For a model's ``json_schema_extra``."""
    return {"examples": list(items)}
