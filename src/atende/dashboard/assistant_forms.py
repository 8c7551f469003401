"""The assistant form, as the dashboard shows and reads it: each section of the API's
assistant (what it says, its voice, how it thinks, its tools, transfer destinations,
business hours as a week grid, fallback, voicemail, turn-taking, and — as JSON — its
HTTP tools and offline rules) turned into form fields and back into the API's own
payload, so the same rules check both. Sections the form shows only in part keep the
rest of what they had."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from atende.agent.tools import BUILTINS, OPTIONAL
from atende.api.assistant_fields import AssistantOut
from atende.api.providers import ProviderOut
from atende.dashboard.web import whole

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOOLS = BUILTINS + OPTIONAL
BLANK_TRANSFERS = 2  # empty rows to add destinations
KEEP = "keep"  # a provider section set up through the API: left as it is
SECTIONS = ("realtime", "llm", "stt", "tts")  # the sections that name an AI provider
# turn-taking fields the form shows (the rest keep their values)
TURN_FIELDS = ("end_of_turn_ms", "min_barge_in_ms", "max_call_seconds", "reprompt_after_ms",
               "max_reprompts", "reprompt", "silence_goodbye")
NUMBERS = {"end_of_turn_ms", "min_barge_in_ms", "max_call_seconds", "reprompt_after_ms",
           "max_reprompts"}


@dataclass(frozen=True)
class Choice:
    """A provider section's current choice: a shared provider's id, KEEP (its own
    settings, made through the API), or "" (none: the local engine)."""

    value: str
    model: str  # the section's own model, shown as the override


def section_choice(current: AssistantOut | None, section: str) -> Choice:
    if current is None:
        return Choice("", "")
    row: Any = current.llm[0] if section == "llm" and current.llm else \
        getattr(current, section) if section != "llm" else None
    if row is None:
        return Choice("", "")
    if section == "llm" and len(current.llm) > 1:
        return Choice(KEEP, "")  # a fallback chain: only the API edits it
    if row.provider_id:
        return Choice(row.provider_id, row.model or "")
    return Choice(KEEP, "")


def values_of(a: AssistantOut | None) -> dict[str, Any]:
    """An assistant as the form shows it (a new one: the defaults)."""
    if a is None:
        return {"language": "en", "voice": "piper", "mode": "pipeline",
                "tools": list(BUILTINS), "transfers": [], "hours": {}, "hours_on": False,
                "hours_timezone": "UTC", "closed_action": "hangup",
                "fallback_action": "continue", "vm_action": "hangup",
                "http_tools": "[]", "rules": "", "choices": {
                    s: Choice("", "") for s in SECTIONS}, **{
                    f"tt_{k}": "" for k in TURN_FIELDS}}
    hours = a.business_hours
    tt = a.turn_taking.model_dump()
    return {
        "name": a.name, "extension": a.extension, "language": a.language,
        "domain_uuid": a.domain_uuid or "", "is_default": a.is_default, "record": a.record,
        "max_concurrent_calls": a.max_concurrent_calls or "",
        "greeting": a.greeting or "", "prompt": a.prompt or "", "voice": a.voice,
        "hold_music": a.hold_music or "", "mode": a.mode, "tools": a.tools,
        "transfers": [t.model_dump() for t in a.transfers],
        "hours_on": hours is not None,
        "hours_timezone": hours.timezone if hours else "UTC",
        "hours": {d: ", ".join(hours.weekly.get(d, [])) for d in DAYS} if hours else {},  # type: ignore[call-overload]
        "hours_holidays": "\n".join(hours.holidays) if hours else "",
        "closed_action": hours.closed.action if hours else "hangup",
        "closed_message": (hours.closed.message or "") if hours else "",
        "closed_destination": (hours.closed.destination or "") if hours else "",
        "fallback_action": a.fallback.action, "fallback_message": a.fallback.message or "",
        "fallback_destination": a.fallback.destination or "",
        "vm_detect": a.voicemail.detect, "vm_action": a.voicemail.action,
        "vm_message": a.voicemail.message or "",
        **{f"tt_{k}": "" if tt.get(k) is None else tt[k] for k in TURN_FIELDS},
        "http_tools": json.dumps([t.model_dump(exclude={"header_names"})
                                  for t in a.http_tools], indent=2),
        "rules": json.dumps(a.rules, indent=2),
        "choices": {s: section_choice(a, s) for s in SECTIONS},
        "header_names": {t.name: t.header_names for t in a.http_tools},
    }


def read_form(form: dict[str, list[str]], current: AssistantOut | None,
              providers: list[ProviderOut]) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted form as the API's payload (AssistantCreate when ``current`` is None,
    else the changes for AssistantFields), and what could not be read, by field."""
    def one(key: str) -> str:
        return (form.get(key) or [""])[0].strip()

    problems: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key in ("name", "extension", "language", "voice"):
        out[key] = one(key) or None
    for key in ("greeting", "prompt", "hold_music"):
        out[key] = (form.get(key) or [""])[0].strip() or None
    if current is None and one("domain_uuid"):
        out["domain_uuid"] = one("domain_uuid")
    out["is_default"] = one("is_default") == "on"
    out["record"] = one("record") == "on"
    limit = one("max_concurrent_calls")
    if limit and whole(limit) is None:
        problems["max_concurrent_calls"] = "calls at once: a whole number, or empty for " \
                                           "no limit"
    out["max_concurrent_calls"] = whole(limit) if limit else None
    out["mode"] = one("mode") or "pipeline"
    out["tools"] = [t for t in form.get("tools", []) if t in TOOLS]

    # AI providers: a shared one chosen, none, or the section left as it is.
    known = {p.id: p for p in providers}
    for section in SECTIONS:
        chosen = one(f"{section}_choice")
        model = one(f"{section}_model") if section in ("llm", "realtime") else ""
        was = section_choice(current, section)
        if chosen == KEEP or (chosen == was.value and model == was.model and current):
            continue
        if chosen == "":
            out[section] = [] if section == "llm" else None
            continue
        if chosen not in known:
            problems[f"{section}_choice"] = f"{section}: that AI provider is gone; " \
                                            "choose another"
            continue
        fields: dict[str, Any] = {"provider_id": chosen}
        if model:
            fields["model"] = model
        out[section] = [fields] if section == "llm" else fields

    # Transfer destinations: the rows that have a name or a target.
    transfers = []
    i = 0
    while f"transfer-{i}-name" in form:
        row = {k: one(f"transfer-{i}-{k}") for k in ("name", "target", "description",
                                                      "mode")}
        if row["name"] or row["target"]:
            transfers.append({**row, "mode": row["mode"] or "refer"})
        i += 1
    out["transfers"] = transfers

    # Business hours: the week grid, one line of windows per day.
    if one("hours_on") == "on":
        weekly = {d: [w.strip() for w in one(f"hours_{d}").split(",") if w.strip()]
                  for d in DAYS}
        closed: dict[str, Any] = {"action": one("closed_action") or "hangup"}
        if one("closed_message"):
            closed["message"] = one("closed_message")
        if one("closed_destination"):
            closed["destination"] = one("closed_destination")
        out["business_hours"] = {
            "timezone": one("hours_timezone") or "UTC",
            "weekly": {d: w for d, w in weekly.items() if w},
            "holidays": [h for h in one("hours_holidays").replace(",", " ").split() if h],
            "closed": closed}
    else:
        out["business_hours"] = None

    fallback: dict[str, Any] = {"action": one("fallback_action") or "continue"}
    if one("fallback_message"):
        fallback["message"] = one("fallback_message")
    if one("fallback_destination"):
        fallback["destination"] = one("fallback_destination")
    out["fallback"] = fallback

    voicemail = current.voicemail.model_dump() if current else {}
    voicemail.update(detect=one("vm_detect") == "on", action=one("vm_action") or "hangup",
                     message=one("vm_message") or None)
    out["voicemail"] = voicemail

    turn = current.turn_taking.model_dump() if current else {}
    for key in TURN_FIELDS:
        text = one(f"tt_{key}")
        if key in NUMBERS:
            if text and whole(text) is None:
                problems[f"tt_{key}"] = f"{key.replace('_', ' ')}: a whole number"
            elif text:
                turn[key] = whole(text)
            elif key in ("max_call_seconds", "reprompt_after_ms"):
                turn[key] = None  # empty: off
            else:
                turn.pop(key, None)  # empty: the default
        elif text:
            turn[key] = text
        else:
            turn.pop(key, None)
    out["turn_taking"] = turn

    for key, default in (("http_tools", []), ("rules", None)):
        text = (form.get(key) or [""])[0].strip()
        if not text:
            if key == "http_tools":
                out[key] = default
            continue
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            problems[key] = f"{key}: not valid JSON ({exc.msg}, line {exc.lineno})"
    if current is not None:
        # An edit sends only what may change (the domain stays).
        out = {k: v for k, v in out.items() if k != "domain_uuid"}
    else:
        out = {k: v for k, v in out.items() if v is not None or k in ("business_hours",)}
    return out, problems
