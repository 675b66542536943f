"""The offline model: a deterministic echo with simulated latency, for development, tests and benchmarks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from convoflow.config import Settings
from convoflow.workflow.providers.base import ChatMessage, last_user_input

# Split after each run of whitespace so every word keeps its trailing spaces.
_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


def offline_answer(messages: list[ChatMessage]) -> str:
    """The offline model's answer to `messages`: the last user input and how many earlier turns it saw."""
    earlier_turns = sum(1 for message in messages if message["role"] == "assistant")
    return f"[offline model] You said: {last_user_input(messages)} (I remember {earlier_turns} earlier turns.)"


class OfflineProvider:
    """Answers without any network call, after `offline_latency_ms` of non-blocking sleep."""

    name = "offline"

    def __init__(self, settings: Settings) -> None:
        self.model = settings.model_name
        self._latency_seconds = settings.offline_latency_ms / 1000

    async def aclose(self) -> None:
        """Nothing to close: no connections."""

    async def complete(self, messages: list[ChatMessage]) -> str:
        if self._latency_seconds:
            await asyncio.sleep(self._latency_seconds)
        return offline_answer(messages)

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        words = _WORD_BOUNDARY.split(offline_answer(messages))
        pause = self._latency_seconds / len(words)
        for word in words:
            if pause:
                await asyncio.sleep(pause)
            yield word
