"""What every model provider offers: chat messages in, text out, and one shared retry policy."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Literal, Protocol, TypedDict, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from convoflow.config import Settings
from convoflow.observability import metrics
from convoflow.workflow.providers.backoff import AskedPause, Backoff, nothing_asked

T = TypeVar("T")

logger = logging.getLogger(__name__)


class ChatMessage(TypedDict):
    """One message of a chat conversation, in the shape every chat API understands."""

    role: Literal["system", "user", "assistant"]
    content: str


class ModelError(Exception):
    """The model could not answer (after retries). str(e) is a short, safe message (no secrets, no user text) that
    clients are shown; `detail`, for the operators' log, is the endpoint's error code or what failed underneath a
    connection failure."""

    provider: str
    detail: str

    def __init__(self, message: str, *, provider: str, detail: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.detail = detail

    @property
    def log_text(self) -> str:
        """The message, with the detail when there is one: what a log line about this failure says."""
        return f"{self} ({self.detail})" if self.detail else str(self)


def connection_detail(error: BaseException) -> str:
    """The innermost OS-level error under `error` (a refused connection, a name that does not resolve, a TLS
    certificate that is not trusted), as `Type: message`; "" when there is none. These carry addresses and reasons,
    never user text, so they may be logged."""
    found = ""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and not isinstance(current, TimeoutError):
            message = str(current)
            found = f"{type(current).__name__}: {message}" if message else type(current).__name__
        current = current.__cause__ or current.__context__
    return found


class ModelProvider(Protocol):
    """A chat model: answers a list of messages, whole or as a stream of text deltas."""

    name: str
    model: str

    async def complete(self, messages: list[ChatMessage]) -> str: ...

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]: ...

    async def aclose(self) -> None:
        """Close the provider's connections; it is not used afterwards."""
        ...


def last_user_input(messages: list[ChatMessage]) -> str:
    """The content of the newest user message, or "" when there is none."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


# What an API's machine-readable error code looks like (insufficient_quota, Throttling.RateQuota, ...).
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def code_detail(code: object) -> str:
    """`code <code>` for an API's error code, which tells apart what one status covers (a 429 for a spent quota
    from one for too many requests, a 400 for moderated content); "" for anything else, never free text."""
    text = "" if code is None else str(code)
    return f"code {text}" if _ERROR_CODE.fullmatch(text) else ""


def failure_message(reason: str) -> str:
    """The short, client-safe message for a failed model call, from its reason (see RetryPolicy)."""
    if reason.startswith("http_"):
        return f"model endpoint returned HTTP {reason.removeprefix('http_')}"
    if reason == "timeout":
        return "model endpoint timed out"
    if reason == "connection":
        return "could not connect to the model endpoint"
    if reason == "malformed":
        return "model endpoint returned a malformed response"
    if reason == "error_event":
        return "model endpoint sent an error event"
    return f"model call failed ({reason})"


def attempts_suffix(attempts: int) -> str:
    """The ' after N attempts' tail of an error message; empty when there was no retry."""
    return f" after {attempts} attempts" if attempts > 1 else ""


class RetryPolicy:
    """One provider's way of retrying: its whole answers, and its streams until the first delta.

    `reason(error)` names why an attempt failed, in a few words that are safe to show and to use as a metric label:
    `http_<status>` for an error response, `timeout`, `connection`, `malformed` (a response that is not what the
    protocol says), `error_event` (an error sent inside a stream), else the error's type. Transient failures
    (`is_retryable`) are retried with backoff (see Backoff); each retry is logged (a warning: reason, detail, pause)
    and counted in `convoflow_model_retries_total`. Any failure ends as a ModelError whose safe message says the
    reason (`failure_message`) and the attempts, and whose detail for the log is `detail(error)`.
    `asked_pause(error)` is the pause an error response asks for (Retry-After), if any. `stream_errors` are the
    errors that may end a stream after its first delta, which become a ModelError without another try.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        is_retryable: Callable[[BaseException], bool],
        reason: Callable[[BaseException], str],
        provider: str,
        stream_errors: tuple[type[BaseException], ...],
        detail: Callable[[BaseException], str] = connection_detail,
        asked_pause: AskedPause = nothing_asked,
    ) -> None:
        self._attempts = settings.llm_max_retries + 1
        self._is_retryable = is_retryable
        self._reason = reason
        self._provider = provider
        self._model = settings.model_name
        self._stream_errors = stream_errors
        self._detail = detail
        self._backoff = Backoff(settings, asked_pause)

    async def complete(self, call: Callable[[], Awaitable[str]]) -> str:
        """The answer `call` gives, with retries; an empty answer is a ModelError."""
        answer = await self._with_retries(call)
        if not answer:
            raise ModelError("model returned an empty answer", provider=self._provider)
        return answer

    async def stream(self, open_deltas: Callable[[], AsyncGenerator[str, None]]) -> AsyncIterator[str]:
        """The deltas of a stream that `open_deltas` opens, retrying only until the first delta."""

        # Retrying is only safe until the first delta has reached the caller, so a retried
        # attempt covers opening the stream and reading up to its first piece of text.
        async def open_stream() -> tuple[AsyncGenerator[str, None], str | None]:
            deltas = open_deltas()
            try:
                return deltas, await anext(deltas, None)
            except BaseException:
                await deltas.aclose()
                raise

        deltas, first = await self._with_retries(open_stream)
        if first is None:
            raise ModelError("model returned an empty answer", provider=self._provider)
        try:
            yield first
            async for delta in deltas:
                yield delta
        except self._stream_errors as error:
            message = failure_message(self._reason(error)) + " mid-stream"
            raise ModelError(message, provider=self._provider, detail=self._detail(error)) from error
        finally:
            await deltas.aclose()

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda error: self._is_retryable(error) and self._backoff.allows(error)),
            stop=stop_after_attempt(self._attempts),
            wait=self._backoff.pause,
            before_sleep=self._retrying,
            reraise=True,
        )
        try:
            return await retrying(call)
        except ModelError:
            raise
        except Exception as error:
            attempts = int(retrying.statistics.get("attempt_number", 1))  # tenacity counts them
            message = failure_message(self._reason(error)) + attempts_suffix(attempts)
            raise ModelError(message, provider=self._provider, detail=self._detail(error)) from error

    def _retrying(self, state: RetryCallState) -> None:
        """Before the pause ahead of another attempt: count the retry and say why it is needed."""
        error = state.outcome.exception() if state.outcome else None
        if error is None:
            return
        reason = self._reason(error)
        metrics.model_retries.labels(provider=self._provider, model=self._model, reason=reason).inc()
        detail = self._detail(error)
        logger.warning(
            "%s model attempt %d of %d failed: %s%s; retrying in %.2f s",
            self._provider,
            state.attempt_number,
            self._attempts,
            failure_message(reason),
            f" ({detail})" if detail else "",
            state.upcoming_sleep,
        )
