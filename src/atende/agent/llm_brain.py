"""A brain backed by a language model: the conversation so far and the assistant's tools
go to the model, its reply is spoken sentence by sentence as it streams, and its tool calls
are run on the call, their results fed back for another round.

With several models, a failure before the first word moves on to the next one (a backup
provider); a failure after it is the session's to handle (its fallback). A model that
failed is asked last for the rest of the call: otherwise every turn would wait out its
timeout before the backup speaks."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from atende.agent.actions import CallActions
from atende.agent.tools import ToolBox
from atende.providers.errors import ProviderError
from atende.providers.llm.base import (
    Conversation,
    LanguageModel,
    LlmEvent,
    Message,
    TextDelta,
    ToolCall,
)
from atende.providers.tts.base import SentenceChunker

log = logging.getLogger(__name__)

NOT_RUN = json.dumps({"error": "not run: the caller interrupted"})


class LlmBrain:
    """A brain that thinks with a language model: keeps the conversation, streams the reply
    sentence by sentence, runs the model's tool calls and falls back to backup models."""

    def __init__(self, models: list[LanguageModel], system: str, greeting: str,
                 tools: ToolBox, max_rounds: int = 4) -> None:
        if not models:
            raise ValueError("an LLM brain needs at least one model")
        self.models = models
        self.tools = tools
        self.max_rounds = max_rounds
        self._greeting = greeting
        self.conversation = Conversation(system, [], tools.specs)
        if greeting:
            self.conversation.messages.append(Message("assistant", greeting))
        self._benched: list[LanguageModel] = []  # failed on this call: asked last
        self._reply_from = 0  # where the last reply starts (the greeting, at first)
        self._cut = False  # the last reply's memory was cut to what the caller heard

    def greeting(self) -> str:
        return self._greeting

    async def respond(self, heard: str, actions: CallActions) -> AsyncGenerator[str, None]:
        messages = self.conversation.messages
        self._answer_pending_calls()
        messages.append(Message("user", heard))
        self._reply_from = len(messages)
        self._cut = False
        for _ in range(self.max_rounds):
            text: list[str] = []
            calls: list[ToolCall] = []
            chunker = SentenceChunker()
            try:
                # aclosing: a barge-in closes the HTTP stream now, not when collected.
                async with aclosing(self._stream(actions)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                            for sentence in chunker.feed(event.text):
                                yield sentence
                        elif isinstance(event, ToolCall):
                            calls.append(event)
                for sentence in chunker.flush():
                    yield sentence
            finally:  # also when interrupted: memory keeps what was generated
                if text or calls:
                    messages.append(Message("assistant", "".join(text), tuple(calls)))
            if not calls:
                return
            stop = False
            for call in calls:
                result = await self.tools.run(call, actions)
                messages.append(Message("tool", json.dumps(result.content),
                                        tool_call_id=call.id, tool_name=call.name))
                stop = stop or result.stop
            if stop:
                return
        log.warning("the model kept calling tools for %d rounds; waiting for the caller",
                    self.max_rounds)

    async def _stream(self, actions: CallActions) -> AsyncGenerator[LlmEvent, None]:
        last: ProviderError | None = None
        order = [m for m in self.models if m not in self._benched] + self._benched
        for model in order:
            started = False
            try:
                async with aclosing(model.stream(self.conversation)) as events:
                    async for event in events:
                        if not started:
                            started = True
                            actions.first_token()
                        yield event
                if model in self._benched:
                    self._benched.remove(model)  # it answered again
                return
            except ProviderError as exc:
                if started:
                    raise
                last = exc
                if len(self.models) > 1 and model not in self._benched:
                    self._benched.append(model)
                log.warning("%s failed (%s); %s", model.name, exc.kind,
                            "trying the next model" if model is not order[-1]
                            else "no model left")
                actions.event("provider_error", exc.report(provider=model.name))
        assert last is not None
        raise last

    def _answer_pending_calls(self) -> None:
        """Tool calls left without a result (the caller barged in while they ran) get one:
        every API refuses a conversation with an unanswered call."""
        messages = self.conversation.messages
        answered = {m.tool_call_id for m in messages if m.role == "tool"}
        for m in list(messages[self._reply_from:]):
            for call in m.tool_calls:
                if call.id not in answered:
                    messages.append(Message("tool", NOT_RUN, tool_call_id=call.id,
                                            tool_name=call.name))

    def said(self, text: str, interrupted: bool) -> None:
        """After a barge-in, the reply's text in memory becomes what was heard; when the
        session takes a cut reply up again, what was heard in all."""
        if not interrupted and not self._cut:
            return
        self._cut = interrupted
        messages = self.conversation.messages
        rest = text
        for i in range(self._reply_from, len(messages)):
            m = messages[i]
            if m.role == "assistant" and m.text:
                messages[i] = Message("assistant", rest + ("…" if rest and interrupted
                                                            else ""),
                                      m.tool_calls)
                rest = ""
        self.conversation.messages = [m for m in messages if m.role != "assistant" or
                                      m.text or m.tool_calls]
