"""Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, ...) through the async OpenAI client."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from convoflow.config import Settings
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


def reason(error: BaseException) -> str:
    """Why a call failed, in RetryPolicy's words (http_<status>, timeout, connection, or the error's type)."""
    if isinstance(error, openai.APIStatusError):
        return f"http_{error.status_code}"
    if isinstance(error, openai.APITimeoutError) and not connection_detail(error):
        # The SDK's aiohttp transport reports a failed connection (refused, unknown host) as a connect timeout (its
        # table maps aiohttp's ClientConnectorError to its parent's exception); the cause chain tells them apart.
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection"
    return type(error).__name__


def detail(error: BaseException) -> str:
    """For the log: the error code of an error response (insufficient_quota, model_not_found, ...), else what
    failed under a connection failure."""
    if isinstance(error, openai.APIStatusError):
        return code_detail(error.code)
    return connection_detail(error)


def asked_pause(error: BaseException) -> float | None:
    """The pause an error response asks for (`retry-after-ms` or `retry-after`, as on OpenAI's 429s)."""
    if isinstance(error, openai.APIStatusError):
        return retry_after_seconds(error.response.headers)
    return None


def _body_messages(messages: list[ChatMessage]) -> dict[str, list[ChatCompletionMessageParam]]:
    """The conversation as `extra_body`, which the client merges into the request's JSON after its own checks.

    The client walks a typed `messages` argument through every message type of its request schema before
    sending (3-4 ms of CPU per call with ten turns of memory here, growing with the conversation, twice the
    rest of an API turn). Ours are plain wire-format dicts already, so that walk changes nothing: passed here,
    with `messages=[]` in the typed arguments to keep the key's place, the body sent is byte for byte the same.
    """
    return {"messages": [_to_openai(m) for m in messages]}


def _to_openai(message: ChatMessage) -> ChatCompletionMessageParam:
    if message["role"] == "system":
        return {"role": "system", "content": message["content"]}
    if message["role"] == "assistant":
        return {"role": "assistant", "content": message["content"]}
    return {"role": "user", "content": message["content"]}


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
            stream_errors=(openai.OpenAIError,),
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
            completion = await self._client.chat.completions.create(
                model=self.model, messages=[], extra_body=_body_messages(messages)
            )
            if completion.usage is not None:
                report_usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
            return (completion.choices[0].message.content or "") if completion.choices else ""

        return await self._retries.complete(create)

    async def _open_stream(self, messages: list[ChatMessage]) -> openai.AsyncStream[ChatCompletionChunk]:
        return await self._client.chat.completions.create(
            model=self.model,
            messages=[],
            extra_body=_body_messages(messages),
            stream=True,
            stream_options={"include_usage": True} if self._stream_usage else openai.omit,
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
                if chunk.usage is not None:  # the last chunk, without choices, when usage was asked for
                    report_usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
