"""Queue names and task routes: database tasks go to `database` (as the seed says), workflow runs to `workflow`.

A worker started without `-Q` consumes every queue in QUEUES, so `celery -A celery_app worker` handles both;
in production the `workflow` queue (I/O-bound model calls, seconds each) suits a thread pool of its own that
takes one run per thread at a time (the default prefetch suits batched saves, not runs):
`celery -A celery_app worker -Q workflow -P threads -c 8 --prefetch-multiplier 1 -n workflow@%h`
beside `celery -A celery_app worker -Q database -n database@%h`.
"""

from __future__ import annotations

from kombu import Queue

DATABASE_QUEUE = "database"
WORKFLOW_QUEUE = "workflow"

QUEUES: tuple[Queue, ...] = (
    Queue(DATABASE_QUEUE, routing_key=DATABASE_QUEUE),
    Queue(WORKFLOW_QUEUE, routing_key=WORKFLOW_QUEUE),
)

TASK_ROUTES: dict[str, dict[str, str]] = {
    "celery_tasks.save_conversation_task": {"queue": DATABASE_QUEUE},
    "convoflow.save_turns": {"queue": DATABASE_QUEUE},
    "celery_tasks.get_conversation_history_task": {"queue": DATABASE_QUEUE},
    "celery_tasks.delete_conversation_history_task": {"queue": DATABASE_QUEUE},
    "celery_tasks.init_database_task": {"queue": DATABASE_QUEUE},
    "convoflow.cleanup_expired_conversations": {"queue": DATABASE_QUEUE},
    "convoflow.check_database": {"queue": DATABASE_QUEUE},
    "convoflow.list_sessions": {"queue": DATABASE_QUEUE},
    "convoflow.run_workflow": {"queue": WORKFLOW_QUEUE},
}

TASK_MODULES: tuple[str, ...] = (
    "convoflow.tasks.conversations",
    "convoflow.tasks.maintenance",
    "convoflow.tasks.health",
    "convoflow.tasks.sessions",
    "convoflow.tasks.runs",
)
