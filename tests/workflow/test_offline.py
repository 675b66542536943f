"""The offline provider: deterministic, network-free, and honest about its simulated latency."""

import asyncio
import time

import pytest

from convoflow.config import Settings
from convoflow.workflow import ChatMessage, build_provider

pytestmark = pytest.mark.anyio

MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": "what  about\nthis?"},
]


def offline_settings(latency_ms: int = 0) -> Settings:
    return Settings(
        _env_file=None,
        llm_provider="offline",
        llm_model="",
        offline_latency_ms=latency_ms,
    )


async def test_offline_answer_is_deterministic_and_says_it_is_offline() -> None:
    provider = build_provider(offline_settings())

    first = await provider.complete(MESSAGES)

    assert first == await provider.complete(MESSAGES)
    assert first == "[offline model] You said: what  about\nthis? (I remember 1 earlier turns.)"
    assert (provider.name, provider.model) == ("offline", "offline-echo")


async def test_offline_stream_joins_to_the_complete_answer() -> None:
    provider = build_provider(offline_settings(latency_ms=20))

    deltas = [delta async for delta in provider.stream(MESSAGES)]

    assert len(deltas) > 1
    assert "".join(deltas) == await provider.complete(MESSAGES)


async def test_offline_complete_awaits_the_configured_latency() -> None:
    provider = build_provider(offline_settings(latency_ms=50))

    started = time.monotonic()
    await provider.complete(MESSAGES)

    assert time.monotonic() - started >= 0.049


async def test_offline_stream_spreads_the_configured_latency_over_its_words() -> None:
    provider = build_provider(offline_settings(latency_ms=50))

    started = time.monotonic()
    async for _ in provider.stream(MESSAGES):
        pass

    assert time.monotonic() - started >= 0.049


async def test_offline_latency_lets_other_tasks_run_meanwhile() -> None:
    provider = build_provider(offline_settings(latency_ms=20))
    finished: list[str] = []

    async def ask() -> None:
        await provider.complete(MESSAGES)
        finished.append("answer")

    async def other_work() -> None:
        finished.append("other work")

    await asyncio.gather(ask(), other_work())

    assert finished == ["other work", "answer"]
