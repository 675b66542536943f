"""The seed's task module: re-exports the task objects (`save_conversation_task.delay(...)` and friends)."""

import celery_app  # noqa: F401  (configures the Celery app before the tasks are used)
from convoflow.tasks.conversations import (
    delete_conversation_history_task,
    get_conversation_history_task,
    save_conversation_task,
)
from convoflow.tasks.maintenance import cleanup_expired_conversations_task, init_database_task
from convoflow.tasks.runs import run_workflow_task
from convoflow.tasks.sessions import list_sessions_task

__all__ = [
    "cleanup_expired_conversations_task",
    "delete_conversation_history_task",
    "get_conversation_history_task",
    "init_database_task",
    "list_sessions_task",
    "run_workflow_task",
    "save_conversation_task",
]
