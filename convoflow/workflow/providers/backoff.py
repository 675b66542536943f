"""The pause before another model call: exponential backoff with jitter, or as long as the endpoint asks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, wait_exponential_jitter

from convoflow.config import Settings

# How long an error response asks the client to wait, in seconds, or None when it does not say.
AskedPause = Callable[[BaseException], float | None]


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The pause that response headers ask for: `retry-after-ms` (OpenAI), else `retry-after` in seconds or as an
    HTTP date; None when they ask for none or say it in a form that is not one of these."""
    if not headers:
        return None
    lowered = {str(name).lower(): str(value).strip() for name, value in headers.items()}
    if (millis := _number(lowered.get("retry-after-ms"))) is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    if (seconds := _number(value)) is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


class Backoff:
    """tenacity's pause and retry check for one provider: exponential with jitter between LLM_RETRY_MIN_SECONDS and
    LLM_RETRY_MAX_SECONDS, longer when the error response asks for it (Retry-After), and no retry at all when it
    asks for more than LLM_RETRY_MAX_SECONDS: the caller is better answered now than after a long wait."""

    def __init__(self, settings: Settings, asked: AskedPause) -> None:
        self._exponential = wait_exponential_jitter(
            multiplier=settings.llm_retry_min_seconds,
            min=settings.llm_retry_min_seconds,
            max=settings.llm_retry_max_seconds,
            jitter=settings.llm_retry_min_seconds,
        )
        self._longest = settings.llm_retry_max_seconds
        self._asked = asked

    def allows(self, error: BaseException) -> bool:
        asked = self._asked(error)
        return asked is None or asked <= self._longest

    def pause(self, state: RetryCallState) -> float:
        pause = float(self._exponential(state))
        error = state.outcome.exception() if state.outcome is not None else None
        asked = self._asked(error) if error is not None else None
        return max(pause, asked) if asked is not None else pause


def nothing_asked(_error: BaseException) -> float | None:
    return None
