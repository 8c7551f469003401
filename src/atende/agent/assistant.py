"""An assistant's profile turned into the session that talks on a call: its brain (rules
or language models with tools), its opening outside business hours, its answering-machine
screen, or its realtime speech-to-speech model."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx

from atende.agent.actions import Brain, Speech
from atende.agent.brain import RuleBrain, RuleSet, render
from atende.agent.business_hours import closed_opening
from atende.agent.fallback import MessageTaker
from atende.agent.llm_brain import LlmBrain
from atende.agent.profile import AssistantProfile
from atende.agent.realtime_session import RealtimeSession
from atende.agent.session import AgentSession
from atende.agent.tools import BUILTINS, ToolBox
from atende.agent.turns import SessionObserver
from atende.agent.voicemail import VoicemailDetector
from atende.channels.leg import CallLeg
from atende.media.music import music_for
from atende.providers.llm.factory import language_model
from atende.providers.realtime.base import RealtimeConfig
from atende.providers.realtime.factory import realtime_connection
from atende.providers.registry import ProviderRegistry

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


def voicemail(a: AssistantProfile, context: Mapping[str, Any] | None
              ) -> VoicemailDetector | None:
    """The answering-machine screen of a call the assistant places, if it has one; the
    message it leaves is filled in for the call."""
    if not a.voicemail.detect:
        return None
    message = render(a.voicemail.message, context or {}) if a.voicemail.message else None
    return VoicemailDetector(replace(a.voicemail, message=message))


def greeting(a: AssistantProfile, rules: RuleSet,
             context: Mapping[str, Any] | None = None) -> str:
    """What the assistant says first: its own greeting (filled in for the call), else that
    of its rules."""
    return render(a.greeting, context or {}) if a.greeting else rules.greeting


def after_hours(a: AssistantProfile, at: datetime) -> tuple[Speech, Brain] | None:
    """For a call coming in at ``at`` outside the assistant's hours: what it says and does
    first, and the brain that hears the caller afterwards (who takes their message)."""
    if a.hours is None or a.hours.is_open(at):
        return None
    dest = a.destination(a.hours.destination)
    return closed_opening(a.hours, dest.target if dest else None,
                          dest.bridge if dest else False), MessageTaker()


def system_prompt(a: AssistantProfile, context: Mapping[str, Any] | None) -> str:
    prompt = a.prompt or DEFAULT_PROMPT
    if context is None:
        return render(prompt, {})
    ctx = {**context, "metadata_json": json.dumps(context.get("metadata") or {})}
    return render(prompt, ctx) + "\n" + TASK_PROMPT.format_map(
        {k: ctx.get(k) or "(not given)" for k in ("task", "caller_name", "metadata_json")})


def toolbox(a: AssistantProfile, client: httpx.AsyncClient | None) -> ToolBox:
    return ToolBox(list(a.tools) if a.tools is not None else list(BUILTINS),
                   list(a.destinations), list(a.http_tools), client)


def brain_for(a: AssistantProfile, rules: RuleSet, context: Mapping[str, Any] | None,
              client: httpx.AsyncClient | None) -> Brain:
    """The rule brain with ``rules`` (already chosen and filled for the call), or the
    language models when the assistant has them. ``context``: the call's task, if any."""
    first = greeting(a, rules, context)
    if not a.llm:
        destinations = {d.name: (d.target, d.bridge) for d in a.destinations}
        return RuleBrain(replace(rules, greeting=first), destinations.get)
    models_ = [language_model(s, client) for s in a.llm]
    return LlmBrain(models_, system_prompt(a, context), first, toolbox(a, client))


def realtime_config(a: AssistantProfile, rules: RuleSet, context: Mapping[str, Any] | None,
                    tools: ToolBox, wire_codec: str | None) -> RealtimeConfig:
    return RealtimeConfig(
        instructions=system_prompt(a, context), greeting=greeting(a, rules, context),
        tools=tools.specs, end_of_turn_ms=a.turns.end_of_turn_ms,
        language=a.language, wire_codec=wire_codec)


def session_for(a: AssistantProfile, leg: CallLeg, rules: RuleSet,
                context: Mapping[str, Any] | None, providers: ProviderRegistry,
                executor: Executor, observer: SessionObserver, now: datetime
                ) -> AgentSession | RealtimeSession:
    """The session that runs the call on ``leg``: the closed message outside opening hours,
    else the realtime model (mode realtime), else the pipeline. ``rules``: chosen and
    filled for the call; ``context``: the call's task, if any; ``now``: when it was
    answered (for the business hours)."""
    inbound = leg.info.direction == "inbound"
    turns = a.turns

    def pipeline(opening: Speech | None, brain: Brain | None,
                 cause: str = "closed") -> AgentSession:
        return AgentSession(
            leg, brain or brain_for(a, rules, context, providers.http), providers.stt,
            providers.voice(a.voice), executor, observer=observer, vad=turns.vad(),
            fallback=a.fallback, policy=turns.policy,
            voicemail=None if inbound or opening else voicemail(a, context),
            opening=opening, opening_cause=cause,
            cloud_stt=providers.transcriber(a.stt) if a.stt else None,
            cloud_tts=providers.cloud_voice(a.tts) if a.tts else None,
            hold_music=music_for(a.hold_music),
            turn_detector=providers.turn if turns.end_of_turn_model else None)

    closed = after_hours(a, now) if inbound else None
    if closed is not None:
        log.info("call %s: outside %s's hours", leg.info.id, a.name)
        return pipeline(*closed)
    if a.realtime is None:
        return pipeline(None, None)
    tools = toolbox(a, providers.http)
    return RealtimeSession(
        leg, realtime_connection(a.realtime),
        realtime_config(a, rules, context, tools, leg.wire_codec), tools, observer=observer,
        fallback=a.fallback, hold_music=music_for(a.hold_music), policy=turns.policy,
        pipeline=lambda opening, brain: pipeline(opening, brain, "assistant_hangup"))
