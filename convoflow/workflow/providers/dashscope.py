"""Qwen/Tongyi models through the DashScope SDK's native async API (`AioGeneration`)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from functools import cache
from typing import Any, cast

import aiohttp
import certifi
from dashscope.aigc.generation import AioGeneration
from dashscope.api_entities.dashscope_response import GenerationResponse, Message

from convoflow.config import Settings
from convoflow.workflow.providers.backoff import retry_after_seconds
from convoflow.workflow.providers.base import (
    ChatMessage,
    RetryPolicy,
    code_detail,
    connection_detail,
)
from convoflow.workflow.providers.usage import report_usage

# Model calls one provider keeps in flight at once, as many as the OpenAI client's pool allows. The SDK's own
# shared session has aiohttp's default of 100, which held a 1 s model at 100 turns/s with 500 clients waiting.
MAX_CONNECTIONS = 1000


class DashScopeStatusError(Exception):
    """DashScope answered with a non-200 status; the SDK returns these instead of raising them.

    `retry_after` is the pause the response asked for (its Retry-After header), if any.
    """

    def __init__(self, status_code: int, code: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status_code} ({code})")
        self.status_code = status_code
        self.code = code
        self.retry_after = retry_after


def is_retryable(error: BaseException) -> bool:
    """Connection problems, timeouts, 429 and 5xx are worth another try; other 4xx are not."""
    if isinstance(error, DashScopeStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return isinstance(error, (aiohttp.ClientError, TimeoutError))


def reason(error: BaseException) -> str:
    """Why a call failed, in RetryPolicy's words (http_<status>, timeout, connection, or the error's type)."""
    if isinstance(error, DashScopeStatusError):
        return f"http_{error.status_code}"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.ClientError):
        return "connection"
    return type(error).__name__


def detail(error: BaseException) -> str:
    """For the log: the error code of an error response (Arrearage, DataInspectionFailed, ...), else what failed
    under a connection failure."""
    if isinstance(error, DashScopeStatusError):
        return code_detail(error.code)
    return connection_detail(error)


def asked_pause(error: BaseException) -> float | None:
    return error.retry_after if isinstance(error, DashScopeStatusError) else None


def _checked_content(response: GenerationResponse) -> str:
    """The text of a (possibly partial) response; raises DashScopeStatusError for an error response."""
    if response.status_code != 200:
        asked = retry_after_seconds(response.headers)
        raise DashScopeStatusError(int(response.status_code), str(response.code or "unknown"), asked)
    choices = response.output.choices if response.output else None
    return str(choices[0].message.content or "") if choices and choices[0].message else ""


@cache
def trusted_cas() -> ssl.SSLContext:
    """certifi's CAs, which the SDK trusts, and the system's, or those SSL_CERT_FILE / SSL_CERT_DIR name (OpenSSL
    reads them itself): a private CA or a TLS-inspecting proxy is trusted as by the OpenAI client (httpx)."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.set_default_verify_paths()
    return context


class DashScopeProvider:
    """Chat generation with result_format="message"; retries are ours (tenacity)."""

    name = "dashscope"

    def __init__(self, settings: Settings) -> None:
        self.model = settings.model_name
        self._retries = RetryPolicy(
            settings,
            is_retryable=is_retryable,
            reason=reason,
            provider=self.name,
            stream_errors=(DashScopeStatusError, aiohttp.ClientError, TimeoutError),
            detail=detail,
            asked_pause=asked_pause,
        )
        self._options: dict[str, Any] = {
            "api_key": settings.dashscope_api_key,
            "result_format": "message",
            "request_timeout": settings.llm_timeout_seconds,
        }
        if settings.dashscope_base_url:
            # The HTTP API root, e.g. https://dashscope-intl.aliyuncs.com/api/v1; per call, not global.
            self._options["base_address"] = settings.dashscope_base_url
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        """This provider's connections, opened on first use in the event loop that uses it (proxies from the
        environment, as the SDK's)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ssl=trusted_cas())
            self._session = aiohttp.ClientSession(connector=connector, trust_env=True)
        return self._session

    async def aclose(self) -> None:
        """Close this provider's connections."""
        if self._session is not None:
            await self._session.close()

    async def complete(self, messages: list[ChatMessage]) -> str:
        async def generate() -> str:
            response = cast(
                GenerationResponse,
                await AioGeneration.call(
                    model=self.model, messages=_to_dashscope(messages), session=self._pool(), **self._options
                ),
            )
            answer = _checked_content(response)
            _report(response)
            return answer

        return await self._retries.complete(generate)

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        return self._retries.stream(lambda: self._deltas(messages))

    async def _deltas(self, messages: list[ChatMessage]) -> AsyncGenerator[str, None]:
        responses = await AioGeneration.call(
            model=self.model,
            messages=_to_dashscope(messages),
            stream=True,
            incremental_output=True,
            session=self._pool(),
            **self._options,
        )
        # The SDK's stub says Generator, but with stream=True AioGeneration returns an async generator.
        chunks = cast(AsyncGenerator[GenerationResponse, None], responses)
        try:
            async for chunk in chunks:
                delta = _checked_content(chunk)
                _report(chunk)  # each event's usage counts the whole answer so far
                if delta:
                    yield delta
        finally:
            await chunks.aclose()


def _report(response: GenerationResponse) -> None:
    if response.usage:
        report_usage(int(response.usage.input_tokens or 0), int(response.usage.output_tokens or 0))


def _to_dashscope(messages: list[ChatMessage]) -> list[Message]:
    return [Message(role=m["role"], content=m["content"]) for m in messages]
