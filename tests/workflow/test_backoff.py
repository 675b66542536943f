"""The pause before another model call: Retry-After as OpenAI and DashScope send it, and the backoff around it."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from tenacity import RetryCallState

from convoflow.config import Settings
from convoflow.workflow.providers.backoff import Backoff, nothing_asked, retry_after_seconds


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"Retry-After": format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-4"}, None),
        ({"retry-after": "inf"}, None),
        ({"content-type": "application/json"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_is_read_in_milliseconds_seconds_or_as_a_date(
    headers: dict[str, str] | None, seconds: float | None
) -> None:
    assert retry_after_seconds(headers) == seconds


def test_retry_after_as_a_future_date_is_the_time_until_then() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    asked = retry_after_seconds({"Retry-After": later})
    assert asked is not None and 3500 < asked <= 3600


class AskedFor(Exception):
    def __init__(self, seconds: float | None) -> None:
        super().__init__("busy")
        self.seconds = seconds


def asked(error: BaseException) -> float | None:
    return error.seconds if isinstance(error, AskedFor) else None


def failed_with(error: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.set_exception((type(error), error, None))
    return state


SETTINGS = Settings(_env_file=None, llm_retry_min_seconds=0.5, llm_retry_max_seconds=8)


def test_the_pause_is_what_the_endpoint_asks_when_that_is_longer_than_the_backoff() -> None:
    backoff = Backoff(SETTINGS, asked)
    assert backoff.pause(failed_with(AskedFor(6))) == 6
    assert 0.5 <= backoff.pause(failed_with(AskedFor(0.01))) <= 1.0  # first backoff step: 0.5 s plus jitter
    assert 0.5 <= backoff.pause(failed_with(AskedFor(None))) <= 1.0


def test_no_retry_when_the_endpoint_asks_for_longer_than_the_longest_pause() -> None:
    backoff = Backoff(SETTINGS, asked)
    assert backoff.allows(AskedFor(8))
    assert not backoff.allows(AskedFor(8.5))
    assert backoff.allows(AskedFor(None))
    assert Backoff(SETTINGS, nothing_asked).allows(AskedFor(60))
