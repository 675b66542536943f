"""Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, ...) through the async OpenAI client."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import openai

from convoflow.config import Settings
from convoflow.jsoncodec import loads
from convoflow.workflow.providers.backoff import retry_after_seconds
from convoflow.workflow.providers.base import (
    ChatMessage,
    RetryPolicy,
    code_detail,
    connection_detail,
)
from convoflow.workflow.providers.usage import report_usage

logger = logging.getLogger(__name__)


def is_retryable(error: BaseException) -> bool:
    """Connection problems, timeouts, 429 and 5xx are worth another try; other 4xx are not."""
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return False


class MalformedResponse(ValueError):
    """A successful response whose body is not a chat completion (a proxy's login page, say)."""


def reason(error: BaseException) -> str:
    """Why a call failed, in RetryPolicy's words (http_<status>, timeout, connection, malformed, error_event, or the
    error's type)."""
    if isinstance(error, openai.APIStatusError):
        return f"http_{error.status_code}"
    if isinstance(error, openai.APITimeoutError) and not connection_detail(error):
        # The SDK's aiohttp transport reports a failed connection (refused, unknown host) as a connect timeout (its
        # table maps aiohttp's ClientConnectorError to its parent's exception); the cause chain tells them apart.
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection"
    if isinstance(error, MalformedResponse | json.JSONDecodeError):  # not JSON, or JSON of another shape
        return "malformed"
    if isinstance(error, openai.APIError):  # what the client raises for an `error` object inside a stream
        return "error_event"
    return type(error).__name__


def detail(error: BaseException) -> str:
    """For the log: the error code of an error response or of an error event in a stream (insufficient_quota,
    model_not_found, ...), else what failed under a connection failure."""
    if isinstance(error, openai.APIError) and not isinstance(error, openai.APIConnectionError):
        return code_detail(error.code)
    return connection_detail(error)


def asked_pause(error: BaseException) -> float | None:
    """The pause an error response asks for (`retry-after-ms` or `retry-after`, as on OpenAI's 429s)."""
    if isinstance(error, openai.APIStatusError):
        return retry_after_seconds(error.response.headers)
    return None


# Chat completions go through the client's untyped verb (`post` with `cast_to=object`: its documented way to call an
# endpoint as is) with its auth, timeouts, errors and server-sent-event decoding, but without the typed `create`'s
# walk of the parameters' types and the model objects it builds from every response and stream chunk: 0.85 -> 0.6
# ms of CPU per call, and 17 -> 2.6 ms per streamed answer of 200 chunks. The request is the one `create` sends.
COMPLETIONS_PATH = "/chat/completions"


def _answer(completion: object) -> str:
    """The text of a chat completion (reporting its token usage); "" when it has none (the retry policy's empty
    answer); MalformedResponse when the body is not a JSON object."""
    if isinstance(completion, str):
        # The client hands over a body not labelled as JSON as text; some servers label JSON text/plain.
        try:
            completion = loads(completion)
        except ValueError:
            raise MalformedResponse("not JSON") from None
    if not isinstance(completion, dict):
        raise MalformedResponse("not a JSON object")
    _report(completion)
    return _text(completion, "message")


def _delta(chunk: object) -> str:
    """The text a stream chunk adds (reporting the usage the last chunk carries when asked for); "" for none."""
    if not isinstance(chunk, dict):
        raise MalformedResponse("a stream chunk that is not a JSON object")
    _report(chunk)
    return _text(chunk, "delta")


def _report(body: dict[str, Any]) -> None:
    usage = body.get("usage")
    if isinstance(usage, dict):
        report_usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def _text(body: dict[str, Any], field: str) -> str:
    """choices[0][field]["content"] when it is text."""
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    part = first.get(field) if isinstance(first, dict) else None
    content = part.get("content") if isinstance(part, dict) else None
    return content if isinstance(content, str) else ""


class OpenAICompatProvider:
    """Chat completions over HTTP; retries are ours (tenacity), so the client's own are switched off."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        self.model = settings.model_name
        self._stream_usage = settings.openai_stream_usage
        self._retries = RetryPolicy(
            settings,
            is_retryable=is_retryable,
            reason=reason,
            provider=self.name,
            stream_errors=(openai.OpenAIError, MalformedResponse, json.JSONDecodeError),
            detail=detail,
            asked_pause=asked_pause,
        )
        self._client = openai.AsyncOpenAI(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key or "not-needed",
            timeout=settings.llm_timeout_seconds,
            max_retries=0,
            # aiohttp under the client, as the SDK offers "for improved concurrency performance": its default
            # connection pool scans every pooled connection on each request and each close (a third of the
            # API's CPU with 500 model calls in flight here).
            http_client=openai.DefaultAioHttpClient(),
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(self, messages: list[ChatMessage]) -> str:
        async def create() -> str:
            body = {"model": self.model, "messages": messages}
            return _answer(await self._client.post(COMPLETIONS_PATH, body=body, cast_to=object))

        return await self._retries.complete(create)

    async def _open_stream(self, messages: list[ChatMessage]) -> openai.AsyncStream[object]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
        if self._stream_usage:
            body["stream_options"] = {"include_usage": True}
        return await self._client.post(
            COMPLETIONS_PATH, body=body, cast_to=object, stream=True, stream_cls=openai.AsyncStream[object]
        )

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        return self._retries.stream(lambda: self._deltas(messages))

    async def _deltas(self, messages: list[ChatMessage]) -> AsyncGenerator[str, None]:
        try:
            chunks = await self._open_stream(messages)
        except openai.BadRequestError as error:
            if not (self._stream_usage and "stream_options" in str(error)):
                raise
            # An endpoint that rejects the field (e.g. an older Azure api-version): stop asking, and ask again now.
            self._stream_usage = False
            logger.warning(
                "the model endpoint rejects stream_options: streamed answers' tokens are counted in words from now "
                "on (OPENAI_STREAM_USAGE=false says so from the start)"
            )
            chunks = await self._open_stream(messages)
        async with chunks:
            async for chunk in chunks:
                delta = _delta(chunk)
                if delta:
                    yield delta
