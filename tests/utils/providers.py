"""Model providers built by a test, closed again when it ends (their aiohttp sessions must not outlive the loop)."""

from __future__ import annotations

from convoflow.config import Settings
from convoflow.workflow import ModelProvider, build_provider

_open: list[ModelProvider] = []


def provider_for(settings: Settings) -> ModelProvider:
    """build_provider, remembered so that close_providers closes it."""
    provider = build_provider(settings)
    _open.append(provider)
    return provider


async def close_providers() -> None:
    while _open:
        await _open.pop().aclose()
