"""Picks the model provider named by LLM_PROVIDER."""

from __future__ import annotations

from convoflow.config import Settings
from convoflow.workflow.providers.base import ModelProvider
from convoflow.workflow.providers.instrumented import InstrumentedProvider
from convoflow.workflow.providers.offline import OfflineProvider


def build_provider(settings: Settings) -> ModelProvider:
    """The provider for `settings.llm_provider`, configured from `settings`, with its calls measured."""
    return InstrumentedProvider(_plain_provider(settings))


def _plain_provider(settings: Settings) -> ModelProvider:
    # SDKs are imported on demand: each costs about a second of start-up that offline runs never need.
    if settings.llm_provider == "openai":
        from convoflow.workflow.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(settings)
    if settings.llm_provider == "dashscope":
        from convoflow.workflow.providers.dashscope import DashScopeProvider

        return DashScopeProvider(settings)
    return OfflineProvider(settings)
