"""A round trip through the `database` queue that proves a worker can reach the database."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from convoflow.config import get_settings
from convoflow.services import conversations
from convoflow.tasks import names
from convoflow.worker.queues import DATABASE_QUEUE
from convoflow.worker.requests import ReadTask


@shared_task(base=ReadTask, name=names.CHECK_DATABASE, queue=DATABASE_QUEUE)
def check_database_task() -> dict[str, Any]:
    conversations.check_database(get_settings())
    return {"success": True}
