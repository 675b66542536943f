"""Retry policy shared by the database tasks."""

from __future__ import annotations

from typing import Any

from convoflow.config import get_settings
from convoflow.db.errors import TRANSIENT_DB_ERRORS

__all__ = ["TRANSIENT_DB_ERRORS", "db_retry_options", "save_retry_delay"]


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


def save_retry_delay(retries: int) -> float:
    """Seconds before retry number `retries` + 1 of a save: exponential, capped below the visibility timeout."""
    settings = get_settings()
    return float(min(2**retries, settings.save_retry_backoff_max))
