"""The tools an assistant can call: built-ins executed on the call leg (transfer, DTMF,
outcome, hang-up) and the business's own HTTP tools. Arguments come from a model, so each
is checked and a mistake is answered to the model in words, never raised."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from atende.agent.actions import CallActions
from atende.agent.hold import DEFAULT_HOLD_S, MAX_HOLD_S
from atende.providers.llm.base import Tool, ToolCall

log = logging.getLogger(__name__)

OUTCOMES = ("confirmed", "reschedule_requested", "declined", "wrong_person", "completed",
            "message_taken", "voicemail", "transferred")
BUILTINS = ("set_outcome", "end_call", "transfer_call", "send_dtmf")  # on by default
OPTIONAL = ("schedule_callback", "hold", "resume")  # only when the tools name them
MAX_CALLBACK_MINUTES = 90 * 24 * 60  # as far ahead as a scheduled call may be
TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
DTMF = re.compile(r"^[0-9*#A-Da-d]{1,32}$")
MAX_RESULT_CHARS = 4000


@dataclass(frozen=True)
class Destination:
    """A transfer destination an assistant may name."""

    name: str
    target: str  # an extension, a number or a SIP URI
    description: str = ""
    bridge: bool = False  # call the target and join the calls, instead of a blind transfer


@dataclass(frozen=True)
class HttpTool:
    """An assistant's own HTTP tool: what the model sees of it and where it is called."""

    name: str
    description: str
    parameters: dict[str, Any]
    url: str
    method: str = "POST"  # POST sends the arguments as JSON; GET as the query
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Authorization
    timeout_s: float = 5.0


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns to the model."""

    content: dict[str, Any]
    stop: bool = False  # the call is ending or handed over: no more model rounds


def _outcome_schema() -> dict[str, Any]:
    return {"type": "string", "enum": list(OUTCOMES)}


def builtin_spec(name: str, destinations: list[Destination]) -> Tool:
    if name == "set_outcome":
        return Tool(name, "Record what the call achieved, with any values the caller gave "
                    "(for example proposed_time when they ask to reschedule).", {
                        "type": "object", "properties": {
                            "outcome": _outcome_schema(),
                            "fields": {"type": "object", "description": "values as text",
                                       "additionalProperties": {"type": "string"}}},
                        "required": ["outcome"]})
    if name == "end_call":
        return Tool(name, "Hang up after your last words have been heard. Say goodbye "
                    "first, in the same reply.", {
                        "type": "object", "properties": {"outcome": _outcome_schema()}})
    if name == "transfer_call":
        names = [d.name for d in destinations]
        where = "; ".join(f"{d.name}: {d.description}" if d.description else d.name
                          for d in destinations)
        return Tool(name, f"Hand the caller over to a person. Tell them first. Destinations: "
                    f"{where}.", {"type": "object", "properties": {
                        "destination": {"type": "string", "enum": names}},
                        "required": ["destination"]})
    if name == "send_dtmf":
        return Tool(name, "Press phone keys, e.g. to navigate a menu.", {
            "type": "object", "properties": {"digits": {
                "type": "string", "description": "0-9, *, #, A-D"}}, "required": ["digits"]})
    if name == "schedule_callback":
        return Tool(name, "Arrange a call back when the person asks to be called later. "
                    "Give in_minutes or at. Confirm the time with them first.", {
                        "type": "object", "properties": {
                            "in_minutes": {"type": "integer", "minimum": 1,
                                           "maximum": MAX_CALLBACK_MINUTES,
                                           "description": "how long from now"},
                            "at": {"type": "string", "description": "ISO 8601 date and "
                                   "time with its UTC offset, e.g. 2026-05-04T15:00:00-03:00"},
                            "reason": {"type": "string",
                                       "description": "what the call back is about"},
                            "number": {"type": "string", "description": "only if they "
                                       "give another number; default: this call's"}},
                        "required": ["reason"]})
    if name == "hold":
        return Tool(name, "Put the caller on hold with music while you do something that "
                    "takes a while (tell them first, in the same reply). The music stops "
                    "when you speak again or call resume.", {
                        "type": "object", "properties": {
                            "reason": {"type": "string", "description": "what you are "
                                       "doing meanwhile"},
                            "max_seconds": {"type": "integer", "minimum": 5,
                                            "maximum": MAX_HOLD_S,
                                            "description": "the longest the caller will "
                                            f"wait (default {DEFAULT_HOLD_S})"}}})
    if name == "resume":
        return Tool(name, "Take the caller off hold (speaking to them does it too).",
                    {"type": "object", "properties": {}})
    raise ValueError(f"unknown tool {name!r}: built-in tools are "
                     f"{', '.join(BUILTINS + OPTIONAL)}")


def callback_time(args: dict[str, Any], now: datetime) -> datetime | str:
    """When the model asked to call back (``in_minutes`` or ``at``), or what is wrong."""
    minutes, at = args.get("in_minutes"), args.get("at")
    if (minutes is None) == (at is None):
        return "give either in_minutes or at"
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or \
                not 1 <= minutes <= MAX_CALLBACK_MINUTES:
            return f"in_minutes must be a number from 1 to {MAX_CALLBACK_MINUTES}"
        return now + timedelta(minutes=float(minutes))
    try:
        when = datetime.fromisoformat(str(at))
    except ValueError:
        return "at must be an ISO 8601 date and time, e.g. 2026-05-04T15:00:00-03:00"
    if when.tzinfo is None:
        return "at needs its UTC offset (e.g. -03:00 or Z): whose 3 pm?"
    if when <= now:
        return f"at is in the past (it is now {now.isoformat(timespec='minutes')})"
    if when > now + timedelta(minutes=MAX_CALLBACK_MINUTES):
        return "at is more than 90 days ahead"
    return when.astimezone(UTC)


class ToolBox:
    """The tools an assistant's language model may call on a call (outcome, hang-up, transfer,
    DTMF, call-back, hold, its HTTP tools): their schemas for the model and what each
    does through the call's actions."""

    def __init__(self, builtins: list[str], destinations: list[Destination] | None = None,
                 http_tools: list[HttpTool] | None = None,
                 client: httpx.AsyncClient | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.destinations = {d.name: d for d in destinations or []}
        names = [b for b in builtins if b != "transfer_call" or self.destinations]
        if "hold" in names and "resume" not in names:
            names.append("resume")  # a hold needs its way back
        self.specs = [builtin_spec(b, list(self.destinations.values())) for b in names]
        self.http = {t.name: t for t in http_tools or []}
        self.specs += [Tool(t.name, t.description, t.parameters) for t in self.http.values()]
        self._builtins = set(names)
        self._client = client
        self._clock = clock

    async def run(self, call: ToolCall, actions: CallActions) -> ToolResult:
        args = call.arguments
        actions.event("tool_call", {"name": call.name, "arguments": args})
        if "_unparsed" in args:
            result = ToolResult({"error": "the arguments were not a JSON object"})
        elif call.name in self._builtins:
            result = await self._builtin(call.name, args, actions)
        elif call.name in self.http:
            result = ToolResult(await self._http(self.http[call.name], args))
        else:
            result = ToolResult({"error": f"there is no tool named {call.name!r}"})
        actions.event("tool_result", {"name": call.name, "result": result.content})
        return result

    async def _builtin(self, name: str, args: dict[str, Any], actions: CallActions
                       ) -> ToolResult:
        if name in ("set_outcome", "end_call"):
            outcome = args.get("outcome")
            if outcome is not None and outcome not in OUTCOMES:
                return ToolResult({"error": f"outcome must be one of {', '.join(OUTCOMES)}"})
            if outcome is None and name == "set_outcome":
                return ToolResult({"error": "outcome is required"})
            fields = args.get("fields") or {}
            if not isinstance(fields, dict):
                return ToolResult({"error": "fields must be an object"})
            if outcome is not None:
                actions.set_outcome(str(outcome), {str(k): str(v) for k, v in fields.items()
                                                   if v is not None})
            if name == "set_outcome":
                return ToolResult({"ok": True})
            actions.end_after_speaking()
            return ToolResult({"ok": True, "note": "the call ends after your last words"},
                              stop=True)
        if name == "send_dtmf":
            digits = str(args.get("digits", ""))
            if not DTMF.match(digits):
                return ToolResult({"error": "digits must be 1 to 32 of 0-9 * # A-D"})
            await actions.send_dtmf(digits.upper())
            return ToolResult({"ok": True, "sent": digits.upper()})
        if name == "schedule_callback":
            return ToolResult(await self._callback(args, actions))
        if name == "hold":
            seconds = args.get("max_seconds", DEFAULT_HOLD_S)
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or \
                    not 5 <= seconds <= MAX_HOLD_S:
                return ToolResult({"error": f"max_seconds must be from 5 to {MAX_HOLD_S}"})
            return ToolResult(await actions.hold(float(seconds),
                                                 str(args.get("reason") or "")[:200]))
        if name == "resume":
            return ToolResult(await actions.resume())
        dest = self.destinations.get(str(args.get("destination", "")))
        if dest is None:
            return ToolResult({"error": "destination must be one of "
                               + ", ".join(self.destinations)})
        outcome = await actions.transfer(dest.target, dest.bridge)
        if outcome.ok:
            return ToolResult({"ok": True, "transferred_to": dest.name}, stop=True)
        return ToolResult({"ok": False, "error": f"the transfer did not go through: "
                           f"{outcome.reason}. Tell the caller and offer to take a message."})

    async def _callback(self, args: dict[str, Any], actions: CallActions) -> dict[str, Any]:
        when = callback_time(args, self._clock())
        if isinstance(when, str):
            return {"error": when}
        reason = str(args.get("reason") or "").strip()
        if not reason:
            return {"error": "reason is required: what the call back is about"}
        number = args.get("number")
        number = str(number).strip() if number not in (None, "") else None
        return await actions.schedule_callback(when, number, reason[:500])

    async def _http(self, tool: HttpTool, args: dict[str, Any]) -> dict[str, Any]:
        client = self._client or httpx.AsyncClient()
        try:
            if tool.method == "GET":
                resp = await client.get(tool.url, params=_query(args), headers=tool.headers,
                                        timeout=tool.timeout_s)
            else:
                resp = await client.request(tool.method, tool.url, json=args,
                                            headers=tool.headers, timeout=tool.timeout_s)
        except httpx.TimeoutException:
            return {"error": f"{tool.name} did not answer within {tool.timeout_s:g} s"}
        except httpx.HTTPError as exc:
            return {"error": f"{tool.name} could not be reached ({type(exc).__name__})"}
        finally:
            if self._client is None:
                await client.aclose()
        try:
            body: Any = resp.json()
        except ValueError:
            body = resp.text[:MAX_RESULT_CHARS]
        if len(json.dumps(body)) > MAX_RESULT_CHARS:
            body = json.dumps(body)[:MAX_RESULT_CHARS] + "…"
        if resp.is_success:
            return {"status": resp.status_code, "result": body}
        log.info("tool %s answered %d", tool.name, resp.status_code)
        return {"status": resp.status_code, "error": body}


def _query(args: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in args.items()}
