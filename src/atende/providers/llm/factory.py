"""Language models chosen by name."""

from __future__ import annotations

import httpx

from atende.providers.llm.anthropic import AnthropicMessages
from atende.providers.llm.base import LanguageModel, LlmSettings
from atende.providers.llm.gemini import GeminiGenerate
from atende.providers.llm.http import Dialect, HttpLanguageModel
from atende.providers.llm.openai import OpenAIChat

DIALECTS: dict[str, type[Dialect]] = {
    "openai": OpenAIChat, "anthropic": AnthropicMessages, "gemini": GeminiGenerate}


def language_model(settings: LlmSettings, client: httpx.AsyncClient | None = None
                   ) -> LanguageModel:
    try:
        dialect = DIALECTS[settings.provider]
    except KeyError:
        raise ValueError(f"unknown LLM provider {settings.provider!r}: use "
                         f"{', '.join(DIALECTS)}") from None
    return HttpLanguageModel(settings, dialect(), client)
