"""A provider wrapper that records each model call's latency (and a stream's time to its first text), failures and
tokens in Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from convoflow.observability import metrics
from convoflow.workflow.providers.base import ChatMessage, ModelProvider
from convoflow.workflow.providers.usage import clear_usage, reported_usage


def _words(text: str) -> int:
    return len(text.split())


class InstrumentedProvider:
    """Behaves exactly like the provider it wraps; tokens are the provider's figures when it reports them,
    else words counted in the messages and the answer (the offline model; streams with OPENAI_STREAM_USAGE=false)."""

    def __init__(self, inner: ModelProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model

    def _count_tokens(self, messages: list[ChatMessage], answer: str) -> None:
        usage = reported_usage()
        if usage is not None:
            prompt, completion, counted_by = usage.prompt_tokens, usage.completion_tokens, "usage"
        else:
            prompt, completion, counted_by = sum(_words(m["content"]) for m in messages), _words(answer), "words"
        labels = {"provider": self.name, "model": self.model, "counted_by": counted_by}
        metrics.model_tokens.labels(kind="prompt", **labels).inc(prompt)
        metrics.model_tokens.labels(kind="completion", **labels).inc(completion)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def complete(self, messages: list[ChatMessage]) -> str:
        labels = {"provider": self.name, "model": self.model, "mode": "complete"}
        clear_usage()
        began = time.perf_counter()
        try:
            answer = await self.inner.complete(messages)
        except Exception:
            metrics.model_errors.labels(**labels).inc()
            raise
        finally:
            metrics.model_request_duration.labels(**labels).observe(time.perf_counter() - began)
        self._count_tokens(messages, answer)
        return answer

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        labels = {"provider": self.name, "model": self.model, "mode": "stream"}
        pieces: list[str] = []
        clear_usage()
        began = time.perf_counter()
        try:
            async for delta in self.inner.stream(messages):
                if not pieces:
                    first_token = time.perf_counter() - began
                    metrics.model_first_token.labels(provider=self.name, model=self.model).observe(first_token)
                pieces.append(delta)
                yield delta
        except Exception:
            metrics.model_errors.labels(**labels).inc()
            raise
        finally:
            metrics.model_request_duration.labels(**labels).observe(time.perf_counter() - began)
        self._count_tokens(messages, "".join(pieces))
