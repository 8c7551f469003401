"""The language-model interface: a conversation in, a stream of text and tool calls out.

Every vendor adapter turns a ``Conversation`` into its own request and its own event stream
back into ``TextDelta``, ``ToolCall`` and ``Finished``; the agent never sees vendor JSON.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class ToolCall:
    """A tool call a language model made."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One message of a conversation with a language model."""

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""  # role "tool": the call this answers
    tool_name: str = ""  # role "tool": Gemini matches results by name


@dataclass(frozen=True)
class Tool:
    """A tool offered to a language model."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments (an object)


@dataclass
class Conversation:
    """What a language model is given: instructions, messages and tools."""

    system: str
    messages: list[Message] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)


@dataclass(frozen=True)
class TextDelta:
    """A piece of the model's reply text."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The model's reply is over."""

    reason: str  # the vendor's: stop, tool_calls, end_turn, length …


LlmEvent = TextDelta | ToolCall | Finished


@dataclass(frozen=True)
class LlmSettings:
    """An assistant's language model: provider, model, key, base URL and limits."""

    provider: str  # openai | anthropic | gemini
    model: str
    api_key: str | None = None
    base_url: str | None = None
    temperature: float | None = None
    max_tokens: int = 400
    timeout_s: float = 5.0  # to the first byte, and between bytes after it


class LanguageModel(Protocol):
    """A language model atende can stream replies from."""

    name: str

    def stream(self, conversation: Conversation) -> AsyncGenerator[LlmEvent, None]:
        """The reply as it is generated. Raises ProviderError when the provider fails,
        including a stream that stops before the reply is finished."""
        ...
