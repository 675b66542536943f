"""Retry policy shared by the database tasks."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from convoflow.config import get_settings

# Transient database failures: the server is down, restarting, or the pool is exhausted.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, PoolTimeoutError)


def db_retry_options() -> dict[str, Any]:
    """Decorator options: retry transient database errors with capped exponential backoff and jitter."""
    settings = get_settings()
    return {
        "autoretry_for": TRANSIENT_DB_ERRORS,
        "retry_backoff": 1,
        "retry_backoff_max": settings.db_task_retry_backoff_max,
        "retry_jitter": True,
        "max_retries": settings.db_task_max_retries,
    }
