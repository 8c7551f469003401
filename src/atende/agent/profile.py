"""What a call needs to know of the assistant that talks on it, as plain values: the agent
reads no database row and decrypts nothing (calls/assistant_rows.py builds a profile from
the stored assistant, keys decrypted, for one call)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from atende.agent.brain import RuleSet
from atende.agent.business_hours import BusinessHours
from atende.agent.fallback import Fallback
from atende.agent.tools import Destination, HttpTool
from atende.agent.turn_policy import TurnPolicy
from atende.agent.vad import VadConfig
from atende.agent.voicemail import VoicemailConfig
from atende.providers.llm.base import LlmSettings
from atende.providers.realtime.base import RealtimeSettings
from atende.providers.speech import SpeechSettings


@dataclass(frozen=True)
class TurnTaking:
    """An assistant's conversation settings: reprompts, end-of-turn silence, barge-in and call
    length."""

    end_of_turn_ms: int = VadConfig.end_ms
    vad_aggressiveness: int = VadConfig.aggressiveness
    max_call_seconds: int | None = None
    end_of_turn_model: bool = False  # a pause the model judges final ends the turn early
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


@dataclass(frozen=True)
class AssistantProfile:
    """An assistant as one call sees it: who it is, what it says, which models it thinks,
    hears and speaks with (keys in clear, in memory only), its tools and its settings."""

    id: str
    name: str
    rules: Mapping[str, Any]  # the rule brain's intents (RuleSet.from_dict), "task" inside
    voice: str = "piper"
    language: str = "en"
    mode: str = "pipeline"  # pipeline | realtime
    record: bool = False
    greeting: str | None = None  # may hold {placeholders} filled per call
    prompt: str | None = None
    llm: tuple[LlmSettings, ...] = ()  # in order of preference; none: the rule brain
    tools: tuple[str, ...] | None = None  # built-in tools it may use; None: the default set
    http_tools: tuple[HttpTool, ...] = ()
    destinations: tuple[Destination, ...] = ()
    fallback: Fallback = field(default_factory=Fallback)
    turns: TurnTaking = field(default_factory=TurnTaking)
    voicemail: VoicemailConfig = field(default_factory=VoicemailConfig)
    hours: BusinessHours | None = None  # None: always open
    realtime: RealtimeSettings | None = None  # set in mode realtime only
    stt: SpeechSettings | None = None  # a cloud recogniser instead of the local one
    tts: SpeechSettings | None = None  # a cloud voice instead of ``voice``
    hold_music: str | None = None  # a WAV path
    max_calls: int | None = None  # calls it takes at once, over all nodes; None: any

    def destination(self, name: str | None) -> Destination | None:
        return next((d for d in self.destinations if d.name == name), None)

    @functools.cached_property
    def rule_set(self) -> RuleSet:
        """``rules`` read once (the engine keeps one profile per version of an assistant,
        and every call it answers uses them; shared, so nobody changes them)."""
        return RuleSet.from_dict(self.rules)
