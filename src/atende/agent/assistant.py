"""An assistant's stored configuration turned into what a call needs: its brain (rules or
language models with tools), its fallback and its turn-taking. Secrets are decrypted here,
for the call, and kept in memory only."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

import httpx

from atende.agent.actions import Brain, Speech
from atende.agent.brain import RuleBrain, RuleSet, render
from atende.agent.business_hours import BusinessHours, closed_opening
from atende.agent.fallback import Fallback, MessageTaker
from atende.agent.llm_brain import LlmBrain
from atende.agent.realtime_session import RealtimeSession
from atende.agent.session import AgentSession
from atende.agent.tools import BUILTINS, Destination, HttpTool, ToolBox
from atende.agent.turn_policy import TurnPolicy
from atende.agent.turns import SessionObserver
from atende.agent.vad import VadConfig
from atende.agent.voicemail import VoicemailConfig, VoicemailDetector
from atende.channels.leg import CallLeg
from atende.media.music import music_for
from atende.providers.llm.base import LlmSettings
from atende.providers.llm.factory import language_model
from atende.providers.realtime.base import RealtimeConfig, RealtimeSettings
from atende.providers.realtime.factory import realtime_connection
from atende.providers.registry import ProviderRegistry
from atende.providers.speech import SpeechSettings
from atende.store import models
from atende.store.secrets import SecretBox

log = logging.getLogger(__name__)

DEFAULT_PROMPT = ("You are a friendly phone assistant. Speak in short, plain sentences "
                  "suitable for a phone call; no lists, markdown or emojis.")
TASK_PROMPT = """
This is a call you placed to get something done.
Task: {task}
You are speaking with: {caller_name}
Context: {metadata_json}
When the person answers the task, record it with set_outcome: confirmed, \
reschedule_requested (put the time they propose in fields.proposed_time), declined, or \
wrong_person. Then say a short goodbye and call end_call in the same reply."""


@dataclass(frozen=True)
class TurnTaking:
    """An assistant's conversation settings: reprompts, end-of-turn silence, barge-in and call
    length."""

    end_of_turn_ms: int = VadConfig.end_ms
    vad_aggressiveness: int = VadConfig.aggressiveness
    max_call_seconds: int | None = None
    policy: TurnPolicy = field(default_factory=TurnPolicy)  # barge-in, backchannels, silence

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> TurnTaking:
        """From the stored ``turn_taking`` (the API's, with every field; rows stored before
        a field existed take its default), or the defaults."""
        values = dict(data or {})
        policy = {f.name: values.pop(f.name) for f in fields(TurnPolicy) if f.name in values}
        if policy.get("backchannels") is not None:
            policy["backchannels"] = tuple(policy["backchannels"])
        else:
            policy.pop("backchannels", None)  # null: the built-in list
        return cls(**values, policy=TurnPolicy(**policy))

    def vad(self) -> VadConfig:
        return VadConfig(aggressiveness=self.vad_aggressiveness, end_ms=self.end_of_turn_ms)


def voicemail(a: models.Assistant, context: Mapping[str, Any] | None
              ) -> VoicemailDetector | None:
    """The answering-machine screen of a call the assistant places, if it has one; the
    message it leaves is filled in for the call."""
    config = VoicemailConfig.of(a.voicemail)
    if not config.detect:
        return None
    message = render(config.message, context or {}) if config.message else None
    return VoicemailDetector(replace(config, message=message))


def greeting(a: models.Assistant, rules: RuleSet,
             context: Mapping[str, Any] | None = None) -> str:
    """What the assistant says first: its own greeting (filled in for the call), else that
    of its rules."""
    return render(a.greeting, context or {}) if a.greeting else rules.greeting


def after_hours(a: models.Assistant, at: datetime) -> tuple[Speech, Brain] | None:
    """For a call coming in at ``at`` outside the assistant's hours: what it says and does
    first, and the brain that hears the caller afterwards (who takes their message)."""
    hours = BusinessHours.of(a.business_hours)
    if hours is None or hours.is_open(at):
        return None
    dest = {d.name: d for d in destinations(a)}.get(hours.destination or "")
    return closed_opening(hours, dest.target if dest else None,
                          dest.bridge if dest else False), MessageTaker()


def destinations(a: models.Assistant) -> list[Destination]:
    return [Destination(str(d["name"]), str(d["target"]), str(d.get("description", "")),
                        d.get("mode") == "bridge")
            for d in a.transfers or []]


def fallback(a: models.Assistant) -> Fallback:
    f = a.fallback or {}
    dest = {d.name: d for d in destinations(a)}.get(f.get("destination") or "")
    kwargs = {"message": f["message"]} if f.get("message") else {}
    return Fallback(action=f.get("action", "continue"), target=dest.target if dest else None,
                    bridge=dest.bridge if dest else False, **kwargs)


def llm_settings(a: models.Assistant, box: SecretBox) -> list[LlmSettings]:
    return [LlmSettings(
        provider=m["provider"], model=m["model"],
        api_key=box.decrypt(m["api_key_enc"]) if m.get("api_key_enc") else None,
        base_url=m.get("base_url"), temperature=m.get("temperature"),
        max_tokens=m["max_tokens"], timeout_s=m["timeout_s"])
        for m in a.llm or []]


def http_tools(a: models.Assistant, box: SecretBox) -> list[HttpTool]:
    out = []
    for t in a.http_tools or []:
        headers = json.loads(box.decrypt(t["headers_enc"])) if t.get("headers_enc") else {}
        out.append(HttpTool(t["name"], t["description"], t["parameters"], t["url"],
                            t["method"], headers, t["timeout_s"]))
    return out


def system_prompt(a: models.Assistant, context: Mapping[str, Any] | None) -> str:
    prompt = a.prompt or DEFAULT_PROMPT
    if context is None:
        return render(prompt, {})
    ctx = {**context, "metadata_json": json.dumps(context.get("metadata") or {})}
    return render(prompt, ctx) + "\n" + TASK_PROMPT.format_map(
        {k: ctx.get(k) or "(not given)" for k in ("task", "caller_name", "metadata_json")})


def toolbox(a: models.Assistant, box: SecretBox, client: httpx.AsyncClient | None
            ) -> ToolBox:
    return ToolBox(a.tools if a.tools is not None else list(BUILTINS), destinations(a),
                   http_tools(a, box), client)


def brain_for(a: models.Assistant, rules: RuleSet, context: Mapping[str, Any] | None,
              box: SecretBox | None, client: httpx.AsyncClient | None) -> Brain:
    """The rule brain with ``rules`` (already chosen and filled for the call), or the
    language models when the assistant has them. ``context``: the call's task, if any."""
    first = greeting(a, rules, context)
    if not a.llm or box is None:
        return RuleBrain(replace(rules, greeting=first))
    models_ = [language_model(s, client) for s in llm_settings(a, box)]
    return LlmBrain(models_, system_prompt(a, context), first, toolbox(a, box, client))


