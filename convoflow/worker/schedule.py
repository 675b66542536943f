"""The Beat schedule: periodic jobs, each behind its own ENABLE_* flag."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from convoflow.config import Settings


def parse_schedule(expression: str) -> crontab | float:
    """A crontab ("m h dom mon dow", UTC) or a plain number of seconds."""
    text = expression.strip()
    try:
        seconds = float(text)
    except ValueError:
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(f"not a crontab of five fields nor a number of seconds: {expression!r}") from None
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        return crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    if seconds <= 0:
        raise ValueError("a schedule in seconds must be positive")
    return seconds


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {}
    if settings.enable_retention_cleanup:
        schedule["cleanup-expired-conversations"] = {
            "task": "convoflow.cleanup_expired_conversations",
            "schedule": parse_schedule(settings.retention_cleanup_schedule),
            # A missed run is simply done by the next one; never pile runs up.
            "options": {"expires": 3600},
        }
    return schedule
