"""Queue names and task routes: every database task goes to the `database` queue, as the seed says."""

from __future__ import annotations

from kombu import Queue

DATABASE_QUEUE = "database"

QUEUES: tuple[Queue, ...] = (Queue(DATABASE_QUEUE, routing_key=DATABASE_QUEUE),)

TASK_ROUTES: dict[str, dict[str, str]] = {
    "celery_tasks.save_conversation_task": {"queue": DATABASE_QUEUE},
    "convoflow.save_turns": {"queue": DATABASE_QUEUE},
    "celery_tasks.get_conversation_history_task": {"queue": DATABASE_QUEUE},
    "celery_tasks.delete_conversation_history_task": {"queue": DATABASE_QUEUE},
    "celery_tasks.init_database_task": {"queue": DATABASE_QUEUE},
    "convoflow.cleanup_expired_conversations": {"queue": DATABASE_QUEUE},
    "convoflow.check_database": {"queue": DATABASE_QUEUE},
}

TASK_MODULES: tuple[str, ...] = (
    "convoflow.tasks.conversations",
    "convoflow.tasks.maintenance",
    "convoflow.tasks.health",
)