def realtime_settings(a: models.Assistant, box: SecretBox | None) -> RealtimeSettings | None:
    """The speech-to-speech model of an assistant in mode realtime, key decrypted."""
    r = a.realtime
    if a.mode != "realtime" or not r or box is None:
        return None
    return RealtimeSettings(
        provider=r["provider"], model=r.get("model") or "",
        api_key=box.decrypt(r["api_key_enc"]) if r.get("api_key_enc") else None,
        voice=r.get("voice"), base_url=r.get("base_url"),
        timeout_s=r.get("timeout_s", RealtimeSettings.timeout_s))


def speech_settings(row: Mapping[str, Any] | None, box: SecretBox | None,
                    language: str | None = None) -> SpeechSettings | None:
    """A cloud recogniser's or voice's settings (``stt``/``tts``), key decrypted."""
    if not row or box is None:
        return None
    return SpeechSettings(
        provider=row["provider"], model=row["model"],
        api_key=box.decrypt(row["api_key_enc"]) if row.get("api_key_enc") else None,
        voice=row.get("voice"), language=row.get("language") or language,
        base_url=row.get("base_url"),
        timeout_s=row.get("timeout_s", SpeechSettings.timeout_s))


def realtime_config(a: models.Assistant, rules: RuleSet, context: Mapping[str, Any] | None,
                    tools: ToolBox, wire_codec: str | None) -> RealtimeConfig:
    return RealtimeConfig(
        instructions=system_prompt(a, context), greeting=greeting(a, rules, context),
        tools=tools.specs, end_of_turn_ms=TurnTaking.of(a.conversation).end_of_turn_ms,
        language=a.language, wire_codec=wire_codec)


def session_for(a: models.Assistant, leg: CallLeg, rules: RuleSet,
                context: Mapping[str, Any] | None, providers: ProviderRegistry,
                executor: Executor, box: SecretBox | None, observer: SessionObserver
                ) -> AgentSession | RealtimeSession:
    """The session that runs the call on ``leg``: the closed message outside opening hours,
    else the realtime model (mode realtime), else the pipeline. ``rules``: chosen and
    filled for the call; ``context``: the call's task, if any."""
    inbound = leg.info.direction == "inbound"
    turns = TurnTaking.of(a.conversation)

    def pipeline(opening: Speech | None, brain: Brain | None,
                 cause: str = "closed") -> AgentSession:
        stt, tts = speech_settings(a.stt, box, a.language), speech_settings(a.tts, box)
        return AgentSession(
            leg, brain or brain_for(a, rules, context, box, providers.http), providers.stt,
            providers.voice(a.voice), executor, observer=observer, vad=turns.vad(),
            fallback=fallback(a), policy=turns.policy,
            voicemail=None if inbound or opening else voicemail(a, context),
            opening=opening, opening_cause=cause,
            cloud_stt=providers.transcriber(stt) if stt else None,
            cloud_tts=providers.cloud_voice(tts) if tts else None,
            hold_music=music_for(a.hold_music))

    closed = after_hours(a, datetime.now(UTC)) if inbound else None
    if closed is not None:
        log.info("call %s: outside %s's hours", leg.info.id, a.name)
        return pipeline(*closed)
    settings = realtime_settings(a, box)
    if settings is None or box is None:
        return pipeline(None, None)
    tools = toolbox(a, box, providers.http)
    return RealtimeSession(
        leg, realtime_connection(settings),
        realtime_config(a, rules, context, tools, leg.wire_codec), tools, observer=observer,
        fallback=fallback(a), hold_music=music_for(a.hold_music), policy=turns.policy,
        pipeline=lambda opening, brain: pipeline(opening, brain, "assistant_hangup"))
