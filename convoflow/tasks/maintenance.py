"""Maintenance tasks: schema initialisation and the periodic retention cleanup."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from convoflow.config import get_settings
from convoflow.services import conversations
from convoflow.services.redis_client import sync_redis
from convoflow.tasks import names
from convoflow.tasks.policy import db_retry_options
from convoflow.worker.queues import DATABASE_QUEUE

logger = logging.getLogger(__name__)


@shared_task(name=names.INIT_DATABASE, queue=DATABASE_QUEUE, **db_retry_options())
def init_database_task() -> dict[str, Any]:
    return {"success": True, **conversations.initialise_schema(get_settings())}


@shared_task(name=names.CLEANUP_EXPIRED, queue=DATABASE_QUEUE, **db_retry_options())
def cleanup_expired_conversations_task() -> dict[str, Any]:
    """Delete turns older than RETENTION_DAYS; a Redis lock keeps two runs from overlapping."""
    settings = get_settings()
    lock_key = settings.redis_key("lock", "retention")
    lock = sync_redis(settings.redis_url).lock(lock_key, timeout=settings.task_time_limit, blocking=False)
    if not lock.acquire():
        logger.info("retention cleanup skipped: another run holds the lock")
        return {"success": True, "deleted": 0, "skipped": True}
    try:
        deleted = conversations.delete_older_than(settings, settings.retention_days)
    finally:
        lock.release()
    logger.info("retention cleanup deleted %d turns older than %d days", deleted, settings.retention_days)
    return {"success": True, "deleted": deleted, "skipped": False, "retention_days": settings.retention_days}
