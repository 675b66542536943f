"""Session tasks: list the sessions that have stored turns."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from convoflow.config import get_settings
from convoflow.services import sessions
from convoflow.tasks import names
from convoflow.tasks.policy import db_retry_options
from convoflow.worker.queues import DATABASE_QUEUE
from convoflow.worker.requests import ReadTask


@shared_task(base=ReadTask, name=names.LIST_SESSIONS, queue=DATABASE_QUEUE, **db_retry_options())
def list_sessions_task(limit: int = 20, cursor: str | None = None, owner: str | None = None) -> dict[str, Any]:
    page = sessions.list_sessions(get_settings(), limit=limit, cursor=cursor, owner=owner)
    return {"success": True, "count": len(page["sessions"]), **page}
