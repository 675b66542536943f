"""What every model provider offers: chat messages in, text out, and one shared retry policy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal, Protocol, TypedDict, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from convoflow.config import Settings

T = TypeVar("T")


class ChatMessage(TypedDict):
    """One message of a chat conversation, in the shape every chat API understands."""

    role: Literal["system", "user", "assistant"]
    content: str


class ModelError(Exception):
    """The model could not answer (after retries). str(e) is a short, safe message (no secrets, no user text)."""

    provider: str

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class ModelProvider(Protocol):
    """A chat model: answers a list of messages, whole or as a stream of text deltas."""

    name: str
    model: str

    async def complete(self, messages: list[ChatMessage]) -> str: ...

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]: ...


def last_user_input(messages: list[ChatMessage]) -> str:
    """The content of the newest user message, or "" when there is none."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def attempts_suffix(attempts: int) -> str:
    """The ' after N attempts' tail of an error message; empty when there was no retry."""
    return f" after {attempts} attempts" if attempts > 1 else ""


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    settings: Settings,
    is_retryable: Callable[[BaseException], bool],
    describe: Callable[[BaseException, int], str],
    provider: str,
) -> T:
    """Await `call`, retrying transient failures with exponential backoff; any failure ends as ModelError.

    `describe(error, attempts)` turns the last error into the ModelError's safe message.
    """
    attempts = 0

    async def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return await call()

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(settings.llm_max_retries + 1),
        wait=wait_exponential_jitter(
            multiplier=settings.llm_retry_min_seconds,
            min=settings.llm_retry_min_seconds,
            max=settings.llm_retry_max_seconds,
            jitter=settings.llm_retry_min_seconds,
        ),
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except ModelError:
        raise
    except Exception as error:
        raise ModelError(describe(error, attempts), provider=provider) from error
