"""Model providers built by a test, closed again when it ends (their aiohttp sessions must not outlive the loop)."""

from __future__ import annotations

import pytest

from convoflow.config import Settings
from convoflow.workflow import ChatMessage, ModelError, ModelProvider, build_provider

_open: list[ModelProvider] = []


def provider_for(settings: Settings) -> ModelProvider:
    """build_provider, remembered so that close_providers closes it."""
    provider = build_provider(settings)
    _open.append(provider)
    return provider


async def close_providers() -> None:
    while _open:
        await _open.pop().aclose()


async def stream_until_error(provider: ModelProvider, messages: list[ChatMessage]) -> tuple[list[str], ModelError]:
    """The deltas `provider` streamed before it failed, and its ModelError (the test fails if it never does)."""
    received: list[str] = []
    with pytest.raises(ModelError) as raised:
        async for delta in provider.stream(messages):
            received.append(delta)
    return received, raised.value
