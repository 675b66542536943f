"""The Beat schedule: periodic jobs, each behind its own ENABLE_* flag."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from convoflow.config import Settings


def _crontab(expression: str) -> crontab:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return crontab(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
    )


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {}
    if settings.enable_retention_cleanup:
        schedule["cleanup-expired-conversations"] = {
            "task": "convoflow.cleanup_expired_conversations",
            "schedule": _crontab(settings.retention_cleanup_cron),
            # A missed run is simply done by the next one; never pile runs up.
            "options": {"expires": 3600},
        }
    return schedule
